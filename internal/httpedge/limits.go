package httpedge

import (
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/contact"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ratelimit"
	"golang.org/x/time/rate"
)

// Limits configures the rate limits: token buckets per client address (or
// per email address, account), each as events per hour with a burst, and
// the per-account slow-down of failed logins. A field pair left at zero
// takes its DefaultLimits value.
type Limits struct {
	SignupPerHour, SignupBurst float64
	// Login, Staff and Enroll are the per-address budgets of user login,
	// staff login and gateway enrolment: separate, so that using one up
	// does not touch the others.
	LoginPerHour, LoginBurst   float64
	StaffPerHour, StaffBurst   float64
	EnrollPerHour, EnrollBurst float64
	VerifyPerHour, VerifyBurst float64
	ResetPerHour, ResetBurst   float64
	// Check is the per-address budget of the password-strength check.
	CheckPerHour, CheckBurst float64

	// SlowFree failed logins in a row are free; then each attempt on that
	// account waits SlowBase, doubling with every further failure up to
	// SlowMax (see LoginGuard). SlowFree < 0 means no free failures.
	SlowFree          int
	SlowBase, SlowMax time.Duration
}

// The slow-down defaults: 5 free failures (typing mistakes), then 1 s
// doubling to 15 minutes. An account under attack reaches the cap after
// about 17 minutes of failures (1+2+…+512 s), from when on it lets one
// guess through every 15 minutes: about 110 guesses in the first day and
// 96 a day after, against passwords the policy requires to need 10^8
// guesses. The owner, from a device that logged in before, is never
// slowed by a stranger's failures; from a new device they wait at most
// the current delay, and a password reset makes the browser a known
// device.
const (
	DefaultSlowFree = 5
	DefaultSlowBase = time.Second
	DefaultSlowMax  = 15 * time.Minute
	// slowForget is how long after the last failure a count is dropped.
	slowForget = 24 * time.Hour
)

// DefaultLimits are generous enough for people and tight enough for bots.
func DefaultLimits() Limits {
	return Limits{
		SignupPerHour: 20, SignupBurst: 5,
		LoginPerHour: 120, LoginBurst: 10,
		StaffPerHour: 60, StaffBurst: 10,
		EnrollPerHour: 30, EnrollBurst: 5,
		VerifyPerHour: 60, VerifyBurst: 10,
		ResetPerHour: 10, ResetBurst: 3,
		CheckPerHour: 600, CheckBurst: 60,
		SlowFree: DefaultSlowFree, SlowBase: DefaultSlowBase, SlowMax: DefaultSlowMax,
	}
}

// Limiters are the rate limiters of sign-up, logins, gateway enrolment,
// code verification, password reset and the password check, and the
// per-account slow-downs of user and staff logins. One set is shared by
// every front end (the API, the portal and the console), so a client
// cannot double its budget by switching between them; for that, every
// front end counts by the same keys (ClientKey, EmailKey, StaffEmailKey,
// AccountKey). NewLimiters keeps the budgets and slow-downs in process;
// NewSharedLimiters keeps them where every control replica spends from
// the same ones. They are safe for concurrent use.
type Limiters struct {
	Signup, Login, Staff, Enroll, Verify, Reset, Check ratelimit.Budget
	// UserLogin and StaffLogin slow failed logins down per account.
	UserLogin, StaffLogin *LoginGuard
}

// nBudgets is the number of budgets of Limiters.
const nBudgets = 7

// fields returns ls's budgets in the order of bucket.
func (ls *Limiters) fields() [nBudgets]*ratelimit.Budget {
	return [nBudgets]*ratelimit.Budget{&ls.Signup, &ls.Login, &ls.Staff, &ls.Enroll, &ls.Verify, &ls.Reset, &ls.Check}
}

// bucket names the shared budget of Limiters' field i, in the order of
// fields.
func bucket(i int) string {
	return [...]string{"signup", "login", "staff", "enroll", "verify", "reset", "check"}[i]
}

// budget is one limiter's rate per second and burst.
type budget struct {
	rate  rate.Limit
	burst int
}

// budgets returns l's budget for each bucket, in the order of fields; a
// field pair left at zero takes its DefaultLimits value.
func (l Limits) budgets() [nBudgets]budget {
	d := DefaultLimits()
	var out [nBudgets]budget
	for i, b := range [nBudgets][4]float64{
		{l.SignupPerHour, l.SignupBurst, d.SignupPerHour, d.SignupBurst},
		{l.LoginPerHour, l.LoginBurst, d.LoginPerHour, d.LoginBurst},
		{l.StaffPerHour, l.StaffBurst, d.StaffPerHour, d.StaffBurst},
		{l.EnrollPerHour, l.EnrollBurst, d.EnrollPerHour, d.EnrollBurst},
		{l.VerifyPerHour, l.VerifyBurst, d.VerifyPerHour, d.VerifyBurst},
		{l.ResetPerHour, l.ResetBurst, d.ResetPerHour, d.ResetBurst},
		{l.CheckPerHour, l.CheckBurst, d.CheckPerHour, d.CheckBurst},
	} {
		perHour, burst := b[0], b[1]
		if perHour == 0 && burst == 0 {
			perHour, burst = b[2], b[3]
		}
		out[i].rate, out[i].burst = rate.Limit(perHour/3600), int(math.Min(burst, math.MaxInt32))
	}
	return out
}

