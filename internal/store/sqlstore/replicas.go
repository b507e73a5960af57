package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nitronet/nitronet/internal/errs"
)

// What control replicas sharing one PostgreSQL database use to stay in
// step: notifications of peer-feed changes (ListenPeerFeed), a leader
// for the housekeeping (Lead), shared rate-limit budgets (SpendBudget)
// and shared slow-downs of failed logins (AttemptSlowdown). Each of the
// first two holds a dedicated connection of its own, outside the store's
// pool, since a session-level LISTEN or advisory lock belongs to one
// connection.

// PeerFeedChannel is the PostgreSQL notification channel on which every
// change of the peer feed is announced, in the changing transaction (a
// trigger on peer_feed, migration 00021); the payload is the feed's new
// version.
const PeerFeedChannel = "nitronet_peer_feed"

// Replicated reports whether several control replicas may share the
// store's database: true on PostgreSQL, false on SQLite. Only a
// replicated store supports ListenPeerFeed, Lead, SpendBudget and
// AttemptSlowdown.
func (s *Store) Replicated() bool { return s.pgcfg != nil }

// Backoff bounds of a dedicated connection that failed or was lost.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// connectDedicated opens a connection of its own to the store's database,
// named app (application_name, as pg_stat_activity shows it). The server
// probes the connection every 10 s once idle for 10 s, so that a replica
// whose host vanished without closing its connections loses its LISTEN and
// its locks within about 40 s.
func (s *Store) connectDedicated(ctx context.Context, app string) (*pgx.Conn, error) {
	cfg := s.pgcfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = app
	cfg.RuntimeParams["tcp_keepalives_idle"] = "10"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "10"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", app, err)
	}
	return c, nil
}

// backoff waits d, or less if ctx ends first, and returns the next delay
// and whether ctx is still live.
func backoff(ctx context.Context, d time.Duration) (time.Duration, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return d, false
	case <-t.C:
	}
	return min(2*d, maxBackoff), true
}

// closeConn closes c, giving it a second to say goodbye.
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx)
}

// listenProbe is how long ListenPeerFeed waits for a notification before
// it checks that its connection is still alive.
const listenProbe = 15 * time.Second

// ListenPeerFeed calls wake whenever a transaction that changed the peer
// feed commits, through any replica or `nitronet admin` command, until ctx
// ends; then it returns nil. It LISTENs on PeerFeedChannel on a dedicated
// connection and reconnects with a growing delay (100 ms to 10 s) when the
// connection fails. wake is also called each time LISTEN takes effect,
// since changes may have been missed while there was none, and must not
// block. ready, if not nil, is called after each LISTEN takes effect (and
// before that call of wake). On SQLite it returns Precondition at once.
//
// wake is called once per notification: transactions that commit in a
// quick succession may wake pollers several times, which costs a store
// read each and is harmless.
func (s *Store) ListenPeerFeed(ctx context.Context, wake, ready func()) error {
	if !s.Replicated() {
		return errs.E(errs.Precondition, "peer feed notifications need PostgreSQL")
	}
	delay := minBackoff
	for {
		err := s.listenOnce(ctx, wake, ready, func() { delay = minBackoff })
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("peer feed notifications interrupted; reconnecting", "err", err, "in", delay)
		var ok bool
		if delay, ok = backoff(ctx, delay); !ok {
			return nil
		}
	}
}

