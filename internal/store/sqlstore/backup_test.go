package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
)

func openSQLite(t *testing.T, path string) *sqlstore.Store {
	t.Helper()
	pool := store.Pool{V4: netip.MustParsePrefix("100.64.0.0/10"), V6: netip.MustParsePrefix("fd00:6e6e::/48")}
	s, err := sqlstore.OpenSQLite(t.Context(), path, pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBackupSQLiteOnline: a backup taken while another connection keeps
// writing is a consistent database that passes CheckSQLite, holds every
// account committed before it started, and is private (0600). The live
// database counts as in use until it is closed.
func TestBackupSQLiteOnline(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := filepath.Join(dir, "nitronet.db")
	s := openSQLite(t, db)
	for i := range 20 {
		a := &store.Account{ID: fmt.Sprintf("acc_%03d", i), EmailIndex: []byte(fmt.Sprintf("e%d", i)),
			WrappedKey: []byte{1, byte(i)}, Status: store.StatusActive}
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if inUse, err := sqlstore.SQLiteInUse(db); err != nil || !inUse {
		t.Fatalf("SQLiteInUse of an open database: got %v, %v; want true", inUse, err)
	}

	// A writer keeps adding accounts during the backup.
	stop := make(chan struct{})
	done := make(chan error, 1)
	var written atomic.Int64
	go func() {
		for i := 100; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			a := &store.Account{ID: fmt.Sprintf("acc_%03d", i), EmailIndex: []byte(fmt.Sprintf("e%d", i)), Status: store.StatusActive}
			if err := s.CreateAccount(context.Background(), a); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
	}()
	for deadline := time.Now().Add(time.Minute); written.Load() < 5; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the writer wrote nothing for a minute")
		}
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	err := sqlstore.BackupSQLite(ctx, db, out)
	close(stop)
	if werr := <-done; werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v; want mode 0600", err, st.Mode().Perm())
	}
	info, err := sqlstore.CheckSQLite(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := sqlstore.LatestSQLiteSchema()
	if info.SchemaVersion != latest || info.Accounts < 25 || len(info.WrappedKeys) != 5 || info.WrappedKeys["acc_000"][1] != 0 {
		t.Fatalf("got %+v, want schema %d, at least 25 accounts, 5 wrapped keys", info, latest)
	}
	if err := sqlstore.BackupSQLite(ctx, db, out); !errs.Is(err, errs.Conflict) {
		t.Fatalf("backup onto an existing file: got %v, want Conflict", err)
	}
	if es, _ := os.ReadDir(filepath.Dir(out)); len(es) != 1 {
		t.Fatalf("backup directory holds %d files, want only the backup (no temporary files)", len(es))
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if inUse, err := sqlstore.SQLiteInUse(db); err != nil || inUse {
		t.Fatalf("SQLiteInUse of a closed database: got %v, %v; want false", inUse, err)
	}
	// A closed database backs up too, and is not created when absent.
	if err := sqlstore.BackupSQLite(ctx, db, filepath.Join(dir, "again.db")); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.db")
	if err := sqlstore.BackupSQLite(ctx, missing, filepath.Join(dir, "x.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("backup of a missing database: got %v, want not exist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the backup created the missing database")
	}
}

// TestCheckSQLiteRejects: a damaged file, a file that is not SQLite, and
// an SQLite file that is not a Nitronet database fail the check.
func TestCheckSQLiteRejects(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s := openSQLite(t, good)
	for i := range 200 {
		if err := s.CreateAccount(ctx, &store.Account{ID: fmt.Sprintf("acc_%03d", i), EmailIndex: []byte(fmt.Sprintf("e%d", i)), Status: store.StatusActive}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), b...)
	for i := len(damaged) / 2; i < len(damaged)/2+4096 && i < len(damaged); i++ {
		damaged[i] ^= 0x5a
	}
	plain := filepath.Join(dir, "plain.db")
	p := openSQLite(t, filepath.Join(dir, "ignored.db"))
	p.Close()
	for name, content := range map[string][]byte{"damaged.db": damaged, "text.db": []byte("hello, not a database")} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An SQLite database without Nitronet's schema.
	if err := sqlstore.BackupSQLite(ctx, filepath.Join(dir, "ignored.db"), plain); err != nil {
		t.Fatal(err)
	}
	if err := dropSchema(plain); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"damaged.db", "text.db", "plain.db"} {
		if _, err := sqlstore.CheckSQLite(ctx, filepath.Join(dir, name)); !errs.Is(err, errs.Invalid) {
			t.Errorf("CheckSQLite(%s): got %v, want Invalid", name, err)
		}
	}
	if _, err := sqlstore.CheckSQLite(ctx, good); err != nil {
		t.Fatalf("CheckSQLite of the undamaged file: %v", err)
	}
}

// dropSchema removes the migration table from the SQLite file at path.
func dropSchema(path string) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec("DROP TABLE goose_db_version")
	return err
}
