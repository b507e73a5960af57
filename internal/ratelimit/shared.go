package ratelimit

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// Budget is a keyed rate limit: Allow reports whether one event for key
// may happen now, and if so spends it. *Limiter keeps its budgets in
// process; *Shared keeps them where every control replica sees them.
type Budget interface {
	Allow(key string) bool
}

var (
	_ Budget = (*Limiter)(nil)
	_ Budget = (*Shared)(nil)
)

// Spender keeps budgets that several processes share, by bucket and key
// digest (sqlstore.Store.SpendBudget on PostgreSQL). SpendBudget spends
// one event of digest's budget under bucket at now, if one is left, and
// reports whether it did; the budget allows burst events at once and one
// more every interval.
type Spender interface {
	SpendBudget(ctx context.Context, bucket string, digest []byte, now time.Time, interval time.Duration, burst int) (bool, error)
}

// Shared is a Budget kept by a Spender, so that every process sharing the
// Spender spends from one budget per key: N control replicas allow a
// client what one would, not N times as much.
//
// Keys are hashed with HMAC-SHA256 under a secret every replica shares
// (the server derives it from the keyring), so the Spender, and
// the database behind it, hold only digests that cannot be linked to an
// address or email without that secret.
//
// Allow takes no context: it bounds each call to the Spender by a timeout.
// If the Spender fails or times out, Allow falls back to an in-process
// Limiter of the same budget, so that a database outage limits each
// replica on its own rather than letting everything through or nothing;
// it logs, without the key, when that starts and when it ends.
//
// A Shared is safe for concurrent use.
type Shared struct {
	bucket   string
	interval time.Duration
	burst    int
	inf      bool
	spender  Spender
	fallback *Limiter
	clock    func() time.Time
	remote
}

// SharedConfig is a Shared budget's configuration and dependencies.
type SharedConfig struct {
	// Bucket names the budget among the Spender's (for example "login").
	Bucket string
	// Rate and Burst are as in Config; a Rate of 0 is treated as one
	// event per about 35,000 years.
	Rate  rate.Limit
	Burst int
	// Spender keeps the budgets (required).
	Spender Spender
	// Secret is the HMAC key, the same in every process that shares the
	// budgets: at least 32 bytes (required).
	Secret []byte
	// Fallback is the in-process Limiter used while the Spender fails
	// (required); give it the same Rate and Burst.
	Fallback *Limiter
	// Timeout bounds one call to the Spender; 0 means one second.
	Timeout time.Duration
	// Clock supplies the current time; if nil, time.Now is used.
	Clock func() time.Time
	// Logger reports the Spender failing and recovering (required).
	Logger *slog.Logger
}

// NewShared returns a Shared budget for cfg, or an error if cfg is
// invalid.
func NewShared(cfg SharedConfig) (*Shared, error) {
	switch {
	case cfg.Spender == nil || cfg.Fallback == nil || cfg.Logger == nil:
		return nil, errors.New("ratelimit: missing dependency")
	case len(cfg.Secret) < sha256.Size:
		return nil, errors.New("ratelimit: the shared secret must be at least 32 bytes")
	case cfg.Rate < 0 || math.IsNaN(float64(cfg.Rate)):
		return nil, errors.New("ratelimit: rate must not be negative")
	case cfg.Burst < 1 && cfg.Rate != rate.Inf:
		return nil, errors.New("ratelimit: burst must be at least 1")
	}
	s := &Shared{bucket: cfg.Bucket, burst: cfg.Burst, inf: cfg.Rate == rate.Inf, spender: cfg.Spender,
		fallback: cfg.Fallback, clock: cfg.Clock,
		remote: remote{secret: append([]byte(nil), cfg.Secret...), timeout: cfg.Timeout, log: cfg.Logger,
			what: "shared rate limits", local: "limiting in this process", attr: slog.String("bucket", cfg.Bucket)}}
	if s.clock == nil {
		s.clock = time.Now
	}
	s.interval = interval(cfg.Rate)
	return s, nil
}

// interval returns the time one event's share of a budget takes to refill
// at r, rounded up to a millisecond, or a very long time if r is 0.
func interval(r rate.Limit) time.Duration {
	const never = time.Duration(math.MaxInt64)
	if r == 0 || r == rate.Inf {
		return never
	}
	secs := 1 / float64(r)
	if secs >= float64(never/time.Second) {
		return never
	}
	return time.Duration(math.Ceil(secs*1000)) * time.Millisecond
}

// Allow reports whether one event for key may happen now, and if so
// spends it from the shared budget (or, while the Spender fails, from the
// fallback Limiter).
func (s *Shared) Allow(key string) bool {
	if s.inf {
		return true
	}
	ctx, cancel := s.call()
	defer cancel()
	ok, err := s.spender.SpendBudget(ctx, s.bucket, s.digest(key), s.clock(), s.interval, s.burst)
	if s.report(err) {
		return s.fallback.Allow(key)
	}
	return ok
}
