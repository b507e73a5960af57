package storetest

import (
	"bytes"
	"fmt"
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

// bootstrapEntry is the audit entry of a test bootstrap of id.
func bootstrapEntry(id string) auditchain.Entry {
	return auditchain.Entry{At: t0(), Actor: "operator", Role: "operator", Action: "staff.bootstrap", Subject: id, Detail: "bootstrap"}
}

func staffRow(id, email, role string) *store.Staff {
	return &store.Staff{ID: id, Email: email, Role: role, PasswordHash: "h", CreatedAt: t0()}
}

// testStaffBootstrap: while no enabled admin exists the staff row and its
// audit entry are written together; once one exists, neither is.
func testStaffBootstrap(t *testing.T, s store.Store) {
	ctx := t.Context()
	// A first privacy officer, as the old README made operators do, is no
	// admin: bootstrap still works after it.
	_, err := s.BootstrapStaff(ctx, staffRow("stf_po", "po@example.com", "privacy_officer"), bootstrapEntry("stf_po"))
	must(t, "BootstrapStaff privacy officer", err)
	_, err = s.BootstrapStaff(ctx, staffRow("stf_dup", "po@example.com", store.StaffAdminRole), bootstrapEntry("stf_dup"))
	wantCode(t, "BootstrapStaff taken email", err, errs.Conflict)
	e, err := s.BootstrapStaff(ctx, staffRow("stf_a1", "a1@example.com", store.StaffAdminRole), bootstrapEntry("stf_a1"))
	must(t, "BootstrapStaff admin", err)
	if e.Seq != 2 || e.Subject != "stf_a1" {
		t.Fatalf("BootstrapStaff entry: got %+v, want seq 2 about stf_a1", e)
	}
	_, err = s.BootstrapStaff(ctx, staffRow("stf_a2", "a2@example.com", store.StaffAdminRole), bootstrapEntry("stf_a2"))
	wantCode(t, "BootstrapStaff with an enabled admin", err, errs.Precondition)
	_, err = s.StaffByID(ctx, "stf_a2")
	wantCode(t, "refused bootstrap's row", err, errs.NotFound)
	if es, _ := s.AuditEntries(ctx, 0, 10); len(es) != 2 {
		t.Fatalf("audit after a refused bootstrap: got %d entries, want 2", len(es))
	}

	// A disabled admin does not count, but the store keeps the last
	// enabled one, so bootstrap stays closed.
	must(t, "CreateStaff second admin", s.CreateStaff(ctx, staffRow("stf_a4", "a4@example.com", store.StaffAdminRole)))
	must(t, "disable first admin", s.SetStaffDisabled(ctx, "stf_a1", true))
	wantCode(t, "demote the last enabled admin", s.SetStaffRole(ctx, "stf_a4", "support"), errs.Precondition)
	_, err = s.BootstrapStaff(ctx, staffRow("stf_a5", "taken@example.com", store.StaffAdminRole), bootstrapEntry("stf_a5"))
	wantCode(t, "BootstrapStaff with one enabled admin left", err, errs.Precondition)
	_, err = s.BootstrapStaff(ctx, &store.Staff{ID: "stf_x"}, bootstrapEntry("stf_x"))
	wantCode(t, "BootstrapStaff empty", err, errs.Invalid)
	_, err = s.BootstrapStaff(ctx, staffRow("stf_y", "y@example.com", "admin"), auditchain.Entry{At: t0()})
	wantCode(t, "BootstrapStaff bad entry", err, errs.Invalid)
	all, err := s.AuditEntries(ctx, 0, 10)
	must(t, "AuditEntries", err)
	if err := auditchain.Verify(all); err != nil {
		t.Fatalf("chain after bootstraps: %v", err)
	}
}

// testStaffBootstrapConcurrent: of many bootstraps racing on an empty
// store, exactly one adds an admin.
func testStaffBootstrapConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 8
	errc := make(chan error, n)
	for i := range n {
		go func() {
			id := fmt.Sprintf("stf_c%d", i)
			_, err := s.BootstrapStaff(ctx, staffRow(id, id+"@example.com", store.StaffAdminRole), bootstrapEntry(id))
			errc <- err
		}()
	}
	ok := 0
	for range n {
		err := <-errc
		switch {
		case err == nil:
			ok++
		case !errs.Is(err, errs.Precondition):
			t.Fatalf("concurrent bootstrap: %v", err)
		}
	}
	all, err := s.ListStaff(ctx)
	must(t, "ListStaff", err)
	if ok != 1 || len(all) != 1 {
		t.Fatalf("concurrent bootstraps: %d succeeded, %d staff stored; want 1 and 1", ok, len(all))
	}
	if es, _ := s.AuditEntries(ctx, 0, 100); len(es) != 1 {
		t.Fatalf("concurrent bootstraps left %d audit entries, want 1", len(es))
	}
}

