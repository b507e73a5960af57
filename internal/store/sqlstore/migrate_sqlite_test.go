package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestSQLiteKeysNotNullMigration fills every table of a version-9 SQLite
// database, applies 00010 (which rebuilds sixteen tables) and checks that
// every row, column, default, foreign key, index and trigger survived, that
// the rebuilt keys refuse NULL, and that foreign keys still point at the
// rebuilt tables.
func TestSQLiteKeysNotNullMigration(t *testing.T) {
	ctx := t.Context()
	db := openRawSQLite(t, filepath.Join(t.TempDir(), "keys.db"))
	p := newProvider(t, goose.DialectSQLite3, "sqlite", db)
	if _, err := p.UpTo(ctx, 9); err != nil {
		t.Fatalf("migrate to 9: %v", err)
	}
	fill(t, db)
	before := snapshotSQLite(t, db)
	if _, err := p.UpTo(ctx, 10); err != nil {
		t.Fatalf("migrate to 10: %v", err)
	}
	after := snapshotSQLite(t, db)

	if !slices.Equal(slices.Sorted(maps.Keys(before.tables)), slices.Sorted(maps.Keys(after.tables))) {
		t.Fatalf("tables: got %v, want %v", slices.Sorted(maps.Keys(after.tables)), slices.Sorted(maps.Keys(before.tables)))
	}
	rebuilt := 0
	for name, b := range before.tables {
		a := after.tables[name]
		if !reflect.DeepEqual(a.rows, b.rows) {
			t.Errorf("%s rows: got %v, want %v", name, a.rows, b.rows)
		}
		if !reflect.DeepEqual(a.foreignKeys, b.foreignKeys) {
			t.Errorf("%s foreign keys: got %v, want %v", name, a.foreignKeys, b.foreignKeys)
		}
		if len(a.columns) != len(b.columns) {
			t.Errorf("%s columns: got %v, want %v", name, a.columns, b.columns)
			continue
		}
		changed := false
		for i, bc := range b.columns {
			ac := a.columns[i]
			if bc.pk > 0 && !bc.notNull && ac.notNull {
				changed = true
				bc.notNull = true // the one change 00010 makes
			}
			if ac != bc {
				t.Errorf("%s column %d: got %+v, want %+v", name, i, ac, bc)
			}
		}
		if changed {
			rebuilt++
		}
	}
	if rebuilt != 16 {
		t.Errorf("tables whose key became NOT NULL: got %d, want 16", rebuilt)
	}
	if !reflect.DeepEqual(after.objects, before.objects) {
		t.Errorf("indexes and triggers:\n got  %v\n want %v", after.objects, before.objects)
	}

	// The keys refuse NULL.
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, status, created_at) VALUES (NULL, 'active', 0)`); err == nil ||
		!strings.Contains(err.Error(), "NOT NULL") {
		t.Errorf("insert an account with a NULL id: got %v, want a NOT NULL constraint error", err)
	}
	// Foreign keys point at the rebuilt tables: a cascade still runs, a
	// dangling reference is refused, and the closed_at trigger fires.
	if _, err := db.ExecContext(ctx, `DELETE FROM accounts WHERE id = 'k'`); err == nil {
		t.Errorf("delete an account that has a device: got nil, want a foreign key error")
	}
	mustExec(t, db, `DELETE FROM devices WHERE account_id = 'k'`)
	mustExec(t, db, `DELETE FROM accounts WHERE id = 'k'`)
	for _, tbl := range []string{"tokens", "reset_tokens", "codes", "export_tokens", "inbox", "pending_contact_changes", "policy_acceptances"} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+tbl).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after deleting its account: got %d rows, %v, want 0 (ON DELETE CASCADE)", tbl, n, err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO tokens (hash, account_id, created_at, expires_at) VALUES (x'02', 'nobody', 0, 0)`); err == nil {
		t.Errorf("token of an unknown account: got nil, want a foreign key error")
	}
	mustExec(t, db, `INSERT INTO accounts (id, status, created_at) VALUES ('c', 'closed', 0)`)
	var closed sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT closed_at FROM accounts WHERE id = 'c'`).Scan(&closed); err != nil || !closed.Valid {
		t.Errorf("closed_at of a closed account: got %v, %v, want set by the trigger", closed, err)
	}
}

// TestSQLiteOpenMigratesFilledDatabase opens a filled version-9 SQLite
// database with OpenSQLite, which applies 00010 and later migrations on
// the store's own writer connection.
func TestSQLiteOpenMigratesFilledDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db := openRawSQLite(t, path)
	if _, err := newProvider(t, goose.DialectSQLite3, "sqlite", db).UpTo(t.Context(), 9); err != nil {
		t.Fatalf("migrate to 9: %v", err)
	}
	fill(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := storetest.OpenSQLiteAt(t, path, storetest.DefaultPool())
	a, err := s.Account(t.Context(), "k")
	if err != nil || a.Status != "k" {
		t.Fatalf("account after migration: got %+v, %v, want the filled row", a, err)
	}
}

// fill inserts one row into every table of db that is empty, with the
// value 'k' in every TEXT column, so that every foreign key finds its
// parent row.
func fill(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := t.Context()
	mustExec(t, db, `PRAGMA foreign_keys = OFF`)
	defer mustExec(t, db, `PRAGMA foreign_keys = ON`)
	for name, tbl := range snapshotSQLite(t, db).tables {
		if len(tbl.rows) > 0 || name == "goose_db_version" {
			continue
		}
		var cols, vals []string
		for _, c := range tbl.columns {
			cols = append(cols, c.name)
			switch c.typ {
			case "TEXT":
				vals = append(vals, "'k'")
			case "BLOB":
				vals = append(vals, "x'01'")
			default:
				vals = append(vals, "1")
			}
		}
		q := fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s)`, name, strings.Join(cols, ", "), strings.Join(vals, ", "))
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var bad int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("foreign key check after fill: got %d, %v, want 0", bad, err)
	}
}

