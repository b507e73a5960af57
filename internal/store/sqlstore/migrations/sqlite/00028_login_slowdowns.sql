-- +goose Up
-- The PostgreSQL table of login slow-downs shared by control replicas
-- (see that migration). SQLite serves one process, whose slow-downs stay
-- in memory: the table is created so that both schemas agree, and is not
-- used.
CREATE TABLE login_slowdowns (
	kind TEXT NOT NULL,
	digest BLOB NOT NULL,
	fails INTEGER NOT NULL,
	until_ms BIGINT NOT NULL,
	expires_ms BIGINT NOT NULL,
	PRIMARY KEY (kind, digest)
);

-- +goose Down
DROP TABLE login_slowdowns;
