-- PostgreSQL's migration 00029 adds nitronet_create_device, which runs a
-- registration in one round trip. SQLite runs in the process and has no
-- round trips to save: nothing changes here; this file keeps the two
-- engines' migration versions in step, as TestSchemaAgreement requires.

-- +goose Up

-- +goose Down
