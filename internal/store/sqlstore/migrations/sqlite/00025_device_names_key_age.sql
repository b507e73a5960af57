-- Devices: when the current key was registered (key_created_at, for the
-- portal's key age; a rotation sets it), and names unique per account.
--
-- Existing devices get their creation time as key time: a key rotated
-- before this migration shows as older than it is, never younger.
--
-- Names are sealed under the account's key (00019), so uniqueness is
-- held by name_index, a keyed index of the case-folded name under the
-- account's data key (acctkey.Key.Index), unique per account. Existing
-- devices have none: the server indexes them (renaming duplicates
-- "NAME (N)") at its first start and before any device of their account
-- is added or renamed; devices_unindexed finds them, and is empty after.

-- +goose Up
ALTER TABLE devices ADD COLUMN key_created_at BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET key_created_at = created_at;
ALTER TABLE devices ADD COLUMN name_index BLOB;
CREATE UNIQUE INDEX devices_account_name_index ON devices (account_id, name_index);
CREATE INDEX devices_unindexed ON devices (account_id) WHERE name_index IS NULL;

-- +goose Down
DROP INDEX devices_unindexed;
DROP INDEX devices_account_name_index;
ALTER TABLE devices DROP COLUMN name_index;
ALTER TABLE devices DROP COLUMN key_created_at;
