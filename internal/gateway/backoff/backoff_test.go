package backoff

import (
	"crypto/rand"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	b := &Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second, Rand: rand.Reader}
	for i := 0; i < 20; i++ {
		d := b.Next()
		if d < 50*time.Millisecond || d > 10*time.Second {
			t.Fatalf("attempt %d: got %v, want within [50ms, 10s]", i, d)
		}
	}
	if d := b.Next(); d < 5*time.Second {
		t.Errorf("after many attempts: got %v, want >= 5s (capped half)", d)
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Errorf("after Reset: got %v, want <= 100ms", d)
	}
}

func TestBackoffNoRand(t *testing.T) {
	b := &Backoff{Min: time.Second, Max: 4 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, w := range want {
		if got := b.Next(); got != w {
			t.Errorf("attempt %d: got %v, want %v", i, got, w)
		}
	}
}
