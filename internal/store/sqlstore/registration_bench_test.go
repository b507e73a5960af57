package sqlstore_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// cpuTime returns the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchKey returns a valid public key for n, spread over the key space as
// real keys are.
func benchKey(n int) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h := sha256.Sum256(append([]byte("registration bench "), b[:]...))
	return base64.StdEncoding.EncodeToString(h[:])
}

// benchPresent returns the number of devices a benchmark preloads:
// NITRONET_BENCH_PEERS, 100,000 by default, at least 5.
func benchPresent(b *testing.B) int {
	b.Helper()
	v := os.Getenv("NITRONET_BENCH_PEERS")
	if v == "" {
		return 100_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 5 {
		b.Fatalf("NITRONET_BENCH_PEERS=%q: want a number of devices, at least 5", v)
	}
	return n
}

// preloadDevices bulk-inserts present devices ("dev-N", keys benchKey(N)),
// five to an account ("acct-N/5"), into s with Import, outside the timer,
// and logs how long it took. withNameIndex gives each device a name index,
// as a registration through the service does.
func preloadDevices(b *testing.B, s *sqlstore.Store, engine string, present int, withNameIndex bool) {
	b.Helper()
	start := time.Now()
	accounts := present / 5
	sqlstore.PreloadWith(b, s, accounts, present, func(n int, d *store.Device) {
		d.AccountID = fmt.Sprintf("acct-%d", n/5)
		d.PublicKey = benchKey(n)
		if withNameIndex {
			d.NameIndex = fmt.Appendf(nil, "ix-%d", n)
		}
	})
	b.Logf("%s: imported %d devices over %d accounts in %v", engine, present, accounts, time.Since(start).Round(time.Millisecond))
}

// BenchmarkCreateDevice measures device registration (store.CreateDevice,
// one transaction each) on each engine, from one caller ("serial") and
// from benchCallers at once, with
// NITRONET_BENCH_PEERS devices (default 100,000), five to an account,
// already present; they are bulk-inserted with Import outside the timer.
// Each registration goes to another existing account, under a limit it
// never reaches. It reports devices/s, and the CPU time this process used
// per registration (on SQLite all of it; on PostgreSQL the client's share),
// which the shared machine's load does not inflate.
func BenchmarkCreateDevice(b *testing.B) {
	present := benchPresent(b)
	accounts := present / 5
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := be.OpenSQL(b, storetest.DefaultPool())
			preloadDevices(b, s, be.Name, present, false)

			var n atomic.Int64
			register := func(b *testing.B) {
				i := int(n.Add(1))
				d := &store.Device{
					ID:        fmt.Sprintf("bench-%d", i),
					AccountID: fmt.Sprintf("acct-%d", (i*7919)%accounts),
					// A sealed name of a usual length (vault.Overhead + 12 bytes).
					SealedName: make([]byte, 41),
					PublicKey:  benchKey(present + i),
					CreatedAt:  time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
				}
				if err := s.CreateDevice(b.Context(), d, 1000); err != nil {
					b.Errorf("CreateDevice: %v", err)
				}
			}
			report := func(b *testing.B, cpu0 time.Duration) {
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "devices/s")
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
				b.ReportMetric(float64(present), "present")
			}
			b.Run("serial", func(b *testing.B) {
				cpu0 := cpuTime()
				for b.Loop() {
					register(b)
				}
				report(b, cpu0)
			})
			// Registrations from several callers at once, as a provider's
			// API sees them.
			b.Run(fmt.Sprintf("callers=%d", benchCallers), func(b *testing.B) {
				b.SetParallelism((benchCallers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				cpu0 := cpuTime()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						register(b)
					}
				})
				report(b, cpu0)
			})
		})
	}
}

// benchCallers is how many goroutines register at once in
// BenchmarkCreateDevice's parallel run (rounded up to a multiple of
// GOMAXPROCS).
const benchCallers = 8
