package ratelimit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memKeeper keeps shared slow-downs in memory as sqlstore does in
// PostgreSQL, and records the digests it was given. fail makes it fail.
type memKeeper struct {
	mu      sync.Mutex
	rows    map[string]*memSlow
	digests [][]byte
	fail    bool
}

type memSlow struct {
	fails          int
	until, expires time.Time
}

func (m *memKeeper) AttemptSlowdown(_ context.Context, kind string, digest []byte, now time.Time, delays []time.Duration, forget time.Duration) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return 0, errors.New("database unreachable")
	}
	m.digests = append(m.digests, slices.Clone(digest))
	r := m.rows[kind+"/"+string(digest)]
	switch {
	case r == nil:
		r = &memSlow{}
		m.rows[kind+"/"+string(digest)] = r
	case now.Before(r.until):
		return r.until.Sub(now), nil
	case !now.Before(r.expires):
		r.fails = 0
	}
	r.fails = min(r.fails+1, len(delays))
	r.until, r.expires = now.Add(delays[r.fails-1]), now.Add(forget)
	return 0, nil
}

func (m *memKeeper) ForgetSlowdown(_ context.Context, kind string, digest []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("database unreachable")
	}
	delete(m.rows, kind+"/"+string(digest))
	return nil
}

func newSharedBackoff(t *testing.T, k SlowdownKeeper, secret []byte, clock func() time.Time, log *slog.Logger) *SharedBackoff {
	t.Helper()
	fb := mustBackoff(t, BackoffConfig{Free: 2, Base: time.Second, Max: 4 * time.Second, Forget: time.Hour, MaxKeys: 10, Clock: clock})
	s, err := NewSharedBackoff(SharedBackoffConfig{Kind: "user-login", Keeper: k, Secret: secret, Fallback: fb, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSharedBackoff checks that two SharedBackoffs on one keeper, as two
// replicas have, count one key's failures together on the fallback's
// schedule, hand the keeper only the key's HMAC under the shared secret,
// and fall back to their own Backoff while the keeper fails, saying so
// once.
func TestSharedBackoff(t *testing.T) {
	clock := newFakeClock()
	k := &memKeeper{rows: map[string]*memSlow{}}
	secret := bytes.Repeat([]byte{7}, 32)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, b := newSharedBackoff(t, k, secret, clock.Now, log), newSharedBackoff(t, k, secret, clock.Now, log)
	if want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(a.delays, want) {
		t.Fatalf("schedule %v, want %v", a.delays, want)
	}

	const key = "user:acct:alice@example.com"
	// Two free failures and a counted one spread over the replicas; then
	// both make the next attempt wait.
	for i, s := range []*SharedBackoff{a, b, a} {
		if w := s.Attempt(key); w != 0 {
			t.Fatalf("attempt %d: wait %v", i+1, w)
		}
	}
	if wa, wb := a.Attempt(key), b.Attempt(key); wa != time.Second || wb != time.Second {
		t.Fatalf("waits %v and %v after the third failure, want 1s on both replicas", wa, wb)
	}
	clock.Advance(time.Second)
	if w := b.Attempt(key); w != 0 {
		t.Fatalf("after the wait: %v", w)
	}
	if w := a.Attempt(key); w != 2*time.Second {
		t.Fatalf("the next wait: %v, want 2s", w)
	}
	// Success on one replica forgets the count on both.
	b.Succeed(key)
	if w := a.Attempt(key); w != 0 {
		t.Fatalf("after success: %v", w)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	want := m.Sum(nil)
	for _, d := range k.digests {
		if !bytes.Equal(d, want) {
			t.Fatalf("the keeper got %x, want the key's HMAC %x", d, want)
		}
	}

	// The keeper fails: each replica slows down on its own.
	k.fail = true
	const other = "user:acct:bob@example.com"
	for i := range 3 {
		if w := a.Attempt(other); w != 0 {
			t.Fatalf("fallback attempt %d: wait %v", i+1, w)
		}
	}
	if w := a.Attempt(other); w != time.Second {
		t.Fatalf("fallback: wait %v after three failures, want 1s", w)
	}
	a.Succeed(other)
	if w := a.Attempt(other); w != 0 {
		t.Fatalf("fallback after success: wait %v", w)
	}
	k.fail = false
	a.Attempt(key)
	out := logs.String()
	if strings.Count(out, "shared login slow-downs unavailable") != 1 || strings.Count(out, "available again") != 1 {
		t.Errorf("want one warning and one recovery in the log, got:\n%s", out)
	}
	if strings.Contains(out, "example.com") {
		t.Errorf("the log names a key:\n%s", out)
	}
}

func TestNewSharedBackoffInvalid(t *testing.T) {
	fb := mustBackoff(t, BackoffConfig{Free: 1, Base: time.Second, Max: time.Second, Forget: time.Hour, MaxKeys: 1})
	good := SharedBackoffConfig{Keeper: &memKeeper{}, Secret: make([]byte, 32), Fallback: fb, Logger: slog.New(slog.DiscardHandler)}
	for name, mod := range map[string]func(*SharedBackoffConfig){
		"no keeper":    func(c *SharedBackoffConfig) { c.Keeper = nil },
		"short secret": func(c *SharedBackoffConfig) { c.Secret = c.Secret[:16] },
		"no fallback":  func(c *SharedBackoffConfig) { c.Fallback = nil },
		"no logger":    func(c *SharedBackoffConfig) { c.Logger = nil },
	} {
		c := good
		mod(&c)
		if _, err := NewSharedBackoff(c); err == nil {
			t.Errorf("%s: NewSharedBackoff succeeded", name)
		}
	}
	s, err := NewSharedBackoff(good)
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if want := []time.Duration{0, time.Second}; !slices.Equal(s.delays, want) {
		t.Errorf("schedule %v, want %v", s.delays, want)
	}
}
