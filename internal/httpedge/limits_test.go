package httpedge

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/contact"
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

// TestEmailKeysAreCanonical: the rate-limit keys of every spelling that
// reaches the account of bob@example.com are one key, the same one the
// account's blind index is derived from; look-alikes that are other
// addresses get keys of their own, and nothing is lower-cased on the side.
func TestEmailKeysAreCanonical(t *testing.T) {
	for _, v := range []string{"bob@example.com", "BOB@Example.COM", " bob@example.com\t", "bob@\uff45xample.com",
		"\uff42\uff4f\uff42\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d", "bob@example\u3002com"} {
		c, err := contact.NormalizeEmail(v)
		if err != nil || c != "bob@example.com" {
			t.Fatalf("NormalizeEmail(%q): got %q, %v", v, c, err)
		}
		if got, want := EmailKey(v), EmailKey("bob@example.com"); got != want {
			t.Errorf("EmailKey(%q): got %q, want %q", v, got, want)
		}
		if got, want := StaffEmailKey(v), StaffEmailKey("bob@example.com"); got != want {
			t.Errorf("StaffEmailKey(%q): got %q, want %q", v, got, want)
		}
	}
	for _, v := range []string{"bob@exampıe.com", "bob@ex\u0430mple.com", "b\u0130b@example.com", "\u212aob@example.com"} {
		if EmailKey(v) == EmailKey("bob@example.com") {
			t.Errorf("EmailKey(%q) equals bob@example.com's key", v)
		}
	}
	// strings.ToLower would map the Turkish İ to i; the canonical form
	// refuses it instead, so its key cannot be the one of bib@example.com.
	if EmailKey("b\u0130b@example.com") == EmailKey("bib@example.com") {
		t.Error("EmailKey folds İ to i")
	}
	if EmailKey("bob@example.com") == StaffEmailKey("bob@example.com") {
		t.Error("user and staff keys of one address are equal")
	}
}
