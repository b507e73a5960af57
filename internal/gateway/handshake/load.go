package handshake

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// underLoadFor is how long the gate stays under load after its queue was
// last found filling, as wireguard-go's UnderLoadAfterTime.
const underLoadFor = time.Second

// loadMeter decides whether the handshake queue is under load: it is at
// least an eighth full now, or was within the last underLoadFor. This is
// wireguard-go's own rule (device.IsUnderLoad) applied to the gate's queue.
// A loadMeter is safe for concurrent use.
type loadMeter struct {
	until atomic.Int64 // UnixNano until which the queue counts as loaded
}

// underLoad reports whether a queue holding queued of capacity packets is
// under load at now.
func (m *loadMeter) underLoad(queued, capacity int, now time.Time) bool {
	if queued >= capacity/8 {
		m.until.Store(now.Add(underLoadFor).UnixNano())
		return true
	}
	return m.until.Load() > now.UnixNano()
}

// Per-source limit under load, as wireguard-go's ratelimiter: 20
// initiations a second with a burst of 5.
const (
	limitInterval = time.Second / 20
	limitBurst    = 5
	limitBuckets  = 4096
)

// sourceLimiter bounds, under load, the initiations with a valid cookie
// that one source address may make the gate decrypt. Unlike wireguard-go's
// ratelimiter it keeps no entry per address: each address is hashed with a
// random per-process seed into one of a fixed number of token buckets
// (generic cell rate algorithm, one timestamp each), so its memory is
// constant and holds no address. Addresses that share a bucket share a
// limit. A sourceLimiter is safe for concurrent use.
type sourceLimiter struct {
	seed maphash.Seed
	mu   sync.Mutex
	tat  [limitBuckets]int64 // theoretical arrival time, UnixNano
}

func newSourceLimiter() *sourceLimiter { return &sourceLimiter{seed: maphash.MakeSeed()} }

// allow reports whether one more initiation from addr may be processed at
// now.
func (l *sourceLimiter) allow(addr netip.Addr, now time.Time) bool {
	b := addr.Unmap().As16()
	i := maphash.Bytes(l.seed, b[:]) % limitBuckets
	t := now.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	tat := max(l.tat[i], t)
	if tat-t > int64(limitInterval)*(limitBurst-1) {
		return false
	}
	l.tat[i] = tat + int64(limitInterval)
	return true
}
