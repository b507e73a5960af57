-- PostgreSQL's migration 00021 makes every peer-feed change notify the
-- other control replicas (LISTEN/NOTIFY). SQLite serves one process and
-- has nothing to notify: nothing changes here; this file keeps the two
-- engines' migration versions in step, as TestSchemaAgreement requires.

-- +goose Up

-- +goose Down
