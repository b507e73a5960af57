// Package sqlstore implements store.Store on SQLite (modernc.org/sqlite, no
// cgo) and on PostgreSQL (github.com/jackc/pgx/v5 through database/sql).
//
// Both engines share the same SQL, written with $N placeholders, which both
// drivers accept. The schema lives in embedded, append-only goose migrations,
// one directory per dialect (migrations/sqlite, migrations/postgres), applied
// by OpenSQLite and OpenPostgres.
//
// Portability rules of the schema: times are BIGINT unix seconds UTC; binary
// values are BLOB/BYTEA; record IDs are TEXT chosen by the caller; addresses
// are TEXT in netip form. Both dialects have the same migration versions
// (a change one engine does not need gets an empty file there), and after
// every version the two schemas have the same tables and columns, with
// equivalent types and the same nullability; TestSchemaAgreement checks
// this against a real PostgreSQL and documents the type equivalences.
//
// Concurrency: every exported method runs in its own transaction. On SQLite
// all writes go through a single connection (BEGIN IMMEDIATE), so concurrent
// callers queue in database/sql instead of seeing SQLITE_BUSY; reads use a
// separate pool of read-only connections and, thanks to WAL, never block
// writers. On PostgreSQL, every transaction that changes devices first locks
// the single peer_feed counter row, which serialises device writes and makes
// feed versions commit in increasing order.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// sqliteBusyTimeout is how long an SQLite connection waits for a lock held
// by another process before failing with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// dialect holds what differs between the engines.
type dialect struct {
	name      string        // "sqlite" or "postgres"
	goose     goose.Dialect // migration dialect
	forUpdate string        // row-lock suffix for SELECT; "" on SQLite
	// snapshot is the option for read transactions that run more than one
	// statement and need them to agree.
	snapshot *sql.TxOptions
	// read is the option for plain read transactions.
	read *sql.TxOptions
}

var _ store.Store = (*Store)(nil)

// Store is a store.Store backed by SQLite or PostgreSQL. It is safe for
// concurrent use. Create one with OpenSQLite or OpenPostgres and release it
// with Close.
type Store struct {
	wdb  *sql.DB // writes (and, on PostgreSQL, reads)
	rdb  *sql.DB // reads; the same as wdb on PostgreSQL
	d    dialect
	pool addrPool
	hot  hotStatements
	// allocFromNext tells allocate which statement served last (see there).
	allocFromNext atomic.Bool
	// createInOne makes CreateDevice register through the function
	// nitronet_create_device, in one round trip (PostgreSQL; see
	// createDeviceCall).
	createInOne bool
	log         *slog.Logger
	now         func() time.Time
	// pgcfg is the PostgreSQL connection configuration, for the
	// dedicated connections of replicas.go; nil on SQLite.
	pgcfg *pgx.ConnConfig
	// noScrub skips EraseAccount's scrub, for benchmarks that compare
	// its cost.
	noScrub bool
}

// Option configures OpenSQLite and OpenPostgres.
type Option func(*Store)

