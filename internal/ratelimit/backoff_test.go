package ratelimit

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustBackoff(t *testing.T, cfg BackoffConfig) *Backoff {
	t.Helper()
	b, err := NewBackoff(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBackoffSchedule(t *testing.T) {
	c := newFakeClock()
	b := mustBackoff(t, BackoffConfig{Free: 3, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour, MaxKeys: 10, Clock: c.Now})
	want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := b.Delay(100); got != 15*time.Minute {
		t.Errorf("Delay(100) = %v, want the cap", got)
	}
	// Three free failures, then each attempt waits for the previous one's
	// delay; attempts inside the wait are refused and not counted.
	for i := 0; i < 3; i++ {
		if w := b.Attempt("k"); w != 0 {
			t.Fatalf("free attempt %d: wait %v", i+1, w)
		}
	}
	if w := b.Attempt("k"); w != 0 {
		t.Fatalf("4th attempt: wait %v, want 0 (the delay follows it)", w)
	}
	for i := 0; i < 50; i++ {
		if w := b.Attempt("k"); w != time.Second {
			t.Fatalf("attempt inside the wait: got wait %v, want 1s", w)
		}
	}
	c.Advance(time.Second)
	if w := b.Attempt("k"); w != 0 {
		t.Fatalf("after the wait: got %v, want 0", w)
	}
	if w := b.Attempt("k"); w != 2*time.Second {
		t.Fatalf("the next wait: got %v, want 2s (refused attempts were not counted)", w)
	}
	// Other keys are not affected.
	if w := b.Attempt("other"); w != 0 {
		t.Fatalf("another key: wait %v", w)
	}
	// Success forgets the failures.
	c.Advance(2 * time.Second)
	if w := b.Attempt("k"); w != 0 {
		t.Fatal("attempt after the wait refused")
	}
	b.Succeed("k")
	for i := 0; i < 3; i++ {
		if w := b.Attempt("k"); w != 0 {
			t.Fatalf("after success, free attempt %d: wait %v", i+1, w)
		}
	}
}

// TestBackoffBounded: a stranger failing as fast as allowed for a day
// never makes the wait longer than Max, and the owner's attempt right
// after a wait goes ahead.
func TestBackoffBounded(t *testing.T) {
	c := newFakeClock()
	b := mustBackoff(t, BackoffConfig{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour, MaxKeys: 10, Clock: c.Now})
	counted := 0
	for end := c.Now().Add(24 * time.Hour); c.Now().Before(end); {
		w := b.Attempt("victim")
		if w > 15*time.Minute {
			t.Fatalf("wait %v over the cap", w)
		}
		if w == 0 {
			counted++
			continue
		}
		c.Advance(w)
	}
	// 5 free, 10 doublings (1 s … 512 s), then one guess per 15 minutes.
	if counted > 5+10+24*4+1 {
		t.Fatalf("a day of guessing got %d attempts through, want at most %d", counted, 5+10+24*4+1)
	}
	// After a day without failures the key starts afresh.
	c.Advance(24 * time.Hour)
	if w := b.Attempt("victim"); w != 0 {
		t.Fatalf("after a quiet day: wait %v, want 0", w)
	}
}

func TestBackoffConcurrent(t *testing.T) {
	c := newFakeClock()
	b := mustBackoff(t, BackoffConfig{Free: 2, Base: time.Minute, Max: time.Hour, Forget: 24 * time.Hour, MaxKeys: 10, Clock: c.Now})
	var through atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if b.Attempt("k") == 0 {
				through.Add(1)
			}
		})
	}
	wg.Wait()
	if n := through.Load(); n != 3 {
		t.Fatalf("100 concurrent attempts: %d went ahead, want 3 (2 free and the one that set the delay)", n)
	}
}

func TestBackoffKeysHashedAndBounded(t *testing.T) {
	c := newFakeClock()
	b := mustBackoff(t, BackoffConfig{Free: 0, Base: time.Second, Max: time.Second, Forget: time.Hour, MaxKeys: 3, Clock: c.Now})
	for _, k := range []string{"login:alice@example.com", "b", "c", "d"} {
		b.Attempt(k)
	}
	if n := b.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3 (MaxKeys)", n)
	}
	for _, h := range b.heldKeys() {
		if bytes.Contains(h, []byte("alice")) {
			t.Fatal("a raw key is held")
		}
	}
	c.Advance(time.Hour)
	if n := b.Len(); n != 0 {
		t.Fatalf("Len after Forget = %d, want 0", n)
	}
	if _, err := NewBackoff(BackoffConfig{Base: time.Minute, Max: time.Second, Forget: time.Hour, MaxKeys: 1}); err == nil {
		t.Fatal("NewBackoff accepted Base > Max")
	}
}
