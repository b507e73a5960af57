package gateway

import (
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkConcurrentFirstHandshake measures first handshakes arriving at
// once, as after a gateway restart: in each round, NITRONET_BENCH_CLIENTS
// (default 32) stock wireguard-go clients initiate with keys that are
// admitted but not configured ("first"), and as many initiate at the same
// moment with keys configured in an earlier round ("configured"). Each
// sample is one client's time from its initiation to the gateway's
// response. The gateway admits NITRONET_BENCH_KEYS (default 100,000) keys.
// The metrics are the p50, p99 and maximum of each kind in µs, and
// extra-p50-us and extra-p99-us, first minus configured. Run with
// -benchtime 30x (one iteration is one round).
func BenchmarkConcurrentFirstHandshake(b *testing.B) {
	clients := envInt(b, "NITRONET_BENCH_CLIENTS", 32)
	n := envInt(b, "NITRONET_BENCH_KEYS", 100_000)
	if clients < 1 {
		b.Fatal("NITRONET_BENCH_CLIENTS must be positive")
	}
	g, stop := newBareGateway(b)
	defer stop()
	var seedBytes [16]byte
	rand.Read(seedBytes[:])
	seed := fmt.Sprintf("%x", seedBytes)
	// Keys 0 … clients-1 are the configured ones; round i's first keys
	// are clients*(i+1) … clients*(i+2)-1.
	real := clients * (b.N + 1)
	admitBench(b, g, seed, max(n, real), real)
	gwPub, gwPort := g.id.Key.Public().Hex(), int(g.bind.Port())
	connectClients(b, seed, clients, gwPort, gwPub)

	cs := make([]*benchClient, 2*clients)
	for i := range cs {
		cs[i] = newBenchClient(b)
		defer cs[i].dev.Close()
	}
	var first, configured []time.Duration
	last := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// wireguard-go ignores a second initiation of a peer within 20 ms
		// of the last one it consumed.
		if wait := 25*time.Millisecond - time.Since(last); wait > 0 {
			time.Sleep(wait)
		}
		ds := make([]time.Duration, len(cs))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for j, c := range cs {
			// Even clients take first keys, odd ones configured keys, so
			// both kinds start interleaved.
			k := j / 2
			if j%2 == 0 {
				k += clients * (i + 1)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ds[j] = c.handshake(b, benchKey(seed, k), gwPub, gwPort)
			}()
		}
		close(start)
		wg.Wait()
		last = time.Now()
		for j, d := range ds {
			if j%2 == 0 {
				first = append(first, d)
			} else {
				configured = append(configured, d)
			}
		}
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"first", first}, {"configured", configured}} {
		b.ReportMetric(percentile(m.ds, 50), m.name+"-p50-us")
		b.ReportMetric(percentile(m.ds, 99), m.name+"-p99-us")
		b.ReportMetric(percentile(m.ds, 100), m.name+"-max-us")
	}
	b.ReportMetric(percentile(first, 50)-percentile(configured, 50), "extra-p50-us")
	b.ReportMetric(percentile(first, 99)-percentile(configured, 99), "extra-p99-us")
	if st := g.peers.Stats(); st.Configured != real {
		b.Fatalf("configured peers: got %d, want %d", st.Configured, real)
	}
}
