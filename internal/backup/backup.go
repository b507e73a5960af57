// Package backup makes and restores backups of a control server's SQLite
// database (`nitronet admin backup` and `admin restore`).
//
// A backup is one SQLite file: the database as of one transaction, taken
// while the server runs. It holds everything the database holds (accounts
// with their email and mobile sealed, password hashes, devices, session
// intervals, privacy requests, the audit log, …) and nothing else. In
// particular it does not hold the keyring of key-encryption keys
// (DATA/keyring or --keyring), without which the sealed contacts in it
// cannot be read: back the keyring up separately, and keep the two apart.
// Restore refuses a keyring that does not open the backup's data keys.
//
// PostgreSQL databases are backed up with pg_dump (docs/backup.md).
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/vault"
)

// DBName is the SQLite database's file name in the data directory.
const DBName = "nitronet.db"

// Create writes a consistent backup of the SQLite database in dataDir to
// out while a server may be using it, checks the copy's integrity, and
// describes it. out must not exist (Conflict).
func Create(ctx context.Context, dataDir, out string) (sqlstore.SQLiteFile, error) {
	src := filepath.Join(dataDir, DBName)
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return sqlstore.SQLiteFile{}, errs.E(errs.NotFound, "no database at %s: is --data right?", src)
	}
	if err := sqlstore.BackupSQLite(ctx, src, out); err != nil {
		return sqlstore.SQLiteFile{}, err
	}
	info, err := sqlstore.CheckSQLite(ctx, out)
	if err != nil {
		os.Remove(out)
		return info, fmt.Errorf("the new backup fails its check (removed): %w", err)
	}
	return info, nil
}

// RestoreConfig says what to restore where.
type RestoreConfig struct {
	// Input is the backup file.
	Input string
	// DataDir is the data directory to restore into; its database is
	// DataDir/nitronet.db.
	DataDir string
	// Keyring is the keyring directory the restored server will use, and
	// KEKFile its legacy key-encryption key file (vault.Config). They
	// must exist and open the backup's data keys.
	Keyring, KEKFile string
	// Force replaces an existing database, which is kept beside it as
	// nitronet.db.replaced-TIME.
	Force bool
	Clock func() time.Time
}

// Restored tells what Restore did.
type Restored struct {
	Backup sqlstore.SQLiteFile
	// Database is the restored database file.
	Database string
	// Replaced is where the database it replaced was moved, if any.
	Replaced string
}

// Restore checks the backup cfg.Input (its integrity, its schema, and that
// the keyring cfg.Keyring opens its data keys) and puts a copy of it in place as the
// data directory's database. It refuses, with Conflict, to replace a
// database that exists unless cfg.Force is set, and a database that a
// process has open (a running server) in any case. It never modifies the
// backup.
func Restore(ctx context.Context, cfg RestoreConfig) (Restored, error) {
	var r Restored
	info, err := sqlstore.CheckSQLite(ctx, cfg.Input)
	if err != nil {
		return r, err
	}
	r.Backup = info
	if err := checkKEK(cfg.Keyring, cfg.KEKFile, info); err != nil {
		return r, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return r, err
	}
	db := filepath.Join(cfg.DataDir, DBName)
	r.Database = db
	inUse, err := sqlstore.SQLiteInUse(db)
	if err != nil {
		return r, err
	}
	if inUse {
		return r, errs.E(errs.Conflict, "%s is open in a running process (the server?): stop it before restoring", db)
	}
	exists := false
	for _, f := range []string{db, db + "-wal"} {
		if _, err := os.Lstat(f); err == nil {
			exists = true
		}
	}
	if exists && !cfg.Force {
		return r, errs.E(errs.Conflict, "%s already holds a database: pass --force to replace it (it is kept as %s.replaced-TIME)", cfg.DataDir, DBName)
	}
	tmp, err := copyPrivate(cfg.Input, cfg.DataDir)
	if err != nil {
		return r, err
	}
	defer os.Remove(tmp) // after the rename, a no-op
	if exists {
		clock := cfg.Clock
		if clock == nil {
			clock = time.Now
		}
		r.Replaced = db + ".replaced-" + clock().UTC().Format("20060102T150405Z")
		// The write-ahead log and shared memory go with their database.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(db+suffix, r.Replaced+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return r, fmt.Errorf("move the old database aside: %w", err)
			}
		}
	}
	if err := os.Rename(tmp, db); err != nil {
		return r, err
	}
	return r, syncDir(cfg.DataDir)
}

// checkKEK checks that the keyring in dir (with the legacy KEK file)
// opens the data keys of the backup described by info. It creates
// nothing.
func checkKEK(dir, legacy string, info sqlstore.SQLiteFile) error {
	v, err := vault.Open(vault.Config{Dir: dir, LegacyFile: legacy, Existing: true})
	if errors.Is(err, fs.ErrNotExist) {
		return errs.Field(errs.Precondition, "keyring",
			"no complete keyring at %s (%v): copy there the keyring the backed-up server used, as it was when the backup was made "+
				"(it is not in the backup); without it the backup's emails and mobile numbers cannot be read", dir, err)
	}
	if err != nil {
		return fmt.Errorf("--keyring: %w", err)
	}
	for id, wrapped := range info.WrappedKeys {
		k, err := v.Unwrap(id, wrapped)
		if err != nil {
			return errs.Field(errs.Precondition, "keyring",
				"the keyring at %s does not open this backup's data keys: use the one the backed-up server used "+
					"(a key-encryption key destroyed by a rotation since the backup was made is gone for good)", dir)
		}
		k.Destroy()
	}
	return nil
}

// copyPrivate copies file into dir under a temporary name, mode 0600,
// synced, owned like dir when run as root, and returns that name.
func copyPrivate(file, dir string) (string, error) {
	in, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "."+DBName+".restore-*")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", err
	}
	if err := out.Close(); err != nil {
		os.Remove(out.Name())
		return "", err
	}
	if err := chownLike(out.Name(), dir); err != nil {
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
