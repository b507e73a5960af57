-- The disclosure ledger (requests from public authorities, what was decided
-- and exactly what left) and the processor register (third parties and the
-- data categories each may receive), with the register's default entries.
-- List columns hold JSON arrays of strings.

-- +goose Up
CREATE TABLE disclosures (
    id                   TEXT PRIMARY KEY,
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
CREATE UNIQUE INDEX disclosures_reference ON disclosures (authority, reference);
CREATE INDEX disclosures_received ON disclosures (received_at);

-- account_id is deliberately not a foreign key: the ledger outlives the
-- accounts it names. notified_at is when the account was told (after any
-- gag ended).
CREATE TABLE disclosure_accounts (
    disclosure_id TEXT NOT NULL REFERENCES disclosures (id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL,
    notified_at   BIGINT,
    PRIMARY KEY (disclosure_id, account_id)
);
CREATE INDEX disclosure_accounts_account ON disclosure_accounts (account_id);
CREATE INDEX disclosure_accounts_pending ON disclosure_accounts (disclosure_id) WHERE notified_at IS NULL;

CREATE TABLE processors (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    categories TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX processors_name ON processors (lower(name));

-- The defaults, matching processors.Defaults (a test checks they agree).
-- Seeded once, here, so that an operator's later removal sticks.
INSERT INTO processors (id, name, purpose, categories, created_at) VALUES
    ('prc_smtprelaydefault2222222222', 'SMTP relay', 'email delivery: verification codes, password-reset links and notices',
     '["account.email","auth.codes","auth.reset_tokens","inbox.messages"]', CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)),
    ('prc_smsgatewaydefault222222222', 'SMS gateway', 'text-message delivery: verification codes',
     '["account.mobile","auth.codes"]', CAST(EXTRACT(EPOCH FROM now()) AS BIGINT));

-- +goose Down
DROP TABLE processors;
DROP TABLE disclosure_accounts;
DROP TABLE disclosures;
