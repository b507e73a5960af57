package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// testRekey covers what a KEK rotation needs: accounts with their wrapped
// keys, indexes and pending contact changes, page by page; compare-and-
// swap rekeys; staff secrets; and the rotation record.
func testRekey(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"acct-1", "acct-2", "acct-3"} {
		mkAccount(t, s, id)
	}
	must(t, "PutContactChange", s.PutContactChange(ctx, &store.ContactChange{AccountID: "acct-2", Channel: store.Email,
		Sealed: []byte("sealed-new"), Index: []byte("new-index"), CreatedAt: t0(), ExpiresAt: t0().Add(time.Hour)}))
	// An erased account (no wrapped key) is not listed.
	erased := newAccount("acct-0")
	erased.WrappedKey, erased.Status = nil, store.StatusClosed
	must(t, "CreateAccount erased", s.CreateAccount(ctx, erased))

	page, err := s.KeyedAccounts(ctx, "", 2)
	must(t, "KeyedAccounts", err)
	if len(page) != 2 || page[0].ID != "acct-1" || page[1].ID != "acct-2" {
		t.Fatalf("KeyedAccounts first page: got %+v, want acct-1, acct-2", page)
	}
	if !bytes.Equal(page[0].WrappedKey, []byte("wrapped-key-acct-1")) || !bytes.Equal(page[0].EmailSealed, []byte("sealed-email-acct-1")) ||
		!bytes.Equal(page[0].MobileIndex, []byte("mobile-index-acct-1")) || len(page[0].Pending) != 0 {
		t.Fatalf("KeyedAccounts acct-1: got %+v", page[0])
	}
	if p := page[1].Pending; len(p) != 1 || p[0].Channel != store.Email || !bytes.Equal(p[0].Sealed, []byte("sealed-new")) {
		t.Fatalf("KeyedAccounts acct-2 pending: got %+v", p)
	}
	page, err = s.KeyedAccounts(ctx, "acct-2", 2)
	must(t, "KeyedAccounts next", err)
	if len(page) != 1 || page[0].ID != "acct-3" {
		t.Fatalf("KeyedAccounts second page: got %+v, want acct-3", page)
	}

	n, err := s.RekeyAccounts(ctx, []store.AccountRekey{
		{ID: "acct-2", OldWrappedKey: []byte("wrapped-key-acct-2"), WrappedKey: []byte("rewrapped-2"),
			EmailIndex: []byte("e2"), MobileIndex: []byte("m2"), Pending: map[store.Channel][]byte{store.Email: []byte("new-index-2")}},
		// Stale: the account no longer holds this key.
		{ID: "acct-3", OldWrappedKey: []byte("something else"), WrappedKey: []byte("rewrapped-3")},
	})
	must(t, "RekeyAccounts", err)
	if n != 1 {
		t.Fatalf("RekeyAccounts applied %d, want 1", n)
	}
	a2, err := s.Account(ctx, "acct-2")
	must(t, "Account", err)
	if !bytes.Equal(a2.WrappedKey, []byte("rewrapped-2")) || !bytes.Equal(a2.EmailIndex, []byte("e2")) || !bytes.Equal(a2.MobileIndex, []byte("m2")) {
		t.Fatalf("acct-2 after rekey: %+v", a2)
	}
	if got, _ := s.KeyedAccounts(ctx, "acct-1", 1); len(got) != 1 || !bytes.Equal(got[0].Pending[0].Index, []byte("new-index-2")) {
		t.Fatalf("pending change index after rekey: %+v", got)
	}
	if a, err := s.AccountByIndex(ctx, store.Email, []byte("e2")); err != nil || a.ID != "acct-2" {
		t.Fatalf("AccountByIndex email: got %v, %v; want acct-2", a, err)
	}
	if a, err := s.AccountByIndex(ctx, store.Mobile, []byte("mobile-index-acct-0")); err != nil || a.ID != "acct-0" {
		t.Fatalf("AccountByIndex of a closed account's mobile: got %v, %v; want acct-0", a, err)
	}
	_, err = s.AccountByIndex(ctx, store.Mobile, []byte("e2"))
	wantCode(t, "AccountByIndex of another channel's index", err, errs.NotFound)
	_, err = s.AccountByIndex(ctx, "pigeon", []byte("e2"))
	wantCode(t, "AccountByIndex unknown channel", err, errs.Invalid)
	if a3, _ := s.Account(ctx, "acct-3"); !bytes.Equal(a3.WrappedKey, []byte("wrapped-key-acct-3")) {
		t.Fatalf("a stale rekey changed acct-3")
	}
	// An index another account holds is Conflict, and nothing of the
	// batch applies.
	_, err = s.RekeyAccounts(ctx, []store.AccountRekey{
		{ID: "acct-1", OldWrappedKey: []byte("wrapped-key-acct-1"), WrappedKey: []byte("rewrapped-1")},
		{ID: "acct-3", OldWrappedKey: []byte("wrapped-key-acct-3"), WrappedKey: []byte("rewrapped-3"), EmailIndex: []byte("e2")},
	})
	wantCode(t, "RekeyAccounts duplicate index", err, errs.Conflict)
	if a1, _ := s.Account(ctx, "acct-1"); !bytes.Equal(a1.WrappedKey, []byte("wrapped-key-acct-1")) {
		t.Fatalf("a failed batch applied part of itself")
	}

	// Staff secrets.
	for _, id := range []string{"stf_a", "stf_b"} {
		must(t, "CreateStaff", s.CreateStaff(ctx, &store.Staff{ID: id, Email: id + "@staff.example", Role: "admin", PasswordHash: "h", CreatedAt: t0()}))
	}
	must(t, "SetStaffTOTP", s.SetStaffTOTP(ctx, "stf_b", []byte("seed-b")))
	secrets, err := s.StaffSecrets(ctx)
	must(t, "StaffSecrets", err)
	if len(secrets) != 1 || secrets[0].StaffID != "stf_b" || !bytes.Equal(secrets[0].Sealed, []byte("seed-b")) {
		t.Fatalf("StaffSecrets: got %+v", secrets)
	}
	if ok, err := s.ResealStaffSecret(ctx, "stf_b", []byte("other"), []byte("x")); err != nil || ok {
		t.Fatalf("ResealStaffSecret stale: got %v, %v; want false", ok, err)
	}
	if ok, err := s.ResealStaffSecret(ctx, "stf_b", []byte("seed-b"), []byte("seed-b2")); err != nil || !ok {
		t.Fatalf("ResealStaffSecret: got %v, %v; want true", ok, err)
	}
	if st, _ := s.StaffByID(ctx, "stf_b"); st == nil || !bytes.Equal(st.TOTPSealed, []byte("seed-b2")) {
		t.Fatalf("staff seed after reseal: %+v", st)
	}

	// The rotation record.
	_, err = s.CurrentKEKRotation(ctx)
	wantCode(t, "CurrentKEKRotation none", err, errs.NotFound)
	r := &store.KEKRotation{ID: "rot-1", StartedAt: t0(), StartedBy: "system", Target: 2, TargetSince: t0()}
	must(t, "StartKEKRotation", s.StartKEKRotation(ctx, r))
	wantCode(t, "StartKEKRotation second", s.StartKEKRotation(ctx, &store.KEKRotation{ID: "rot-2", StartedAt: t0(), StartedBy: "system", Target: 3}), errs.Conflict)
	done := t0().Add(time.Minute)
	r.Target, r.TargetSince = 3, t0().Add(time.Second)
	r.Cursor, r.Passes, r.PassDoneAt, r.Rewrapped, r.Resealed, r.Problem = "acct-2", 1, &done, 7, 1, "1 account could not be re-indexed"
	must(t, "SaveKEKRotation", s.SaveKEKRotation(ctx, r))
	cur, err := s.CurrentKEKRotation(ctx)
	must(t, "CurrentKEKRotation", err)
	if cur.Target != 3 || !cur.TargetSince.Equal(t0().Add(time.Second)) || !cur.StartedAt.Equal(t0()) || cur.Cursor != "acct-2" || cur.Passes != 1 || cur.PassDoneAt == nil || !cur.PassDoneAt.Equal(done) ||
		cur.Rewrapped != 7 || cur.Resealed != 1 || cur.Problem != r.Problem || cur.FinishedAt != nil || cur.StartedBy != "system" {
		t.Fatalf("CurrentKEKRotation: got %+v", cur)
	}
	finished := t0().Add(time.Hour)
	r.FinishedAt, r.Destroyed, r.Problem = &finished, []uint32{0, 1}, ""
	must(t, "SaveKEKRotation finish", s.SaveKEKRotation(ctx, r))
	_, err = s.CurrentKEKRotation(ctx)
	wantCode(t, "CurrentKEKRotation after finish", err, errs.NotFound)
	wantCode(t, "SaveKEKRotation finished", s.SaveKEKRotation(ctx, r), errs.NotFound)
	r2 := &store.KEKRotation{ID: "rot-2", StartedAt: t0().Add(2 * time.Hour), StartedBy: "stf_a", Target: 3}
	must(t, "StartKEKRotation after finish", s.StartKEKRotation(ctx, r2))
	all, err := s.KEKRotations(ctx, 10)
	must(t, "KEKRotations", err)
	if len(all) != 2 || all[0].ID != "rot-2" || all[1].ID != "rot-1" || !slices.Equal(all[1].Destroyed, []uint32{0, 1}) ||
		all[1].FinishedAt == nil || !all[1].FinishedAt.Equal(finished) {
		t.Fatalf("KEKRotations: got %+v", all)
	}
}