// newLocal builds the in-process limiters of l in the order of fields.
func newLocal(l Limits, clock func() time.Time, rand io.Reader) ([nBudgets]*ratelimit.Limiter, error) {
	var out [nBudgets]*ratelimit.Limiter
	for i, b := range l.budgets() {
		lim, err := ratelimit.New(ratelimit.Config{Rate: b.rate, Burst: b.burst, MaxKeys: 100_000, Clock: clock, Rand: rand})
		if err != nil {
			return out, err
		}
		out[i] = lim
	}
	return out, nil
}

// NewLimiters builds in-process limiters for l. deviceKey signs the device
// tokens of LoginGuard (derive it from the vault so tokens outlive a
// restart); nil draws a random one.
func NewLimiters(l Limits, deviceKey []byte, clock func() time.Time, rand io.Reader) (*Limiters, error) {
	local, err := newLocal(l, clock, rand)
	if err != nil {
		return nil, err
	}
	var ls Limiters
	for i, f := range ls.fields() {
		*f = local[i]
	}
	if err := ls.guards(l, deviceKey, nil, clock, rand); err != nil {
		return nil, err
	}
	return &ls, nil
}

// guards builds ls's per-account slow-downs of failed logins for l: kept
// where sh says if sh is not nil, in process otherwise.
func (ls *Limiters) guards(l Limits, deviceKey []byte, sh *Shared, clock func() time.Time, rand io.Reader) error {
	d := DefaultLimits()
	if deviceKey == nil {
		deviceKey = make([]byte, 32)
		if rand == nil {
			rand = crand.Reader
		}
		if _, err := io.ReadFull(rand, deviceKey); err != nil {
			return fmt.Errorf("httpedge: device key: %w", err)
		}
	}
	free, base, maxWait := l.SlowFree, l.SlowBase, l.SlowMax
	if free == 0 && base == 0 && maxWait == 0 {
		free, base, maxWait = d.SlowFree, d.SlowBase, d.SlowMax
	}
	free = max(free, 0)
	for _, g := range []struct {
		dst   **LoginGuard
		scope string
	}{{&ls.UserLogin, "user"}, {&ls.StaffLogin, "staff"}} {
		local, err := ratelimit.NewBackoff(ratelimit.BackoffConfig{Free: free, Base: base, Max: maxWait,
			Forget: max(slowForget, maxWait), MaxKeys: 100_000, Clock: clock, Rand: rand})
		if err != nil {
			return err
		}
		var slow ratelimit.Slowdown = local
		if sh != nil {
			if slow, err = ratelimit.NewSharedBackoff(ratelimit.SharedBackoffConfig{Kind: g.scope + "-login",
				Keeper: sh.Keeper, Secret: sh.Secret, Fallback: local, Logger: sh.Logger}); err != nil {
				return err
			}
		}
		*g.dst = NewLoginGuard(slow, g.scope, deviceKey, rand)
	}
	return nil
}

// Shared is where NewSharedLimiters keeps the budgets and slow-downs.
type Shared struct {
	// Spender keeps the budgets (sqlstore.Store.SpendBudget).
	Spender ratelimit.Spender
	// Keeper keeps the slow-downs of failed logins
	// (sqlstore.Store.AttemptSlowdown).
	Keeper ratelimit.SlowdownKeeper
	// Secret keys the hash of every limited key; every replica must use
	// the same (at least 32 bytes).
	Secret []byte
	// Logger reports the Spender or the Keeper failing and recovering.
	Logger *slog.Logger
	// DeviceKey signs the device tokens of the login slow-downs, as
	// NewLimiters' deviceKey.
	DeviceKey []byte
}

