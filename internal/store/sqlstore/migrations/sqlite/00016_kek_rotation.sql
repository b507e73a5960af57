-- Key-encryption-key rotations (package rekey): one row per rotation,
-- so a rotation interrupted by a crash resumes where it stopped. in_progress is
-- 1 while the rotation is in progress and NULL once it finished: the
-- unique index allows one rotation in progress at a time. No personal
-- data: KEK ids, counts, times and the staff id that started it.

-- +goose Up
CREATE TABLE kek_rotations (
    id           TEXT NOT NULL PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    started_by   TEXT NOT NULL,
    target       BIGINT NOT NULL,
    target_since BIGINT NOT NULL,
    after_id     TEXT NOT NULL DEFAULT '',
    passes       INTEGER NOT NULL DEFAULT 0,
    pass_done_at BIGINT,
    rewrapped    BIGINT NOT NULL DEFAULT 0,
    resealed     BIGINT NOT NULL DEFAULT 0,
    problem      TEXT NOT NULL DEFAULT '',
    finished_at  BIGINT,
    destroyed    TEXT NOT NULL DEFAULT '',
    in_progress  INTEGER
);
CREATE UNIQUE INDEX kek_rotations_open ON kek_rotations (in_progress);
CREATE INDEX kek_rotations_started ON kek_rotations (started_at);

-- +goose Down
DROP TABLE kek_rotations;
