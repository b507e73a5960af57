-- Retention without holes.
--
-- policy_acceptances outlive the account row without holding it: the
-- foreign key to accounts goes, and closed_at records when the account
-- was closed, from which their own retention counts. A trigger keeps it
-- so: closing an account stamps its acceptances; deleting an account that
-- was never closed (an unverified sign-up purged) deletes them, as the
-- foreign key's cascade did.
--
-- usage_sessions.gateway_id names the gateway of an open interval, and
-- only while it is open, so that an interval whose gateway stopped
-- reporting can be closed at the last moment the gateway was seen.
--
-- inbox.deleted_at marks a notice the user deleted: its text is blanked,
-- and the row stays only so the notice is not posted to them again.

-- +goose Up
ALTER TABLE policy_acceptances DROP CONSTRAINT IF EXISTS policy_acceptances_account_id_fkey;
ALTER TABLE policy_acceptances ADD COLUMN closed_at BIGINT;
UPDATE policy_acceptances p SET closed_at = a.closed_at FROM accounts a WHERE a.id = p.account_id;
CREATE INDEX policy_acceptances_closed ON policy_acceptances (closed_at) WHERE closed_at IS NOT NULL;
-- +goose StatementBegin
CREATE FUNCTION accounts_acceptances() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.closed_at IS NULL THEN
            DELETE FROM policy_acceptances WHERE account_id = OLD.id;
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.closed_at IS NOT NULL AND OLD.closed_at IS NULL THEN
        UPDATE policy_acceptances SET closed_at = NEW.closed_at WHERE account_id = NEW.id AND closed_at IS NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER accounts_acceptances AFTER UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_acceptances();

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
DROP TRIGGER accounts_acceptances ON accounts;
DROP FUNCTION accounts_acceptances();
DROP INDEX policy_acceptances_closed;
ALTER TABLE policy_acceptances DROP COLUMN closed_at;
DELETE FROM policy_acceptances WHERE account_id NOT IN (SELECT id FROM accounts);
ALTER TABLE policy_acceptances ADD CONSTRAINT policy_acceptances_account_id_fkey
    FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE;
