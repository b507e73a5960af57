package sqlstore

import (
	"context"
	"database/sql"
	"io/fs"
	"testing"

	"github.com/nitronet/nitronet/internal/store"
)

// Migrations returns the embedded migrations of dialect ("sqlite" or
// "postgres"), for tests that apply them one at a time.
func Migrations(dialect string) (fs.FS, error) {
	return fs.Sub(migrations, "migrations/"+dialect)
}

// Tables returns the names of every table in the store's schema, sorted.
func (s *Store) Tables(ctx context.Context) ([]string, error) {
	q := `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	if s.d.name == "sqlite" {
		q = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	}
	var out []string
	err := s.read(ctx, "tables", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	return out, err
}

// Preload bulk-inserts accounts and devices as preload does.
func Preload(tb testing.TB, s *Store, accounts, devices int) { preload(tb, s, accounts, devices) }

// PreloadWith bulk-inserts accounts and devices as preloadWith does.
func PreloadWith(tb testing.TB, s *Store, accounts, devices int, device func(n int, d *store.Device)) {
	preloadWith(tb, s, accounts, devices, device)
}

// SetScrub turns EraseAccount's scrub on or off, for benchmarks that
// compare its cost.
func (s *Store) SetScrub(on bool) { s.noScrub = !on }
