-- The peer snapshot reads the devices table in storage order (see the
-- PostgreSQL migration 00014, which drops devices_seq). On SQLite seq is
-- the rowid, which has no separate index, so nothing changes here; this
-- file keeps the two engines' migration versions in step.

-- +goose Up

-- +goose Down
