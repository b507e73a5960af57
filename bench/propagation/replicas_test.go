package propagation

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/gateway/control"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// BenchmarkCrossReplica measures how fast a peer change reaches a gateway
// polling another control replica on the same PostgreSQL database (issue
// 11: "change on replica B, poll on replica A"). Two replicas, A and B,
// are assembled and served over HTTP on 127.0.0.1 with
// NITRONET_BENCH_PEERS devices preloaded; a gateway client enrolled on A
// long-polls A's peer feed over HTTP (GET /api/v1/gateway/peers). One
// iteration waits until A holds the poll, commits a new device through a
// store (sqlstore.Store.CreateDevice) and waits for the poll's answer.
//
// Sub-benchmarks, in the same run:
//
//	local  the device is committed through A's own store and A's feed is
//	       told, as A's device service does: the single-replica path
//	cross  the device is committed through B's store: only PostgreSQL's
//	       notification (LISTEN/NOTIFY) can wake A's poll before its
//	       30-second re-check
//
// Metrics (nearest-rank percentiles, in ms):
//
//	p50-ms, p99-ms, max-ms  from the commit's return to the poll's answer
//	call-p99-ms             from the start of the commit to the answer
//
// PostgreSQL only; skipped without NITRONET_TEST_POSTGRES.
func BenchmarkCrossReplica(b *testing.B) {
	url := storetest.PostgresURL(b)
	peers := benchPeers(b)
	keyring := filepath.Join(b.TempDir(), "keyring")
	replica := func(n int) (*rig, *sqlstore.Store) {
		cfg := config.Default()
		cfg.DataDir, cfg.Database, cfg.Keyring = b.TempDir(), url, keyring
		if err := cfg.Validate(); err != nil {
			b.Fatal(err)
		}
		// The server takes the store over and closes it.
		st, err := sqlstore.OpenPostgres(b.Context(), url, storetest.DefaultPool(), slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		if n > 0 {
			start := time.Now()
			if err := preload(b.Context(), st, n); err != nil {
				st.Close()
				b.Fatal(err)
			}
			b.Logf("preloaded %d devices in %v", n, time.Since(start).Round(time.Millisecond))
		}
		return serveRig(b, cfg, st, n), st
	}
	a, stA := replica(peers)
	_, stB := replica(0)
	c, cred := a.enroll(b, "bench")
	c.SetCredential(cred)
	u, err := c.Peers(b.Context(), 0, time.Second, control.Snapshot{})
	if err != nil || !u.Full {
		b.Fatalf("snapshot: %+v, %v", u, err)
	}
	version := u.Version
	added := 0
	for _, sub := range []struct {
		name   string
		st     *sqlstore.Store
		notify func()
	}{
		{"local", stA, a.srv.Feed.Notify},
		{"cross", stB, func() {}},
	} {
		b.Run(sub.name, func(b *testing.B) {
			var after, call []time.Duration
			for b.Loop() {
				type answer struct {
					u   control.Update
					err error
					at  time.Time
				}
				done := make(chan answer, 1)
				go func() {
					u, err := c.Peers(b.Context(), version, sampleTimeout, control.Snapshot{})
					done <- answer{u, err, time.Now()}
				}()
				for a.srv.Feed.Waiting() != 1 {
					select {
					case ans := <-done:
						b.Fatalf("poll answered before any change: %+v, %v", ans.u, ans.err)
					default:
						time.Sleep(pollEvery)
					}
				}
				added++
				d := &store.Device{ID: fmt.Sprintf("dev_replica%07d", added), AccountID: "acc_preload0000000",
					SealedName: []byte("replica"), PublicKey: preloadKey(peers + added), CreatedAt: time.Now()}
				start := time.Now()
				if err := sub.st.CreateDevice(b.Context(), d, 1<<30); err != nil {
					b.Fatal(err)
				}
				committed := time.Now()
				sub.notify()
				ans := <-done
				if ans.err != nil || len(ans.u.Changes) != 1 || ans.u.Changes[0].PublicKey != d.PublicKey {
					b.Fatalf("poll answered %+v, %v; want the new device", ans.u, ans.err)
				}
				version = ans.u.Version
				after = append(after, ans.at.Sub(committed))
				call = append(call, ans.at.Sub(start))
			}
			slices.Sort(after)
			slices.Sort(call)
			b.ReportMetric(ms(percentile(after, 50)), "p50-ms")
			b.ReportMetric(ms(percentile(after, 99)), "p99-ms")
			b.ReportMetric(ms(percentile(after, 100)), "max-ms")
			b.ReportMetric(ms(percentile(call, 99)), "call-p99-ms")
		})
	}
}
