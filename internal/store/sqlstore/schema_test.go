package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// Type equivalence between the engines.
//
// SQLite takes a column's declared type as free text and derives an
// affinity from it; PostgreSQL enforces its types. The schema agrees when
// every column of one engine has a counterpart on the other that stores the
// same values, which this table spells out, pair by pair. A pair that is
// not listed is a disagreement, including a type this table does not know:
// add a pair here, with its reason, only when the two really hold the same
// values.
//
// The SQLite side is the declared type, upper-cased, except for a rowid
// alias: a rowid table's single-column PRIMARY KEY declared exactly
// INTEGER is the table's 64-bit rowid, which SQLite never lets be NULL.
// It appears here as "INTEGER PRIMARY KEY".
var typeEquivalence = []struct {
	sqlite, postgres string
	why              string
}{
	{"TEXT", "text", "strings: record ids, names, netip addresses, JSON lists"},
	{"BLOB", "bytea", "bytes: sealed values, wrapped keys, hashes, blind indexes"},
	{"BIGINT", "bigint", "64-bit integers: unix seconds, address offsets, sequence numbers"},
	{"INTEGER", "integer", "32-bit integers (counts, versions); the declared width matches, although SQLite would store 64 bits"},
	{"BOOLEAN", "boolean", "flags; SQLite stores 0 and 1 (numeric affinity)"},
	{"INTEGER PRIMARY KEY", "bigint", "a rowid alias is 64 bits: the counterpart of an identity or BIGINT key"},
	{"INTEGER PRIMARY KEY", "integer", "SQLite spells a rowid alias only as INTEGER, so it cannot declare the narrower width: used for single-row tables (id = 1)"},
}

// schemaIgnored lists tables outside the schema the migrations define.
var schemaIgnored = map[string]string{
	"goose_db_version": "goose's own bookkeeping, created by goose in each dialect's native types",
}

// knownDisagreements lists the disagreements that released migrations
// introduced. Migrations are append-only, so these stay in the history:
// each is expected exactly from the version that introduced it (from)
// until the version that resolved it (fixed), and nowhere else. A
// disagreement not listed here fails the test, and so does a listed one
// that does not occur as listed.
var knownDisagreements = func() []knownDisagreement {
	var out []knownDisagreement
	// SQLite let a rowid table's non-INTEGER PRIMARY KEY be NULL; the
	// SQLite migration 00010 rebuilt those tables with NOT NULL keys.
	for _, k := range []struct {
		col  string
		from int64
	}{
		{"accounts.id", 1}, {"tokens.hash", 1}, {"reset_tokens.hash", 1},
		{"staff.id", 3}, {"staff_tokens.hash", 3}, {"audit_log.seq", 3},
		{"legal_holds.id", 4},
		{"disclosures.id", 5}, {"processors.id", 5},
		{"privacy_requests.id", 6}, {"export_tokens.hash", 6}, {"erasure_tombstones.request_id", 6},
		{"notice_runs.id", 7}, {"inbox.id", 7}, {"policy_documents.id", 7}, {"retention_runs.id", 7},
	} {
		out = append(out, knownDisagreement{k.col + ": sqlite allows NULL, postgres does not", k.from, 10})
	}
	return out
}()

type knownDisagreement struct {
	diff        string // as compareSchemas reports it
	from, fixed int64  // migration versions
}

// expectedDisagreements returns the known disagreements after version v,
// sorted.
func expectedDisagreements(v int64) []string {
	var out []string
	for _, k := range knownDisagreements {
		if k.from <= v && v < k.fixed {
			out = append(out, k.diff)
		}
	}
	slices.Sort(out)
	return out
}

// column is one column as the agreement test sees it.
type column struct {
	typ     string // SQLite: see typeEquivalence; PostgreSQL: information_schema data_type
	notNull bool   // the engine refuses NULL
}

// schema maps table name to column name to column.
type schema map[string]map[string]column

func equivalentTypes(sqliteType, pgType string) bool {
	for _, e := range typeEquivalence {
		if e.sqlite == sqliteType && e.postgres == pgType {
			return true
		}
	}
	return false
}

