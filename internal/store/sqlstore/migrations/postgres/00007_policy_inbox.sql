-- Account inbox, versioned policy documents and their acceptances, the
-- progress of batched notices (policy changes, announcements), and the
-- counts of the last retention sweeps.

-- +goose Up
-- notice_runs: one row per notice sent to every account. It holds no
-- personal data: progress lives in the inbox rows the run created
-- (notice_run, email_state), so a crashed run resumes where it stopped.
CREATE TABLE notice_runs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    document_id  TEXT,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    email        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT
);

-- email_state: NULL (no email for this message), 'pending', 'claimed'
-- (being sent; never sent twice), 'sent' or 'failed'.
CREATE TABLE inbox (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    read_at     BIGINT,
    notice_run  TEXT,
    email_state TEXT
);
CREATE INDEX inbox_account ON inbox (account_id, created_at);
CREATE UNIQUE INDEX inbox_notice ON inbox (notice_run, account_id) WHERE notice_run IS NOT NULL;
CREATE INDEX inbox_email_pending ON inbox (notice_run, account_id) WHERE email_state = 'pending';

CREATE TABLE policy_documents (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    material     BOOLEAN NOT NULL,
    body         TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL
);
CREATE UNIQUE INDEX policy_documents_version ON policy_documents (kind, version);

CREATE TABLE policy_acceptances (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES policy_documents (id),
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, document_id)
);

-- retention_runs: counts per category of each sweep, never contents.
CREATE TABLE retention_runs (
    id          TEXT PRIMARY KEY,
    cause       TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    counts      TEXT NOT NULL
);
CREATE INDEX retention_runs_started ON retention_runs (started_at);

-- closed_at: when the account was closed, the start of its grace period
-- before the retention sweeper purges it. Set by the database whenever an
-- account becomes closed, so every closing path records it.
ALTER TABLE accounts ADD COLUMN closed_at BIGINT;
UPDATE accounts SET closed_at = extract(epoch FROM now())::bigint WHERE status = 'closed';
-- +goose StatementBegin
CREATE FUNCTION accounts_set_closed_at() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'closed' AND NEW.closed_at IS NULL THEN
        NEW.closed_at := extract(epoch FROM now())::bigint;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER accounts_closed_at BEFORE INSERT OR UPDATE OF status ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_set_closed_at();
CREATE INDEX accounts_closed ON accounts (closed_at) WHERE closed_at IS NOT NULL;

-- +goose Down
DROP INDEX accounts_closed;
DROP TRIGGER accounts_closed_at ON accounts;
DROP FUNCTION accounts_set_closed_at();
ALTER TABLE accounts DROP COLUMN closed_at;
DROP TABLE retention_runs;
DROP TABLE policy_acceptances;
DROP TABLE policy_documents;
DROP TABLE inbox;
DROP TABLE notice_runs;
