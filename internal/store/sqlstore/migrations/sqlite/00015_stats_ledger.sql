-- The statistics budget ledger: every differentially private report that
-- was released, who ran it (staff ID and role), what it covered, the
-- privacy budget it spent and when. Each calendar quarter (quarter,
-- "2026-Q1") has a budget; the entries of a quarter add up to what it has
-- spent. epsilon_micro is the report's epsilon in millionths, rounded up,
-- so that sums are exact. override_reason is the privacy officer's reason
-- for a report beyond the per-report limits, or ''. It names no account.

-- +goose Up
CREATE TABLE stats_ledger (
    id              TEXT NOT NULL PRIMARY KEY,
    quarter         TEXT NOT NULL,
    report          TEXT NOT NULL,
    staff_id        TEXT NOT NULL,
    staff_role      TEXT NOT NULL,
    epsilon_micro   BIGINT NOT NULL,
    min_group       INTEGER NOT NULL,
    override_reason TEXT NOT NULL DEFAULT '',
    spent_at        BIGINT NOT NULL
);
CREATE INDEX stats_ledger_quarter ON stats_ledger (quarter, spent_at);

-- +goose Down
DROP TABLE stats_ledger;
