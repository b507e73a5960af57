package ratelimit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"log/slog"
	"sync/atomic"
	"time"
)

// remote is what Shared and SharedBackoff have in common with the database
// that holds their state: the keyed hash that is all it sees of a key, the
// bound on each call, and one log line when it starts failing and one when
// it answers again (never the key).
type remote struct {
	secret  []byte
	timeout time.Duration // 0: one second
	log     *slog.Logger
	what    string    // names the state in log lines: "shared rate limits"
	local   string    // what happens while it fails: "limiting in this process"
	attr    slog.Attr // which one: the bucket or the kind
	failing atomic.Bool
}

// digest returns the HMAC-SHA256 of key under the shared secret.
func (r *remote) digest(key string) []byte {
	m := hmac.New(sha256.New, r.secret)
	io.WriteString(m, key)
	return m.Sum(nil)
}

// call returns a context for one call to the database.
func (r *remote) call() (context.Context, context.CancelFunc) {
	t := r.timeout
	if t <= 0 {
		t = time.Second
	}
	return context.WithTimeout(context.Background(), t)
}

// report logs the database starting or ceasing to fail, and reports
// whether err is a failure.
func (r *remote) report(err error) bool {
	if err != nil {
		if !r.failing.Swap(true) {
			r.log.Warn(r.what+" unavailable; "+r.local, r.attr, "err", err)
		}
		return true
	}
	if r.failing.Swap(false) {
		r.log.Info(r.what+" available again", r.attr)
	}
	return false
}