// testStaffLastAdmin: the last enabled admin can be neither disabled nor
// demoted; others can.
func testStaffLastAdmin(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "CreateStaff a1", s.CreateStaff(ctx, staffRow("stf_a1", "a1@example.com", store.StaffAdminRole)))
	must(t, "CreateStaff a2", s.CreateStaff(ctx, staffRow("stf_a2", "a2@example.com", store.StaffAdminRole)))
	must(t, "CreateStaff po", s.CreateStaff(ctx, staffRow("stf_po", "po@example.com", "privacy_officer")))
	must(t, "CreateStaffToken", s.CreateStaffToken(ctx, []byte("tok-a2"), "stf_a2", t0(), t0().Add(time.Hour)))

	must(t, "SetStaffRole po to legal", s.SetStaffRole(ctx, "stf_po", "legal"))
	must(t, "disable one of two admins", s.SetStaffDisabled(ctx, "stf_a2", true))
	if _, err := s.StaffByToken(ctx, []byte("tok-a2"), t0()); !errs.Is(err, errs.NotFound) {
		t.Fatalf("disabled admin's session: got %v, want NotFound", err)
	}
	wantCode(t, "disable the last enabled admin", s.SetStaffDisabled(ctx, "stf_a1", true), errs.Precondition)
	wantCode(t, "demote the last enabled admin", s.SetStaffRole(ctx, "stf_a1", "legal"), errs.Precondition)
	must(t, "re-role the last admin as admin", s.SetStaffRole(ctx, "stf_a1", store.StaffAdminRole))
	must(t, "promote legal", s.SetStaffRole(ctx, "stf_po", store.StaffAdminRole))
	must(t, "demote the first admin now", s.SetStaffRole(ctx, "stf_a1", "support"))
	wantCode(t, "SetStaffRole unknown", s.SetStaffRole(ctx, "stf_none", "legal"), errs.NotFound)
	wantCode(t, "SetStaffRole empty", s.SetStaffRole(ctx, "stf_a1", ""), errs.Invalid)
	got, err := s.StaffByID(ctx, "stf_a1")
	if err != nil || got.Role != "support" {
		t.Fatalf("after demotion: got %+v, %v", got, err)
	}
}

// testStaffLastAdminConcurrent: when the only two enabled admins are
// disabled and demoted at the same time, one change is refused and one
// admin stays.
func testStaffLastAdminConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	prev := ""
	for round := range 5 {
		a, b := fmt.Sprintf("stf_r%da", round), fmt.Sprintf("stf_r%db", round)
		must(t, "CreateStaff a", s.CreateStaff(ctx, staffRow(a, a+"@example.com", store.StaffAdminRole)))
		must(t, "CreateStaff b", s.CreateStaff(ctx, staffRow(b, b+"@example.com", store.StaffAdminRole)))
		if prev != "" {
			must(t, "demote the last round's admin", s.SetStaffRole(ctx, prev, "support"))
		}
		errc := make(chan error, 2)
		go func() { errc <- s.SetStaffDisabled(ctx, a, true) }()
		go func() { errc <- s.SetStaffRole(ctx, b, "legal") }()
		e1, e2 := <-errc, <-errc
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("round %d: got %v and %v, want exactly one refused", round, e1, e2)
		}
		for _, err := range []error{e1, e2} {
			if err != nil && !errs.Is(err, errs.Precondition) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		all, err := s.ListStaff(ctx)
		must(t, "ListStaff", err)
		var enabled []string
		for _, st := range all {
			if st.Role == store.StaffAdminRole && !st.Disabled {
				enabled = append(enabled, st.ID)
			}
		}
		if len(enabled) != 1 {
			t.Fatalf("round %d: enabled admins %v, want one", round, enabled)
		}
		prev = enabled[0]
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

// testStaffTOTP: storing or removing a second factor ends the staff
// member's sessions, not others'; a time step is accepted once.
func testStaffTOTP(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"stf_t1", "stf_t2"} {
		must(t, "CreateStaff", s.CreateStaff(ctx, &store.Staff{ID: id, Email: id + "@example.com", Role: "admin", PasswordHash: "h", CreatedAt: t0()}))
		must(t, "CreateStaffToken", s.CreateStaffToken(ctx, []byte("tok-"+id), id, t0(), t0().Add(time.Hour)))
	}
	must(t, "SetStaffTOTP", s.SetStaffTOTP(ctx, "stf_t1", []byte("sealed seed")))
	_, err := s.StaffByToken(ctx, []byte("tok-stf_t1"), t0())
	wantCode(t, "the enrolled member's session after enrolment", err, errs.NotFound)
	if got, err := s.StaffByToken(ctx, []byte("tok-stf_t2"), t0()); err != nil || got.ID != "stf_t2" {
		t.Fatalf("another member's session: got %+v, %v", got, err)
	}
	st, err := s.StaffByID(ctx, "stf_t1")
	if err != nil || !bytes.Equal(st.TOTPSealed, []byte("sealed seed")) || st.TOTPStep != 0 {
		t.Fatalf("StaffByID after SetStaffTOTP: got %+v, %v", st, err)
	}
	must(t, "UseStaffTOTPStep", s.UseStaffTOTPStep(ctx, "stf_t1", 100))
	wantCode(t, "replayed step", s.UseStaffTOTPStep(ctx, "stf_t1", 100), errs.Conflict)
	must(t, "CreateStaffToken", s.CreateStaffToken(ctx, []byte("tok-again"), "stf_t1", t0(), t0().Add(time.Hour)))
	must(t, "SetStaffTOTP nil", s.SetStaffTOTP(ctx, "stf_t1", nil))
	_, err = s.StaffByToken(ctx, []byte("tok-again"), t0())
	wantCode(t, "the member's session after the factor was removed", err, errs.NotFound)
	wantCode(t, "SetStaffTOTP unknown", s.SetStaffTOTP(ctx, "stf_none", nil), errs.NotFound)
}
