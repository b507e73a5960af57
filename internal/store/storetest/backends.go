// Package storetest holds the shared test suite for store.Store
// implementations (Run, and RunFaults for the tests that reach into the
// database), helpers that open a fresh store on each engine, so other
// packages can run their tests against SQLite and a real PostgreSQL
// alike, and the means to reach under a store: InjectFault makes a chosen
// statement fail with a database trigger, Dump reads every row.
//
// PostgreSQL comes from the environment:
//
//	NITRONET_TEST_POSTGRES     a URL or DSN of a server where the test may
//	                           CREATE DATABASE (scripts/pg-throwaway.sh
//	                           starts one and prints it)
//	NITRONET_REQUIRE_POSTGRES  if "1", a missing NITRONET_TEST_POSTGRES
//	                           fails the test instead of skipping it
//
// Every PostgreSQL store gets its own randomly named database, dropped when
// the test ends.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
)

// Environment variables read by the PostgreSQL helpers.
const (
	EnvPostgres        = "NITRONET_TEST_POSTGRES"
	EnvRequirePostgres = "NITRONET_REQUIRE_POSTGRES"
)

// DefaultPool returns the address pool the Backends stores use:
// 100.64.0.0/10 and fd00:6e6e::/48.
func DefaultPool() store.Pool {
	return store.Pool{
		V4: netip.MustParsePrefix("100.64.0.0/10"),
		V6: netip.MustParsePrefix("fd00:6e6e::/48"),
	}
}

// Backend is one storage engine for tests.
type Backend struct {
	Name string // "sqlite" or "postgres"
	// Open returns a fresh, empty store using DefaultPool, closed (and for
	// PostgreSQL dropped) when t ends. It skips or fails t when the engine
	// is unavailable (see the package documentation).
	Open func(t *testing.T) store.Store
	// OpenSQL is Open returning the concrete type, with a chosen pool and
	// options.
	OpenSQL func(tb testing.TB, pool store.Pool, opts ...sqlstore.Option) *sqlstore.Store
	// OpenWithDB is OpenSQL with DefaultPool that also returns a plain
	// connection pool to the same database, for tests that reach under the
	// store (InjectFault, Dump). Both are closed when tb ends.
	OpenWithDB func(tb testing.TB) (*sqlstore.Store, *sql.DB)
}

// Backends returns the SQLite and PostgreSQL backends. A typical use:
//
//	for _, b := range storetest.Backends() {
//		t.Run(b.Name, func(t *testing.T) { s := b.Open(t); ... })
//	}
func Backends() []Backend {
	return []Backend{
		{
			Name:    "sqlite",
			Open:    func(t *testing.T) store.Store { return SQLite(t, DefaultPool()) },
			OpenSQL: SQLite,
			OpenWithDB: func(tb testing.TB) (*sqlstore.Store, *sql.DB) {
				path := filepath.Join(tb.TempDir(), "nitronet.db")
				s := OpenSQLiteAt(tb, path, DefaultPool())
				return s, SQLiteDB(tb, path)
			},
		},
		{
			Name:    "postgres",
			Open:    func(t *testing.T) store.Store { return Postgres(t, DefaultPool()) },
			OpenSQL: Postgres,
			OpenWithDB: func(tb testing.TB) (*sqlstore.Store, *sql.DB) {
				url := PostgresURL(tb)
				s := OpenPostgresAt(tb, url, DefaultPool())
				return s, PostgresDB(tb, url)
			},
		},
	}
}

// Logger returns a logger that writes through tb.Log at debug level, so
// store logs appear with the test's output only when it fails or runs with
// -v.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// SQLite opens a fresh SQLite store in a temporary directory, closed when
// tb ends.
func SQLite(tb testing.TB, pool store.Pool, opts ...sqlstore.Option) *sqlstore.Store {
	tb.Helper()
	return OpenSQLiteAt(tb, filepath.Join(tb.TempDir(), "nitronet.db"), pool, opts...)
}

// OpenSQLiteAt opens (or reopens) the SQLite store at path, closed when tb
// ends.
func OpenSQLiteAt(tb testing.TB, path string, pool store.Pool, opts ...sqlstore.Option) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.OpenSQLite(context.Background(), path, pool, Logger(tb), opts...)
	if err != nil {
		tb.Fatalf("open sqlite store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close sqlite store: %v", err)
		}
	})
	return s
}

// Postgres opens a store on a fresh PostgreSQL database (see PostgresURL),
// closed when tb ends.
func Postgres(tb testing.TB, pool store.Pool, opts ...sqlstore.Option) *sqlstore.Store {
	tb.Helper()
	return OpenPostgresAt(tb, PostgresURL(tb), pool, opts...)
}

// OpenPostgresAt opens (or reopens) a store on the PostgreSQL database at
// url, closed when tb ends.
func OpenPostgresAt(tb testing.TB, url string, pool store.Pool, opts ...sqlstore.Option) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.OpenPostgres(context.Background(), url, pool, Logger(tb), opts...)
	if err != nil {
		tb.Fatalf("open postgres store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close postgres store: %v", err)
		}
	})
	return s
}

// SQLiteDB opens a plain connection pool to the SQLite database file at
// path, with foreign keys on and a busy timeout, closed when tb ends.
func SQLiteDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatalf("open sqlite database: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// PostgresDB opens a plain connection pool to the PostgreSQL database at
// url, closed when tb ends (before a database from PostgresURL is
// dropped, if PostgresURL was called first).
func PostgresDB(tb testing.TB, url string) *sql.DB {
	tb.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		tb.Fatalf("postgres URL: %v", err)
	}
	db := stdlib.OpenDB(*cfg)
	tb.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL creates a fresh, empty database with a random name on the
// server named by NITRONET_TEST_POSTGRES and returns a URL (or DSN, in the
// form the variable used) for it. The database is dropped when tb ends,
// after cleanups registered later (such as closing a store) have run. If
// the variable is unset, tb is skipped, or failed when
// NITRONET_REQUIRE_POSTGRES=1.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		if os.Getenv(EnvRequirePostgres) == "1" {
			tb.Fatalf("%s is not set but %s=1", EnvPostgres, EnvRequirePostgres)
		}
		tb.Skipf("%s not set; skipping PostgreSQL", EnvPostgres)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("random database name: %v", err)
	}
	name := "nitronet_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to %s server: %v", EnvPostgres, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := withDatabase(admin, name)
	if err != nil {
		tb.Fatalf("%s: %v", EnvPostgres, err)
	}
	return u
}

// withDatabase returns dsn with its database replaced by name. dsn is a
// postgres:// URL or a keyword/value string.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse URL: %w", err)
		}
		u.Path = "/" + name
		q := u.Query()
		if q.Has("dbname") {
			q.Set("dbname", name)
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	// In keyword/value form a later keyword overrides an earlier one.
	return dsn + " dbname=" + name, nil
}

// Snapshot collects s.PeerSnapshot into a slice: the peers and the feed
// version. Tests use it where a few peers are involved; code that may
// meet many devices streams instead.
func Snapshot(ctx context.Context, s store.Store) ([]store.Peer, int64, error) {
	peers := []store.Peer{}
	var version int64
	var count int64
	err := s.PeerSnapshot(ctx, func(v, n int64) error { version, count = v, n; return nil },
		func(p store.Peer) error { peers = append(peers, p); return nil })
	if err != nil {
		return nil, 0, err
	}
	if count != int64(len(peers)) {
		return nil, 0, fmt.Errorf("PeerSnapshot: begin said %d devices, each saw %d", count, len(peers))
	}
	return peers, version, nil
}
