package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
)

// BackupSQLite writes a consistent copy of the SQLite database at src to
// dst with VACUUM INTO, while other connections, in this process or in
// others (a running server), go on reading and writing: the copy is the
// database as of one transaction. dst must not exist; it is written
// under a temporary name in its directory (mode 0600) and renamed into
// place once complete and synced, so it never holds a partial copy. The
// copy holds no free pages, so nothing deleted before it was taken is in
// it. src is opened read-only and never created.
func BackupSQLite(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return errs.E(errs.Conflict, "%s already exists", dst)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after the rename, a no-op
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	db, err := openReadOnly(src)
	if err != nil {
		return err
	}
	defer db.Close()
	// VACUUM INTO writes into an empty existing file, keeping its mode.
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmpName); err != nil {
		return fmt.Errorf("backup: vacuum into %s: %w", tmpName, err)
	}
	if err := syncFile(tmpName); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmpName, dst); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return syncFile(filepath.Dir(dst))
}

// SQLiteFile describes an SQLite database file (see CheckSQLite).
type SQLiteFile struct {
	// SchemaVersion is the newest migration applied to it.
	SchemaVersion int64
	// Accounts is the number of accounts.
	Accounts int64
	// WrappedKeys are a few accounts' wrapped data keys, by account ID,
	// for checking that a key-encryption key opens them; empty when no
	// account has one.
	WrappedKeys map[string][]byte
}

// CheckSQLite opens the SQLite database file at path read-only, checks
// its integrity (PRAGMA integrity_check) and that it is a Nitronet
// database no newer than this program's migrations, and describes it.
// A file that fails is Invalid.
func CheckSQLite(ctx context.Context, path string) (SQLiteFile, error) {
	var f SQLiteFile
	if _, err := os.Stat(path); err != nil {
		return f, fmt.Errorf("check: %w", err)
	}
	db, err := openReadOnly(path)
	if err != nil {
		return f, err
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&verdict); err != nil {
		return f, errs.E(errs.Invalid, "%s is not a readable SQLite database: %v", path, err)
	}
	if verdict != "ok" {
		return f, errs.E(errs.Invalid, "%s fails its integrity check: %s", path, verdict)
	}
	err = db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&f.SchemaVersion)
	if err != nil || f.SchemaVersion == 0 {
		return f, errs.E(errs.Invalid, "%s is not a Nitronet database (no schema version)", path)
	}
	latest, err := LatestSQLiteSchema()
	if err != nil {
		return f, err
	}
	if f.SchemaVersion > latest {
		return f, errs.E(errs.Invalid, "%s has schema version %d, newer than this program's %d: use the release that made it", path, f.SchemaVersion, latest)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM accounts").Scan(&f.Accounts); err != nil {
		return f, fmt.Errorf("check: %w", err)
	}
	rows, err := db.QueryContext(ctx, "SELECT id, wrapped_key FROM accounts WHERE wrapped_key IS NOT NULL ORDER BY id LIMIT 5")
	if err != nil {
		return f, fmt.Errorf("check: %w", err)
	}
	defer rows.Close()
	f.WrappedKeys = map[string][]byte{}
	for rows.Next() {
		var id string
		var key []byte
		if err := rows.Scan(&id, &key); err != nil {
			return f, fmt.Errorf("check: %w", err)
		}
		f.WrappedKeys[id] = key
	}
	return f, rows.Err()
}

// LatestSQLiteSchema returns the newest SQLite migration this program
// has.
func LatestSQLiteSchema() (int64, error) {
	es, err := fs.ReadDir(migrations, "migrations/sqlite")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, e := range es {
		n, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// SQLiteInUse reports whether a process (this one included) has the
// SQLite database at path open, as SQLite itself tells: in WAL mode every
// open connection holds a shared lock on the shared-memory file's
// "dead man switch" byte. A file nobody has open has no such lock.
func SQLiteInUse(path string) (bool, error) {
	return shmLocked(path + "-shm")
}

// openReadOnly opens the SQLite file at path without creating it, without
// writing to it, and without waiting long for locks.
func openReadOnly(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, fs.ErrInvalid) { // directories on some file systems
		return nil
	}
	return err
}