// TestSchemaAgreement applies the SQLite and the PostgreSQL migrations one
// version at a time, side by side, and after each version checks that both
// engines have the same tables with the same columns, equivalent types
// (typeEquivalence) and the same nullability. Both dialects must have the
// same migration versions, so that each step is comparable. Disagreements
// that released migrations made, and later ones resolved, are listed in
// knownDisagreements.
func TestSchemaAgreement(t *testing.T) {
	ctx := t.Context()
	pgURL := storetest.PostgresURL(t)
	lite := openRawSQLite(t, filepath.Join(t.TempDir(), "schema.db"))
	pg := openRawPostgres(t, pgURL)

	sp := newProvider(t, goose.DialectSQLite3, "sqlite", lite)
	pp := newProvider(t, goose.DialectPostgres, "postgres", pg)
	sv, pv := sourceNames(sp), sourceNames(pp)
	if !slices.Equal(sv, pv) {
		t.Fatalf("migration files differ between engines:\n sqlite:   %v\n postgres: %v\nwant the same versions and names (a change needed on one engine only gets a file on the other that says so)", sv, pv)
	}

	for i, name := range sv {
		rs, err := sp.UpByOne(ctx)
		if err != nil {
			t.Fatalf("sqlite: apply %s: %v", name, err)
		}
		rp, err := pp.UpByOne(ctx)
		if err != nil {
			t.Fatalf("postgres: apply %s: %v", name, err)
		}
		version := sp.ListSources()[i].Version
		if rs.Source.Version != version || rp.Source.Version != version {
			t.Fatalf("step %d: applied sqlite %d and postgres %d, want %d", i, rs.Source.Version, rp.Source.Version, version)
		}
		ls, err := sqliteSchema(ctx, lite)
		if err != nil {
			t.Fatalf("after %s: read sqlite schema: %v", name, err)
		}
		ps, err := postgresSchema(ctx, pg)
		if err != nil {
			t.Fatalf("after %s: read postgres schema: %v", name, err)
		}
		got, want := compareSchemas(ls, ps), expectedDisagreements(version)
		for _, d := range got {
			if !slices.Contains(want, d) {
				t.Errorf("after %s: %s", name, d)
			}
		}
		for _, d := range want {
			if !slices.Contains(got, d) {
				t.Errorf("after %s: knownDisagreements lists %q, which does not occur", name, d)
			}
		}
	}
	for _, p := range []*goose.Provider{sp, pp} {
		if _, err := p.UpByOne(ctx); !errors.Is(err, goose.ErrNoNextVersion) {
			t.Fatalf("after the last migration: got %v, want ErrNoNextVersion", err)
		}
	}
	last := sp.ListSources()[len(sv)-1].Version
	for _, k := range knownDisagreements {
		if k.fixed > last {
			t.Errorf("knownDisagreements: %q is fixed by version %d, which does not exist (the last is %d)", k.diff, k.fixed, last)
		}
	}
}

// TestCompareSchemas checks that compareSchemas reports each kind of
// disagreement, so that TestSchemaAgreement can fail.
func TestCompareSchemas(t *testing.T) {
	base := func() (schema, schema) {
		return schema{"t": {
				"id":   {"TEXT", true},
				"n":    {"BIGINT", false},
				"seq":  {"INTEGER PRIMARY KEY", true},
				"flag": {"BOOLEAN", true},
			}}, schema{"t": {
				"id":   {"text", true},
				"n":    {"bigint", false},
				"seq":  {"bigint", true},
				"flag": {"boolean", true},
			}}
	}
	cases := []struct {
		name   string
		change func(l, p schema)
		want   string // a substring of the one difference; "" for none
	}{
		{"agree", func(l, p schema) {}, ""},
		{"table only in sqlite", func(l, p schema) { l["u"] = map[string]column{"x": {"TEXT", true}} }, "table u exists only in sqlite"},
		{"table only in postgres", func(l, p schema) { p["u"] = map[string]column{"x": {"text", true}} }, "table u exists only in postgres"},
		{"column only in sqlite", func(l, p schema) { l["t"]["x"] = column{"TEXT", false} }, "column t.x exists only in sqlite"},
		{"column only in postgres", func(l, p schema) { p["t"]["x"] = column{"text", false} }, "column t.x exists only in postgres"},
		{"type", func(l, p schema) { p["t"]["n"] = column{"integer", false} }, "t.n: sqlite BIGINT and postgres integer are not equivalent"},
		{"unknown type", func(l, p schema) { l["t"]["n"] = column{"NUMERIC", false} }, "t.n: sqlite NUMERIC and postgres bigint"},
		{"nullability", func(l, p schema) { l["t"]["id"] = column{"TEXT", false} }, "t.id: sqlite allows NULL, postgres does not"},
		{"nullability other way", func(l, p schema) { l["t"]["n"] = column{"BIGINT", true} }, "t.n: postgres allows NULL, sqlite does not"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, p := base()
			tc.change(l, p)
			got := compareSchemas(l, p)
			switch {
			case tc.want == "" && len(got) != 0:
				t.Fatalf("got %q, want no difference", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Fatalf("got %q, want one difference containing %q", got, tc.want)
			}
		})
	}
}

