package peers

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkEnsureBurst measures Ensure on a real wireguard-go device while
// first handshakes arrive at once, as after a gateway restart: each
// iteration is a burst of 32 goroutines each configuring a key not yet
// configured, while 2 goroutines keep calling Ensure for keys configured
// before (the handshake gate's lookup of a connected peer), one every
// 100 µs or so each. The metrics are the p50, p99 and maximum of each kind
// in µs, and lookup-p99-over-first-p50, how
// long a lookup of a configured key may wait, in creations of a peer.
func BenchmarkEnsureBurst(b *testing.B) {
	const burst, lookers, warm = 32, 2, 64
	dev := newDevice(b)
	m := NewManager(ManagerConfig{Device: dev, Pools: pools})
	ps := genPeers(warm + burst*b.N)
	m.Begin(len(ps))
	for _, p := range ps {
		m.AddPeer(p)
	}
	m.Commit()
	for _, p := range ps[:warm] {
		if !m.Ensure(p.Key) {
			b.Fatal("Ensure of an admitted key failed")
		}
	}
	var first, lookup []time.Duration
	var mu sync.Mutex
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var stop atomic.Bool
		var lw sync.WaitGroup
		for g := range lookers {
			lw.Add(1)
			go func() {
				defer lw.Done()
				var ds []time.Duration
				for j := g; !stop.Load(); j++ {
					start := time.Now()
					if !m.Ensure(ps[j%warm].Key) {
						b.Error("Ensure of a configured key failed")
						return
					}
					ds = append(ds, time.Since(start))
					// One lookup every 100 µs or so: a spinning loop would
					// take a core from the burst and drown its waits in
					// uncontended samples.
					time.Sleep(100 * time.Microsecond)
				}
				mu.Lock()
				lookup = append(lookup, ds...)
				mu.Unlock()
			}()
		}
		var fw sync.WaitGroup
		for j := range burst {
			fw.Add(1)
			go func() {
				defer fw.Done()
				start := time.Now()
				if !m.Ensure(ps[warm+i*burst+j].Key) {
					b.Error("Ensure of an admitted key failed")
				}
				d := time.Since(start)
				mu.Lock()
				first = append(first, d)
				mu.Unlock()
			}()
		}
		fw.Wait()
		stop.Store(true)
		lw.Wait()
	}
	b.StopTimer()
	at := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(p/100*float64(len(ds))))].Nanoseconds()) / 1000
	}
	b.ReportMetric(at(first, 50), "first-p50-us")
	b.ReportMetric(at(first, 99), "first-p99-us")
	b.ReportMetric(at(lookup, 50), "lookup-p50-us")
	b.ReportMetric(at(lookup, 99), "lookup-p99-us")
	b.ReportMetric(at(first, 100), "first-max-us")
	b.ReportMetric(at(lookup, 100), "lookup-max-us")
	b.ReportMetric(at(lookup, 99)/at(first, 50), "lookup-p99-over-first-p50")
}
