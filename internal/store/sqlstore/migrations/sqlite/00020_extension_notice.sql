-- +goose Up
-- The delivery of a deadline extension's notice to the user (Art. 12(3)):
-- when it was delivered, how many attempts were made, the last failure's
-- error code (never its text) and when the next attempt is due. A notice
-- not delivered is retried by the privacy service's housekeeping.
ALTER TABLE privacy_requests ADD COLUMN ext_notice_at BIGINT;
ALTER TABLE privacy_requests ADD COLUMN ext_notice_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE privacy_requests ADD COLUMN ext_notice_error TEXT NOT NULL DEFAULT '';
ALTER TABLE privacy_requests ADD COLUMN ext_notice_retry_at BIGINT;

-- +goose Down
ALTER TABLE privacy_requests DROP COLUMN ext_notice_retry_at;
ALTER TABLE privacy_requests DROP COLUMN ext_notice_error;
ALTER TABLE privacy_requests DROP COLUMN ext_notice_attempts;
ALTER TABLE privacy_requests DROP COLUMN ext_notice_at;