// compareSchemas returns every disagreement between the SQLite schema l
// and the PostgreSQL schema p, sorted.
func compareSchemas(l, p schema) []string {
	var out []string
	for tbl, lcols := range l {
		pcols, ok := p[tbl]
		if !ok {
			out = append(out, fmt.Sprintf("table %s exists only in sqlite", tbl))
			continue
		}
		for name, lc := range lcols {
			pc, ok := pcols[name]
			if !ok {
				out = append(out, fmt.Sprintf("column %s.%s exists only in sqlite", tbl, name))
				continue
			}
			if !equivalentTypes(lc.typ, pc.typ) {
				out = append(out, fmt.Sprintf("%s.%s: sqlite %s and postgres %s are not equivalent (see typeEquivalence)", tbl, name, lc.typ, pc.typ))
			}
			switch {
			case !lc.notNull && pc.notNull:
				out = append(out, fmt.Sprintf("%s.%s: sqlite allows NULL, postgres does not", tbl, name))
			case lc.notNull && !pc.notNull:
				out = append(out, fmt.Sprintf("%s.%s: postgres allows NULL, sqlite does not", tbl, name))
			}
		}
		for name := range pcols {
			if _, ok := lcols[name]; !ok {
				out = append(out, fmt.Sprintf("column %s.%s exists only in postgres", tbl, name))
			}
		}
	}
	for tbl := range p {
		if _, ok := l[tbl]; !ok {
			out = append(out, fmt.Sprintf("table %s exists only in postgres", tbl))
		}
	}
	slices.Sort(out)
	return out
}

// sqliteSchema reads the tables of the main database of db.
func sqliteSchema(ctx context.Context, db *sql.DB) (schema, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, wr FROM pragma_table_list
		WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return nil, err
	}
	withoutRowid := map[string]bool{}
	for rows.Next() {
		var name string
		var wr bool
		if err := rows.Scan(&name, &wr); err != nil {
			rows.Close()
			return nil, err
		}
		if _, skip := schemaIgnored[name]; !skip {
			withoutRowid[name] = wr
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	out := schema{}
	for tbl, wr := range withoutRowid {
		cols, err := sqliteColumns(ctx, db, tbl, wr)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", tbl, err)
		}
		out[tbl] = cols
	}
	return out, nil
}

// sqliteColumns reads the columns of table tbl; wr reports whether it is a
// WITHOUT ROWID table (whose key columns are NOT NULL).
func sqliteColumns(ctx context.Context, db *sql.DB, tbl string, wr bool) (map[string]column, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", pk FROM pragma_table_info(?)`, tbl)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type info struct {
		typ     string
		notNull bool
		pk      int
	}
	cols := map[string]info{}
	keys := 0
	for rows.Next() {
		var name string
		var c info
		if err := rows.Scan(&name, &c.typ, &c.notNull, &c.pk); err != nil {
			return nil, err
		}
		c.typ = strings.ToUpper(c.typ)
		if c.pk > 0 {
			keys++
		}
		cols[name] = c
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[string]column{}
	for name, c := range cols {
		col := column{typ: c.typ, notNull: c.notNull}
		switch {
		case wr && c.pk > 0:
			col.notNull = true
		case !wr && keys == 1 && c.pk == 1 && c.typ == "INTEGER":
			col = column{typ: "INTEGER PRIMARY KEY", notNull: true}
		}
		out[name] = col
	}
	return out, nil
}

// postgresSchema reads the base tables of db's current schema.
func postgresSchema(ctx context.Context, db *sql.DB) (schema, error) {
	rows, err := db.QueryContext(ctx, `SELECT c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES'
		FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := schema{}
	for rows.Next() {
		var tbl, name, typ string
		var nullable bool
		if err := rows.Scan(&tbl, &name, &typ, &nullable); err != nil {
			return nil, err
		}
		if _, skip := schemaIgnored[tbl]; skip {
			continue
		}
		if out[tbl] == nil {
			out[tbl] = map[string]column{}
		}
		out[tbl][name] = column{typ: typ, notNull: !nullable}
	}
	return out, rows.Err()
}

// newProvider returns a goose provider for dialect's embedded migrations
// on db.
func newProvider(t *testing.T, d goose.Dialect, dialect string, db *sql.DB) *goose.Provider {
	t.Helper()
	fsys, err := sqlstore.Migrations(dialect)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(d, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatalf("%s: goose provider: %v", dialect, err)
	}
	return p
}

// sourceNames returns the file names of p's migrations, in order.
func sourceNames(p *goose.Provider) []string {
	var out []string
	for _, s := range p.ListSources() {
		out = append(out, filepath.Base(s.Path))
	}
	return out
}

// openRawSQLite opens the SQLite file at path as the store does (foreign
// keys on, one connection, so that connection-level pragmas a migration
// sets hold for its later statements), closed when t ends.
func openRawSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// openRawPostgres opens the PostgreSQL database at url, closed when t ends
// (before the database is dropped).
func openRawPostgres(t *testing.T, url string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return db
}
