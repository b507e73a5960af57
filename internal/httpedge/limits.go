package httpedge

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ratelimit"
	"golang.org/x/time/rate"
)

// Limits configures the in-memory rate limits, each as events per hour
// with a burst.
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

// Limiters are the in-memory rate limiters of sign-up, login, code
// verification and password reset. One set is shared by every front end
// (the API, the portal and the console), so a client cannot double its
// budget by switching between them; for that, every front end counts by
// the same keys (ClientKey, EmailKey, StaffEmailKey, AccountKey). They are
// safe for concurrent use.
type Limiters struct {
	Signup, Login, Verify, Reset *ratelimit.Limiter
}

// NewLimiters builds the limiters for l.
func NewLimiters(l Limits, clock func() time.Time, rand io.Reader) (*Limiters, error) {
	mk := func(perHour, burst float64) (*ratelimit.Limiter, error) {
		return ratelimit.New(ratelimit.Config{Rate: rate.Limit(perHour / 3600), Burst: int(burst), MaxKeys: 100_000, Clock: clock, Rand: rand})
	}
	var ls Limiters
	var err error
	if ls.Signup, err = mk(l.SignupPerHour, l.SignupBurst); err != nil {
		return nil, err
	}
	if ls.Login, err = mk(l.LoginPerHour, l.LoginBurst); err != nil {
		return nil, err
	}
	if ls.Verify, err = mk(l.VerifyPerHour, l.VerifyBurst); err != nil {
		return nil, err
	}
	if ls.Reset, err = mk(l.ResetPerHour, l.ResetBurst); err != nil {
		return nil, err
	}
	return &ls, nil
}

// Allow returns RateLimited unless every key has budget left in l. Each
// key it checks spends one event, in order, stopping at the first that has
// none left.
func Allow(l *ratelimit.Limiter, keys ...string) error {
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

// EmailKey returns the per-email key of a user's login or password reset,
// the same for every spelling of the address that differs only in case
// and surrounding space.
func EmailKey(email string) string { return "email:" + normEmail(email) }

// StaffEmailKey returns the per-email key of a staff login, apart from
// users' keys.
func StaffEmailKey(email string) string { return "staff:" + normEmail(email) }

func normEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

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
