-- +goose Up
-- Rate-limit budgets shared by the control replicas (see
-- sqlstore.Store.SpendBudget). A row is one key's budget under one limit
-- (bucket: signup, login, verify, reset), the key held only as its keyed
-- hash (HMAC-SHA256 under a key every replica derives from the KEK), never
-- in the clear. tat_ms is the budget's theoretical arrival time in unix
-- milliseconds (the generic cell rate algorithm): the budget is full again
-- once tat_ms has passed, so such rows carry nothing and are deleted by
-- the housekeeping. Milliseconds rather than the usual seconds, because
-- one event's share of a budget may be shorter than a second.
--
-- UNLOGGED: budgets are short-lived and need not survive a crash of the
-- database (it empties the table, which gives everyone a full budget),
-- and writing them skips the write-ahead log. There is deliberately no
-- index on tat_ms, so updates stay HOT.
CREATE UNLOGGED TABLE rate_budgets (
	bucket TEXT NOT NULL,
	digest BYTEA NOT NULL,
	tat_ms BIGINT NOT NULL,
	PRIMARY KEY (bucket, digest)
);

-- +goose Down
DROP TABLE rate_budgets;
