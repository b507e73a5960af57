package storetest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store"
)

// testScrubAwaitsOlderSnapshot erases an account on PostgreSQL while
// another session holds a snapshot taken before the erasure, which VACUUM
// must keep the erased row versions for, and releases it a second later.
// The erasure's scrub waits for it, so no version of the account's device
// rows is left in the table's pages (read through pageinspect) once the
// erasure returns.
func testScrubAwaitsOlderSnapshot(t *testing.T, b Backend) {
	if b.Name != "postgres" {
		t.Skip("VACUUM and snapshots are PostgreSQL's")
	}
	ctx := t.Context()
	s, db := b.OpenWithDB(t)
	erasureFixture(t, s, "acc_s1", "prq_s1", 1301)
	if _, err := db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect`); err != nil {
		t.Fatalf("pageinspect (needs a superuser): %v", err)
	}

	old, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	must(t, "begin", err)
	defer old.Rollback()
	var n int
	must(t, "old snapshot", old.QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&n))
	const hold = time.Second
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(hold) // the other session's work, which the erasure must outwait
		old.Rollback()
		released <- time.Now()
	}()

	_, err = s.EraseAccount(ctx, store.Erasure{RequestID: "prq_s1", AccountID: "acc_s1", At: t0().Add(time.Hour), Outcome: "Erased."})
	must(t, "EraseAccount", err)
	done := time.Now()
	select {
	case at := <-released:
		if done.Before(at) {
			t.Fatalf("the erasure returned %s before the older snapshot ended", at.Sub(done))
		}
	default:
		t.Fatal("the erasure returned while an older snapshot was still open")
	}
	if got := heapTuples(ctx, t, db, "devices"); got != 0 {
		t.Errorf("devices: %d row versions left in its pages after the erasure, want 0", got)
	}
}

// heapTuples counts the row versions, live or dead, in the pages of table.
func heapTuples(ctx context.Context, t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	must(t, "heap_page_items", db.QueryRowContext(ctx, `SELECT count(*)
		FROM generate_series(0, (pg_relation_size($1::regclass) / current_setting('block_size')::int)::int - 1) AS blk,
		     heap_page_items(get_raw_page($1::text, blk))
		WHERE lp_flags = 1`, table).Scan(&n))
	return n
}
