package sqlstore

import (
	"context"

	"github.com/nitronet/nitronet/internal/store"
)

// PlannedStatement is a statement of the registration or feed path with
// arguments to explain it with.
type PlannedStatement struct {
	Name string
	SQL  string
	Args []any
	// Scans is the table the statement reads whole on purpose (the
	// snapshot), or "".
	Scans string
	// Probes is a table the statement tests for any row (EXISTS without a
	// condition), which reads at most one row whatever its plan says.
	Probes string
	// Uses is an index the plan must read (a partial index that keeps
	// the statement's cost to the rows it selects), or "".
	Uses string
}

// PlannedStatements lists every statement CreateDevice, PeerSnapshot and
// PeerChanges run, and those of the start-up housekeeping that finds the
// work left (PlainTexts, UnindexedDeviceAccounts).
func PlannedStatements() []PlannedStatement {
	return []PlannedStatement{
		{Name: "reserve feed versions", SQL: sqlReserveFeed, Args: []any{1}},
		{Name: "allocate a released offset", SQL: sqlAllocFree},
		{Name: "allocate the next offset", SQL: sqlAllocNext, Args: []any{int64(1000)}, Probes: "ipam_free"},
		{Name: "insert device if admitted", SQL: sqlInsertDevice,
			Args: []any{"dev-x", "acct-1", []byte("n"), "key", int64(5000), "100.64.0.9", "fd00::9", int64(1), int64(1), 5, 0, []byte("ix")}},
		{Name: "why refused", SQL: sqlRefusal, Args: []any{"acct-1", "key", []byte("ix")}},
		{Name: "append feed entry", SQL: sqlInsertChange,
			Args: []any{int64(1 << 40), "dev-x", "key", "100.64.0.9", "fd00::9", false, int64(1)}},
		{Name: "feed bounds", SQL: sqlFeedBounds},
		{Name: "changes after cursor", SQL: sqlChangesAfter, Args: []any{int64(3), 1000}},
		{Name: "snapshot head", SQL: sqlSnapshotHead, Args: []any{int64(firstOffset)}, Probes: "ipam_free"},
		{Name: "snapshot", SQL: sqlSnapshot, Scans: "devices"},
		{Name: "unindexed device accounts", SQL: sqlUnindexedAccounts, Args: []any{"", 100}, Uses: "devices_unindexed"},
		{Name: "plaintext devices", SQL: plainKinds()[store.PlainDevices].query(), Args: []any{"", 100}, Uses: "devices_plain_name"},
		{Name: "plaintext inbox", SQL: plainKinds()[store.PlainInbox].query(), Args: []any{"", 100}, Uses: "inbox_plain"},
		{Name: "plaintext requests", SQL: plainKinds()[store.PlainRequests].query(), Args: []any{"", 100},
			Uses: "privacy_requests_plain"},
	}
}

// Explain returns the query plan of query, one line per plan row: EXPLAIN
// QUERY PLAN's detail column on SQLite, EXPLAIN's lines on PostgreSQL,
// where sorts and (unless allowSeqScan) sequential scans are disabled for
// the statement, so that a Sort or Seq Scan in the plan means no index can
// serve it: on small tables the planner rightly prefers them.
func (s *Store) Explain(ctx context.Context, query string, allowSeqScan bool, args ...any) ([]string, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	prefix := "EXPLAIN QUERY PLAN "
	if s.d.name == "postgres" {
		prefix = "EXPLAIN "
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_sort = off"); err != nil {
			return nil, err
		}
		if !allowSeqScan {
			if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
				return nil, err
			}
		}
	}
	rows, err := tx.QueryContext(ctx, prefix+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		switch v := vals[len(vals)-1].(type) {
		case string:
			lines = append(lines, v)
		case []byte:
			lines = append(lines, string(v))
		}
	}
	return lines, rows.Err()
}
