-- The durable outbound queue (package outbound): messages and deferred
-- account work such as a password-reset request, worked by a background
-- worker so that a request's answer does not wait for, or depend on, the
-- mail relay or the SMS gateway. Each row holds one job sealed by the
-- vault (recipients and contents included, never in the clear); a row is
-- deleted as soon as its job is done, and retried with backoff until it
-- expires otherwise. due_at is when the job may next run: a worker claims a
-- job by moving it forward (a lease), so a crashed worker's job runs again.

-- +goose Up
CREATE TABLE outbound_queue (
    id         TEXT NOT NULL PRIMARY KEY,
    sealed     BLOB NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbound_queue_due ON outbound_queue (due_at);
CREATE INDEX outbound_queue_created ON outbound_queue (created_at);

-- +goose Down
DROP TABLE outbound_queue;
