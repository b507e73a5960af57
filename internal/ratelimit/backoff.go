package ratelimit

import (
	"container/list"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Slowdown delays repeated failures by key: *Backoff keeps the counts in
// memory, *SharedBackoff where several replicas share them. Front ends
// hold slowdowns through this interface.
type Slowdown interface {
	// Attempt reserves an attempt for key. It returns 0 if the attempt may
	// go ahead, and otherwise how long until one may (nothing is counted).
	// An attempt that goes ahead counts as a failure until Succeed is
	// called for the key, so concurrent attempts cannot slip past the
	// delay.
	Attempt(key string) time.Duration
	// Succeed forgets key's failures.
	Succeed(key string)
}

var _ Slowdown = (*Backoff)(nil)

// BackoffConfig configures a Backoff.
type BackoffConfig struct {
	// Free is how many failures in a row are allowed without delay
	// (typing mistakes).
	Free int
	// Base is the delay after the first failure beyond Free; each further
	// failure doubles it, up to Max.
	Base, Max time.Duration
	// Forget is how long after its last failure a key's count is dropped
	// (a fresh start).
	Forget time.Duration
	// MaxKeys bounds memory; beyond it the least recently used key is
	// forgotten.
	MaxKeys int
	// Clock supplies the time (nil: time.Now); Rand the HMAC secret (nil:
	// crypto/rand).
	Clock func() time.Time
	Rand  io.Reader
}

// Backoff slows down failures by key exponentially: after Free failures in
// a row, each attempt must wait Base, then 2×Base, 4×Base, … up to Max
// after the previous failure. Attempts during the wait are refused without
// being counted, so a stranger cannot lengthen the wait beyond Max by
// trying faster, and the right credentials work as soon as the wait is
// over. Like Limiter it holds keys only as HMAC-SHA256 digests under a
// random secret. It is safe for concurrent use.
type Backoff struct {
	cfg    BackoffConfig
	secret []byte

	mu      sync.Mutex
	entries map[digest]*backoffEntry
	lru     *list.List // of *backoffEntry, most recently failed at the front
}

type backoffEntry struct {
	d     digest
	fails int
	last  time.Time // time of the latest counted attempt
	until time.Time // no attempt before this
	elem  *list.Element
}

// NewBackoff returns a Backoff for cfg. Free must be at least 0, Base and
// Max positive with Base <= Max, Forget at least Max, MaxKeys at least 1.
func NewBackoff(cfg BackoffConfig) (*Backoff, error) {
	switch {
	case cfg.Free < 0:
		return nil, errors.New("ratelimit: Free must not be negative")
	case cfg.Base <= 0 || cfg.Max < cfg.Base:
		return nil, errors.New("ratelimit: want 0 < Base <= Max")
	case cfg.Forget < cfg.Max:
		return nil, errors.New("ratelimit: Forget must be at least Max")
	case cfg.MaxKeys < 1:
		return nil, errors.New("ratelimit: MaxKeys must be at least 1")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = crand.Reader
	}
	secret := make([]byte, sha256.Size)
	if _, err := io.ReadFull(cfg.Rand, secret); err != nil {
		return nil, fmt.Errorf("ratelimit: read secret: %w", err)
	}
	return &Backoff{cfg: cfg, secret: secret, entries: map[digest]*backoffEntry{}, lru: list.New()}, nil
}

// Delay returns the wait after the n-th failure in a row: 0 up to Free,
// then Base doubling up to Max.
func (b *Backoff) Delay(n int) time.Duration {
	if n <= b.cfg.Free {
		return 0
	}
	d := b.cfg.Base
	for i := b.cfg.Free + 1; i < n && d < b.cfg.Max; i++ {
		d *= 2
	}
	return min(d, b.cfg.Max)
}

// Attempt implements Slowdown.
func (b *Backoff) Attempt(key string) time.Duration {
	d := b.hash(key)
	now := b.cfg.Clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
	e, ok := b.entries[d]
	if ok && now.Before(e.until) {
		return e.until.Sub(now)
	}
	if !ok {
		for len(b.entries) >= b.cfg.MaxKeys {
			b.removeLocked(b.lru.Back().Value.(*backoffEntry))
		}
		e = &backoffEntry{d: d}
		e.elem = b.lru.PushFront(e)
		b.entries[d] = e
	} else {
		b.lru.MoveToFront(e.elem)
	}
	e.fails++
	e.last = now
	e.until = now.Add(b.Delay(e.fails))
	return 0
}

// Succeed implements Slowdown.
func (b *Backoff) Succeed(key string) {
	d := b.hash(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[d]; ok {
		b.removeLocked(e)
	}
}

// Len reports how many keys the Backoff holds, after forgetting idle ones.
func (b *Backoff) Len() int {
	now := b.cfg.Clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
	return len(b.entries)
}

func (b *Backoff) hash(key string) digest {
	m := hmac.New(sha256.New, b.secret)
	io.WriteString(m, key)
	var d digest
	m.Sum(d[:0])
	return d
}

// sweepLocked forgets keys whose last failure is Forget old, least
// recently failed first.
func (b *Backoff) sweepLocked(now time.Time) {
	for el := b.lru.Back(); el != nil; el = b.lru.Back() {
		e := el.Value.(*backoffEntry)
		if now.Sub(e.last) < b.cfg.Forget {
			return
		}
		b.removeLocked(e)
	}
}

func (b *Backoff) removeLocked(e *backoffEntry) {
	b.lru.Remove(e.elem)
	delete(b.entries, e.d)
}
