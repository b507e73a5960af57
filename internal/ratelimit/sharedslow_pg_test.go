package ratelimit_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/ratelimit"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// clock is a settable clock shared by the test's replicas.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// The production schedule (httpedge.DefaultLimits): 5 free failures, then
// 1 s doubling to 15 minutes, forgotten after a day.
func backoffConfig(c *clock) ratelimit.BackoffConfig {
	return ratelimit.BackoffConfig{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour, MaxKeys: 100, Clock: c.Now}
}

// TestSharedBackoffPostgres runs two SharedBackoffs on two stores of one
// PostgreSQL database, as two control replicas would: a failure through
// one delays an attempt through the other (where two in-process Backoffs,
// as each replica kept before, let it through); a stranger alternating
// between them gets no more guesses a day than through one; the database
// holds only keyed hashes; expiry deletes forgotten counts; and while the
// database does not answer in time, each replica falls back to its own
// Backoff, then goes back to the shared counts.
func TestSharedBackoffPostgres(t *testing.T) {
	url := storetest.PostgresURL(t)
	db := storetest.PostgresDB(t, url)
	stores := []*sqlstore.Store{storetest.OpenPostgresAt(t, url, storetest.DefaultPool()), storetest.OpenPostgresAt(t, url, storetest.DefaultPool())}
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	secret := bytes.Repeat([]byte{9}, 32)
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	var replicas, local [2]ratelimit.Slowdown
	for i, s := range stores {
		fb, err := ratelimit.NewBackoff(backoffConfig(c))
		if err != nil {
			t.Fatal(err)
		}
		if replicas[i], err = ratelimit.NewSharedBackoff(ratelimit.SharedBackoffConfig{Kind: "user-login", Keeper: s,
			Secret: secret, Fallback: fb, Timeout: 300 * time.Millisecond, Logger: log}); err != nil {
			t.Fatal(err)
		}
		if local[i], err = ratelimit.NewBackoff(backoffConfig(c)); err != nil {
			t.Fatal(err)
		}
	}
	a, b := replicas[0], replicas[1]

	// Five free failures and a sixth, spread over both replicas, in both
	// arrangements; then only the shared one slows the other replica.
	const alice = "user:acct:alice@example.com"
	for i := range 6 {
		if w := replicas[i%2].Attempt(alice); w != 0 {
			t.Fatalf("shared: attempt %d waits %v", i+1, w)
		}
		local[i%2].Attempt(alice)
	}
	if w := b.Attempt(alice); w != time.Second {
		t.Errorf("shared: replica B waits %v after six failures spread over A and B, want 1s", w)
	}
	if w := a.Attempt(alice); w != time.Second {
		t.Errorf("shared: replica A waits %v, want 1s", w)
	}
	if w := local[1].Attempt(alice); w != 0 {
		t.Errorf("in process: replica B waits %v after three failures of its own, want 0 (the gap sharing closes)", w)
	}
	// Success on B clears the count on A.
	b.Succeed(alice)
	if w := a.Attempt(alice); w != 0 {
		t.Errorf("after success on B, A waits %v", w)
	}

	// A stranger guessing for a day as fast as allowed, alternating
	// between the replicas, gets the guesses one replica allows: 5 free,
	// 10 doublings (1 s … 512 s), then one per 15 minutes.
	const victim = "user:acct:victim@example.com"
	counted := 0
	for end, i := c.Now().Add(24*time.Hour), 0; c.Now().Before(end); i++ {
		w := replicas[i%2].Attempt(victim)
		if w > 15*time.Minute {
			t.Fatalf("wait %v over the cap", w)
		}
		if w == 0 {
			counted++
			continue
		}
		c.Advance(w)
	}
	if want := 5 + 10 + 24*4 + 1; counted > want {
		t.Errorf("a day of guessing over two replicas got %d attempts through, want at most %d", counted, want)
	}

	// The table holds the keys' HMACs under the shared secret, and
	// nothing else about them.
	rows, err := db.QueryContext(t.Context(), `SELECT kind, digest FROM login_slowdowns`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{string(mac(secret, alice)): true, string(mac(secret, victim)): true}
	n := 0
	for rows.Next() {
		var kind string
		var digest []byte
		if err := rows.Scan(&kind, &digest); err != nil {
			t.Fatal(err)
		}
		n++
		if kind != "user-login" || !want[string(digest)] || bytes.Contains(digest, []byte("example")) {
			t.Errorf("row (%s, %x) is not a key's HMAC", kind, digest)
		}
	}
	if err := rows.Err(); err != nil || n != 2 {
		t.Fatalf("%d rows, %v; want 2", n, err)
	}

	// A day after the last counted failure, both counts are forgotten
	// and the expiry deletes them.
	c.Advance(24 * time.Hour)
	if n, err := stores[0].ExpireSlowdowns(t.Context(), c.Now()); err != nil || n != 2 {
		t.Errorf("ExpireSlowdowns a day later: %d, %v; want 2, nil", n, err)
	}

	// The database stops answering (a lock held on the table): each
	// replica decides on its own, within the timeout.
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), `LOCK TABLE login_slowdowns IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	const bob = "user:acct:bob@example.com"
	for i := range 6 {
		start := time.Now()
		if w := a.Attempt(bob); w != 0 {
			t.Fatalf("fallback: attempt %d waits %v", i+1, w)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("an attempt took %v while the database did not answer", d)
		}
	}
	if w := a.Attempt(bob); w != time.Second {
		t.Errorf("fallback on A: waits %v after six failures, want 1s", w)
	}
	if w := b.Attempt(bob); w != 0 {
		t.Errorf("fallback on B: waits %v, want 0 (each replica counts on its own)", w)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Back to the shared counts, which saw none of that.
	for i, r := range replicas {
		if w := r.Attempt(bob); w != 0 {
			t.Errorf("shared again: attempt %d waits %v", i+1, w)
		}
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if strings.Count(out, "shared login slow-downs unavailable") != 2 || strings.Count(out, "available again") != 2 {
		t.Errorf("want one warning and one recovery from each replica in the log, got:\n%s", out)
	}
	if strings.Contains(out, "example.com") {
		t.Errorf("the log names a key:\n%s", out)
	}
}

func mac(secret []byte, key string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	return m.Sum(nil)
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
