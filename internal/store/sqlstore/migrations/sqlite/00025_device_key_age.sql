-- Devices: when the current key was registered (key_created_at, for the
-- portal's key age; a rotation sets it). Existing devices get their
-- creation time: a key rotated before this migration shows as older than
-- it is, never younger.

-- +goose Up
ALTER TABLE devices ADD COLUMN key_created_at BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET key_created_at = created_at;

-- +goose Down
ALTER TABLE devices DROP COLUMN key_created_at;
