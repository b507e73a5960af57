-- Legal holds, which block deletion of an account's data by the retention
-- sweeper and by erasure; and the restriction/objection flags, which
-- exclude an account from statistics and objectable processing.

-- +goose Up
CREATE TABLE legal_holds (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    until       BIGINT,
    released_at BIGINT,
    released_by TEXT
);
CREATE INDEX legal_holds_account ON legal_holds (account_id);

ALTER TABLE accounts ADD COLUMN processing_restricted BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN processing_objected BOOLEAN NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE accounts DROP COLUMN processing_objected;
ALTER TABLE accounts DROP COLUMN processing_restricted;
DROP TABLE legal_holds;
