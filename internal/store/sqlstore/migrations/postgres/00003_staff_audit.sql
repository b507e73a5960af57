-- Staff accounts with roles, their login tokens (hashed), and the staff
-- audit log: a hash chain (see package auditchain) with one head row that
-- serialises appends.

-- +goose Up
CREATE TABLE staff (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX staff_email ON staff (email);

CREATE TABLE staff_tokens (
    hash       BYTEA PRIMARY KEY,
    staff_id   TEXT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX staff_tokens_staff ON staff_tokens (staff_id);

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    role      TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BYTEA,
    hash      BYTEA NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE audit_head (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO audit_head (id, seq) VALUES (1, 0);

-- +goose Down
DROP TABLE audit_head;
DROP TABLE audit_log;
DROP TABLE staff_tokens;
DROP TABLE staff;