// listenOnce runs one connection of ListenPeerFeed until it fails or ctx
// ends; listening says LISTEN took effect.
func (s *Store) listenOnce(ctx context.Context, wake, ready, listening func()) error {
	c, err := s.connectDedicated(ctx, "nitronet peer feed listener")
	if err != nil {
		return err
	}
	defer closeConn(c)
	if _, err := c.Exec(ctx, "LISTEN "+PeerFeedChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	listening()
	if ready != nil {
		ready()
	}
	wake()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenProbe)
		n, err := c.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil && n != nil:
			wake()
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !c.IsClosed():
			// Quiet for a while: check that the server is still there.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = c.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("probe: %w", err)
			}
		default:
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// LeadConfig configures Lead.
type LeadConfig struct {
	// Lock is the key of the session-level advisory lock whose holder
	// leads.
	Lock int64
	// Run is called when this process takes the lock, with a context
	// that ends when it loses the lock (its connection failed) or Lead's
	// context ends; Lead releases the lock only after Run returned.
	Run func(ctx context.Context)
	// Standby, if not nil, is called after each attempt to take the lock
	// that found it held by another session.
	Standby func()
	// Retry is how often a standby tries to take the lock; 0 means 2 s.
	Retry time.Duration
	// Check is how often the leader checks that its connection, and so
	// its lock, is alive; 0 means 2 s.
	Check time.Duration
}

// Lead makes this process one of the candidates for leading, among every
// process that calls Lead with the same lock on the same database: the
// one that holds PostgreSQL's session-level advisory lock cfg.Lock, on a
// dedicated connection, runs cfg.Run; the others try again every
// cfg.Retry. A leader that stops, crashes or loses its connection loses
// the lock with its session, and another candidate takes it over at its
// next try. Lead returns nil when ctx ends, after Run has returned; on
// SQLite it returns Precondition at once.
//
// The lock guarantees one leader at a time as PostgreSQL sees sessions. A
// leader cut off from the database notices within cfg.Check (its check
// fails) and cancels Run's context, so for up to that long, and however
// long Run takes to return, the old and the new leader may both be
// running: Run's work must tolerate that (every housekeeping job is
// idempotent and transactional).
func (s *Store) Lead(ctx context.Context, cfg LeadConfig) error {
	if !s.Replicated() {
		return errs.E(errs.Precondition, "leader election needs PostgreSQL")
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 2 * time.Second
	}
	if cfg.Check <= 0 {
		cfg.Check = 2 * time.Second
	}
	delay := minBackoff
	for {
		err := s.leadOnce(ctx, cfg, func() { delay = minBackoff })
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("housekeeping leadership interrupted; reconnecting", "err", err, "in", delay)
		var ok bool
		if delay, ok = backoff(ctx, delay); !ok {
			return nil
		}
	}
}

// leadOnce runs one connection of Lead until it fails or ctx ends;
// connected says the connection works.
func (s *Store) leadOnce(ctx context.Context, cfg LeadConfig, connected func()) error {
	c, err := s.connectDedicated(ctx, "nitronet housekeeping")
	if err != nil {
		return err
	}
	// Closing the connection ends the session and releases the lock.
	defer closeConn(c)
	connected()
	for {
		var got bool
		if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, cfg.Lock).Scan(&got); err != nil {
			return fmt.Errorf("try advisory lock: %w", err)
		}
		if got {
			return s.holdLead(ctx, c, cfg)
		}
		if cfg.Standby != nil {
			cfg.Standby()
		}
		t := time.NewTimer(cfg.Retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// holdLead runs cfg.Run while c holds the lock, checking c every
// cfg.Check; it returns when ctx ends or the check fails, after Run has
// returned.
func (s *Store) holdLead(ctx context.Context, c *pgx.Conn, cfg LeadConfig) error {
	lctx, lost := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); cfg.Run(lctx) }()
	defer func() { lost(); <-done }()
	t := time.NewTicker(cfg.Check)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			// Run gave up leading of its own accord: keep the lock, so
			// that no one else takes the work over, until ctx ends.
			<-ctx.Done()
			return ctx.Err()
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, cfg.Check)
		err := c.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("leader connection lost: %w", err)
		}
	}
}

// maxBudgetMillis bounds a budget's span (burst × interval), so that the
// arithmetic in SpendBudget cannot overflow: about 35,000 years.
const maxBudgetMillis = 1 << 50

