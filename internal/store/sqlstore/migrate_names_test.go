package sqlstore_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/nitronet/nitronet/internal/store/storetest"
)

// namesMigration is the version of migration NNNNN_device_names_key_age.
const namesMigration = 25

// TestDeviceNamesMigration: on a database whose devices have duplicate
// names, sealed and in plaintext, the names migration keeps every device
// and its name as it was, sets key_created_at to created_at and leaves
// every device without a name index (the server indexes them, see
// devices.Service.IndexNames); then a name index is unique per account,
// and devices without one do not collide; on both engines.
func TestDeviceNamesMigration(t *testing.T) {
	for _, eng := range []struct {
		name    string
		dialect goose.Dialect
		open    func(t *testing.T) *sql.DB
	}{
		{"sqlite", goose.DialectSQLite3, func(t *testing.T) *sql.DB {
			return openRawSQLite(t, filepath.Join(t.TempDir(), "names.db"))
		}},
		{"postgres", goose.DialectPostgres, func(t *testing.T) *sql.DB { return openRawPostgres(t, storetest.PostgresURL(t)) }},
	} {
		t.Run(eng.name, func(t *testing.T) {
			ctx := t.Context()
			db := eng.open(t)
			p := newProvider(t, eng.dialect, eng.name, db)
			if _, err := p.UpTo(ctx, namesMigration-1); err != nil {
				t.Fatalf("migrate to %d: %v", namesMigration-1, err)
			}
			for _, a := range []string{"acc-a", "acc-b"} {
				mustExec(t, db, fmt.Sprintf(`INSERT INTO accounts (id, status, created_at) VALUES ('%s', 'active', 1)`, a))
			}
			devs := []struct{ id, account, name, sealed string }{
				{"d1", "acc-a", "", "sealed laptop"}, {"d2", "acc-a", "Laptop", ""}, {"d3", "acc-a", "laptop", ""},
				{"d4", "acc-a", "", "sealed laptop"}, {"d5", "acc-b", "laptop", ""},
			}
			for i, d := range devs {
				sealed := "NULL"
				if d.sealed != "" {
					sealed = "'" + d.sealed + "'"
					if eng.name == "postgres" {
						sealed += "::bytea"
					}
				}
				mustExec(t, db, fmt.Sprintf(`INSERT INTO devices (id, account_id, name, name_sealed, public_key, addr_offset, ipv4, ipv6, created_at, updated_at)
					VALUES ('%s', '%s', '%s', %s, 'key%d', %d, '100.64.0.%d', 'fd00::%d', %d, %d)`,
					d.id, d.account, d.name, sealed, i, i, i+2, i+2, 1000+i, 5000+i))
			}
			if _, err := p.UpTo(ctx, namesMigration); err != nil {
				t.Fatalf("migrate to %d: %v", namesMigration, err)
			}
			rows, err := db.QueryContext(ctx, `SELECT id, name, name_sealed, key_created_at, created_at, name_index FROM devices ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			for rows.Next() {
				var id, name string
				var sealed, ix []byte
				var keyAt, created int64
				if err := rows.Scan(&id, &name, &sealed, &keyAt, &created, &ix); err != nil {
					t.Fatal(err)
				}
				d := devs[i]
				i++
				if id != d.id || name != d.name || string(sealed) != d.sealed || keyAt != created || ix != nil {
					t.Errorf("after %d: %s name %q sealed %q key_created_at %d created_at %d name_index %x; want %+v, key time = creation, no index",
						namesMigration, id, name, sealed, keyAt, created, ix, d)
				}
			}
			rows.Close()
			if i != len(devs) {
				t.Fatalf("after %d: %d devices, want %d", namesMigration, i, len(devs))
			}
			set := func(id, ix string) error {
				q := `UPDATE devices SET name_index = $1 WHERE id = $2`
				_, err := db.ExecContext(ctx, q, []byte(ix), id)
				return err
			}
			for _, c := range []struct {
				id, ix string
				ok     bool
			}{{"d1", "ix", true}, {"d5", "ix", true}, {"d4", "ix", false}, {"d4", "other", true}} {
				if err := set(c.id, c.ix); (err == nil) != c.ok {
					t.Errorf("after %d: name index %q for %s: got %v, want accepted %v", namesMigration, c.ix, c.id, err, c.ok)
				}
			}
		})
	}
}
