-- inbox.request_id: the privacy request a message is about (the notice of
-- a change of its status), so that the inbox links to it; NULL for other
-- messages. A request id, no personal data beyond the account the message
-- already belongs to.

-- +goose Up
ALTER TABLE inbox ADD COLUMN request_id TEXT;

-- +goose Down
ALTER TABLE inbox DROP COLUMN request_id;
