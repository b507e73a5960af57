-- +goose Up
-- The multihop relay ports a gateway reports at every start: each UDP
-- port on its endpoint's host forwards to an exit gateway, written
-- "EXIT_ID=PORT" comma-separated in port order; empty when it relays
-- nothing. It is the gateway's setting, not a client's.
ALTER TABLE gateways ADD COLUMN relays TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE gateways DROP COLUMN relays;
