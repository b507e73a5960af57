package httpedge

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/nitronet/nitronet/internal/contact"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ratelimit"
	"golang.org/x/time/rate"
)

// Limits configures the rate limits, each as events per hour with a
// burst.
type Limits struct {
	SignupPerHour, SignupBurst float64
	LoginPerHour, LoginBurst   float64
	VerifyPerHour, VerifyBurst float64
	ResetPerHour, ResetBurst   float64
}

// DefaultLimits are generous enough for people and tight enough for bots.
func DefaultLimits() Limits {
	return Limits{
		SignupPerHour: 20, SignupBurst: 5,
		LoginPerHour: 120, LoginBurst: 10,
		VerifyPerHour: 60, VerifyBurst: 10,
		ResetPerHour: 10, ResetBurst: 3,
	}
}

// Limiters are the rate limiters of sign-up, login, code verification and
// password reset. One set is shared by every front end (the API, the
// portal and the console), so a client cannot double its budget by
// switching between them; for that, every front end counts by the same
// keys (ClientKey, EmailKey, StaffEmailKey, AccountKey). NewLimiters keeps
// the budgets in process; NewSharedLimiters keeps them where every control
// replica spends from the same ones. They are safe for concurrent use.
type Limiters struct {
	Signup, Login, Verify, Reset ratelimit.Budget
}

// NewLimiters builds in-process limiters for l.
func NewLimiters(l Limits, clock func() time.Time, rand io.Reader) (*Limiters, error) {
	ls, err := newLocal(l, clock, rand)
	if err != nil {
		return nil, err
	}
	return &Limiters{Signup: ls[0], Login: ls[1], Verify: ls[2], Reset: ls[3]}, nil
}

// bucket names the shared budget of Limiters' field i, in the order of
// budgets.
func bucket(i int) string { return [...]string{"signup", "login", "verify", "reset"}[i] }

// budget is one limiter's rate per second and burst.
type budget struct {
	rate  rate.Limit
	burst int
}

// budgets returns l's budget for each bucket, in the order Signup, Login,
// Verify, Reset.
func (l Limits) budgets() [4]budget {
	var out [4]budget
	for i, b := range [4][2]float64{{l.SignupPerHour, l.SignupBurst}, {l.LoginPerHour, l.LoginBurst},
		{l.VerifyPerHour, l.VerifyBurst}, {l.ResetPerHour, l.ResetBurst}} {
		out[i].rate, out[i].burst = rate.Limit(b[0]/3600), int(b[1])
	}
	return out
}

// newLocal builds the in-process limiters of l in the order Signup, Login,
// Verify, Reset.
func newLocal(l Limits, clock func() time.Time, rand io.Reader) ([4]*ratelimit.Limiter, error) {
	var out [4]*ratelimit.Limiter
	for i, b := range l.budgets() {
		lim, err := ratelimit.New(ratelimit.Config{Rate: b.rate, Burst: b.burst, MaxKeys: 100_000, Clock: clock, Rand: rand})
		if err != nil {
			return out, err
		}
		out[i] = lim
	}
	return out, nil
}

// Shared is where NewSharedLimiters keeps the budgets.
type Shared struct {
	// Spender keeps the budgets (sqlstore.Store.SpendBudget).
	Spender ratelimit.Spender
	// Secret keys the hash of every limited key; every replica must use
	// the same (at least 32 bytes).
	Secret []byte
	// Logger reports the Spender failing and recovering.
	Logger *slog.Logger
}

// NewSharedLimiters builds limiters for l whose budgets sh keeps, so that
// control replicas sharing it allow together what one would. While sh's
// Spender fails, each falls back to an in-process limiter of the same
// budget (see ratelimit.Shared).
func NewSharedLimiters(l Limits, sh Shared, clock func() time.Time, rand io.Reader) (*Limiters, error) {
	local, err := newLocal(l, clock, rand)
	if err != nil {
		return nil, err
	}
	var out [4]ratelimit.Budget
	for i, b := range l.budgets() {
		if out[i], err = ratelimit.NewShared(ratelimit.SharedConfig{Bucket: bucket(i), Rate: b.rate, Burst: b.burst,
			Spender: sh.Spender, Secret: sh.Secret, Fallback: local[i], Clock: clock, Logger: sh.Logger}); err != nil {
			return nil, err
		}
	}
	return &Limiters{Signup: out[0], Login: out[1], Verify: out[2], Reset: out[3]}, nil
}

// Allow returns RateLimited unless every key has budget left in l. Each
// key it checks spends one event, in order, stopping at the first that has
// none left.
func Allow(l ratelimit.Budget, keys ...string) error {
	for _, k := range keys {
		if !l.Allow(k) {
			return errs.E(errs.RateLimited, "too many attempts; wait a while and try again")
		}
	}
	return nil
}

// ClientKey returns the per-address rate-limit key of r: "addr:" and the
// host of its remote address, or the client address TrustProxies found for
// it. The limiter hashes it before holding it; it is never logged or
// stored.
func ClientKey(r *http.Request) string {
	if a, ok := r.Context().Value(clientAddrKey{}).(netip.Addr); ok {
		return "addr:" + a.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "addr:" + r.RemoteAddr
	}
	return "addr:" + host
}

// EmailKey returns the per-email key of a user's login or password reset:
// the canonical form of the address (contact.NormalizeEmail), the form the
// account's blind index and its uniqueness are keyed on, so every spelling
// that reaches the same account (case, width, IDNA) spends the same budget.
// An address with no canonical form can match no account; it keys on
// itself. Limiters hash keys before holding them.
func EmailKey(email string) string { return "email:" + canonicalEmail(email) }

// StaffEmailKey returns the per-email key of a staff login, apart from
// users' keys and keyed on the same canonical form.
func StaffEmailKey(email string) string { return "staff:" + canonicalEmail(email) }

// canonicalEmail returns the canonical form of email, or, if it has none,
// email itself marked so that it cannot collide with a canonical form.
func canonicalEmail(email string) string {
	c, err := contact.NormalizeEmail(email)
	if err != nil {
		return "invalid:" + email
	}
	return c
}

// Scope names a per-account budget: what the counted attempts are for.
type Scope string

// The per-account budgets. Attempt counts checks of codes and passwords;
// the others count messages sent for the account.
const (
	Attempt    Scope = "acct"        // code checks and password changes
	Resend     Scope = "resend"      // new verification or proof codes
	PrivacyNew Scope = "privacy-new" // new privacy requests (each sends codes)
	Contact    Scope = "contact"     // contact changes (each sends a code)
)

// AccountKey returns the key of the account's budget scope.
func AccountKey(scope Scope, accountID string) string { return string(scope) + ":" + accountID }
