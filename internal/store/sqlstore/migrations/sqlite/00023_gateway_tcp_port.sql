-- +goose Up
-- The TCP port on which a gateway also accepts WireGuard framed over TCP
-- (UDP-over-TCP, package udptcp), as the gateway reports it at every
-- start; 0 when it offers none. It is the gateway's setting, not a
-- client's.
ALTER TABLE gateways ADD COLUMN tcp_port INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE gateways DROP COLUMN tcp_port;
