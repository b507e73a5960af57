package ratelimit

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"time"
)

// SlowdownKeeper keeps slow-downs that several processes share, by kind
// and key digest (sqlstore.Store on PostgreSQL). AttemptSlowdown reserves
// an attempt as Slowdown.Attempt does, on the schedule delays (delays[n-1]
// is the wait after the n-th failure in a row, the last one applying to
// every further failure), forgetting a count forget after its last
// counted attempt; ForgetSlowdown forgets a key's failures.
type SlowdownKeeper interface {
	AttemptSlowdown(ctx context.Context, kind string, digest []byte, now time.Time, delays []time.Duration, forget time.Duration) (time.Duration, error)
	ForgetSlowdown(ctx context.Context, kind string, digest []byte) error
}

var _ Slowdown = (*SharedBackoff)(nil)

// SharedBackoff is a Slowdown kept by a SlowdownKeeper, so that every
// process sharing the keeper counts one key's failures together: N
// control replicas slow a guesser down as one would, not N times less. Its
// schedule (Free, Base, Max, Forget) and clock are those of its fallback
// Backoff, so that the contract is the same: exponential delays up to
// Max, attempts during a wait refused without being counted, success
// forgets the failures.
//
// Keys are hashed with HMAC-SHA256 under a secret every replica shares
// (derived from the keyring), so the keeper, and the database behind it,
// hold only digests that cannot be linked to an email address without
// that secret.
//
// Each call to the keeper is bounded by a timeout. If the keeper fails or
// times out, the attempt is decided by the fallback Backoff in process
// instead, so that a database outage slows each replica down on its own
// rather than letting every attempt through or none; it logs, without the
// key, when that starts and when it ends. Succeed forgets the key in both.
//
// A SharedBackoff is safe for concurrent use.
type SharedBackoff struct {
	kind     string
	keeper   SlowdownKeeper
	fallback *Backoff
	delays   []time.Duration
	remote
}

// SharedBackoffConfig is a SharedBackoff's configuration and
// dependencies.
type SharedBackoffConfig struct {
	// Kind names the slow-down among the keeper's (for example
	// "user-login").
	Kind string
	// Keeper keeps the counts (required).
	Keeper SlowdownKeeper
	// Secret is the HMAC key, the same in every process that shares the
	// slow-downs: at least 32 bytes (required).
	Secret []byte
	// Fallback decides attempts while the keeper fails, and gives the
	// schedule and the clock (required).
	Fallback *Backoff
	// Timeout bounds one call to the keeper; 0 means one second.
	Timeout time.Duration
	// Logger reports the keeper failing and recovering (required).
	Logger *slog.Logger
}

// maxSharedSteps bounds a shared schedule's length (the keeper's limit).
const maxSharedSteps = 10_000

// NewSharedBackoff returns a SharedBackoff for cfg, or an error if cfg is
// invalid.
func NewSharedBackoff(cfg SharedBackoffConfig) (*SharedBackoff, error) {
	switch {
	case cfg.Keeper == nil || cfg.Fallback == nil || cfg.Logger == nil:
		return nil, errors.New("ratelimit: missing dependency")
	case len(cfg.Secret) < sha256.Size:
		return nil, errors.New("ratelimit: the shared secret must be at least 32 bytes")
	case cfg.Fallback.cfg.Free >= maxSharedSteps-64:
		return nil, errors.New("ratelimit: too many free failures to share")
	}
	return &SharedBackoff{kind: cfg.Kind, keeper: cfg.Keeper, fallback: cfg.Fallback, delays: cfg.Fallback.schedule(),
		remote: remote{secret: append([]byte(nil), cfg.Secret...), timeout: cfg.Timeout, log: cfg.Logger,
			what: "shared login slow-downs", local: "slowing down in this process", attr: slog.String("kind", cfg.Kind)}}, nil
}

// schedule returns b's delays after the 1st, 2nd, … failure in a row, up
// to the first at Max, which applies to every further failure.
func (b *Backoff) schedule() []time.Duration {
	var out []time.Duration
	for n := 1; ; n++ {
		d := b.Delay(n)
		out = append(out, d)
		if n > b.cfg.Free && d >= b.cfg.Max {
			return out
		}
	}
}

// Attempt implements Slowdown, on the shared counts (or, while the keeper
// fails, on the fallback's).
func (s *SharedBackoff) Attempt(key string) time.Duration {
	ctx, cancel := s.call()
	defer cancel()
	wait, err := s.keeper.AttemptSlowdown(ctx, s.kind, s.digest(key), s.fallback.cfg.Clock(), s.delays, s.fallback.cfg.Forget)
	if s.report(err) {
		return s.fallback.Attempt(key)
	}
	return wait
}

// Succeed implements Slowdown: it forgets key's failures in the shared
// counts and in the fallback's.
func (s *SharedBackoff) Succeed(key string) {
	s.fallback.Succeed(key)
	ctx, cancel := s.call()
	defer cancel()
	s.report(s.keeper.ForgetSlowdown(ctx, s.kind, s.digest(key)))
}
