-- Primary keys are NOT NULL: a fix for SQLite only, where a rowid table's
-- TEXT, BLOB or BIGINT PRIMARY KEY accepted NULL (see the SQLite migration
-- 00010). PostgreSQL already refuses NULL in every key column, so nothing
-- changes here; this file keeps the two engines' migration versions in
-- step, as TestSchemaAgreement requires.

-- +goose Up

-- +goose Down
