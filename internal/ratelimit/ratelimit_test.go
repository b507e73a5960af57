package ratelimit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// fakeClock is a manually advanced clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixedSecret returns a reader yielding a known 32-byte secret.
func fixedSecret(b byte) io.Reader { return bytes.NewReader(bytes.Repeat([]byte{b}, 32)) }

func newTest(t *testing.T, r rate.Limit, burst, maxKeys int) (*Limiter, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	l, err := New(Config{Rate: r, Burst: burst, MaxKeys: maxKeys, Clock: clk.Now, Rand: fixedSecret(7)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, clk
}

// allowN calls Allow n times and returns how many were allowed.
func allowN(l *Limiter, key string, n int) int {
	got := 0
	for range n {
		if l.Allow(key) {
			got++
		}
	}
	return got
}

func TestBurstThenRefusal(t *testing.T) {
	tests := []struct {
		name  string
		r     rate.Limit
		burst int
	}{
		{"burst 1", rate.Every(time.Second), 1},
		{"burst 3", rate.Every(time.Second), 3},
		{"burst 10 slow", rate.Every(time.Hour), 10},
		{"rate zero", 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTest(t, tc.r, tc.burst, 100)
			for i := range tc.burst {
				if !l.Allow("203.0.113.7") {
					t.Fatalf("event %d: got refused, want allowed within burst %d", i+1, tc.burst)
				}
			}
			if l.Allow("203.0.113.7") {
				t.Fatalf("event %d: got allowed, want refused after burst %d", tc.burst+1, tc.burst)
			}
			// Other keys have their own buckets.
			if got := allowN(l, "198.51.100.1", tc.burst); got != tc.burst {
				t.Fatalf("second key: got %d allowed, want %d", got, tc.burst)
			}
		})
	}
}

func TestRefill(t *testing.T) {
	l, clk := newTest(t, rate.Every(time.Second), 3, 100)
	const key = "alice-index"
	if got := allowN(l, key, 5); got != 3 {
		t.Fatalf("initial: got %d allowed, want 3", got)
	}
	clk.Advance(999 * time.Millisecond)
	if l.Allow(key) {
		t.Fatalf("after 999ms: got allowed, want refused")
	}
	clk.Advance(time.Millisecond)
	if got := allowN(l, key, 2); got != 1 {
		t.Fatalf("after 1s: got %d allowed, want 1", got)
	}
	clk.Advance(time.Hour)
	if got := allowN(l, key, 10); got != 3 {
		t.Fatalf("after 1h: got %d allowed, want burst 3", got)
	}
}

func TestIdleEviction(t *testing.T) {
	// Refills 2 tokens in 2s, so an entry is idle 2s after its last use.
	l, clk := newTest(t, rate.Every(time.Second), 2, 100)
	l.Allow("a")
	clk.Advance(time.Second)
	l.Allow("b")
	if got := l.Len(); got != 2 {
		t.Fatalf("Len: got %d, want 2", got)
	}
	clk.Advance(time.Second - time.Nanosecond)
	if got := l.Len(); got != 2 {
		t.Fatalf("Len just before a is idle: got %d, want 2", got)
	}
	clk.Advance(time.Nanosecond)
	if got := l.Len(); got != 1 {
		t.Fatalf("Len once a is idle: got %d, want 1", got)
	}
	// Use of b keeps it alive.
	l.Allow("b")
	clk.Advance(1500 * time.Millisecond)
	if got := l.Len(); got != 1 {
		t.Fatalf("Len after b was used again: got %d, want 1", got)
	}
	clk.Advance(500 * time.Millisecond)
	if got := l.Len(); got != 0 {
		t.Fatalf("Len once all idle: got %d, want 0", got)
	}
}

func TestEvictionDoesNotLoseRefusals(t *testing.T) {
	// An entry is only evicted as idle once its bucket is full again, so a
	// refused key stays refused until it has really refilled.
	l, clk := newTest(t, rate.Every(time.Minute), 1, 100)
	if !l.Allow("k") {
		t.Fatalf("first: got refused, want allowed")
	}
	for i := range 59 {
		clk.Advance(time.Second)
		if l.Allow("k") {
			t.Fatalf("after %ds: got allowed, want refused", i+1)
		}
	}
	clk.Advance(time.Second)
	if !l.Allow("k") {
		t.Fatalf("after 60s: got refused, want allowed")
	}
}

func TestMaxKeysBound(t *testing.T) {
	const maxKeys = 3
	l, _ := newTest(t, rate.Every(time.Hour), 1, maxKeys)
	for i := range 50 {
		l.Allow(fmt.Sprintf("key-%d", i))
		if got, want := l.Len(), min(i+1, maxKeys); got != want {
			t.Fatalf("after %d keys: Len got %d, want %d", i+1, got, want)
		}
	}
	// The most recently used keys are held (and so still refused) ...
	for i := 47; i < 50; i++ {
		if l.Allow(fmt.Sprintf("key-%d", i)) {
			t.Fatalf("key-%d: got allowed, want refused (it should still be held)", i)
		}
	}
	// ... and the least recently used were evicted, so they start afresh.
	if !l.Allow("key-0") {
		t.Fatalf("key-0: got refused, want allowed after eviction")
	}
	if got := l.Len(); got != maxKeys {
		t.Fatalf("Len: got %d, want %d", got, maxKeys)
	}
}

func TestLRUOrder(t *testing.T) {
	l, _ := newTest(t, rate.Every(time.Hour), 1, 2)
	l.Allow("a")
	l.Allow("b")
	l.Allow("a") // a is now more recent than b
	l.Allow("c") // evicts b
	if l.Allow("a") {
		t.Fatalf("a: got allowed, want refused (a should have been kept)")
	}
	if !l.Allow("b") {
		t.Fatalf("b: got refused, want allowed (b should have been evicted)")
	}
}

func TestNoRawKeysHeld(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	l, _ := newTest(t, rate.Every(time.Second), 1, 100)
	keys := []string{
		"203.0.113.7",
		"2001:db8::1",
		"alice@example.com",
		"+447911123456",
		"",
	}
	want := map[string]bool{}
	for _, k := range keys {
		l.Allow(k)
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(k))
		want[string(m.Sum(nil))] = true
	}

	held := l.heldKeys()
	if len(held) != len(keys) {
		t.Fatalf("held keys: got %d, want %d", len(held), len(keys))
	}
	for _, h := range held {
		if len(h) != sha256.Size {
			t.Fatalf("held key length: got %d, want %d", len(h), sha256.Size)
		}
		if !want[string(h)] {
			t.Fatalf("held key %x is not the HMAC-SHA256 of any key", h)
		}
		for _, k := range keys {
			if k != "" && bytes.Contains(h, []byte(k)) {
				t.Fatalf("held key %x contains raw key %q", h, k)
			}
		}
	}
	// Another process (another secret) holds unlinkable digests.
	clk := newFakeClock()
	other, err := New(Config{Rate: rate.Every(time.Second), Burst: 1, MaxKeys: 100, Clock: clk.Now, Rand: fixedSecret(8)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	other.Allow(keys[0])
	if h := other.heldKeys()[0]; want[string(h)] {
		t.Fatalf("digest under a different secret: got %x, want it to differ", h)
	}
}

func TestInfStoresNothing(t *testing.T) {
	l, _ := newTest(t, rate.Inf, 0, 1)
	if got := allowN(l, "203.0.113.7", 1000); got != 1000 {
		t.Fatalf("allowed: got %d, want 1000", got)
	}
	if got := l.Len(); got != 0 {
		t.Fatalf("Len: got %d, want 0", got)
	}
}

func TestNewErrors(t *testing.T) {
	clk := newFakeClock()
	tests := []struct {
		name    string
		r       rate.Limit
		burst   int
		maxKeys int
		rand    io.Reader
	}{
		{"negative rate", -1, 1, 1, fixedSecret(1)},
		{"NaN rate", rate.Limit(math.NaN()), 1, 1, fixedSecret(1)},
		{"zero burst", 1, 0, 1, fixedSecret(1)},
		{"zero maxKeys", 1, 1, 0, fixedSecret(1)},
		{"short rand", 1, 1, 1, bytes.NewReader(make([]byte, 31))},
		{"failing rand", 1, 1, 1, errReader{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(Config{Rate: tc.r, Burst: tc.burst, MaxKeys: tc.maxKeys, Clock: clk.Now, Rand: tc.rand})
			if err == nil {
				t.Fatalf("New: got %v, nil error; want an error", l)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestNilDefaults(t *testing.T) {
	l, err := New(Config{Rate: rate.Every(time.Second), Burst: 2, MaxKeys: 10})
	if err != nil {
		t.Fatalf("New with nil clock and rand: %v", err)
	}
	if got := allowN(l, "k", 3); got != 2 {
		t.Fatalf("allowed: got %d, want 2", got)
	}
}

func TestConcurrent(t *testing.T) {
	const (
		burst      = 25
		goroutines = 16
		perG       = 50
	)
	l, _ := newTest(t, rate.Every(time.Hour), burst, 8)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed = map[string]int{}
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				key := fmt.Sprintf("key-%d", (g+i)%4)
				if l.Allow(key) {
					mu.Lock()
					allowed[key]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for k, n := range allowed {
		if n != burst {
			t.Errorf("%s: got %d allowed, want %d", k, n, burst)
		}
	}
	if got := len(allowed); got != 4 {
		t.Fatalf("keys allowed: got %d, want 4", got)
	}
}
