package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

func testStaff(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := &store.Staff{ID: "stf_1", Email: "po@example.com", Role: "privacy_officer", PasswordHash: "h", CreatedAt: t0()}
	must(t, "CreateStaff", s.CreateStaff(ctx, st))
	wantCode(t, "CreateStaff duplicate", s.CreateStaff(ctx, &store.Staff{ID: "stf_2", Email: "po@example.com", Role: "admin", PasswordHash: "h", CreatedAt: t0()}), errs.Conflict)
	wantCode(t, "CreateStaff empty", s.CreateStaff(ctx, &store.Staff{ID: "stf_3"}), errs.Invalid)
	got, err := s.StaffByEmail(ctx, "po@example.com")
	if err != nil || got.ID != "stf_1" || got.Role != "privacy_officer" {
		t.Fatalf("StaffByEmail: got %+v, %v", got, err)
	}
	_, err = s.StaffByID(ctx, "stf_nope")
	wantCode(t, "StaffByID missing", err, errs.NotFound)

	now := t0()
	must(t, "CreateStaffToken", s.CreateStaffToken(ctx, []byte("tok1"), "stf_1", now, now.Add(time.Hour)))
	if got, err := s.StaffByToken(ctx, []byte("tok1"), now.Add(time.Minute)); err != nil || got.ID != "stf_1" {
		t.Fatalf("StaffByToken: got %+v, %v", got, err)
	}
	_, err = s.StaffByToken(ctx, []byte("tok1"), now.Add(2*time.Hour))
	wantCode(t, "StaffByToken expired", err, errs.NotFound)
	must(t, "SetStaffDisabled", s.SetStaffDisabled(ctx, "stf_1", true))
	_, err = s.StaffByToken(ctx, []byte("tok1"), now.Add(time.Minute))
	wantCode(t, "StaffByToken after disable", err, errs.NotFound)
	wantCode(t, "SetStaffDisabled missing", s.SetStaffDisabled(ctx, "stf_nope", true), errs.NotFound)
	all, err := s.ListStaff(ctx)
	if err != nil || len(all) != 1 || !all[0].Disabled {
		t.Fatalf("ListStaff: got %+v, %v", all, err)
	}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []auditchain.Entry
	for i, subj := range []string{"acc_a", "acc_b", "acc_a"} {
		e, err := s.AppendAudit(ctx, auditchain.Entry{At: t0().Add(time.Duration(i) * time.Second), Actor: "stf_1", Role: "admin", Action: "account.view", Subject: subj, Detail: "viewed"})
		must(t, "AppendAudit", err)
		want = append(want, e)
	}
	_, err := s.AppendAudit(ctx, auditchain.Entry{At: t0(), Actor: "x@y.z", Role: "admin", Action: "a", Subject: "s"})
	wantCode(t, "AppendAudit with an email as actor", err, errs.Invalid)
	got, err := s.AuditEntries(ctx, 0, 100)
	must(t, "AuditEntries", err)
	if len(got) != 3 {
		t.Fatalf("got %d entries, want 3", len(got))
	}
	for i := range got {
		if got[i].Seq != int64(i+1) || !bytes.Equal(got[i].Hash, want[i].Hash) || !got[i].At.Equal(want[i].At) {
			t.Fatalf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if err := auditchain.Verify(got); err != nil {
		t.Fatalf("stored chain does not verify: %v", err)
	}
	about, err := s.AuditEntriesFor(ctx, "acc_a", 10)
	if err != nil || len(about) != 2 || about[0].Seq != 3 {
		t.Fatalf("AuditEntriesFor: got %+v, %v; want seq 3 then 1", about, err)
	}
	if rest, _ := s.AuditEntries(ctx, 2, 100); len(rest) != 1 || rest[0].Seq != 3 {
		t.Fatalf("AuditEntries after 2: got %+v", rest)
	}
}

// testAuditHead follows the log's head through appends and retention.
func testAuditHead(t *testing.T, s store.Store) {
	ctx := t.Context()
	check := func(when string, want store.AuditHead) {
		t.Helper()
		got, err := s.AuditHead(ctx)
		must(t, "AuditHead", err)
		if got.Counted != want.Counted || got.Newest.Seq != want.Newest.Seq || !bytes.Equal(got.Newest.Hash, want.Newest.Hash) ||
			got.Anchor.Seq != want.Anchor.Seq || !bytes.Equal(got.Anchor.Hash, want.Anchor.Hash) {
			t.Fatalf("%s: got %+v, want %+v", when, got, want)
		}
	}
	check("empty", store.AuditHead{})
	var es []auditchain.Entry
	for i := range 3 {
		e, err := s.AppendAudit(ctx, auditchain.Entry{At: t0().Add(time.Duration(i) * time.Hour), Actor: "stf_1", Role: "admin", Action: "a", Subject: "s"})
		must(t, "AppendAudit", err)
		es = append(es, e)
	}
	cp := func(e auditchain.Entry) auditchain.Checkpoint { return auditchain.Checkpoint{Seq: e.Seq, Hash: e.Hash} }
	check("after 3 appends", store.AuditHead{Counted: 3, Newest: cp(es[2])})
	n, err := s.SweepBatch(ctx, store.SweepAudit, t0().Add(90*time.Minute), t0().Add(time.Hour*24), 100)
	if err != nil || n != 2 {
		t.Fatalf("sweep 2 entries: got %d, %v", n, err)
	}
	check("after retention deleted 2", store.AuditHead{Counted: 3, Newest: cp(es[2]), Anchor: cp(es[1])})
	if n, err := s.SweepBatch(ctx, store.SweepAudit, t0().Add(24*time.Hour), t0().Add(48*time.Hour), 100); err != nil || n != 1 {
		t.Fatalf("sweep the last entry: got %d, %v", n, err)
	}
	check("after retention deleted all", store.AuditHead{Counted: 3, Anchor: cp(es[2])})
	e, err := s.AppendAudit(ctx, auditchain.Entry{At: t0().Add(48 * time.Hour), Actor: "stf_1", Role: "admin", Action: "a", Subject: "s"})
	must(t, "AppendAudit after retention", err)
	check("after an append on an empty log", store.AuditHead{Counted: 4, Newest: cp(e), Anchor: cp(es[2])})
}

// testAuditTailRemoved deletes the newest audit entries behind the store's
// back: appending is refused rather than reusing their sequence numbers.
func testAuditTailRemoved(t *testing.T, b Backend) {
	ctx := t.Context()
	s, db := b.OpenWithDB(t)
	for range 3 {
		_, err := s.AppendAudit(ctx, auditchain.Entry{At: t0(), Actor: "stf_1", Role: "admin", Action: "a", Subject: "s"})
		must(t, "AppendAudit", err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM audit_log WHERE seq >= 2`); err != nil {
		t.Fatal(err)
	}
	_, err := s.AppendAudit(ctx, auditchain.Entry{At: t0(), Actor: "stf_1", Role: "admin", Action: "a", Subject: "s"})
	wantCode(t, "AppendAudit after the newest entries were deleted", err, errs.Conflict)
	es, err := s.AuditEntries(ctx, 0, 10)
	must(t, "AuditEntries", err)
	if len(es) != 1 {
		t.Fatalf("got %d entries, want the 1 left", len(es))
	}
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 20
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := s.AppendAudit(ctx, auditchain.Entry{At: t0(), Actor: "stf_1", Role: "admin", Action: "a", Subject: "s"})
			errc <- err
		}()
	}
	for i := 0; i < n; i++ {
		must(t, "AppendAudit", <-errc)
	}
	got, err := s.AuditEntries(ctx, 0, 100)
	must(t, "AuditEntries", err)
	if len(got) != n {
		t.Fatalf("got %d entries, want %d", len(got), n)
	}
	if err := auditchain.Verify(got); err != nil {
		t.Fatalf("concurrent appends broke the chain: %v", err)
	}
}

func testHolds(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_h1")
	now := t0()
	later := now.Add(24 * time.Hour)
	must(t, "CreateHold", s.CreateHold(ctx, &store.Hold{ID: "hold_1", AccountID: "acc_h1", Reason: "case 1", CreatedBy: "stf_l", CreatedAt: now}))
	must(t, "CreateHold until", s.CreateHold(ctx, &store.Hold{ID: "hold_2", AccountID: "acc_h1", Reason: "case 2", CreatedBy: "stf_l", CreatedAt: now, Until: &later}))
	wantCode(t, "CreateHold missing account", s.CreateHold(ctx, &store.Hold{ID: "hold_3", AccountID: "acc_nope", Reason: "r", CreatedBy: "x", CreatedAt: now}), errs.NotFound)
	wantCode(t, "CreateHold empty reason", s.CreateHold(ctx, &store.Hold{ID: "hold_4", AccountID: "acc_h1", CreatedBy: "x", CreatedAt: now}), errs.Invalid)

	if hs, _ := s.Holds(ctx, "acc_h1", true, now.Add(48*time.Hour)); len(hs) != 1 || hs[0].ID != "hold_1" {
		t.Fatalf("active after hold_2 lapsed: got %+v, want hold_1 only", hs)
	}
	held, err := s.HeldAccounts(ctx, now)
	if err != nil || !held["acc_h1"] {
		t.Fatalf("HeldAccounts: got %v, %v", held, err)
	}
	if acc, err := s.ReleaseHold(ctx, "hold_1", "stf_l", now); err != nil || acc != "acc_h1" {
		t.Fatalf("ReleaseHold: got %q, %v; want acc_h1", acc, err)
	}
	_, err = s.ReleaseHold(ctx, "hold_1", "stf_l", now)
	wantCode(t, "ReleaseHold twice", err, errs.Conflict)
	_, err = s.ReleaseHold(ctx, "hold_nope", "stf_l", now)
	wantCode(t, "ReleaseHold missing", err, errs.NotFound)
	if held, _ := s.HeldAccounts(ctx, now.Add(48*time.Hour)); held["acc_h1"] {
		t.Fatalf("account still held after release and lapse")
	}
	all, _ := s.Holds(ctx, "", false, now)
	if len(all) != 2 || all[0].ReleasedAt == nil && all[1].ReleasedAt == nil {
		t.Fatalf("Holds all: got %+v, want 2 with one released", all)
	}

	f, err := s.AccountFlags(ctx, "acc_h1")
	if err != nil || f.Restricted || f.Objected {
		t.Fatalf("default flags: got %+v, %v", f, err)
	}
	must(t, "SetFlags", s.SetFlags(ctx, "acc_h1", store.Flags{Objected: true}))
	if f, _ := s.AccountFlags(ctx, "acc_h1"); !f.Objected || f.Restricted {
		t.Fatalf("flags: got %+v, want objected only", f)
	}
	wantCode(t, "SetFlags missing", s.SetFlags(ctx, "acc_nope", store.Flags{}), errs.NotFound)
}
