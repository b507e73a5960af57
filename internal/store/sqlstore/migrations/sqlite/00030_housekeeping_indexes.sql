-- The start-up and daily housekeeping ("seal plaintext", with the
-- indexing of device names) reads only the rows still needing work, so
-- that with nothing left to do it costs an index probe, however many
-- devices, messages and requests there are.
--
-- devices_plain_name, inbox_plain and privacy_requests_plain hold the
-- records whose free text may still be in plaintext (written by versions
-- before sealing): empty once the job has run, and left empty, since
-- every version since writes sealed text.
--
-- name_index_deferred, in unix seconds, marks a device whose name the
-- job could not index because its account's data key (or the device's
-- sealed name) would not open: it keeps its name as it was, and the job
-- stops reading it, after logging its account once. The account's next
-- device add or rename indexes it (which clears the mark), as does the
-- job once the mark is cleared by hand (docs/erasure.md).
-- devices_unindexed, rebuilt, leaves such devices out.

-- +goose Up
ALTER TABLE devices ADD COLUMN name_index_deferred BIGINT;
DROP INDEX devices_unindexed;
CREATE INDEX devices_unindexed ON devices (account_id) WHERE name_index IS NULL AND name_index_deferred IS NULL;
CREATE INDEX devices_plain_name ON devices (id) WHERE name <> '';
CREATE INDEX inbox_plain ON inbox (id) WHERE notice_run IS NULL AND sealed IS NULL;
CREATE INDEX privacy_requests_plain ON privacy_requests (id) WHERE sealed IS NULL;

-- +goose Down
DROP INDEX privacy_requests_plain;
DROP INDEX inbox_plain;
DROP INDEX devices_plain_name;
DROP INDEX devices_unindexed;
CREATE INDEX devices_unindexed ON devices (account_id) WHERE name_index IS NULL;
ALTER TABLE devices DROP COLUMN name_index_deferred;