type sqliteColumn struct {
	name, typ string
	notNull   bool
	dflt      sql.NullString
	pk        int
}

type sqliteTable struct {
	columns     []sqliteColumn
	foreignKeys [][]string // one per reference: from, table, to, on_update, on_delete
	rows        [][]any
}

type sqliteSnapshot struct {
	tables  map[string]sqliteTable
	objects map[string]string // "index NAME" or "trigger NAME" to its SQL
}

// snapshotSQLite reads every table of db with its columns, foreign keys
// and rows, and every index and trigger.
func snapshotSQLite(t *testing.T, db *sql.DB) sqliteSnapshot {
	t.Helper()
	ctx := t.Context()
	s := sqliteSnapshot{tables: map[string]sqliteTable{}, objects: map[string]string{}}
	for _, r := range queryAll(t, ctx, db, `SELECT type, name, coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'`) {
		typ, name := r[0].(string), r[1].(string)
		if typ != "table" {
			s.objects[typ+" "+name] = r[2].(string)
			continue
		}
		var tbl sqliteTable
		for _, c := range queryAll(t, ctx, db, `SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid`, name) {
			col := sqliteColumn{name: c[0].(string), typ: c[1].(string), notNull: c[2].(int64) == 1, pk: int(c[4].(int64))}
			if c[3] != nil {
				col.dflt = sql.NullString{String: c[3].(string), Valid: true}
			}
			tbl.columns = append(tbl.columns, col)
		}
		for _, fk := range queryAll(t, ctx, db, `SELECT "from", "table", "to", on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq`, name) {
			var ref []string
			for _, v := range fk {
				ref = append(ref, fmt.Sprint(v))
			}
			tbl.foreignKeys = append(tbl.foreignKeys, ref)
		}
		if name != "goose_db_version" {
			tbl.rows = queryAll(t, ctx, db, `SELECT * FROM `+name+` ORDER BY 1`)
		}
		s.tables[name] = tbl
	}
	return s
}

// queryAll returns every row of q as a slice of values.
func queryAll(t *testing.T, ctx context.Context, db *sql.DB, q string, args ...any) [][]any {
	t.Helper()
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
