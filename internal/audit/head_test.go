package audit_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// auditor is a staff member who may read and verify the log.
var auditor = staff.Principal{ID: "stf_po", Role: staff.RolePrivacyOfficer}

// headFixture is a log of 7 entries, one per day from 2019-01-01, whose
// head was taken after the fifth.
type headFixture struct {
	st   *sqlstore.Store
	db   *sql.DB // a plain connection to the same database
	log  *audit.Log
	head auditchain.Checkpoint
	now  *time.Time
}

func newHeadFixture(t *testing.T, b storetest.Backend) *headFixture {
	t.Helper()
	st, db := b.OpenWithDB(t)
	now := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	log, err := audit.New(audit.Config{Store: st, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	f := &headFixture{st: st, db: db, now: &now, log: log}
	head, err := f.log.Checkpoint(t.Context())
	if err != nil || head.Seq != 0 || head.Hash != nil {
		t.Fatalf("Head of an empty log: got %v, %v, want 0:", head, err)
	}
	for i := range 7 {
		if err := f.log.Record(t.Context(), "stf_1", "admin", "account.view", fmt.Sprintf("acc_%d", i), "viewed"); err != nil {
			t.Fatal(err)
		}
		now = now.Add(24 * time.Hour)
		if i == 4 {
			if f.head, err = f.log.Checkpoint(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

func (f *headFixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.db.ExecContext(t.Context(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// sweep deletes, through retention, the entries written before day n.
func (f *headFixture) sweep(t *testing.T, days int) {
	t.Helper()
	cutoff := time.Date(2019, 1, 1+days, 0, 0, 0, 0, time.UTC)
	if _, err := f.st.SweepBatch(t.Context(), store.SweepAudit, cutoff, cutoff, 100); err != nil {
		t.Fatal(err)
	}
}

// rewrite changes entry seq's subject and recomputes the hashes and links
// of it and every later entry, as someone who can write the whole table
// would: the chain still verifies on its own.
func (f *headFixture) rewrite(t *testing.T, seq int64) {
	t.Helper()
	es, err := f.st.AuditEntries(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range es {
		if es[i].Seq < seq {
			continue
		}
		if es[i].Seq == seq {
			es[i].Subject = "acc_hidden"
		} else {
			es[i].PrevHash = es[i-1].Hash
		}
		es[i].Hash = es[i].ComputeHash()
		f.exec(t, `UPDATE audit_log SET subject = $1, prev_hash = $2, hash = $3 WHERE seq = $4`,
			es[i].Subject, es[i].PrevHash, es[i].Hash, es[i].Seq)
	}
	if _, err := f.log.Verify(t.Context(), auditor); err != nil {
		t.Fatalf("the rewritten chain should verify on its own: %v", err)
	}
}

// TestHeadText: the head is the newest entry, in SEQ:HEX form.
func TestHeadText(t *testing.T) {
	f := newHeadFixture(t, storetest.Backends()[0])
	es, err := f.st.AuditEntries(t.Context(), 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("5:%x", es[0].Hash); f.head.String() != want {
		t.Fatalf("head after 5 entries: got %s, want %s", f.head, want)
	}
	head, err := f.log.Checkpoint(t.Context())
	if err != nil || head.Seq != 7 {
		t.Fatalf("head after 7 entries: got %v, %v, want seq 7", head, err)
	}
	// Once retention deleted every entry, the head is its anchor.
	f.sweep(t, 100)
	after, err := f.log.Checkpoint(t.Context())
	if err != nil || after.String() != head.String() {
		t.Fatalf("head after retention deleted everything: got %v, %v, want %v", after, err, head)
	}
}

// TestVerifyHead proves logs against a head taken earlier, after each way
// the log can have been changed since, on both engines.
func TestVerifyHead(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, f *headFixture)
		head   func(t *testing.T, f *headFixture) auditchain.Checkpoint // nil: the fixture's head
		want   audit.Problem                                            // "" for a proof
		code   errs.Code
		kind   auditchain.Kind // of the chain break, if any
		// unrecorded: the log refuses to record the check (its newest
		// entries are gone, see store.AuditStore.AppendAudit).
		unrecorded bool
	}{
		{name: "intact", change: func(*testing.T, *headFixture) {}},
		{name: "current head", change: func(*testing.T, *headFixture) {}, head: func(t *testing.T, f *headFixture) auditchain.Checkpoint {
			h, err := f.log.Checkpoint(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return h
		}},
		{name: "field changed before the head", change: func(t *testing.T, f *headFixture) {
			f.exec(t, `UPDATE audit_log SET detail = 'nothing' WHERE seq = 3`)
		}, want: audit.Tampered, code: errs.Conflict, kind: auditchain.KindHash},
		{name: "field changed after the head", change: func(t *testing.T, f *headFixture) {
			f.exec(t, `UPDATE audit_log SET actor = 'stf_other' WHERE seq = 7`)
		}, want: audit.Tampered, code: errs.Conflict, kind: auditchain.KindHash},
		{name: "entry deleted from the middle", change: func(t *testing.T, f *headFixture) {
			f.exec(t, `DELETE FROM audit_log WHERE seq = 2`)
		}, want: audit.Tampered, code: errs.Conflict, kind: auditchain.KindSeq},
		{name: "rewritten with recomputed hashes", change: func(t *testing.T, f *headFixture) { f.rewrite(t, 3) },
			want: audit.Tampered, code: errs.Conflict, kind: auditchain.KindCheckpoint},
		{name: "rewritten after the head", change: func(t *testing.T, f *headFixture) { f.rewrite(t, 6) }},
		{name: "forged head", change: func(*testing.T, *headFixture) {}, head: func(*testing.T, *headFixture) auditchain.Checkpoint {
			return auditchain.Checkpoint{Seq: 5, Hash: bytes.Repeat([]byte{7}, auditchain.HashSize)}
		}, want: audit.Tampered, code: errs.Conflict, kind: auditchain.KindCheckpoint},
		{name: "entries after the head removed", change: func(t *testing.T, f *headFixture) {
			f.exec(t, `DELETE FROM audit_log WHERE seq > 5`)
		}, want: audit.Truncated, code: errs.Conflict, unrecorded: true},
		{name: "head entry removed", change: func(t *testing.T, f *headFixture) {
			f.exec(t, `DELETE FROM audit_log WHERE seq >= 5`)
		}, want: audit.Truncated, code: errs.Conflict, unrecorded: true},
		{name: "rolled back to an older copy", change: func(t *testing.T, f *headFixture) {
			f.exec(t, `DELETE FROM audit_log WHERE seq > 3`)
			f.exec(t, `UPDATE audit_head SET seq = 3`)
		}, want: audit.RolledBack, code: errs.Conflict},
		{name: "head pruned by retention", change: func(t *testing.T, f *headFixture) { f.sweep(t, 6) },
			want: audit.Pruned, code: errs.Gone},
		{name: "head is retention's anchor", change: func(t *testing.T, f *headFixture) { f.sweep(t, 5) }},
		{name: "everything pruned after the head", change: func(t *testing.T, f *headFixture) { f.sweep(t, 100) },
			want: audit.Pruned, code: errs.Gone},
	}
	for _, b := range storetest.Backends() {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				f := newHeadFixture(t, b)
				tc.change(t, f)
				head := f.head
				if tc.head != nil {
					head = tc.head(t, f)
				}
				before, err := f.log.Checkpoint(ctx)
				if err != nil {
					t.Fatal(err)
				}
				proof, err := f.log.VerifyHead(ctx, auditor, head)
				var he *audit.HeadError
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("got %v, want a proof", err)
				case tc.want == "":
					if proof.Head.String() != head.String() || proof.Current.String() != before.String() || proof.Entries == 0 {
						t.Fatalf("proof: got %+v, want head %v, current %v", proof, head, before)
					}
				case !errors.As(err, &he) || he.Problem != tc.want:
					t.Fatalf("got %v, want a HeadError %q", err, tc.want)
				case errs.CodeOf(err) != tc.code:
					t.Fatalf("code: got %q, want %q (%v)", errs.CodeOf(err), tc.code, err)
				}
				var brk *auditchain.BreakError
				if got := errors.As(err, &brk); got != (tc.kind != "") || (got && brk.Kind != tc.kind) {
					t.Fatalf("chain break: got %v, want kind %q", err, tc.kind)
				}
				// The check itself is recorded, with its outcome.
				last, err := f.st.AuditEntries(ctx, before.Seq, 10)
				if tc.unrecorded {
					if err != nil || len(last) != 0 {
						t.Fatalf("recorded check: got %+v, %v, want none", last, err)
					}
					return
				}
				outcome := "intact"
				if tc.want != "" {
					outcome = string(tc.want)
				}
				if err != nil || len(last) != 1 || last[0].Action != staff.ActAuditView || last[0].Actor != auditor.ID ||
					!strings.HasSuffix(last[0].Detail, fmt.Sprintf("against head %d: %s", head.Seq, outcome)) {
					t.Fatalf("recorded check: got %+v, %v, want one audit.view entry ending %q", last, err, outcome)
				}
			})
		}
	}
}

// TestVerifyHeadNeedsAuditView: only roles that may read the audit log
// may prove it, and a refused attempt records nothing.
func TestVerifyHeadNeedsAuditView(t *testing.T) {
	f := newHeadFixture(t, storetest.Backends()[0])
	for _, role := range staff.Roles() {
		before, _ := f.log.Checkpoint(t.Context())
		_, err := f.log.VerifyHead(t.Context(), staff.Principal{ID: "stf_x", Role: role}, f.head)
		after, _ := f.log.Checkpoint(t.Context())
		if staff.Can(role, staff.ActAuditView) {
			if err != nil || after.Seq != before.Seq+1 {
				t.Errorf("%s: got %v and head %d after %d, want a recorded proof", role, err, after.Seq, before.Seq)
			}
			continue
		}
		if errs.CodeOf(err) != errs.Forbidden || after.Seq != before.Seq {
			t.Errorf("%s: got %v and head %d after %d, want Forbidden and nothing recorded", role, err, after.Seq, before.Seq)
		}
	}
}
