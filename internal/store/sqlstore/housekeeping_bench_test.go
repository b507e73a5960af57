package sqlstore_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// BenchmarkStartHousekeeping measures what the server's "seal plaintext"
// job (run at every start and daily) reads to find its work when there is
// none: a batch of plaintext device names, inbox messages and request
// texts, and of accounts with unindexed devices. NITRONET_BENCH_PEERS
// devices (default 100,000), five to an account, every name sealed and
// indexed, are bulk-inserted once per engine; then "indexed" runs on the
// schema as migrated (partial indexes of the rows left to do, migration
// 00030) and "main" on the same database with those indexes dropped, as
// before 00030. It reports the CPU time this process used per start (on
// SQLite all of it; on PostgreSQL the client's share).
func BenchmarkStartHousekeeping(b *testing.B) {
	present := 100_000
	if v := os.Getenv("NITRONET_BENCH_PEERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 {
			b.Fatalf("NITRONET_BENCH_PEERS=%q: want a number of devices, at least 5", v)
		}
		present = n
	}
	accounts := present / 5
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := be.OpenSQL(b, storetest.DefaultPool())
			start := time.Now()
			created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			accts := func(yield func(store.Account) bool) {
				for a := range accounts {
					id := fmt.Sprintf("acct-%d", a)
					if !yield(store.Account{ID: id, EmailIndex: []byte("e" + id), MobileIndex: []byte("m" + id),
						PasswordHash: "x", CreatedAt: created}) {
						return
					}
				}
			}
			devs := func(yield func(store.Device) bool) {
				for n := range present {
					if !yield(store.Device{ID: fmt.Sprintf("dev-%d", n), AccountID: fmt.Sprintf("acct-%d", n/5),
						SealedName: []byte("preloaded"), NameIndex: fmt.Appendf(nil, "ix-%d", n),
						PublicKey: benchKey(n), CreatedAt: created}) {
						return
					}
				}
			}
			if _, _, err := s.Import(b.Context(), accts, devs); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: imported %d devices over %d accounts in %v", be.Name, present, accounts, time.Since(start).Round(time.Millisecond))
			b.Run("indexed", func(b *testing.B) { benchStart(b, s, present) })
			if err := s.MainSchemaHousekeeping(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.Run("main", func(b *testing.B) { benchStart(b, s, present) })
		})
	}
}

// benchStart runs the housekeeping's look for work, as one start does,
// and fails if it finds any.
func benchStart(b *testing.B, s *sqlstore.Store, present int) {
	ctx := b.Context()
	cpu0 := cpuTime()
	for b.Loop() {
		for _, kind := range []string{store.PlainDevices, store.PlainInbox, store.PlainRequests} {
			ps, err := s.PlainTexts(ctx, kind, "", 100)
			if err != nil || len(ps) != 0 {
				b.Fatalf("PlainTexts %s: %d, %v; want none", kind, len(ps), err)
			}
		}
		ids, err := s.UnindexedDeviceAccounts(ctx, "", 100)
		if err != nil || len(ids) != 0 {
			b.Fatalf("UnindexedDeviceAccounts: %v, %v; want none", ids, err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(present), "present")
}
