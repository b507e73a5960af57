-- Primary keys are NOT NULL (SQLite). A rowid table's PRIMARY KEY column
-- accepts NULL in SQLite unless it is an INTEGER PRIMARY KEY or declared
-- NOT NULL (a legacy quirk SQLite keeps for compatibility), while
-- PostgreSQL refuses NULL in every key column. TestSchemaAgreement found
-- the sixteen TEXT, BLOB and BIGINT keys below nullable on SQLite only.
-- SQLite cannot add NOT NULL to a column, so each table is rebuilt as its
-- documentation prescribes (lang_altertable.html, "other kinds of table
-- schema changes"): with foreign keys off, in one transaction, create the
-- new table, copy every row, drop the old one, rename, and recreate its
-- indexes and triggers. Column lists, defaults, foreign keys, indexes and
-- triggers are those of migrations 00001 to 00009. A row with a NULL key,
-- which no code path writes, makes the copy and so the migration fail
-- rather than be lost.
--
-- The companion PostgreSQL migration 00010 changes nothing.

-- +goose NO TRANSACTION
-- +goose Up
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE accounts_new (
    id              TEXT NOT NULL PRIMARY KEY,
    email_sealed    BLOB,
    mobile_sealed   BLOB,
    wrapped_key     BLOB,
    email_index     BLOB,
    mobile_index    BLOB,
    password_hash   TEXT NOT NULL DEFAULT '',
    email_verified  BOOLEAN NOT NULL DEFAULT 0,
    mobile_verified BOOLEAN NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    processing_restricted BOOLEAN NOT NULL DEFAULT 0,
    processing_objected   BOOLEAN NOT NULL DEFAULT 0,
    closed_at       BIGINT
);
INSERT INTO accounts_new (id, email_sealed, mobile_sealed, wrapped_key, email_index, mobile_index, password_hash, email_verified, mobile_verified, status, created_at,
        processing_restricted, processing_objected, closed_at)
    SELECT id, email_sealed, mobile_sealed, wrapped_key, email_index, mobile_index, password_hash, email_verified, mobile_verified, status, created_at,
        processing_restricted, processing_objected, closed_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_new RENAME TO accounts;
CREATE INDEX accounts_closed ON accounts (closed_at) WHERE closed_at IS NOT NULL;
CREATE UNIQUE INDEX accounts_email_index ON accounts (email_index);
CREATE UNIQUE INDEX accounts_mobile_index ON accounts (mobile_index);
-- +goose StatementBegin
CREATE TRIGGER accounts_closed_at_insert AFTER INSERT ON accounts
FOR EACH ROW WHEN NEW.status = 'closed' AND NEW.closed_at IS NULL
BEGIN
    UPDATE accounts SET closed_at = CAST(strftime('%s', 'now') AS INTEGER) WHERE id = NEW.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER accounts_closed_at_update AFTER UPDATE OF status ON accounts
FOR EACH ROW WHEN NEW.status = 'closed' AND NEW.closed_at IS NULL
BEGIN
    UPDATE accounts SET closed_at = CAST(strftime('%s', 'now') AS INTEGER) WHERE id = NEW.id;
END;
-- +goose StatementEnd

CREATE TABLE tokens_new (
    hash       BLOB NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO tokens_new (hash, account_id, created_at, expires_at)
    SELECT hash, account_id, created_at, expires_at FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_new RENAME TO tokens;
CREATE INDEX tokens_account ON tokens (account_id);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE reset_tokens_new (
    hash       BLOB NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO reset_tokens_new (hash, account_id, expires_at, created_at)
    SELECT hash, account_id, expires_at, created_at FROM reset_tokens;
DROP TABLE reset_tokens;
ALTER TABLE reset_tokens_new RENAME TO reset_tokens;
CREATE INDEX reset_tokens_account ON reset_tokens (account_id);
CREATE INDEX reset_tokens_expires ON reset_tokens (expires_at);

CREATE TABLE staff_new (
    id            TEXT NOT NULL PRIMARY KEY,
    email         TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT 0,
    totp_sealed   BLOB,
    totp_step     BIGINT NOT NULL DEFAULT 0
);
INSERT INTO staff_new (id, email, role, password_hash, created_at, disabled, totp_sealed, totp_step)
    SELECT id, email, role, password_hash, created_at, disabled, totp_sealed, totp_step FROM staff;
DROP TABLE staff;
ALTER TABLE staff_new RENAME TO staff;
CREATE UNIQUE INDEX staff_email ON staff (email);

CREATE TABLE staff_tokens_new (
    hash       BLOB NOT NULL PRIMARY KEY,
    staff_id   TEXT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO staff_tokens_new (hash, staff_id, created_at, expires_at)
    SELECT hash, staff_id, created_at, expires_at FROM staff_tokens;
DROP TABLE staff_tokens;
ALTER TABLE staff_tokens_new RENAME TO staff_tokens;
CREATE INDEX staff_tokens_staff ON staff_tokens (staff_id);

CREATE TABLE audit_log_new (
    seq       BIGINT NOT NULL PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    role      TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB,
    hash      BLOB NOT NULL
);
INSERT INTO audit_log_new (seq, at, actor, role, action, subject, detail, prev_hash, hash)
    SELECT seq, at, actor, role, action, subject, detail, prev_hash, hash FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_subject ON audit_log (subject);

CREATE TABLE legal_holds_new (
    id          TEXT NOT NULL PRIMARY KEY,
    account_id  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    until       BIGINT,
    released_at BIGINT,
    released_by TEXT
);
INSERT INTO legal_holds_new (id, account_id, reason, created_by, created_at, until, released_at, released_by)
    SELECT id, account_id, reason, created_by, created_at, until, released_at, released_by FROM legal_holds;
DROP TABLE legal_holds;
ALTER TABLE legal_holds_new RENAME TO legal_holds;
CREATE INDEX legal_holds_account ON legal_holds (account_id);

CREATE TABLE disclosures_new (
    id                   TEXT NOT NULL PRIMARY KEY,
    reference            TEXT NOT NULL,
    authority            TEXT NOT NULL,
    jurisdiction         TEXT NOT NULL,
    legal_basis          TEXT NOT NULL,
    type                 TEXT NOT NULL,
    received_at          BIGINT NOT NULL,
    scope_requested      TEXT NOT NULL,
    decision             TEXT NOT NULL,
    categories_disclosed TEXT NOT NULL,
    fields_disclosed     TEXT NOT NULL,
    gag_until            BIGINT,
    gag_notified_at      BIGINT,
    recorded_by          TEXT NOT NULL,
    recorded_at          BIGINT NOT NULL
);
INSERT INTO disclosures_new (id, reference, authority, jurisdiction, legal_basis, type, received_at, scope_requested, decision, categories_disclosed, fields_disclosed, gag_until, gag_notified_at, recorded_by, recorded_at)
    SELECT id, reference, authority, jurisdiction, legal_basis, type, received_at, scope_requested, decision, categories_disclosed, fields_disclosed, gag_until, gag_notified_at, recorded_by, recorded_at FROM disclosures;
DROP TABLE disclosures;
ALTER TABLE disclosures_new RENAME TO disclosures;
CREATE INDEX disclosures_received ON disclosures (received_at);
CREATE UNIQUE INDEX disclosures_reference ON disclosures (authority, reference);

CREATE TABLE processors_new (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    categories TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO processors_new (id, name, purpose, categories, created_at)
    SELECT id, name, purpose, categories, created_at FROM processors;
DROP TABLE processors;
ALTER TABLE processors_new RENAME TO processors;
CREATE UNIQUE INDEX processors_name ON processors (lower(name));

CREATE TABLE privacy_requests_new (
    id              TEXT NOT NULL PRIMARY KEY,
    account_id      TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    type            TEXT NOT NULL,
    status          TEXT NOT NULL,
    details         TEXT NOT NULL DEFAULT '',
    received_at     BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    extended_reason TEXT NOT NULL DEFAULT '',
    extended_at     BIGINT,
    verified_at     BIGINT,
    confirmed_at    BIGINT,
    completed_at    BIGINT,
    denied_reason   TEXT NOT NULL DEFAULT '',
    outcome         TEXT NOT NULL DEFAULT ''
);
INSERT INTO privacy_requests_new (id, account_id, type, status, details, received_at, due_at, extended_reason, extended_at, verified_at, confirmed_at, completed_at, denied_reason, outcome)
    SELECT id, account_id, type, status, details, received_at, due_at, extended_reason, extended_at, verified_at, confirmed_at, completed_at, denied_reason, outcome FROM privacy_requests;
DROP TABLE privacy_requests;
ALTER TABLE privacy_requests_new RENAME TO privacy_requests;
CREATE INDEX privacy_requests_account ON privacy_requests (account_id, received_at);
CREATE INDEX privacy_requests_due ON privacy_requests (status, due_at);

CREATE TABLE export_tokens_new (
    hash       BLOB NOT NULL PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES privacy_requests (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
INSERT INTO export_tokens_new (hash, request_id, account_id, created_at, expires_at, used_at)
    SELECT hash, request_id, account_id, created_at, expires_at, used_at FROM export_tokens;
DROP TABLE export_tokens;
ALTER TABLE export_tokens_new RENAME TO export_tokens;
CREATE INDEX export_tokens_account ON export_tokens (account_id);
CREATE INDEX export_tokens_expires ON export_tokens (expires_at);

CREATE TABLE erasure_tombstones_new (
    request_id TEXT NOT NULL PRIMARY KEY,
    erased_at  BIGINT NOT NULL
);
INSERT INTO erasure_tombstones_new (request_id, erased_at)
    SELECT request_id, erased_at FROM erasure_tombstones;
DROP TABLE erasure_tombstones;
ALTER TABLE erasure_tombstones_new RENAME TO erasure_tombstones;

CREATE TABLE notice_runs_new (
    id           TEXT NOT NULL PRIMARY KEY,
    kind         TEXT NOT NULL,
    document_id  TEXT,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    email        BOOLEAN NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
INSERT INTO notice_runs_new (id, kind, document_id, subject, body, email, created_at, finished_at)
    SELECT id, kind, document_id, subject, body, email, created_at, finished_at FROM notice_runs;
DROP TABLE notice_runs;
ALTER TABLE notice_runs_new RENAME TO notice_runs;

CREATE TABLE inbox_new (
    id          TEXT NOT NULL PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    read_at     BIGINT,
    notice_run  TEXT,
    email_state TEXT
);
INSERT INTO inbox_new (id, account_id, kind, subject, body, created_at, read_at, notice_run, email_state)
    SELECT id, account_id, kind, subject, body, created_at, read_at, notice_run, email_state FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_new RENAME TO inbox;
CREATE INDEX inbox_account ON inbox (account_id, created_at);
CREATE INDEX inbox_email_pending ON inbox (notice_run, account_id) WHERE email_state = 'pending';
CREATE UNIQUE INDEX inbox_notice ON inbox (notice_run, account_id) WHERE notice_run IS NOT NULL;

CREATE TABLE policy_documents_new (
    id           TEXT NOT NULL PRIMARY KEY,
    kind         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    material     BOOLEAN NOT NULL,
    body         TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL
);
INSERT INTO policy_documents_new (id, kind, version, material, body, published_at, published_by)
    SELECT id, kind, version, material, body, published_at, published_by FROM policy_documents;
DROP TABLE policy_documents;
ALTER TABLE policy_documents_new RENAME TO policy_documents;
CREATE UNIQUE INDEX policy_documents_version ON policy_documents (kind, version);

CREATE TABLE retention_runs_new (
    id          TEXT NOT NULL PRIMARY KEY,
    cause       TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    counts      TEXT NOT NULL
);
INSERT INTO retention_runs_new (id, cause, started_at, finished_at, counts)
    SELECT id, cause, started_at, finished_at, counts FROM retention_runs;
DROP TABLE retention_runs;
ALTER TABLE retention_runs_new RENAME TO retention_runs;
CREATE INDEX retention_runs_started ON retention_runs (started_at);

COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
-- Nothing to undo: the schema before 00010 accepts every row this one holds.
