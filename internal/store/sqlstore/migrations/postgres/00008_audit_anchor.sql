-- The audit anchor: the sequence number and hash of the newest audit entry
-- that retention deleted, recorded in the same transaction as the
-- deletion, so the remaining chain still verifies from a known point.

-- +goose Up
ALTER TABLE audit_head ADD COLUMN anchor_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN anchor_hash BYTEA;

-- +goose Down
ALTER TABLE audit_head DROP COLUMN anchor_hash;
ALTER TABLE audit_head DROP COLUMN anchor_seq;
