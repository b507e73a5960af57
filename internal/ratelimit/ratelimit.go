// Package ratelimit provides keyed token-bucket rate limits that never hold
// their keys in the clear: Limiter, in memory, and Shared, whose budgets a
// Spender keeps for several processes (control replicas on PostgreSQL).
//
// Keys are things like a client address or an account's email blind index.
// The privacy policy forbids keeping client addresses, so a Limiter stores
// only HMAC-SHA256(secret, key) under a random secret drawn when the Limiter
// is created and never exported. A heap dump or debugger therefore shows no
// addresses, and the digests cannot be linked to those of another process.
package ratelimit

import (
	"container/list"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// digest is the HMAC of a key: the only form of a key a Limiter holds.
type digest [sha256.Size]byte

// entry is one key's bucket.
type entry struct {
	d    digest
	lim  *rate.Limiter
	last time.Time     // time of the most recent Allow for this key
	elem *list.Element // this entry's place in Limiter.lru
}

// Limiter rate-limits events by key. Each key has its own token bucket that
// refills at r events per second up to burst events.
//
// Keys are hashed with HMAC-SHA256 under a random per-Limiter secret before
// they are held in memory, so the Limiter never contains a raw key such as an
// IP address or email.
//
// Memory is bounded: a Limiter holds at most maxKeys entries. An entry is
// evicted once it has been idle long enough for its bucket to be full again
// (burst/r), which loses nothing, since a new bucket starts full. If the
// Limiter is at capacity and a new key arrives, the least recently used entry
// is evicted even if it is not idle, which resets that key's bucket; size
// maxKeys above the number of keys expected to be active within burst/r.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	r       rate.Limit
	burst   int
	maxKeys int
	idle    time.Duration // 0 means entries never become idle (r == 0)
	clock   func() time.Time
	secret  []byte

	mu      sync.Mutex
	entries map[digest]*entry
	lru     *list.List // of *entry, most recently used at the front
}

// Config is a Limiter's budget and dependencies.
type Config struct {
	// Rate is the events allowed per second and key. It must not be
	// negative; rate.Inf allows every event and stores nothing. A rate of
	// 0 allows only the initial burst per key, until the key is evicted
	// for lack of space.
	Rate rate.Limit
	// Burst is the most events allowed at once, at least 1 unless Rate
	// is rate.Inf.
	Burst int
	// MaxKeys is the most keys held, at least 1.
	MaxKeys int
	// Clock supplies the current time; if nil, time.Now is used.
	Clock func() time.Time
	// Rand supplies the 32-byte HMAC secret; if nil, crypto/rand.Reader is
	// used.
	Rand io.Reader
}

// New returns a Limiter that allows, per key, events at cfg.Rate with
// bursts of up to cfg.Burst events, holding at most cfg.MaxKeys keys. It
// returns an error if cfg is invalid or cfg.Rand fails.
func New(cfg Config) (*Limiter, error) {
	r, burst, maxKeys, clock, rand := cfg.Rate, cfg.Burst, cfg.MaxKeys, cfg.Clock, cfg.Rand
	switch {
	case r < 0 || math.IsNaN(float64(r)):
		return nil, errors.New("ratelimit: rate must not be negative")
	case burst < 1 && r != rate.Inf:
		return nil, errors.New("ratelimit: burst must be at least 1")
	case maxKeys < 1:
		return nil, errors.New("ratelimit: maxKeys must be at least 1")
	}
	if clock == nil {
		clock = time.Now
	}
	if rand == nil {
		rand = crand.Reader
	}
	secret := make([]byte, sha256.Size)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, fmt.Errorf("ratelimit: read secret: %w", err)
	}
	return &Limiter{
		r:       r,
		burst:   burst,
		maxKeys: maxKeys,
		idle:    fillTime(r, burst),
		clock:   clock,
		secret:  secret,
		entries: make(map[digest]*entry),
		lru:     list.New(),
	}, nil
}

// fillTime returns how long a bucket of size burst takes to refill from
// empty at rate r, rounded up, or 0 if it never does.
func fillTime(r rate.Limit, burst int) time.Duration {
	if r == 0 {
		return 0
	}
	secs := float64(burst) / float64(r)
	if secs >= float64(math.MaxInt64/int64(time.Second)) {
		return 0 // effectively never
	}
	return time.Duration(math.Ceil(secs * float64(time.Second)))
}

// Allow reports whether one event for key may happen now, and if so
// consumes a token from key's bucket.
func (l *Limiter) Allow(key string) bool {
	if l.r == rate.Inf {
		return true
	}
	d := l.hash(key)
	now := l.clock()

	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	e, ok := l.entries[d]
	if !ok {
		for len(l.entries) >= l.maxKeys {
			l.removeLocked(l.lru.Back().Value.(*entry))
		}
		e = &entry{d: d, lim: rate.NewLimiter(l.r, l.burst)}
		e.elem = l.lru.PushFront(e)
		l.entries[d] = e
	} else {
		l.lru.MoveToFront(e.elem)
	}
	if now.After(e.last) {
		e.last = now
	}
	return e.lim.AllowN(now, 1)
}

// Len reports how many keys the Limiter holds, after evicting idle ones.
func (l *Limiter) Len() int {
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	return len(l.entries)
}

// hash returns the HMAC-SHA256 of key under l's secret.
func (l *Limiter) hash(key string) digest {
	m := hmac.New(sha256.New, l.secret)
	io.WriteString(m, key)
	var d digest
	m.Sum(d[:0])
	return d
}

// sweepLocked evicts entries that have been idle long enough for their
// buckets to be full again. Entries are visited least recently used first,
// so it stops at the first one that is still active.
func (l *Limiter) sweepLocked(now time.Time) {
	if l.idle == 0 {
		return
	}
	for b := l.lru.Back(); b != nil; b = l.lru.Back() {
		e := b.Value.(*entry)
		if now.Sub(e.last) < l.idle {
			return
		}
		l.removeLocked(e)
	}
}

func (l *Limiter) removeLocked(e *entry) {
	l.lru.Remove(e.elem)
	delete(l.entries, e.d)
}
