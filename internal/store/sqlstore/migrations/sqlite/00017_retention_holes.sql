-- Retention without holes.
--
-- policy_acceptances outlive the account row without holding it: the
-- foreign key to accounts goes (SQLite rebuilds the table for that), and
-- closed_at records when the account was closed, from which their own
-- retention counts. Triggers keep it so: closing an account stamps its
-- acceptances; deleting an account that was never closed (an unverified
-- sign-up purged) deletes them, as the foreign key's cascade did.
--
-- usage_sessions.gateway_id names the gateway of an open interval, and
-- only while it is open, so that an interval whose gateway stopped
-- reporting can be closed at the last moment the gateway was seen.
--
-- inbox.deleted_at marks a notice the user deleted: its text is blanked,
-- and the row stays only so the notice is not posted to them again.

-- +goose Up
CREATE TABLE policy_acceptances_new (
    account_id  TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES policy_documents (id),
    accepted_at BIGINT NOT NULL,
    closed_at   BIGINT,
    PRIMARY KEY (account_id, document_id)
);
INSERT INTO policy_acceptances_new (account_id, document_id, accepted_at, closed_at)
    SELECT p.account_id, p.document_id, p.accepted_at, a.closed_at
    FROM policy_acceptances p LEFT JOIN accounts a ON a.id = p.account_id;
DROP TABLE policy_acceptances;
ALTER TABLE policy_acceptances_new RENAME TO policy_acceptances;
CREATE INDEX policy_acceptances_closed ON policy_acceptances (closed_at) WHERE closed_at IS NOT NULL;
-- +goose StatementBegin
CREATE TRIGGER accounts_closed_acceptances AFTER UPDATE ON accounts
FOR EACH ROW WHEN NEW.closed_at IS NOT NULL AND OLD.closed_at IS NULL
BEGIN
    UPDATE policy_acceptances SET closed_at = NEW.closed_at WHERE account_id = NEW.id AND closed_at IS NULL;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER accounts_deleted_acceptances AFTER DELETE ON accounts
FOR EACH ROW WHEN OLD.closed_at IS NULL
BEGIN
    DELETE FROM policy_acceptances WHERE account_id = OLD.id;
END;
-- +goose StatementEnd

ALTER TABLE usage_sessions ADD COLUMN gateway_id TEXT;
CREATE INDEX usage_sessions_open ON usage_sessions (gateway_id) WHERE ended_at IS NULL;

ALTER TABLE inbox ADD COLUMN deleted_at BIGINT;

CREATE INDEX accounts_unverified ON accounts (created_at)
    WHERE status = 'active' AND NOT email_verified AND NOT mobile_verified;

-- +goose Down
DROP INDEX accounts_unverified;
ALTER TABLE inbox DROP COLUMN deleted_at;
DROP INDEX usage_sessions_open;
ALTER TABLE usage_sessions DROP COLUMN gateway_id;
DROP TRIGGER accounts_deleted_acceptances;
DROP TRIGGER accounts_closed_acceptances;
DROP INDEX policy_acceptances_closed;
CREATE TABLE policy_acceptances_old (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES policy_documents (id),
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, document_id)
);
INSERT INTO policy_acceptances_old (account_id, document_id, accepted_at)
    SELECT account_id, document_id, accepted_at FROM policy_acceptances
    WHERE account_id IN (SELECT id FROM accounts);
DROP TABLE policy_acceptances;
ALTER TABLE policy_acceptances_old RENAME TO policy_acceptances;