// WithClock sets the clock used to timestamp peer-feed entries (the times
// the retention sweep compares against). The default is time.Now. Every other
// time the store records comes from its caller.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// OpenSQLite opens (creating it with mode 0600 if needed) the SQLite
// database file at path, applies pending migrations and returns the store.
// The database runs in WAL mode with synchronous=NORMAL (a power loss may
// lose the last transactions but never corrupts the file), foreign keys on
// and a busy timeout for other processes. path must be a file path, not
// ":memory:".
//
// pool is the tunnel address pool (see CreateDevice for how addresses are
// allocated from it); it must be the same every time a database is opened,
// otherwise OpenSQLite returns Invalid. log must not be nil.
func OpenSQLite(ctx context.Context, path string, pool store.Pool, log *slog.Logger, opts ...Option) (*Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") {
		return nil, errs.E(errs.Invalid, "sqlite path %q is not a usable file path", path)
	}
	ap, err := newAddrPool(pool)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}

	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")
	// Overwrite deleted content and freed pages with zeros, so that
	// erased data does not linger in free space.
	common.Add("_pragma", "secure_delete(1)")

	w := cloneValues(common)
	w.Add("_pragma", "journal_mode(WAL)")
	w.Add("_pragma", "synchronous(NORMAL)")
	// Truncate the write-ahead log whenever it restarts, so that frames
	// from before an erasure cannot outlive the next restart at the end
	// of a reused log (EraseAccount truncates it at once when it can).
	w.Add("_pragma", "journal_size_limit(0)")
	w.Set("_txlock", "immediate")
	wdb, err := sql.Open("sqlite", path+"?"+w.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// One writer connection: writers queue here rather than in SQLite's
	// busy handler, so they never see SQLITE_BUSY.
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxIdleTime(0)
	wdb.SetConnMaxLifetime(0)
	// Establish the writer first: it switches the file to WAL.
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}

	r := cloneValues(common)
	r.Add("_pragma", "query_only(1)")
	rdb, err := sql.Open("sqlite", path+"?"+r.Encode())
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)

	s := &Store{
		wdb:  wdb,
		rdb:  rdb,
		pool: ap,
		log:  log,
		now:  time.Now,
		d: dialect{
			name:  "sqlite",
			goose: goose.DialectSQLite3,
			// A deferred BEGIN on a WAL database reads one snapshot.
			snapshot: &sql.TxOptions{ReadOnly: true},
			read:     &sql.TxOptions{ReadOnly: true},
		},
	}
	for _, o := range opts {
		o(s)
	}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenPostgres connects to the PostgreSQL database at url (a postgres://
// URL or a keyword/value DSN), applies pending migrations under a session
// advisory lock (so several replicas may start at once) and returns the
// store. pool must be the same every time a database is opened, otherwise
// OpenPostgres returns Invalid. log must not be nil.
func OpenPostgres(ctx context.Context, url string, pool store.Pool, log *slog.Logger, opts ...Option) (*Store, error) {
	ap, err := newAddrPool(pool)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// The error may echo the URL, password included: keep it out.
		return nil, errs.E(errs.Invalid, "invalid postgres database URL")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &Store{
		wdb:   db,
		rdb:   db,
		pool:  ap,
		log:   log,
		now:   time.Now,
		pgcfg: cfg,
		// The function renders addresses with PostgreSQL's inet output,
		// which differs from netip's text (though not in the address)
		// only for IPv6 addresses with 96 leading zero bits.
		createInOne: !ap.v6Leading96Zero(),
		d: dialect{
			name:      "postgres",
			goose:     goose.DialectPostgres,
			forUpdate: " FOR UPDATE",
			snapshot:  &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
			read:      &sql.TxOptions{ReadOnly: true},
		},
	}
	for _, o := range opts {
		o(s)
	}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database connections. It returns the first error.
func (s *Store) Close() error {
	err := errors.Join(s.hot.close(), s.wdb.Close())
	if s.rdb != s.wdb {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}

// init applies migrations and records or checks the address pool.
func (s *Store) init(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.prepareHot(ctx); err != nil {
		return err
	}
	return s.write(ctx, "open store", func(tx *sql.Tx) error {
		v4, v6 := s.pool.v4.String(), s.pool.v6.String()
		if _, err := tx.ExecContext(ctx,
			`UPDATE ipam_state SET v4_prefix = $1, v6_prefix = $2 WHERE id = 1 AND v4_prefix = ''`,
			v4, v6); err != nil {
			return err
		}
		var got4, got6 string
		if err := tx.QueryRowContext(ctx,
			`SELECT v4_prefix, v6_prefix FROM ipam_state WHERE id = 1`).Scan(&got4, &got6); err != nil {
			return err
		}
		if got4 != v4 || got6 != v6 {
			return errs.E(errs.Invalid,
				"address pool %s, %s differs from the pool %s, %s this database was created with",
				v4, v6, got4, got6)
		}
		return nil
	})
}

// migrate applies the embedded migrations of s's dialect.
func (s *Store) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations/"+s.d.name)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if s.d.name == "postgres" {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(s.d.goose, s.wdb, dir, opts...)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		s.log.Info("applied migration", "dialect", s.d.name,
			"version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// write runs fn in a read-write transaction and commits it if fn returns
// nil. Errors are wrapped with op.
func (s *Store) write(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	return s.run(ctx, s.wdb, nil, op, fn)
}

// read runs fn in a read-only transaction.
func (s *Store) read(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	return s.run(ctx, s.rdb, s.d.read, op, fn)
}

// readSnapshot runs fn in a read-only transaction whose statements all see
// the same snapshot.
func (s *Store) readSnapshot(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	return s.run(ctx, s.rdb, s.d.snapshot, op, fn)
}

func (s *Store) run(ctx context.Context, db *sql.DB, opts *sql.TxOptions, op string, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", op, mapErr(err, "record already exists"))
	}
	return nil
}

// constraint classifies a database error.
type constraint int

const (
	otherError constraint = iota
	uniqueViolation
	foreignKeyViolation
)

// classify reports whether err is a unique or foreign-key violation on
// either engine.
func classify(err error) constraint {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return uniqueViolation
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return foreignKeyViolation
		}
		return otherError
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return uniqueViolation
		case "23503":
			return foreignKeyViolation
		}
	}
	return otherError
}

// violates reports whether err is a unique violation of the PostgreSQL
// constraint pgName or, on SQLite, of an index over column sqliteColumn
// ("table.column", as SQLite names it in its message).
func violates(err error, pgName, sqliteColumn string) bool {
	if classify(err) != uniqueViolation {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName == pgName
	}
	var se *sqlite.Error
	return errors.As(err, &se) && strings.Contains(se.Error(), sqliteColumn)
}

// mapErr turns a unique violation into Conflict with conflictMsg and a
// foreign-key violation into NotFound; other errors are returned as they
// are.
func mapErr(err error, conflictMsg string) error {
	switch classify(err) {
	case uniqueViolation:
		return errs.Wrap(errs.Conflict, err, conflictMsg)
	case foreignKeyViolation:
		return errs.Wrap(errs.NotFound, err, "account not found")
	}
	return err
}

// notFound maps sql.ErrNoRows to a NotFound error with msg.
func notFound(err error, msg string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return errs.E(errs.NotFound, "%s", msg)
	}
	return err
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// nullBytes stores an empty slice as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// nullString stores an empty string as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// unix converts t to the stored form: unix seconds.
func unix(t time.Time) int64 { return t.Unix() }

// fromUnix converts a stored time to a UTC time.Time.
func fromUnix(n int64) time.Time { return time.Unix(n, 0).UTC() }

// nullTime converts an optional stored time.
func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromUnix(n.Int64)
	return &t
}