// sqlSpendBudget spends one event of a budget by the generic cell rate
// algorithm, in one statement: $3 is now, $4 one event's share of the
// budget (the interval between events at the sustained rate) and $5 the
// budget's span (burst × interval), all in milliseconds. The theoretical
// arrival time tat_ms advances by one interval per event, from now at
// the latest; an event is allowed while the advanced time stays within
// one span of now. A new key starts with a full budget. A refused event
// updates nothing and returns no row.
const sqlSpendBudget = `INSERT INTO rate_budgets AS b (bucket, digest, tat_ms)
	VALUES ($1, $2, $3::bigint + $4::bigint)
	ON CONFLICT (bucket, digest) DO UPDATE SET tat_ms = greatest(b.tat_ms, $3::bigint) + $4::bigint
	WHERE greatest(b.tat_ms, $3::bigint) + $4::bigint <= $3::bigint + $5::bigint
	RETURNING 1`

// SpendBudget spends one event of the budget of digest (a keyed hash of
// the limited key; never a key in the clear) under bucket, if it has one
// left, and reports whether it did. A budget allows burst events at once
// and refills at one event per interval, as golang.org/x/time/rate's
// token bucket does; every replica spends from the same budget. It costs
// one statement on an unlogged table, outside any transaction. interval
// and burst must be positive; very long budgets are shortened to about
// 35,000 years. On SQLite it returns Precondition (limits are kept in
// process there).
func (s *Store) SpendBudget(ctx context.Context, bucket string, digest []byte, now time.Time, interval time.Duration, burst int) (bool, error) {
	if !s.Replicated() {
		return false, errs.E(errs.Precondition, "shared rate limits need PostgreSQL")
	}
	if interval <= 0 || burst < 1 {
		return false, errs.E(errs.Invalid, "a budget needs a positive interval and burst")
	}
	step := max(1, interval.Milliseconds())
	step = min(step, maxBudgetMillis/int64(burst))
	var one int
	err := s.wdb.QueryRowContext(ctx, sqlSpendBudget, bucket, digest, now.UnixMilli(), step, step*int64(burst)).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("spend rate budget: %w", err)
	}
	return true, nil
}

// ExpireBudgets deletes the shared rate-limit budgets that are full again
// at now (they hold nothing a new budget would not) and returns how many.
// On SQLite it deletes nothing.
func (s *Store) ExpireBudgets(ctx context.Context, now time.Time) (int64, error) {
	if !s.Replicated() {
		return 0, nil
	}
	r, err := s.wdb.ExecContext(ctx, `DELETE FROM rate_budgets WHERE tat_ms <= $1`, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("expire rate budgets: %w", err)
	}
	return r.RowsAffected()
}

// maxSlowdownSteps bounds the schedule AttemptSlowdown accepts.
const maxSlowdownSteps = 10_000

// sqlAttemptSlowdown counts one attempt of a slow-down, in one statement:
// $3 is now and $5 the forget period, in milliseconds; $4 the schedule,
// the delay in milliseconds after the n-th failure in a row at index n
// (the last one applying to every further failure). An attempt is counted
// if the key has no row, or its wait (until_ms) is over: then fails goes
// up by one (restarting at 1 if the count was forgotten, expires_ms), the
// next attempt must wait the schedule's delay for it and the count is
// forgotten $5 after now; the first branch returns (true, 0). Otherwise
// nothing changes, and the second branch returns (false, the wait left),
// read from the statement's snapshot. That snapshot predates the insert's
// view of the row when another replica wrote it meanwhile: then the
// second branch finds no row, or a stale wait of at most 0, and the
// caller asks again.
const sqlAttemptSlowdown = `WITH spent AS (
	INSERT INTO login_slowdowns AS s (kind, digest, fails, until_ms, expires_ms)
	VALUES ($1, $2, 1, $3::bigint + ($4::bigint[])[1], $3::bigint + $5::bigint)
	ON CONFLICT (kind, digest) DO UPDATE SET
		fails = least(CASE WHEN s.expires_ms <= $3::bigint THEN 1 ELSE s.fails + 1 END, cardinality($4::bigint[])),
		until_ms = $3::bigint + ($4::bigint[])[least(CASE WHEN s.expires_ms <= $3::bigint THEN 1 ELSE s.fails + 1 END, cardinality($4::bigint[]))],
		expires_ms = $3::bigint + $5::bigint
	WHERE s.until_ms <= $3::bigint
	RETURNING true AS counted, 0::bigint AS wait_ms
)
SELECT counted, wait_ms FROM spent
UNION ALL
SELECT false, s.until_ms - $3::bigint FROM login_slowdowns s
	WHERE s.kind = $1 AND s.digest = $2 AND NOT EXISTS (SELECT 1 FROM spent)`

