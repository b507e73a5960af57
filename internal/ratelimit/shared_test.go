package ratelimit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// memSpender keeps shared budgets in memory by the generic cell rate
// algorithm, as sqlstore does in PostgreSQL, and records the digests it
// was given. fail makes it fail.
type memSpender struct {
	mu      sync.Mutex
	tat     map[string]time.Time
	digests [][]byte
	fail    bool
}

func (m *memSpender) SpendBudget(_ context.Context, bucket string, digest []byte, now time.Time, interval time.Duration, burst int) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return false, errors.New("database unreachable")
	}
	m.digests = append(m.digests, append([]byte(nil), digest...))
	k := bucket + "/" + string(digest)
	tat := m.tat[k]
	if tat.Before(now) {
		tat = now
	}
	tat = tat.Add(interval)
	if tat.Sub(now) > time.Duration(burst)*interval {
		return false, nil
	}
	m.tat[k] = tat
	return true, nil
}

func newShared(t *testing.T, sp Spender, secret []byte, clock func() time.Time, log *slog.Logger) *Shared {
	t.Helper()
	fb, err := New(Config{Rate: rate.Limit(1.0 / 60), Burst: 3, MaxKeys: 10, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewShared(SharedConfig{Bucket: "login", Rate: rate.Limit(1.0 / 60), Burst: 3, Spender: sp,
		Secret: secret, Fallback: fb, Clock: clock, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSharedBudget checks that two Shared budgets on one Spender, as two
// replicas have, spend from one budget per key, hand the Spender only the
// key's HMAC under the shared secret, and fall back to their own limiter
// while the Spender fails, saying so once.
func TestSharedBudget(t *testing.T) {
	clock := newFakeClock()
	sp := &memSpender{tat: map[string]time.Time{}}
	secret := bytes.Repeat([]byte{7}, 32)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, b := newShared(t, sp, secret, clock.Now, log), newShared(t, sp, secret, clock.Now, log)

	const key = "addr:192.0.2.7"
	allowed := 0
	for i := range 8 {
		if []*Shared{a, b}[i%2].Allow(key) {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("%d of 8 events allowed through two replicas with a burst of 3, want 3", allowed)
	}
	clock.Advance(time.Minute)
	if !a.Allow(key) || b.Allow(key) {
		t.Error("want exactly one more event a minute later")
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	want := m.Sum(nil)
	for _, d := range sp.digests {
		if !bytes.Equal(d, want) {
			t.Fatalf("the spender got %x, want the key's HMAC %x", d, want)
		}
	}

	sp.fail = true
	if !a.Allow("addr:192.0.2.8") {
		t.Error("the fallback refused a new key's first event")
	}
	fallback := 1
	for a.Allow("addr:192.0.2.8") {
		fallback++
	}
	if fallback != 3 {
		t.Errorf("the fallback allowed %d events, want its burst of 3", fallback)
	}
	sp.fail = false
	a.Allow(key)
	out := logs.String()
	if strings.Count(out, "shared rate limits unavailable") != 1 || strings.Count(out, "available again") != 1 {
		t.Errorf("want one warning and one recovery in the log, got:\n%s", out)
	}
	if strings.Contains(out, "192.0.2") {
		t.Errorf("the log names a key:\n%s", out)
	}
}

func TestNewSharedInvalid(t *testing.T) {
	fb, err := New(Config{Rate: 1, Burst: 1, MaxKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	sp := &memSpender{}
	log := slog.New(slog.DiscardHandler)
	good := SharedConfig{Rate: 1, Burst: 1, Spender: sp, Secret: make([]byte, 32), Fallback: fb, Logger: log}
	for name, mod := range map[string]func(*SharedConfig){
		"no spender":   func(c *SharedConfig) { c.Spender = nil },
		"short secret": func(c *SharedConfig) { c.Secret = c.Secret[:16] },
		"no fallback":  func(c *SharedConfig) { c.Fallback = nil },
		"zero burst":   func(c *SharedConfig) { c.Burst = 0 },
		"negative":     func(c *SharedConfig) { c.Rate = -1 },
	} {
		c := good
		mod(&c)
		if _, err := NewShared(c); err == nil {
			t.Errorf("%s: NewShared succeeded", name)
		}
	}
	if _, err := NewShared(good); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
