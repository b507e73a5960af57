-- Initial schema (PostgreSQL). Append-only: later changes go in new files.
-- Times are BIGINT unix seconds UTC.

-- +goose Up
CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    email_sealed    BYTEA,
    mobile_sealed   BYTEA,
    wrapped_key     BYTEA,
    email_index     BYTEA,
    mobile_index    BYTEA,
    password_hash   TEXT NOT NULL DEFAULT '',
    email_verified  BOOLEAN NOT NULL DEFAULT FALSE,
    mobile_verified BOOLEAN NOT NULL DEFAULT FALSE,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_email_index ON accounts (email_index);
CREATE UNIQUE INDEX accounts_mobile_index ON accounts (mobile_index);

CREATE TABLE tokens (
    hash       BYTEA PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX tokens_account ON tokens (account_id);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE codes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    hash       BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);
-- At most one unused code per (account, channel, purpose).
CREATE UNIQUE INDEX codes_active ON codes (account_id, channel, purpose) WHERE used_at IS NULL;
CREATE INDEX codes_used ON codes (used_at) WHERE used_at IS NOT NULL;

CREATE TABLE reset_tokens (
    hash       BYTEA PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX reset_tokens_account ON reset_tokens (account_id);
CREATE INDEX reset_tokens_expires ON reset_tokens (expires_at);

-- seq orders devices by insertion; addr_offset is the pool offset of both
-- tunnel addresses.
CREATE TABLE devices (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    addr_offset BIGINT NOT NULL,
    ipv4        TEXT NOT NULL,
    ipv6        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX devices_public_key ON devices (public_key);
CREATE UNIQUE INDEX devices_addr_offset ON devices (addr_offset);
CREATE UNIQUE INDEX devices_ipv4 ON devices (ipv4);
CREATE UNIQUE INDEX devices_ipv6 ON devices (ipv6);
CREATE INDEX devices_account ON devices (account_id, created_at, seq);
CREATE INDEX devices_seq ON devices (seq);

-- Address allocator: one state row plus a free list of released offsets.
-- v4_prefix/v6_prefix record the pool the database was first opened with.
CREATE TABLE ipam_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    next_offset BIGINT NOT NULL,
    v4_prefix   TEXT NOT NULL,
    v6_prefix   TEXT NOT NULL
);
INSERT INTO ipam_state (id, next_offset, v4_prefix, v6_prefix) VALUES (1, 2, '', '');

CREATE TABLE ipam_free (
    addr_offset BIGINT PRIMARY KEY
);

-- Peer feed: a single counter row (the version of the newest change) and the
-- retained changes. Writers lock the counter row, so versions commit in order.
CREATE TABLE peer_feed (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO peer_feed (id, version) VALUES (1, 0);

CREATE TABLE peer_changes (
    version    BIGINT PRIMARY KEY,
    device_id  TEXT NOT NULL,
    public_key TEXT NOT NULL,
    ipv4       TEXT NOT NULL,
    ipv6       TEXT NOT NULL,
    removed    BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX peer_changes_created ON peer_changes (created_at);

CREATE TABLE gateways (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY,
    id              TEXT PRIMARY KEY,
    region          TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    public_key      TEXT,
    enroll_hash     BYTEA,
    credential_hash BYTEA,
    created_at      BIGINT NOT NULL,
    last_seen       BIGINT
);
CREATE UNIQUE INDEX gateways_public_key ON gateways (public_key);
CREATE UNIQUE INDEX gateways_enroll_hash ON gateways (enroll_hash);
CREATE UNIQUE INDEX gateways_credential_hash ON gateways (credential_hash);

-- +goose Down
DROP TABLE gateways;
DROP TABLE peer_changes;
DROP TABLE peer_feed;
DROP TABLE ipam_free;
DROP TABLE ipam_state;
DROP TABLE devices;
DROP TABLE reset_tokens;
DROP TABLE codes;
DROP TABLE tokens;
DROP TABLE accounts;