// AttemptSlowdown reserves an attempt of the slow-down of digest (a keyed
// hash of the slowed-down key; never a key in the clear) under kind, as
// ratelimit.Backoff.Attempt does in process, and every replica counts on
// the same row: it returns 0 if the attempt may go ahead, counting it as a
// failure until ForgetSlowdown, and otherwise how long until one may
// (nothing is counted). delays is the schedule: delays[n-1] is the wait
// after the n-th failure in a row, the last entry applying to every
// further one; a count is forgotten forget after its last counted
// attempt. Delays are rounded up to the millisecond. It costs one
// statement on an unlogged table, outside any transaction (rarely two,
// when another replica wrote the same row at the same moment). On SQLite
// it returns Precondition (slow-downs are kept in process there).
func (s *Store) AttemptSlowdown(ctx context.Context, kind string, digest []byte, now time.Time, delays []time.Duration, forget time.Duration) (time.Duration, error) {
	if !s.Replicated() {
		return 0, errs.E(errs.Precondition, "shared slow-downs need PostgreSQL")
	}
	if len(delays) == 0 || len(delays) > maxSlowdownSteps || forget < delays[len(delays)-1] {
		return 0, errs.E(errs.Invalid, "a slow-down needs 1 to 10,000 delays and a forget period at least the last")
	}
	ms := make([]int64, len(delays))
	for i, d := range delays {
		if d < 0 {
			return 0, errs.E(errs.Invalid, "a slow-down's delays must not be negative")
		}
		ms[i] = millisUp(d)
	}
	fms := millisUp(forget)
	for range 3 {
		var counted bool
		var wait int64
		err := s.wdb.QueryRowContext(ctx, sqlAttemptSlowdown, kind, digest, now.UnixMilli(), ms, fms).Scan(&counted, &wait)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // see sqlAttemptSlowdown
		case err != nil:
			return 0, fmt.Errorf("attempt slow-down: %w", err)
		case counted:
			return 0, nil
		case wait > 0:
			return time.Duration(wait) * time.Millisecond, nil
		}
	}
	return 0, errors.New("attempt slow-down: the row kept changing under concurrent attempts")
}

// millisUp returns d in milliseconds, rounded up.
func millisUp(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// ForgetSlowdown forgets the failures counted on digest's slow-down under
// kind (the right credentials were given). On SQLite it returns
// Precondition.
func (s *Store) ForgetSlowdown(ctx context.Context, kind string, digest []byte) error {
	if !s.Replicated() {
		return errs.E(errs.Precondition, "shared slow-downs need PostgreSQL")
	}
	if _, err := s.wdb.ExecContext(ctx, `DELETE FROM login_slowdowns WHERE kind = $1 AND digest = $2`, kind, digest); err != nil {
		return fmt.Errorf("forget slow-down: %w", err)
	}
	return nil
}

// ExpireSlowdowns deletes the shared slow-downs whose count is forgotten
// at now (their forget period since the last counted attempt has passed)
// and returns how many. On SQLite it deletes nothing.
func (s *Store) ExpireSlowdowns(ctx context.Context, now time.Time) (int64, error) {
	if !s.Replicated() {
		return 0, nil
	}
	r, err := s.wdb.ExecContext(ctx, `DELETE FROM login_slowdowns WHERE expires_ms <= $1`, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("expire slow-downs: %w", err)
	}
	return r.RowsAffected()
}
