package server_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// dbEnv is an env with a plain connection to its database.
type dbEnv struct {
	*env
	db     *sql.DB
	engine string
}

// newDBEnv assembles a server on backend b as newEnv does, with limits
// that never get in the way, and a plain connection to its database.
func newDBEnv(t *testing.T, b storetest.Backend) *dbEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	var st store.Store
	var db *sql.DB
	if b.Name == "sqlite" {
		var err error
		st, err = server.OpenStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		db = storetest.SQLiteDB(t, filepath.Join(dir, "nitronet.db"))
	} else {
		st, db = b.OpenWithDB(t)
	}
	lim := httpedge.Limits{SignupPerHour: 1e6, SignupBurst: 1e4, LoginPerHour: 1e6, LoginBurst: 1e4,
		VerifyPerHour: 1e6, VerifyBurst: 1e4, ResetPerHour: 1e6, ResetBurst: 1e4}
	logs := &lockedBuffer{}
	srv, err := server.New(context.Background(), cfg, server.Deps{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:  time.Now, Rand: rand.Reader, Stdout: io.Discard, Limits: &lim, Store: st,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := newTestHTTPServer(t, srv)
	return &dbEnv{env: &env{t: t, url: hs, dir: dir, logs: logs, srv: srv}, db: db, engine: b.Name}
}

// newTestHTTPServer serves srv until t ends and returns its URL.
func newTestHTTPServer(t *testing.T, srv *server.Server) string {
	t.Helper()
	hs := httptest.NewServer(srv.Handler)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return hs.URL
}
