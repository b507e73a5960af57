package httpedge

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/contact"
	"github.com/nitronet/nitronet/internal/errs"
)

// budgetCall is one call a Spender received.
type budgetCall struct {
	bucket   string
	interval time.Duration
	burst    int
}

// recordingSpender records what it is asked to spend and allows it all;
// it keeps slow-downs too, recording their kinds and schedules and
// letting every attempt go ahead.
type recordingSpender struct {
	calls []budgetCall
	slows []slowCall
}

// slowCall is one attempt a SlowdownKeeper received.
type slowCall struct {
	kind   string
	delays []time.Duration
	forget time.Duration
}

func (r *recordingSpender) AttemptSlowdown(_ context.Context, kind string, _ []byte, _ time.Time, delays []time.Duration, forget time.Duration) (time.Duration, error) {
	r.slows = append(r.slows, slowCall{kind, delays, forget})
	return 0, nil
}

func (r *recordingSpender) ForgetSlowdown(context.Context, string, []byte) error { return nil }

func (r *recordingSpender) SpendBudget(_ context.Context, bucket string, _ []byte, _ time.Time, interval time.Duration, burst int) (bool, error) {
	r.calls = append(r.calls, budgetCall{bucket, interval, burst})
	return true, nil
}

// TestNewSharedLimiters checks that each shared limiter spends from its
// own bucket with the budget Limits gives it, and that the user and staff
// login slow-downs are shared, apart, on the schedule Limits gives them.
func TestNewSharedLimiters(t *testing.T) {
	sp := &recordingSpender{}
	ls, err := NewSharedLimiters(DefaultLimits(), Shared{Spender: sp, Keeper: sp, Secret: make([]byte, 32), Logger: slog.New(slog.DiscardHandler)}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []interface{ Allow(string) bool }{ls.Signup, ls.Login, ls.Staff, ls.Enroll, ls.Verify, ls.Reset, ls.Check} {
		if !l.Allow("addr:192.0.2.1") {
			t.Fatal("refused although the spender allowed")
		}
	}
	want := []budgetCall{
		{"signup", 3 * time.Minute, 5},  // 20 an hour, burst 5
		{"login", 30 * time.Second, 10}, // 120 an hour, burst 10
		{"staff", time.Minute, 10},      // 60 an hour, burst 10
		{"enroll", 2 * time.Minute, 5},  // 30 an hour, burst 5
		{"verify", time.Minute, 10},     // 60 an hour, burst 10
		{"reset", 6 * time.Minute, 3},   // 10 an hour, burst 3
		{"check", 6 * time.Second, 60},  // 600 an hour, burst 60
	}
	if len(sp.calls) != len(want) {
		t.Fatalf("got %d calls, want %d", len(sp.calls), len(want))
	}
	for i, c := range sp.calls {
		if c != want[i] {
			t.Errorf("call %d: got %+v, want %+v", i, c, want[i])
		}
	}
	if _, err := ls.UserLogin.Begin("alice@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.StaffLogin.Begin("alice@example.com", ""); err != nil {
		t.Fatal(err)
	}
	// 5 free failures, then 1 s doubling to 15 minutes (1 s × 2^10 is
	// over it), forgotten after a day.
	delays := make([]time.Duration, DefaultSlowFree, DefaultSlowFree+11)
	for d := DefaultSlowBase; d < DefaultSlowMax; d *= 2 {
		delays = append(delays, d)
	}
	delays = append(delays, DefaultSlowMax)
	if len(sp.slows) != 2 {
		t.Fatalf("got %d slow-down attempts, want 2", len(sp.slows))
	}
	for i, kind := range []string{"user-login", "staff-login"} {
		if c := sp.slows[i]; c.kind != kind || !slices.Equal(c.delays, delays) || c.forget != 24*time.Hour {
			t.Errorf("slow-down %d: got %+v, want %s on %v, forgotten after a day", i, c, kind, delays)
		}
	}
	if _, err := NewSharedLimiters(DefaultLimits(), Shared{Spender: sp, Keeper: sp, Secret: make([]byte, 8), Logger: slog.New(slog.DiscardHandler)}, time.Now, nil); err == nil {
		t.Error("a short secret was accepted")
	}
	if _, err := NewSharedLimiters(DefaultLimits(), Shared{Spender: sp, Secret: make([]byte, 32), Logger: slog.New(slog.DiscardHandler)}, time.Now, nil); err == nil {
		t.Error("shared limiters without a keeper of slow-downs were built")
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

// TestLoginGuardDevices: a device token is bound to its address and
// scope, a forged one falls back to the account's budget, and a known
// device keeps its own budget while strangers slow the account down.
func TestLoginGuardDevices(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ls, err := NewLimiters(Limits{SlowFree: 1, SlowBase: time.Minute, SlowMax: time.Hour}, []byte("device key for the test, 32 byt"), clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := ls.UserLogin
	// The owner logs in once and gets a device token.
	att, err := g.Begin("bob@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	dev := att.Succeeded()
	if !strings.HasPrefix(dev, "nnd_") || strings.Contains(dev, "bob") {
		t.Fatalf("device token %q", dev)
	}
	// A stranger fails twice: the account (for clients without a device
	// token) must wait.
	for i := 0; i < 2; i++ {
		if _, err := g.Begin("BOB@example.com", ""); err != nil {
			t.Fatalf("stranger's attempt %d: %v", i+1, err)
		}
	}
	_, err = g.Begin("bob@\uff45xample.com", "")
	if !errs.Is(err, errs.RateLimited) || RetryAfterOf(err) != time.Minute {
		t.Fatalf("after two failures: got %v (retry after %v), want RateLimited for a minute", err, RetryAfterOf(err))
	}
	// The owner's device is not slowed down, in any spelling.
	if att, err := g.Begin("Bob@Example.com", dev); err != nil {
		t.Fatalf("known device: %v", err)
	} else if att.Succeeded() != dev {
		t.Fatal("a valid device token was replaced")
	}
	// Tokens are bound to the address and to the kind of login.
	for name, tc := range map[string]struct {
		g          *LoginGuard
		email, dev string
	}{
		"other address": {g, "carol@example.com", dev},
		"staff login":   {ls.StaffLogin, "bob@example.com", dev},
		"forged":        {g, "bob@example.com", "nnd_" + strings.Repeat("A", 32)},
		"garbage":       {g, "bob@example.com", "nnd_!!"},
	} {
		a, err := tc.g.Begin(tc.email, tc.dev)
		if err == nil && a.device != "" {
			t.Errorf("%s: the device token was accepted", name)
		}
	}
	if _, err := g.Begin("bob@example.com", "nnd_"+strings.Repeat("A", 32)); !errs.Is(err, errs.RateLimited) {
		t.Errorf("forged token: got %v, want the account's wait", err)
	}
	// After the wait the right password works for anyone.
	now = now.Add(time.Minute)
	if _, err := g.Begin("bob@example.com", ""); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	// The error says how long, and Retry-After carries it.
	w := httptest.NewRecorder()
	WriteError(w, slog.New(slog.DiscardHandler), tooSoon(90*time.Second+time.Millisecond))
	if w.Code != 429 || w.Header().Get("Retry-After") != "91" || !strings.Contains(w.Body.String(), "91 seconds") {
		t.Fatalf("WriteError: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}

// TestQuiet: requests to a Quiet handler leave no access log line; others
// do, with their route.
func TestQuiet(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	mux := http.NewServeMux()
	mux.Handle("POST /check", Quiet(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	mux.HandleFunc("GET /seen", func(w http.ResponseWriter, r *http.Request) {})
	h := AccessLog(log, time.Now, mux)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/check", nil))
	if buf.Len() != 0 {
		t.Fatalf("a quiet request was logged: %s", buf.String())
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/seen", nil))
	if !strings.Contains(buf.String(), "route=/seen") {
		t.Fatalf("access log %q, want the route", buf.String())
	}
}
