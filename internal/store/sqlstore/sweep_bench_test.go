package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store"
)

// BenchmarkSweepIntervals measures how fast the retention sweep deletes
// expired session intervals on SQLite, in 5,000-row transactions as the
// sweeper runs it. Each iteration preloads 300,000 expired intervals (and
// one held account's, which must stay) outside the timer, then sweeps them.
// It reports rows/s.
func BenchmarkSweepIntervals(b *testing.B) {
	const rows, batch = 300_000, 5000
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	cutoff := now.Add(-90 * 24 * time.Hour)
	var deleted int64
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "sweep.db"), store.Pool{
			V4: netip.MustParsePrefix("100.64.0.0/10"), V6: netip.MustParsePrefix("fd00:6e6e::/48"),
		}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		preload(b, s, 100, 100)
		err = s.write(ctx, "preload intervals", func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO legal_holds (id, account_id, reason, created_by, created_at)
				VALUES ('hold_b', 'acct-0', 'bench', 'stf', 0)`); err != nil {
				return err
			}
			ins, err := tx.PrepareContext(ctx, `INSERT INTO usage_sessions (account_id, device_id, region, started_at, ended_at)
				VALUES ($1, $2, 'eu', $3, $4)`)
			if err != nil {
				return err
			}
			defer ins.Close()
			start := cutoff.Add(-365 * 24 * time.Hour).Unix()
			for n := range rows {
				d := n % 100
				st := start + int64(n/100)*60
				if _, err := ins.ExecContext(ctx, fmt.Sprintf("acct-%d", d%100), fmt.Sprintf("dev-%d", d), st, st+60); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		var n int64
		for {
			k, err := s.SweepBatch(ctx, store.SweepSessions, cutoff, now, batch)
			if err != nil {
				b.Fatal(err)
			}
			n += k
			if k < batch {
				break
			}
		}
		elapsed += time.Since(t0)
		deleted += n
		b.StopTimer()
		if want := int64(rows - rows/100); n != want {
			b.Fatalf("deleted %d, want %d (the held account's %d kept)", n, want, rows/100)
		}
		s.Close()
	}
	b.ReportMetric(float64(deleted)/elapsed.Seconds(), "rows/s")
}
