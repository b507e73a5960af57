package httpedge

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// budgetCall is one call a Spender received.
type budgetCall struct {
	bucket   string
	interval time.Duration
	burst    int
}

// recordingSpender records what it is asked to spend and allows it all.
type recordingSpender struct{ calls []budgetCall }

func (r *recordingSpender) SpendBudget(_ context.Context, bucket string, _ []byte, _ time.Time, interval time.Duration, burst int) (bool, error) {
	r.calls = append(r.calls, budgetCall{bucket, interval, burst})
	return true, nil
}

// TestNewSharedLimiters checks that each shared limiter spends from its
// own bucket with the budget Limits gives it.
func TestNewSharedLimiters(t *testing.T) {
	sp := &recordingSpender{}
	ls, err := NewSharedLimiters(DefaultLimits(), Shared{Spender: sp, Secret: make([]byte, 32), Logger: slog.New(slog.DiscardHandler)}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []interface{ Allow(string) bool }{ls.Signup, ls.Login, ls.Verify, ls.Reset} {
		if !l.Allow("addr:192.0.2.1") {
			t.Fatal("refused although the spender allowed")
		}
	}
	want := []budgetCall{
		{"signup", 3 * time.Minute, 5},  // 20 an hour, burst 5
		{"login", 30 * time.Second, 10}, // 120 an hour, burst 10
		{"verify", time.Minute, 10},     // 60 an hour, burst 10
		{"reset", 6 * time.Minute, 3},   // 10 an hour, burst 3
	}
	if len(sp.calls) != len(want) {
		t.Fatalf("got %d calls, want %d", len(sp.calls), len(want))
	}
	for i, c := range sp.calls {
		if c != want[i] {
			t.Errorf("call %d: got %+v, want %+v", i, c, want[i])
		}
	}
	if _, err := NewSharedLimiters(DefaultLimits(), Shared{Spender: sp, Secret: make([]byte, 8), Logger: slog.New(slog.DiscardHandler)}, time.Now, nil); err == nil {
		t.Error("a short secret was accepted")
	}
}
