package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// replicaDB opens n stores on one fresh PostgreSQL database, as n control
// replicas would, and a plain connection to it.
func replicaDB(t *testing.T, n int) ([]*sqlstore.Store, *sql.DB) {
	t.Helper()
	url := storetest.PostgresURL(t)
	db := storetest.PostgresDB(t, url)
	var out []*sqlstore.Store
	for range n {
		out = append(out, storetest.OpenPostgresAt(t, url, storetest.DefaultPool()))
	}
	return out, db
}

// terminate ends, as a crash or a network failure would, the sessions on
// db's database named app, and returns how many it ended.
func terminate(t *testing.T, db *sql.DB, app string) int {
	t.Helper()
	var n int
	err := db.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, app).Scan(&n)
	if err != nil {
		t.Fatalf("terminate %s: %v", app, err)
	}
	return n
}

// receive waits up to ten seconds for a value on c.
func receive[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

// TestListenPeerFeed checks that a change committed through one store
// wakes a listener on another, that a rolled-back change does not, and
// that the listener reconnects (and wakes, for what it may have missed)
// after its connection is killed.
func TestListenPeerFeed(t *testing.T) {
	ss, db := replicaDB(t, 2)
	a, b := ss[0], ss[1]
	ctx, cancel := context.WithCancel(t.Context())
	wakes, ready := make(chan struct{}, 100), make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		done <- a.ListenPeerFeed(ctx, func() { wakes <- struct{}{} }, func() { ready <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ListenPeerFeed: %v", err)
		}
	})
	drain := func() {
		for len(wakes) > 0 {
			<-wakes
		}
	}
	receive(t, ready, "LISTEN")
	receive(t, wakes, "the wake after LISTEN")

	// A rolled-back change sends nothing; the committed one after it
	// wakes the listener once.
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE peer_feed SET version = version + 1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	mkAccount(t, b, "acct")
	d := &store.Device{ID: "dev", AccountID: "acct", PublicKey: storetest.PublicKey(1)}
	if err := b.CreateDevice(t.Context(), d, 5); err != nil {
		t.Fatal(err)
	}
	receive(t, wakes, "the wake for a device created through another store")
	if n := len(wakes); n != 0 {
		t.Errorf("%d more wakes after one committed change and one rolled back, want 0", n)
	}

	if n := terminate(t, db, "nitronet peer feed listener"); n != 1 {
		t.Fatalf("terminated %d listener sessions, want 1", n)
	}
	receive(t, ready, "LISTEN again after the connection was killed")
	drain()
	if err := b.DeleteDevice(t.Context(), "acct", "dev"); err != nil {
		t.Fatal(err)
	}
	receive(t, wakes, "the wake for a device deleted after reconnecting")
}

// terminateLeader ends the session holding an advisory lock on db's
// database, as a crash or a network failure would.
func terminateLeader(t *testing.T, db *sql.DB) {
	t.Helper()
	var n int
	err := db.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminated %d sessions holding the lock, %v; want 1", n, err)
	}
}

