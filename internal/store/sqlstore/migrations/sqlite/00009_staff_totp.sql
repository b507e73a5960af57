-- Two-factor login for staff: the TOTP seed, sealed under a key derived
-- from the key-encryption key, and the last time step accepted, so a code
-- cannot be replayed.

-- +goose Up
ALTER TABLE staff ADD COLUMN totp_sealed BLOB;
ALTER TABLE staff ADD COLUMN totp_step BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE staff DROP COLUMN totp_step;
ALTER TABLE staff DROP COLUMN totp_sealed;
