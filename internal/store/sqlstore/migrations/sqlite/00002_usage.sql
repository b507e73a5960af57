-- Session intervals: device, gateway region, start and end at minute
-- granularity, nothing else. An erased account's intervals lose their
-- account and device (anonymised); retention deletes them by started_at.

-- +goose Up
CREATE TABLE usage_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    device_id  TEXT,
    region     TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at   BIGINT
);
-- A gateway's report of (device, start) is idempotent.
CREATE UNIQUE INDEX usage_sessions_device_start ON usage_sessions (device_id, started_at) WHERE device_id IS NOT NULL;
CREATE INDEX usage_sessions_account ON usage_sessions (account_id, started_at);
CREATE INDEX usage_sessions_started ON usage_sessions (started_at);

-- +goose Down
DROP TABLE usage_sessions;
