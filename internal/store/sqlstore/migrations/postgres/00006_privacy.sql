-- Privacy requests (GDPR Art. 15 to 21), single-use export download
-- tokens (hashed), pending contact changes (sealed under the account's data
-- key, waiting for the code sent to the new contact) and erasure
-- tombstones, which hold no personal data: only a request id and a date.

-- +goose Up
CREATE TABLE privacy_requests (
    id              TEXT PRIMARY KEY,
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
CREATE INDEX privacy_requests_account ON privacy_requests (account_id, received_at);
CREATE INDEX privacy_requests_due ON privacy_requests (status, due_at);

CREATE TABLE export_tokens (
    hash       BYTEA PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES privacy_requests (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX export_tokens_account ON export_tokens (account_id);
CREATE INDEX export_tokens_expires ON export_tokens (expires_at);

CREATE TABLE pending_contact_changes (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    channel     TEXT NOT NULL,
    sealed      BYTEA NOT NULL,
    blind_index BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, channel)
);
CREATE INDEX pending_contact_changes_expires ON pending_contact_changes (expires_at);

CREATE TABLE erasure_tombstones (
    request_id TEXT PRIMARY KEY,
    erased_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE erasure_tombstones;
DROP TABLE pending_contact_changes;
DROP TABLE export_tokens;
DROP TABLE privacy_requests;
