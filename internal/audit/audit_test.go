package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestTamperDetected writes a chain through the store, then changes,
// deletes or reorders rows behind its back with plain SQL, as someone with
// database access would, and checks that Verify names the break.
func TestTamperDetected(t *testing.T) {
	tampers := []struct {
		name string
		sql  string
		kind auditchain.Kind
	}{
		{"changed detail", `UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 2`, auditchain.KindHash},
		{"changed actor", `UPDATE audit_log SET actor = 'stf_other' WHERE seq = 3`, auditchain.KindHash},
		{"deleted entry", `DELETE FROM audit_log WHERE seq = 2`, auditchain.KindSeq},
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, tc := range tampers {
			t.Run(engine+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				var db *sql.DB
				var log *audit.Log
				if engine == "sqlite" {
					path := filepath.Join(t.TempDir(), "n.db")
					st := storetest.OpenSQLiteAt(t, path, storetest.DefaultPool())
					log = audit.New(st, time.Now)
					var err error
					if db, err = sql.Open("sqlite", path); err != nil {
						t.Fatal(err)
					}
				} else {
					url := storetest.PostgresURL(t)
					st := storetest.OpenPostgresAt(t, url, storetest.DefaultPool())
					log = audit.New(st, time.Now)
					var err error
					if db, err = sql.Open("pgx", url); err != nil {
						t.Fatal(err)
					}
				}
				t.Cleanup(func() { db.Close() })
				for i := 0; i < 4; i++ {
					if err := log.Record(ctx, "stf_1", "privacy_officer", "privacy.view", "acc_x", "viewed request"); err != nil {
						t.Fatal(err)
					}
				}
				if n, err := log.Verify(ctx); err != nil || n != 4 {
					t.Fatalf("before tampering: got %d, %v; want 4, nil", n, err)
				}
				if _, err := db.ExecContext(ctx, tc.sql); err != nil {
					t.Fatal(err)
				}
				_, err := log.Verify(ctx)
				var be *auditchain.BreakError
				if !errors.As(err, &be) {
					t.Fatalf("got %v, want a *auditchain.BreakError", err)
				}
				if be.Kind != tc.kind {
					t.Fatalf("got break kind %v, want %v", be.Kind, tc.kind)
				}
			})
		}
	}
}
