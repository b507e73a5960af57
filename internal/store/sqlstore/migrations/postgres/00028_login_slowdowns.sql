-- +goose Up
-- The per-account slow-downs of failed logins shared by the control
-- replicas (see sqlstore.Store.AttemptSlowdown), as rate_budgets
-- (migration 00022) shares the per-address budgets. A row is one key's
-- count under one kind of slow-down (kind: user-login, staff-login), the
-- key (the canonical email address, or it and a device token's nonce)
-- held only as its keyed hash (HMAC-SHA256 under a key every replica
-- derives from the keyring), never in the clear.
--
-- fails is the number of failed attempts in a row counted so far (capped
-- where the delay reaches its maximum); until_ms, in unix milliseconds,
-- when the next attempt may go ahead; expires_ms when the count is
-- forgotten (a day after the last counted attempt, by default), after
-- which the housekeeping deletes the row. Milliseconds, as rate_budgets.
--
-- UNLOGGED, for the reasons rate_budgets is: the counts are short-lived,
-- a crash of the database that empties the table forgives every account's
-- failures (a fresh start, as a restart of a single replica does), and
-- writes skip the write-ahead log. No index besides the key, so updates
-- stay HOT.
CREATE UNLOGGED TABLE login_slowdowns (
	kind TEXT NOT NULL,
	digest BYTEA NOT NULL,
	fails INTEGER NOT NULL,
	until_ms BIGINT NOT NULL,
	expires_ms BIGINT NOT NULL,
	PRIMARY KEY (kind, digest)
);

-- +goose Down
DROP TABLE login_slowdowns;
