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
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
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
					var err error
					if log, err = audit.New(audit.Config{Store: st, Clock: time.Now}); err != nil {
						t.Fatal(err)
					}
					if db, err = sql.Open("sqlite", path); err != nil {
						t.Fatal(err)
					}
				} else {
					url := storetest.PostgresURL(t)
					st := storetest.OpenPostgresAt(t, url, storetest.DefaultPool())
					var err error
					if log, err = audit.New(audit.Config{Store: st, Clock: time.Now}); err != nil {
						t.Fatal(err)
					}
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
				if n, err := log.Verify(ctx, auditor); err != nil || n != 4 {
					t.Fatalf("before tampering: got %d, %v; want 4, nil", n, err)
				}
				if _, err := db.ExecContext(ctx, tc.sql); err != nil {
					t.Fatal(err)
				}
				_, err := log.Verify(ctx, auditor)
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

// TestVerifyAfterRetention prunes the oldest entries through the store's
// retention sweep and checks that the rest still verifies from the
// recorded anchor, that removing one more entry is caught, and that a
// chain pruned to nothing continues from the anchor.
func TestVerifyAfterRetention(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.OpenSQL(t, storetest.DefaultPool())
			old := time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)
			now := old
			log := newLog(t, st, func() time.Time { return now })
			for i := 0; i < 5; i++ {
				if err := log.Record(ctx, "stf_1", "admin", "account.view", "acc_x", "old"); err != nil {
					t.Fatal(err)
				}
			}
			now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := 0; i < 3; i++ {
				if err := log.Record(ctx, "stf_1", "admin", "account.view", "acc_x", "recent"); err != nil {
					t.Fatal(err)
				}
			}
			cutoff := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
			n, err := st.SweepBatch(ctx, store.SweepAudit, cutoff, now, 3)
			if err != nil || n != 3 {
				t.Fatalf("first batch: got %d, %v; want 3", n, err)
			}
			if n, err := log.Verify(ctx, auditor); err != nil || n != 5 {
				t.Fatalf("after pruning 3: got %d, %v; want 5 entries verified", n, err)
			}
			if n, err := st.SweepBatch(ctx, store.SweepAudit, cutoff, now, 100); err != nil || n != 2 {
				t.Fatalf("second batch: got %d, %v; want 2", n, err)
			}
			if seq, _, err := st.AuditAnchor(ctx); err != nil || seq != 5 {
				t.Fatalf("anchor: got %d, %v; want 5", seq, err)
			}
			// The three recent entries and the record of the first check.
			if n, err := log.Verify(ctx, auditor); err != nil || n != 4 {
				t.Fatalf("after pruning 5: got %d, %v; want 4", n, err)
			}
			// Prune everything, then keep writing: the chain continues.
			if _, err := st.SweepBatch(ctx, store.SweepAudit, now.Add(time.Hour), now, 100); err != nil {
				t.Fatal(err)
			}
			if err := log.Record(ctx, "stf_1", "admin", "account.view", "acc_y", "after"); err != nil {
				t.Fatalf("append after a full prune: %v", err)
			}
			if n, err := log.Verify(ctx, auditor); err != nil || n != 1 {
				t.Fatalf("after a full prune: got %d, %v; want 1", n, err)
			}
		})
	}
}

// TestReadAndVerifyAreStaffActions: reading and checking the log need
// staff.ActAuditView and are recorded in the log themselves.
func TestReadAndVerifyAreStaffActions(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t, storetest.DefaultPool())
	log := newLog(t, st, time.Now)
	for i := 0; i < 3; i++ {
		if err := log.Record(ctx, "stf_1", "admin", "account.view", "acc_x", "viewed"); err != nil {
			t.Fatal(err)
		}
	}
	support := staff.Principal{ID: "stf_s", Role: staff.RoleSupport}
	if _, err := log.Read(ctx, support, -1, 10); !errs.Is(err, errs.Forbidden) {
		t.Fatalf("support reads: got %v, want Forbidden", err)
	}
	if _, err := log.Verify(ctx, staff.Principal{}); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("nobody verifies: got %v, want Unauthenticated", err)
	}
	p, err := log.Read(ctx, auditor, -1, 2)
	if err != nil || p.Last != 3 || len(p.Entries) != 2 || p.Entries[0].Seq != 2 {
		t.Fatalf("newest page: got %+v, %v; want entries 2 and 3 of 3", p, err)
	}
	if n, err := log.Verify(ctx, auditor); err != nil || n != 4 {
		t.Fatalf("verify: got %d, %v; want 4 (three entries and the read)", n, err)
	}
	if _, err := log.Head(ctx, support); !errs.Is(err, errs.Forbidden) {
		t.Fatalf("support reads the head: got %v, want Forbidden", err)
	}
	if h, err := log.Head(ctx, auditor); err != nil || h.Seq != 5 {
		t.Fatalf("head: got %v, %v; want seq 5 (three entries, the read and the check)", h, err)
	}
	es, err := log.About(ctx, auditor, audit.Subject, 10)
	if err != nil || len(es) != 3 || es[0].Actor != auditor.ID || es[0].Detail != "read the head, seq 5" ||
		es[1].Detail != "verified 4 entries: intact" || es[2].Detail != "viewed entries 2 to 3" {
		t.Fatalf("entries about the log: got %+v, %v; want the head read, the check, then the read", es, err)
	}
}

// newLog returns a Log over st with clock.
func newLog(t *testing.T, st store.AuditStore, clock func() time.Time) *audit.Log {
	t.Helper()
	log, err := audit.New(audit.Config{Store: st, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// TestReadNamesStaff: a page of the log names its staff actors by their
// work email; the System, the operator and unknown ids get none.
func TestReadNamesStaff(t *testing.T) {
	ctx := context.Background()
	st := storetest.Backends()[0].Open(t)
	if err := st.CreateStaff(ctx, &store.Staff{ID: "stf_po", Email: "dpo@staff.example", Role: staff.RolePrivacyOfficer,
		PasswordHash: "x", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(audit.Config{Store: st, Staff: st, Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, actor := range []string{"stf_po", staff.SystemID, "stf_gone"} {
		if err := log.Record(ctx, actor, staff.RolePrivacyOfficer, staff.ActPrivacyView, "acc_x", "viewed"); err != nil {
			t.Fatal(err)
		}
	}
	page, err := log.Read(ctx, staff.Principal{ID: "stf_po", Role: staff.RolePrivacyOfficer}, -1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Emails) != 1 || page.Emails["stf_po"] != "dpo@staff.example" {
		t.Fatalf("emails: got %v, want only stf_po's", page.Emails)
	}
	if got := staff.RoleTitle(staff.RolePrivacyOfficer); got != "Privacy officer" {
		t.Errorf("RoleTitle: got %q", got)
	}
}
