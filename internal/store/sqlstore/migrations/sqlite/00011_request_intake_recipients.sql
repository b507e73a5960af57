-- Requests from outside the app and the recipients told of them (GDPR
-- Art. 12(3) and 19).
--
-- privacy_requests.channel: how the request reached the controller: 'app'
-- (the account holder, logged in) or 'email', 'phone', 'post' (recorded by
-- staff). A request from outside the app may have no account (nobody holds
-- the contact it gave); then check_by, check_method and check_at record the
-- staff member who checked the requester's identity, how (a fixed method,
-- never a copy of a document) and when.
--
-- processor_transfers: which processor (by register name) was handed which
-- inventory categories of an account's data, first and last time. Never the
-- content. The processor guard writes it; erasure deletes it; an access
-- export shows it.
--
-- request_recipients: for a rectification or erasure, the processors that
-- received the account's data (copied from processor_transfers, so the
-- list survives the erasure), with the communication of the request to
-- each (Art. 19): 'pending', 'told' or 'impossible', who noted it, when and
-- a note. It holds no personal data beyond the request it belongs to.

-- +goose Up
ALTER TABLE privacy_requests ADD COLUMN channel TEXT NOT NULL DEFAULT 'app';
ALTER TABLE privacy_requests ADD COLUMN check_by TEXT;
ALTER TABLE privacy_requests ADD COLUMN check_method TEXT;
ALTER TABLE privacy_requests ADD COLUMN check_at BIGINT;

CREATE TABLE processor_transfers (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    processor  TEXT NOT NULL,
    category   TEXT NOT NULL,
    first_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, processor, category)
);

CREATE TABLE request_recipients (
    request_id TEXT NOT NULL REFERENCES privacy_requests (id) ON DELETE CASCADE,
    processor  TEXT NOT NULL,
    categories TEXT NOT NULL,
    first_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    status     TEXT NOT NULL,
    noted_at   BIGINT,
    noted_by   TEXT,
    note       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (request_id, processor)
);

-- +goose Down
DROP TABLE request_recipients;
DROP TABLE processor_transfers;
ALTER TABLE privacy_requests DROP COLUMN check_at;
ALTER TABLE privacy_requests DROP COLUMN check_method;
ALTER TABLE privacy_requests DROP COLUMN check_by;
ALTER TABLE privacy_requests DROP COLUMN channel;
