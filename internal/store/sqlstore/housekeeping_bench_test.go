package sqlstore_test

import (
	"testing"

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
	present := benchPresent(b)
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := be.OpenSQL(b, storetest.DefaultPool())
			preloadDevices(b, s, be.Name, present, true)
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
