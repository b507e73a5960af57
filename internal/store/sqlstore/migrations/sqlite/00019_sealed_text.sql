-- Free text sealed under the account's data key (package acctkey), so that
-- erasure, which destroys the key, leaves it unreadable everywhere:
-- devices.name_sealed (the device's name), inbox.sealed (subject and body
-- of a message posted to one account; a notice run's messages keep the
-- run's text, which holds no personal data) and privacy_requests.sealed
-- (details, extension and denial reasons, staff notes);
-- request_recipients.note_sealed (the staff's note on telling a processor
-- of a request, while the request has an account). The plaintext
-- columns stay for rows written before, until the sealing job seals them
-- and empties them; new rows leave them empty.
--
-- peer_changes_device lets a device's removal find and delete the feed
-- entries that hold its public key and addresses.

-- +goose Up
ALTER TABLE devices ADD COLUMN name_sealed BLOB;
ALTER TABLE inbox ADD COLUMN sealed BLOB;
ALTER TABLE privacy_requests ADD COLUMN sealed BLOB;
ALTER TABLE request_recipients ADD COLUMN note_sealed BLOB;
CREATE INDEX peer_changes_device ON peer_changes (device_id);

-- +goose Down
DROP INDEX peer_changes_device;
ALTER TABLE request_recipients DROP COLUMN note_sealed;
ALTER TABLE privacy_requests DROP COLUMN sealed;
ALTER TABLE inbox DROP COLUMN sealed;
ALTER TABLE devices DROP COLUMN name_sealed;