// TestLead checks that of three candidates exactly one leads at any time
// (but for the moment after a leader was cut off), that the lock passes on when the leader's session is killed (as when its
// process crashes or its network fails) and when the leader stops.
func TestLead(t *testing.T) {
	ss, db := replicaDB(t, 3)
	const lock = 0x6e69747230
	type event struct {
		who     int
		leading bool
	}
	events := make(chan event, 100)
	var standby sync.Map // who -> true once it found the lock held
	stops := make([]context.CancelFunc, len(ss))
	dones := make([]chan error, len(ss))
	for i, s := range ss {
		ctx, stop := context.WithCancel(t.Context())
		stops[i], dones[i] = stop, make(chan error, 1)
		go func() {
			dones[i] <- s.Lead(ctx, sqlstore.LeadConfig{Lock: lock, Retry: 50 * time.Millisecond, Check: 50 * time.Millisecond,
				Run: func(ctx context.Context) {
					events <- event{i, true}
					<-ctx.Done()
					events <- event{i, false}
				},
				Standby: func() { standby.Store(i, true) },
			})
		}()
	}
	stopped := make([]bool, len(ss))
	stop := func(i int) {
		if stopped[i] {
			return
		}
		stopped[i] = true
		stops[i]()
		if err := <-dones[i]; err != nil {
			t.Errorf("Lead %d: %v", i, err)
		}
	}
	t.Cleanup(func() {
		for i := range ss {
			stop(i)
		}
	})
	// next returns the next leader, checking that no two lead at once.
	leader := -1
	next := func(what string) int {
		t.Helper()
		for {
			e := receive(t, events, what)
			switch {
			case e.leading && leader >= 0:
				t.Fatalf("%d leads while %d does", e.who, leader)
			case e.leading:
				leader = e.who
				return e.who
			case e.who != leader:
				t.Fatalf("%d stops leading, but %d leads", e.who, leader)
			default:
				leader = -1
			}
		}
	}
	first := next("a leader")
	// Every other candidate has tried and found the lock held.
	deadline := time.Now().Add(10 * time.Second)
	for i := range ss {
		for _, ok := standby.Load(i); !ok && i != first; _, ok = standby.Load(i) {
			if time.Now().After(deadline) {
				t.Fatalf("candidate %d never tried the lock", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(events) != 0 {
		t.Fatalf("another event while %d leads: %+v", first, <-events)
	}
	// A killed leader learns of it only at its next check, when a new
	// leader may already run (see Lead): here the two events may come in
	// either order, but both must come.
	terminateLeader(t, db)
	second, gone := -1, false
	for second < 0 || !gone {
		e := receive(t, events, "a new leader, and the killed one stopping")
		switch {
		case e.leading && second < 0:
			second = e.who
		case !e.leading && e.who == first && !gone:
			gone = true
		default:
			t.Fatalf("unexpected %+v after the leader's session was killed", e)
		}
	}
	leader = second
	stop(second)
	if third := next("a leader after the leader stopped"); third == second {
		t.Fatalf("stopped candidate %d leads again", second)
	}
}

// TestSpendBudget checks the shared budgets: burst events at once across
// stores, one more per interval, separate buckets and keys, expiry of full
// budgets, and that SQLite has none.
func TestSpendBudget(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		s := storetest.SQLite(t, storetest.DefaultPool())
		if s.Replicated() {
			t.Error("SQLite store says it is replicated")
		}
		_, err := s.SpendBudget(t.Context(), "login", []byte("k"), time.Now(), time.Second, 1)
		if !errs.Is(err, errs.Precondition) {
			t.Errorf("SpendBudget on SQLite: got %v, want Precondition", err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		ss, db := replicaDB(t, 3)
		ctx := t.Context()
		now := time.Unix(1_800_000_000, 0)
		key := sha256.Sum256([]byte("addr:192.0.2.1"))
		spend := func(s *sqlstore.Store, bucket string, key []byte, at time.Time) bool {
			t.Helper()
			ok, err := s.SpendBudget(ctx, bucket, key, at, time.Minute, 3)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		allowed := 0
		for i := range 9 {
			if spend(ss[i%3], "login", key[:], now) {
				allowed++
			}
		}
		if allowed != 3 {
			t.Errorf("%d of 9 events allowed across three stores with a burst of 3, want 3", allowed)
		}
		other := sha256.Sum256([]byte("addr:192.0.2.2"))
		if !spend(ss[0], "login", other[:], now) || !spend(ss[0], "signup", key[:], now) {
			t.Error("another key or bucket shares the spent budget")
		}
		// Half an interval later nothing more; a full interval later one.
		if spend(ss[1], "login", key[:], now.Add(30*time.Second)) {
			t.Error("allowed before an interval passed")
		}
		if !spend(ss[1], "login", key[:], now.Add(time.Minute)) || spend(ss[2], "login", key[:], now.Add(time.Minute)) {
			t.Error("want exactly one event an interval later")
		}
		// Nothing is expired until the budget is full again.
		if n, err := ss[0].ExpireBudgets(ctx, now.Add(time.Minute)); err != nil || n != 2 {
			// other and signup were spent once at now: full at now+1m.
			t.Errorf("ExpireBudgets at +1m: %d, %v; want 2, nil", n, err)
		}
		if n, err := ss[0].ExpireBudgets(ctx, now.Add(3*time.Minute)); err != nil || n != 0 {
			t.Errorf("ExpireBudgets at +3m: %d, %v; want 0, nil", n, err)
		}
		if n, err := ss[0].ExpireBudgets(ctx, now.Add(4*time.Minute)); err != nil || n != 1 {
			t.Errorf("ExpireBudgets at +4m: %d, %v; want 1, nil", n, err)
		}
		var rows int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM rate_budgets`).Scan(&rows); err != nil || rows != 0 {
			t.Errorf("%d rows left, %v; want 0", rows, err)
		}
		if _, err := ss[0].SpendBudget(ctx, "login", key[:], now, 0, 3); !errs.Is(err, errs.Invalid) {
			t.Errorf("zero interval: got %v, want Invalid", err)
		}
	})
}

// TestAttemptSlowdown checks the shared slow-downs: a failure counted
// through one store delays an attempt through another, refused attempts
// count nothing, concurrent attempts across stores are counted one at a
// time, success and the forget period start afresh, expiry deletes only
// forgotten counts, and SQLite has none.
func TestAttemptSlowdown(t *testing.T) {
	// Two free failures, then 1 s, 2 s and 4 s at most; forgotten after
	// an hour.
	delays := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second}
	const forget = time.Hour
	t.Run("sqlite", func(t *testing.T) {
		s := storetest.SQLite(t, storetest.DefaultPool())
		if _, err := s.AttemptSlowdown(t.Context(), "user-login", []byte("k"), time.Now(), delays, forget); !errs.Is(err, errs.Precondition) {
			t.Errorf("AttemptSlowdown on SQLite: got %v, want Precondition", err)
		}
		if err := s.ForgetSlowdown(t.Context(), "user-login", []byte("k")); !errs.Is(err, errs.Precondition) {
			t.Errorf("ForgetSlowdown on SQLite: got %v, want Precondition", err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		ss, db := replicaDB(t, 2)
		a, b := ss[0], ss[1]
		ctx := t.Context()
		now := time.Unix(1_800_000_000, 0)
		key := sha256.Sum256([]byte("user:acct:alice@example.com"))
		attempt := func(s *sqlstore.Store, kind string, key []byte, at time.Time) time.Duration {
			t.Helper()
			w, err := s.AttemptSlowdown(ctx, kind, key, at, delays, forget)
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		// Failures alternate between the replicas: two free, the third
		// counted and followed by 1 s, which both see.
		for i, s := range []*sqlstore.Store{a, b, a} {
			if w := attempt(s, "user-login", key[:], now); w != 0 {
				t.Fatalf("attempt %d: wait %v, want 0", i+1, w)
			}
		}
		for i := range 10 {
			if w := attempt([]*sqlstore.Store{a, b}[i%2], "user-login", key[:], now.Add(400*time.Millisecond)); w != 600*time.Millisecond {
				t.Fatalf("attempt during the wait: wait %v, want 600ms on both replicas", w)
			}
		}
		// Refused attempts were not counted: the next wait is 2 s.
		if w := attempt(b, "user-login", key[:], now.Add(time.Second)); w != 0 {
			t.Fatalf("after the wait: %v, want 0", w)
		}
		if w := attempt(a, "user-login", key[:], now.Add(time.Second)); w != 2*time.Second {
			t.Fatalf("the next wait: %v, want 2s", w)
		}
		// Another kind and another key are apart.
		other := sha256.Sum256([]byte("user:acct:bob@example.com"))
		if attempt(a, "staff-login", key[:], now.Add(time.Second)) != 0 || attempt(b, "user-login", other[:], now.Add(time.Second)) != 0 {
			t.Error("another kind or key shares the slow-down")
		}
		// The cap: the schedule's last delay applies to every further
		// failure.
		at := now.Add(3 * time.Second)
		for range 5 {
			if w := attempt(a, "user-login", key[:], at); w != 0 {
				t.Fatalf("after the wait: %v", w)
			}
			at = at.Add(attempt(b, "user-login", key[:], at))
		}
		if w := attempt(b, "user-login", key[:], at.Add(-time.Millisecond)); w != time.Millisecond {
			t.Errorf("capped wait: %v left a millisecond before it ends, want 1ms", w)
		}
		// Success through one replica clears the count for both.
		if err := b.ForgetSlowdown(ctx, "user-login", key[:]); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if w := attempt([]*sqlstore.Store{a, b}[i%2], "user-login", key[:], at); w != 0 {
				t.Fatalf("free attempt %d after success: wait %v", i+1, w)
			}
		}
		// The count is forgotten an hour after the last counted attempt:
		// the row is then expired, and an attempt counts from 1 again.
		if w := attempt(a, "user-login", key[:], at.Add(forget)); w != 0 {
			t.Fatalf("after the forget period: %v", w)
		}
		if w := attempt(a, "user-login", key[:], at.Add(forget)); w != 0 {
			t.Fatalf("second failure after the forget period: %v, want free", w)
		}
		// Rows: key (last counted at+1h), staff-login/key and other (at
		// now+1s). Expiry at now+1s+1h deletes the latter two only.
		if n, err := a.ExpireSlowdowns(ctx, now.Add(time.Second+forget-time.Millisecond)); err != nil || n != 0 {
			t.Errorf("ExpireSlowdowns before any is forgotten: %d, %v; want 0, nil", n, err)
		}
		if n, err := a.ExpireSlowdowns(ctx, now.Add(time.Second+forget)); err != nil || n != 2 {
			t.Errorf("ExpireSlowdowns: %d, %v; want 2, nil", n, err)
		}
		var rows int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM login_slowdowns`).Scan(&rows); err != nil || rows != 1 {
			t.Errorf("%d rows left, %v; want 1", rows, err)
		}
		if _, err := a.AttemptSlowdown(ctx, "user-login", key[:], now, nil, forget); !errs.Is(err, errs.Invalid) {
			t.Errorf("no delays: got %v, want Invalid", err)
		}
		if _, err := a.AttemptSlowdown(ctx, "user-login", key[:], now, delays, time.Second); !errs.Is(err, errs.Invalid) {
			t.Errorf("forget shorter than the cap: got %v, want Invalid", err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		ss, _ := replicaDB(t, 2)
		now := time.Unix(1_800_000_000, 0)
		key := sha256.Sum256([]byte("user:acct:carol@example.com"))
		// Attempts from both replicas at the same moment: exactly the two
		// free ones and the first delayed one go ahead.
		var wg sync.WaitGroup
		var mu sync.Mutex
		allowed := 0
		for i := range 20 {
			wg.Go(func() {
				w, err := ss[i%2].AttemptSlowdown(t.Context(), "user-login", key[:], now, delays, forget)
				if err != nil {
					t.Error(err)
					return
				}
				if w == 0 {
					mu.Lock()
					allowed++
					mu.Unlock()
				} else if w != time.Second {
					t.Errorf("refused with wait %v, want 1s", w)
				}
			})
		}
		wg.Wait()
		if allowed != 3 {
			t.Errorf("%d of 20 concurrent attempts went ahead, want 3", allowed)
		}
	})
}
