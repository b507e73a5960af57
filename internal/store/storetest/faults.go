package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// FaultMessage is the text of the error a Fault raises.
const FaultMessage = "nitronet injected fault"

// A Fault makes one kind of statement fail inside whatever transaction
// runs it: a trigger on Table, created by InjectFault on the real
// database, raises an error (FaultMessage) after each Event on a row that
// meets When. The statement fails, and the store's transaction with it, as
// it would on a full disk or a lost connection; nothing in the code under
// test knows.
type Fault struct {
	Table string // the table the statement changes
	Event string // "INSERT", "UPDATE" or "DELETE"
	// When, if not empty, is a condition on the row (NEW for INSERT and
	// UPDATE, OLD for DELETE) in SQL both engines accept.
	When string
}

// IsFault reports whether err comes from a Fault.
func IsFault(err error) bool {
	return err != nil && strings.Contains(err.Error(), FaultMessage)
}

// InjectFault creates f on db, a plain connection to the database of
// engine ("sqlite" or "postgres"), and returns a function that removes
// it. The removal also runs when tb ends. One fault can exist at a time.
func InjectFault(tb testing.TB, engine string, db *sql.DB, f Fault) (remove func()) {
	tb.Helper()
	if !slices.Contains([]string{"INSERT", "UPDATE", "DELETE"}, f.Event) {
		tb.Fatalf("fault on %s: unknown event %q", f.Table, f.Event)
	}
	when := ""
	if f.When != "" {
		when = " WHEN (" + f.When + ")"
	}
	var create, drop []string
	switch engine {
	case "sqlite":
		create = []string{fmt.Sprintf(`CREATE TRIGGER nitronet_fault AFTER %s ON %s FOR EACH ROW%s
			BEGIN SELECT RAISE(ABORT, '%s'); END`, f.Event, f.Table, when, FaultMessage)}
		drop = []string{`DROP TRIGGER IF EXISTS nitronet_fault`}
	case "postgres":
		create = []string{
			fmt.Sprintf(`CREATE FUNCTION nitronet_fault() RETURNS trigger LANGUAGE plpgsql AS
				$$ BEGIN RAISE EXCEPTION '%s'; END $$`, FaultMessage),
			fmt.Sprintf(`CREATE TRIGGER nitronet_fault AFTER %s ON %s FOR EACH ROW%s
				EXECUTE FUNCTION nitronet_fault()`, f.Event, f.Table, when),
		}
		drop = []string{
			fmt.Sprintf(`DROP TRIGGER IF EXISTS nitronet_fault ON %s`, f.Table),
			`DROP FUNCTION IF EXISTS nitronet_fault()`,
		}
	default:
		tb.Fatalf("fault: unknown engine %q", engine)
	}
	exec := func(qs []string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, q := range qs {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}
	if err := exec(create); err != nil {
		tb.Fatalf("inject fault: %v", err)
	}
	removed := false
	remove = func() {
		tb.Helper()
		if removed {
			return
		}
		removed = true
		if err := exec(drop); err != nil {
			tb.Errorf("remove fault: %v", err)
		}
	}
	tb.Cleanup(remove)
	return remove
}

// Dump returns every row of every table of db, a plain connection to the
// database of engine, keyed by table name and sorted, so that two dumps
// are equal exactly when the data is. It is how a test proves that a
// failed operation changed nothing.
func Dump(tb testing.TB, engine string, db *sql.DB) map[string][][]any {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	if engine == "sqlite" {
		q = `SELECT name FROM sqlite_schema WHERE type = 'table'`
	}
	tables, err := queryRows(ctx, db, q)
	if err != nil {
		tb.Fatalf("dump: list tables: %v", err)
	}
	out := map[string][][]any{}
	for _, t := range tables {
		name := fmt.Sprint(t[0])
		rows, err := queryRows(ctx, db, `SELECT * FROM `+name)
		if err != nil {
			tb.Fatalf("dump %s: %v", name, err)
		}
		slices.SortFunc(rows, func(a, b []any) int { return strings.Compare(fmt.Sprintf("%q", a), fmt.Sprintf("%q", b)) })
		out[name] = rows
	}
	return out
}

// queryRows returns every row of q.
func queryRows(ctx context.Context, db *sql.DB, q string) ([][]any, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}
