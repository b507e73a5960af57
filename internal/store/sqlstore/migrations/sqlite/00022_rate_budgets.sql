-- +goose Up
-- The PostgreSQL table of rate-limit budgets shared by control replicas
-- (see that migration). SQLite serves one process, whose limits stay in
-- memory: the table is created so that both schemas agree, and is not
-- used.
CREATE TABLE rate_budgets (
	bucket TEXT NOT NULL,
	digest BLOB NOT NULL,
	tat_ms BIGINT NOT NULL,
	PRIMARY KEY (bucket, digest)
);

-- +goose Down
DROP TABLE rate_budgets;
