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

// benchAccounts is the size of the database the account benchmarks run
// on: 100,000 accounts, each with one device (and its peer-feed entry).
const benchAccounts = 100_000

// openPreloaded returns a SQLite store holding benchAccounts accounts,
// never verified and created on 2025-01-01, with a device each if
// devices.
func openPreloaded(b *testing.B, devices bool) *Store {
	b.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "accounts.db"), store.Pool{
		V4: netip.MustParsePrefix("100.64.0.0/10"), V6: netip.MustParsePrefix("fd00:6e6e::/48"),
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	if devices {
		n = benchAccounts
	}
	preload(b, s, benchAccounts, n)
	return s
}

// sweepAll runs target in 5,000-row batches, as the sweeper does, and
// returns how many rows it deleted.
func sweepAll(b *testing.B, s *Store, target string, cutoff, now time.Time) int64 {
	b.Helper()
	var n int64
	for {
		k, err := s.SweepBatch(context.Background(), target, cutoff, now, 5000)
		if err != nil {
			b.Fatal(err)
		}
		n += k
		if k < 5000 {
			return n
		}
	}
}

// BenchmarkSweepAccounts measures the retention sweeps that delete whole
// accounts, on 100,000 of them (preloaded outside the timer):
// "unverified" purges sign-ups never verified after 7 days (which cannot
// have added a device), "closed" purges accounts closed more than 30 days
// ago, each with a device: first the devices (which leave a removal in the
// peer feed), then the rows. It reports accounts/s.
func BenchmarkSweepAccounts(b *testing.B) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		prepare string
		devices bool
		targets []string
		cutoff  time.Time
	}{
		{"unverified", "", false, []string{store.SweepUnverified}, now.Add(-7 * 24 * time.Hour)},
		{"closed", fmt.Sprintf(`UPDATE accounts SET status = 'closed', closed_at = %d, email_verified = TRUE, wrapped_key = NULL`,
			now.Add(-40*24*time.Hour).Unix()), true, []string{store.SweepClosedDevices, store.SweepClosedAccounts}, now.Add(-30 * 24 * time.Hour)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var accounts int64
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := openPreloaded(b, tc.devices)
				if tc.prepare != "" {
					if err := s.write(context.Background(), "prepare", func(tx *sql.Tx) error {
						_, err := tx.Exec(tc.prepare)
						return err
					}); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				t0 := time.Now()
				var last int64
				for _, target := range tc.targets {
					last = sweepAll(b, s, target, tc.cutoff, now)
				}
				elapsed += time.Since(t0)
				b.StopTimer()
				if last != benchAccounts {
					b.Fatalf("%s deleted %d accounts, want %d", tc.targets[len(tc.targets)-1], last, benchAccounts)
				}
				accounts += last
				s.Close()
			}
			b.ReportMetric(float64(accounts)/elapsed.Seconds(), "accounts/s")
		})
	}
}

// BenchmarkEraseAccount measures one erasure (store.EraseAccount: the
// account closed, its key and contacts destroyed, its devices removed
// and scrubbed from the peer feed, its sessions deleted) in a database of
// 100,000 accounts. It reports ms/erasure.
func BenchmarkEraseAccount(b *testing.B) {
	s := openPreloaded(b, true)
	defer s.Close()
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if b.N > benchAccounts {
		b.Fatalf("at most %d erasures", benchAccounts)
	}
	for i := 0; i < b.N; i++ {
		r := &store.PrivacyRequest{ID: fmt.Sprintf("prq-%d", i), AccountID: fmt.Sprintf("acct-%d", i), Type: store.RequestErasure,
			Status: store.RequestVerified, ReceivedAt: now, DueAt: now.AddDate(0, 1, 0)}
		if err := s.CreatePrivacyRequest(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		res, err := s.EraseAccount(ctx, store.Erasure{RequestID: fmt.Sprintf("prq-%d", i), AccountID: fmt.Sprintf("acct-%d", i),
			At: now, Outcome: "erased"})
		if err != nil {
			b.Fatal(err)
		}
		if res.Devices != 1 {
			b.Fatalf("erasure %d removed %d devices, want 1", i, res.Devices)
		}
	}
	b.ReportMetric(float64(time.Since(t0).Milliseconds())/float64(b.N), "ms/erasure")
}