// NewSharedLimiters builds limiters for l whose budgets and per-account
// slow-downs of failed logins sh keeps, so that control replicas sharing
// it allow together what one would: a failed login through one replica
// slows the account down on every replica. While sh's Spender or Keeper
// fails, each falls back to an in-process limiter or slow-down of the
// same budget (see ratelimit.Shared and ratelimit.SharedBackoff).
func NewSharedLimiters(l Limits, sh Shared, clock func() time.Time, rand io.Reader) (*Limiters, error) {
	local, err := newLocal(l, clock, rand)
	if err != nil {
		return nil, err
	}
	var ls Limiters
	fields := ls.fields()
	for i, b := range l.budgets() {
		if *fields[i], err = ratelimit.NewShared(ratelimit.SharedConfig{Bucket: bucket(i), Rate: b.rate, Burst: b.burst,
			Spender: sh.Spender, Secret: sh.Secret, Fallback: local[i], Clock: clock, Logger: sh.Logger}); err != nil {
			return nil, err
		}
	}
	if err := ls.guards(l, sh.DeviceKey, &sh, clock, rand); err != nil {
		return nil, err
	}
	return &ls, nil
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

// LoginGuard slows failed logins of one kind (user or staff) down per
// account, keyed by the canonical email address (EmailKey's form, hashed
// by the Slowdown), whether or not an account has it: the answer never
// tells which addresses have accounts.
//
// A client that logged in to the account before holds a device token
// (returned by Attempt.Succeeded; an HMAC of the address, so only this
// server makes them) and has a budget of its own: a stranger failing on
// the account slows down strangers, not the owner's known devices (OWASP's
// device cookies). It is safe for concurrent use.
type LoginGuard struct {
	slow  ratelimit.Slowdown
	scope string
	key   []byte
	rand  io.Reader
}

// NewLoginGuard returns a LoginGuard of scope ("user", "staff") over
// slow, signing device tokens with key.
func NewLoginGuard(slow ratelimit.Slowdown, scope string, key []byte, rand io.Reader) *LoginGuard {
	if rand == nil {
		rand = crand.Reader
	}
	return &LoginGuard{slow: slow, scope: scope, key: key, rand: rand}
}

// LoginAttempt is one login attempt a LoginGuard admitted. Until Succeeded
// is called it counts as a failure.
type LoginAttempt struct {
	g      *LoginGuard
	budget string
	email  string
	device string // the valid device token presented, or ""
}

// Begin admits a login attempt for email from a client presenting device
// (a token from an earlier Succeeded, or ""). If the account, or the
// device's budget on it, must wait after earlier failures it returns a
// RateLimited error that says for how long (RetryAfterOf), without the
// password being checked.
func (g *LoginGuard) Begin(email, device string) (*LoginAttempt, error) {
	c := canonicalEmail(email)
	a := &LoginAttempt{g: g, email: c, budget: g.scope + ":acct:" + c}
	if nonce, ok := g.deviceNonce(c, device); ok {
		a.device = device
		a.budget = g.scope + ":device:" + c + ":" + nonce
	}
	if wait := g.slow.Attempt(a.budget); wait > 0 {
		return nil, tooSoon(wait)
	}
	return a, nil
}

// Succeeded records that the attempt's credentials were right, which
// forgets the failures counted on its budget, and returns the device token
// the client should present next time: the one it presented if valid, or
// a new one.
func (a *LoginAttempt) Succeeded() string {
	a.g.slow.Succeed(a.budget)
	if a.device != "" {
		return a.device
	}
	return a.g.NewDevice(a.email)
}

// NewDevice returns a new device token for email (canonical or not),
// for a client that proved itself another way (a password reset).
func (g *LoginGuard) NewDevice(email string) string {
	c := canonicalEmail(email)
	var nonce [12]byte
	if _, err := io.ReadFull(g.rand, nonce[:]); err != nil {
		return ""
	}
	return "nnd_" + base64.RawURLEncoding.EncodeToString(append(nonce[:], g.mac(c, nonce[:])...))
}

// deviceNonce returns the nonce of device if it is a token this guard made
// for email.
func (g *LoginGuard) deviceNonce(email, device string) (string, bool) {
	raw, ok := strings.CutPrefix(device, "nnd_")
	if !ok || len(raw) > 64 {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) != 24 {
		return "", false
	}
	if !hmac.Equal(b[12:], g.mac(email, b[:12])) {
		return "", false
	}
	return base64.RawURLEncoding.EncodeToString(b[:12]), true
}

func (g *LoginGuard) mac(email string, nonce []byte) []byte {
	m := hmac.New(sha256.New, g.key)
	io.WriteString(m, "login device|"+g.scope+"|"+email+"|")
	m.Write(nonce)
	return m.Sum(nil)[:12]
}

// retryAfter is the cause of a RateLimited error that knows when the
// client may try again.
type retryAfter time.Duration

func (r retryAfter) Error() string { return "retry after " + time.Duration(r).String() }

// tooSoon returns the RateLimited error of an account that must wait d.
func tooSoon(d time.Duration) error {
	return errs.Wrap(errs.RateLimited, retryAfter(d),
		fmt.Sprintf("too many failed logins on this account; try again in %s", humanWait(d)))
}

// humanWait says d in whole seconds or minutes, rounded up.
func humanWait(d time.Duration) string {
	s := int(math.Ceil(d.Seconds()))
	switch {
	case s <= 1:
		return "1 second"
	case s < 120:
		return fmt.Sprintf("%d seconds", s)
	}
	return fmt.Sprintf("%d minutes", int(math.Ceil(float64(s)/60)))
}

// RetryAfterOf returns how long the client must wait before retrying, if
// err says (a login slowed down by a LoginGuard), and 0 otherwise.
func RetryAfterOf(err error) time.Duration {
	var r retryAfter
	if errors.As(err, &r) {
		return time.Duration(r)
	}
	return 0
}
