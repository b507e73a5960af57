package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/devices"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/processing"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

func wantCode(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != code {
		t.Fatalf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	if got := errs.FieldOf(err); got != field {
		t.Errorf("%s: error %v names field %q, want %q", what, err, got, field)
	}
}

// TestRequestTypes runs every request type end to end on each engine.
func TestRequestTypes(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, b.Open(t))
			ctx := t.Context()

			t.Run("access", func(t *testing.T) {
				u := h.signup(t)
				h.addDevice(t, u, "laptop", 1)
				r := h.request(t, u, store.RequestAccess, "")
				if r.Status != store.RequestCompleted || r.ExportUntil == nil {
					t.Fatalf("got %+v, want completed with an export window", r)
				}
				tok, _, err := h.svc.ExportToken(ctx, u.id, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				doc, err := h.svc.Export(ctx, u.id, r.ID, tok)
				if err != nil {
					t.Fatal(err)
				}
				if doc.Account.Email != u.email || doc.Account.Mobile != u.mobile || len(doc.Devices) != 1 || doc.Devices[0].Name != "laptop" {
					t.Fatalf("export: got account %+v devices %+v, want the user's contacts and one device", doc.Account, doc.Devices)
				}
			})
			t.Run("portability", func(t *testing.T) {
				u := h.signup(t)
				r := h.request(t, u, store.RequestPortability, "")
				tok, _, err := h.svc.ExportToken(ctx, u.id, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				doc, err := h.svc.Export(ctx, u.id, r.ID, tok)
				if err != nil || doc.SchemaVersion != privacy.SchemaVersion {
					t.Fatalf("got %v, %v, want an export with schema %s", doc, err, privacy.SchemaVersion)
				}
			})
			t.Run("rectification", func(t *testing.T) {
				u := h.signup(t)
				r := h.request(t, u, store.RequestRectification, "my email changed")
				if r.Status != store.RequestVerified {
					t.Fatalf("got status %q, want verified", r.Status)
				}
				newEmail := "renamed-" + u.email
				if err := h.svc.RequestContactChange(ctx, u.id, store.Email, newEmail, pw); err != nil {
					t.Fatal(err)
				}
				// The code goes to the NEW address, not the old one.
				code := h.code(t, "contact-change-code", newEmail)
				if n := h.out.count("contact-change-code", u.email); n != 0 {
					t.Fatalf("got %d codes to the old address, want 0", n)
				}
				// Not in effect before the code is confirmed.
				if _, _, err := h.acc.Login(ctx, newEmail, pw); !errs.Is(err, errs.Unauthenticated) {
					t.Fatalf("login with the unconfirmed email: got %v, want Unauthenticated", err)
				}
				if err := h.svc.ConfirmContactChange(ctx, u.id, store.Email, code); err != nil {
					t.Fatal(err)
				}
				if _, _, err := h.acc.Login(ctx, newEmail, pw); err != nil {
					t.Fatalf("login with the new email: got %v, want nil", err)
				}
				if _, _, err := h.acc.Login(ctx, u.email, pw); !errs.Is(err, errs.Unauthenticated) {
					t.Fatalf("login with the old email: got %v, want Unauthenticated", err)
				}
				if m := h.out.last(t, "contact-changed", u.email); strings.Contains(m.Body, newEmail) {
					t.Fatalf("the old address was told the new one: %q", m.Body)
				}
				got, _ := h.svc.Get(ctx, u.id, r.ID)
				if got.Status != store.RequestCompleted {
					t.Fatalf("rectification request: got %q, want completed", got.Status)
				}
				// Changing to an address another account uses answers like
				// success (no enumeration), but sends that address nothing
				// and changes nothing: the code never arrives.
				other := h.signup(t)
				before := h.out.count("contact-change-code", other.email)
				err := h.svc.RequestContactChange(ctx, u.id, store.Email, other.email, pw)
				if err != nil {
					t.Fatalf("taken email: got %v, want the answer a free one gets", err)
				}
				if n := h.out.count("contact-change-code", other.email); n != before {
					t.Fatalf("the other account's address got %d codes, want none", n-before)
				}
				for _, guess := range []string{"000000", "123456"} {
					err := h.svc.ConfirmContactChange(ctx, u.id, store.Email, guess)
					wantCode(t, "a guessed code for a taken email", err, errs.Unauthenticated)
				}
				if _, _, err := h.acc.Login(ctx, other.email, pw); err != nil {
					t.Fatalf("the other account after the attempt: %v", err)
				}
				err = h.svc.RequestContactChange(ctx, u.id, store.Mobile, other.mobile, pw)
				if err != nil {
					t.Fatalf("taken mobile: got %v, want the answer a free one gets", err)
				}
				if n := h.out.count("contact-change-code", other.mobile); n != 0 {
					t.Fatalf("the other account's number got %d codes, want none", n)
				}
				err = h.svc.RequestContactChange(ctx, u.id, store.Email, "not an email", pw)
				wantCode(t, "malformed email", err, errs.Invalid)
				wantField(t, "malformed email", err, "value")
				err = h.svc.RequestContactChange(ctx, u.id, store.Mobile, "+447911000999", "wrong password")
				wantCode(t, "wrong password", err, errs.Unauthenticated)
				wantField(t, "wrong password", err, "password")
				err = h.svc.ConfirmContactChange(ctx, u.id, store.Mobile, "abc")
				wantField(t, "malformed contact code", err, "code")
			})
			t.Run("erasure", func(t *testing.T) {
				u := h.signup(t)
				h.addDevice(t, u, "phone", 2)
				r := h.request(t, u, store.RequestErasure, "")
				if r.Status != store.RequestVerified {
					t.Fatalf("got status %q, want verified (waiting for confirmation)", r.Status)
				}
				rep, err := h.svc.ConfirmErasure(ctx, u.id, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Status != store.RequestCompleted || !rep.ServiceClosed || rep.DevicesRemoved != 1 || len(rep.Kept) != 0 {
					t.Fatalf("got %+v, want completed, service closed, 1 device removed, nothing kept", rep)
				}
				if m := h.out.last(t, "privacy-erasure", u.email); !strings.Contains(m.Body, "closes your account") {
					t.Fatalf("erasure notice does not say the service closes: %q", m.Body)
				}
				if _, err := h.st.Tombstone(ctx, r.ID); err != nil {
					t.Fatalf("tombstone: %v", err)
				}
			})
			for _, typ := range []string{store.RequestRestriction, store.RequestObjection} {
				t.Run(typ, func(t *testing.T) {
					u := h.signup(t)
					h.request(t, u, typ, "")
					f, _ := h.st.AccountFlags(ctx, u.id)
					if got := f.Restricted || f.Objected; !got || (typ == store.RequestRestriction) != f.Restricted {
						t.Fatalf("flags after %s: got %+v", typ, f)
					}
					// The export shows the flag.
					acc := h.request(t, u, store.RequestAccess, "")
					tok, _, _ := h.svc.ExportToken(ctx, u.id, acc.ID)
					doc, err := h.svc.Export(ctx, u.id, acc.ID, tok)
					if err != nil {
						t.Fatal(err)
					}
					if doc.Account.Processing.Restricted != f.Restricted || doc.Account.Processing.Objected != f.Objected {
						t.Fatalf("export processing: got %+v, want %+v", doc.Account.Processing, f)
					}
					// and what it stops, by the one rule.
					if !slices.Equal(doc.Account.Processing.Stopped, processing.StateOf(f).Stopped) ||
						!slices.Contains(doc.Account.Processing.Stopped, processing.Announcement) ||
						!slices.Contains(doc.Account.Processing.Stopped, processing.Statistics) {
						t.Fatalf("export processing: stopped %v, want announcements and statistics", doc.Account.Processing.Stopped)
					}
					// "lift" undoes it.
					h.request(t, u, typ, "lift")
					if f, _ := h.st.AccountFlags(ctx, u.id); f.Restricted || f.Objected {
						t.Fatalf("flags after lift: got %+v, want none", f)
					}
				})
			}
		})
	}
}

// TestIdentityProof checks what Verify demands.
func TestIdentityProof(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t, storetest.DefaultPool()))
	ctx := t.Context()
	u := h.signup(t)
	other := h.signup(t)
	r, err := h.svc.Create(ctx, u.id, store.RequestAccess, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"password", "email_code", "mobile_code"}; strings.Join(r.IdentityProof, ",") != strings.Join(want, ",") {
		t.Fatalf("identity proof: got %v, want %v", r.IdentityProof, want)
	}
	if r.Fee == "" || !strings.Contains(r.Fee, "free") {
		t.Fatalf("fee: got %q, want free of charge", r.Fee)
	}
	// A code went to every verified contact.
	ecode, mcode := h.code(t, "privacy-code", u.email), h.code(t, "privacy-code", u.mobile)
	bad := "000000"
	if ecode == bad {
		bad = "111111"
	}
	for _, tc := range []struct {
		name, account, id, pw, email, mobile string
		want                                 errs.Code
		field                                string // the input the error names
	}{
		{"malformed id", u.id, "prq_nope", pw, ecode, mcode, errs.Invalid, "id"},
		{"other account", other.id, r.ID, pw, ecode, mcode, errs.NotFound, "id"},
		{"no password", u.id, r.ID, "", ecode, mcode, errs.Invalid, "password"},
		{"no mobile code", u.id, r.ID, pw, ecode, "", errs.Invalid, "mobile_code"},
		{"wrong password", u.id, r.ID, "wrong", ecode, mcode, errs.Unauthenticated, "password"},
		{"wrong email code", u.id, r.ID, pw, bad, mcode, errs.Unauthenticated, "email_code"},
		{"malformed mobile code", u.id, r.ID, pw, ecode, "12", errs.Invalid, "mobile_code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.svc.Verify(ctx, tc.account, tc.id, tc.pw, tc.email, tc.mobile)
			wantCode(t, tc.name, err, tc.want)
			if got := errs.FieldOf(err); got != tc.field {
				t.Errorf("%s: field %q, want %q", tc.name, got, tc.field)
			}
		})
	}
	if got, _ := h.svc.Get(ctx, u.id, r.ID); got.Status != store.RequestPending {
		t.Fatalf("after failed proofs: got %q, want pending", got.Status)
	}
	// Fresh codes, then the right proof.
	if err := h.svc.ResendCodes(ctx, u.id, r.ID); err != nil {
		t.Fatal(err)
	}
	v, err := h.svc.Verify(ctx, u.id, r.ID, pw, h.code(t, "privacy-code", u.email), h.code(t, "privacy-code", u.mobile))
	if err != nil || v.Status != store.RequestCompleted {
		t.Fatalf("verify: got %v, %v, want completed", v, err)
	}
	_, err = h.svc.Verify(ctx, u.id, r.ID, pw, "123456", "123456")
	wantCode(t, "verify twice", err, errs.Conflict)

	for _, tc := range []struct {
		name, typ, details string
		want               errs.Code
	}{
		{"unknown type", "delete-everything", "", errs.Invalid},
		{"empty type", "", "", errs.Invalid},
		{"details too long", store.RequestAccess, strings.Repeat("x", privacy.MaxDetails+1), errs.Invalid},
		{"control characters", store.RequestAccess, "a\x00b", errs.Invalid},
		{"type is case-insensitive", "ACCESS", "", ""},
	} {
		_, err := h.svc.Create(ctx, u.id, tc.typ, tc.details)
		wantCode(t, tc.name, err, tc.want)
	}
	if _, err := h.svc.Get(ctx, u.id, "garbage"); !errs.Is(err, errs.Invalid) || !strings.Contains(errs.MessageOf(err), "malformed request id") {
		t.Fatalf("Get malformed: got %v, want Invalid malformed request id", err)
	}
	// Listing shows only the caller's requests.
	list, _ := h.svc.List(ctx, other.id)
	if len(list) != 0 {
		t.Fatalf("other account's list: got %d, want 0", len(list))
	}
}

// TestDeadlineMonthEnds checks due dates at month ends through the
// service, with the clock at receipt.
func TestDeadlineMonthEnds(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t, storetest.DefaultPool()))
	u := h.signup(t)
	for _, tc := range []struct {
		received, due string
	}{
		{"2025-01-31T10:00:00Z", "2025-02-28T10:00:00Z"},
		{"2024-01-31T10:00:00Z", "2024-02-29T10:00:00Z"},
		{"2025-03-31T23:59:59Z", "2025-04-30T23:59:59Z"},
		{"2025-12-31T00:00:00Z", "2026-01-31T00:00:00Z"},
		{"2025-02-28T08:00:00Z", "2025-03-28T08:00:00Z"},
	} {
		t.Run(tc.received, func(t *testing.T) {
			rt, _ := time.Parse(time.RFC3339, tc.received)
			h.clk.Set(rt)
			r, err := h.svc.Create(t.Context(), u.id, store.RequestAccess, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := r.DueAt.Format(time.RFC3339); got != tc.due {
				t.Fatalf("received %s: got due %s, want %s", tc.received, got, tc.due)
			}
		})
	}
}

// TestStaffActions covers extension rules, completion, denial, overdue
// listing, roles and the audit trail.
func TestStaffActions(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, b.Open(t))
			ctx := t.Context()
			po, support, legal, admin := principal(staff.RolePrivacyOfficer), principal(staff.RoleSupport), principal(staff.RoleLegal), principal(staff.RoleAdmin)
			u := h.signup(t)
			h.clk.Set(time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC))
			r, err := h.svc.Create(ctx, u.id, store.RequestAccess, "")
			if err != nil {
				t.Fatal(err)
			}

			// Roles.
			for _, tc := range []struct {
				name string
				do   func() error
				want errs.Code
			}{
				{"support extends", func() error { _, err := h.svc.Extend(ctx, support, r.ID, 1, "busy"); return err }, errs.Forbidden},
				{"support completes", func() error { _, err := h.svc.Complete(ctx, support, r.ID, ""); return err }, errs.Forbidden},
				{"support denies", func() error { _, err := h.svc.Deny(ctx, support, r.ID, "no"); return err }, errs.Forbidden},
				{"legal extends", func() error { _, err := h.svc.Extend(ctx, legal, r.ID, 1, "busy"); return err }, errs.Forbidden},
				{"admin lists", func() error { _, err := h.svc.StaffList(ctx, admin, false); return err }, errs.Forbidden},
				{"nobody lists", func() error { _, err := h.svc.StaffList(ctx, staff.Principal{}, false); return err }, errs.Unauthenticated},
				{"support lists", func() error { _, err := h.svc.StaffList(ctx, support, false); return err }, ""},
				{"support shows", func() error { _, err := h.svc.StaffShow(ctx, support, r.ID); return err }, ""},
				{"legal shows", func() error { _, err := h.svc.StaffShow(ctx, legal, r.ID); return err }, ""},
				{"malformed id", func() error { _, err := h.svc.StaffShow(ctx, po, "12345"); return err }, errs.Invalid},
				{"unknown id", func() error { _, err := h.svc.StaffShow(ctx, po, "prq_aaaaaaaaaaaaaaaaaaaaaaaaaa"); return err }, errs.NotFound},
			} {
				wantCode(t, tc.name, tc.do(), tc.want)
			}

			// Extension rules (received Jan 31, due Feb 28).
			h.clk.Set(time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC))
			for _, tc := range []struct {
				name   string
				months int
				reason string
				want   errs.Code
				due    string
				field  string
			}{
				{"no reason", 1, "  ", errs.Invalid, "", "reason"},
				{"three months", 3, "complex", errs.Invalid, "", "months"},
				{"zero months", 0, "complex", errs.Invalid, "", "months"},
				{"one month", 1, "many systems to search", "", "2025-03-31", ""},
				{"one more", 1, "still searching", "", "2025-04-30", ""},
				{"past two months", 1, "more", errs.Invalid, "", "months"},
			} {
				got, err := h.svc.Extend(ctx, po, r.ID, tc.months, tc.reason)
				wantCode(t, tc.name, err, tc.want)
				wantField(t, tc.name, err, tc.field)
				if tc.due != "" && got.DueAt.Format(time.DateOnly) != tc.due {
					t.Fatalf("%s: got due %s, want %s", tc.name, got.DueAt.Format(time.DateOnly), tc.due)
				}
			}
			// The user was told the reason, in the inbox and by email.
			if p, ok := h.inbox.find(u.id, "privacy-extended"); !ok || !strings.Contains(p.body, "still searching") {
				t.Fatalf("inbox notice: got %+v, %v, want the reason", p, ok)
			}
			if m := h.out.last(t, "privacy-extended", u.email); !strings.Contains(m.Body, "still searching") {
				t.Fatalf("email notice: got %q, want the reason", m.Body)
			}

			// After the first month, no extension.
			r2, _ := h.svc.Create(ctx, u.id, store.RequestErasure, "")
			h.clk.Set(time.Date(2025, 3, 11, 0, 0, 0, 0, time.UTC))
			_, err = h.svc.Extend(ctx, po, r2.ID, 1, "late")
			wantCode(t, "extend after the first month", err, errs.Conflict)

			// r2 (due Mar 10) is overdue; r (extended to Apr 30) is not.
			list, err := h.svc.StaffList(ctx, po, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].ID != r2.ID || !list[0].Overdue || list[0].AccountID != u.id {
				t.Fatalf("overdue list: got %+v, want only %s", list, r2.ID)
			}
			if n, _ := h.svc.OverdueCount(ctx); n != 1 {
				t.Fatalf("overdue count: got %d, want 1", n)
			}

			// Complete needs verified identity; deny needs a reason and
			// tells of the right to complain.
			_, err = h.svc.Complete(ctx, po, r.ID, "")
			wantCode(t, "complete without a note", err, errs.Invalid)
			wantField(t, "complete without a note", err, "note")
			_, err = h.svc.Complete(ctx, po, r.ID, "Done.")
			wantCode(t, "complete unverified", err, errs.Conflict)
			_, err = h.svc.Deny(ctx, po, r2.ID, "")
			wantCode(t, "deny without reason", err, errs.Invalid)
			wantField(t, "deny without reason", err, "reason")
			d, err := h.svc.Deny(ctx, po, r2.ID, "identity could not be established")
			if err != nil || d.Status != store.RequestDenied {
				t.Fatalf("deny: got %+v, %v", d, err)
			}
			if m := h.out.last(t, "privacy-denied", u.email); !strings.Contains(m.Body, "supervisory authority") || !strings.Contains(m.Body, "identity could not be established") {
				t.Fatalf("denial notice lacks the reason or the right to complain: %q", m.Body)
			}
			_, err = h.svc.Deny(ctx, po, r2.ID, "again")
			wantCode(t, "deny twice", err, errs.Conflict)
			if n, _ := h.svc.OverdueCount(ctx); n != 0 {
				t.Fatalf("overdue after denial: got %d, want 0", n)
			}

			rect := h.request(t, u, store.RequestRectification, "my name is spelt wrong")
			c, err := h.svc.Complete(ctx, po, rect.ID, "We hold no name; nothing to correct.")
			if err != nil || c.Status != store.RequestCompleted {
				t.Fatalf("complete: got %+v, %v", c, err)
			}

			// Every staff action is in the audit log, under the account.
			entries, err := h.audit.About(ctx, principal(staff.RoleLegal), u.id, 100)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, e := range entries {
				seen[e.Action]++
			}
			for _, a := range []string{staff.ActPrivacyView, staff.ActPrivacyExtend, staff.ActPrivacyDeny, staff.ActPrivacyComplete} {
				if seen[a] == 0 {
					t.Errorf("no audit entry for %s (got %v)", a, seen)
				}
			}
			if n, err := h.audit.Verify(ctx, principal(staff.RoleLegal)); err != nil || n == 0 {
				t.Fatalf("audit chain: %d entries, %v", n, err)
			}
		})
	}
}

// TestRequestActions: the actions a request view offers are those Extend,
// Complete and Deny accept, with a reason for each one they refuse.
func TestRequestActions(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t, storetest.DefaultPool()))
	ctx := t.Context()
	po, support, legal := principal(staff.RolePrivacyOfficer), principal(staff.RoleSupport), principal(staff.RoleLegal)
	u := h.signup(t)
	h.clk.Set(time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC))
	unverified, err := h.svc.Create(ctx, u.id, store.RequestAccess, "")
	if err != nil {
		t.Fatal(err)
	}
	verified := h.request(t, u, store.RequestRectification, "typo")
	erasure := h.request(t, u, store.RequestErasure, "")

	type want struct {
		allowed bool
		reason  string // a part of the reason when not allowed
	}
	check := func(name string, by staff.Principal, id string, extend, complete, deny want, months []int) {
		t.Helper()
		r, err := h.svc.StaffShow(ctx, by, id)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(r.Actions) != 3 {
			t.Fatalf("%s: got %d actions, want extend, complete and deny", name, len(r.Actions))
		}
		for i, w := range []want{extend, complete, deny} {
			a := r.Actions[i]
			if a.Allowed != w.allowed || (!w.allowed && !strings.Contains(a.Reason, w.reason)) || (w.allowed && a.Reason != "") {
				t.Errorf("%s: %s: got %+v, want allowed=%v reason ~%q", name, a.Action, a, w.allowed, w.reason)
			}
		}
		if got := r.Actions[0].Months; !slices.Equal(got, months) {
			t.Errorf("%s: extension months %v, want %v", name, got, months)
		}
	}
	yes := want{allowed: true}
	check("fresh, unverified", po, unverified.ID, yes, want{false, "not verified"}, yes, []int{1, 2})
	check("verified", po, verified.ID, yes, yes, yes, []int{1, 2})
	check("verified erasure", po, erasure.ID, yes, want{false, "final confirmation"}, yes, []int{1, 2})
	check("support", support, verified.ID, want{false, "may view requests but not act"},
		want{false, "may view requests but not act"}, want{false, "may view requests but not act"}, nil)
	check("legal", legal, verified.ID, want{false, "may view requests but not act"},
		want{false, "may view requests but not act"}, want{false, "may view requests but not act"}, nil)

	// One month used: one more is offered, and Extend agrees.
	if _, err := h.svc.Extend(ctx, po, verified.ID, 1, "busy"); err != nil {
		t.Fatal(err)
	}
	check("extended once", po, verified.ID, yes, yes, yes, []int{1})
	if _, err := h.svc.Extend(ctx, po, verified.ID, 2, "busier"); !errs.Is(err, errs.Invalid) {
		t.Fatalf("extend past the offer: got %v, want Invalid", err)
	}
	// After the first month no extension is offered, and Extend refuses.
	h.clk.Set(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	check("after the first month", po, unverified.ID, want{false, "ended 28 Feb 2025"}, want{false, "not verified"}, yes, nil)
	if _, err := h.svc.Extend(ctx, po, unverified.ID, 1, "late"); !errs.Is(err, errs.Conflict) {
		t.Fatalf("late extension: got %v, want Conflict", err)
	}
	// Answered: nothing is offered.
	if _, err := h.svc.Complete(ctx, po, verified.ID, "Corrected."); err != nil {
		t.Fatal(err)
	}
	check("completed", po, verified.ID, want{false, "already completed"}, want{false, "already completed"},
		want{false, "already completed"}, nil)
}

// TestExportContents checks the export against the inventory it is given
// (here with sessions kept 30 days), the controller's identity, and the
// HTML copy's escaping.
func TestExportContents(t *testing.T) {
	inv, err := inventory.Default().WithDays(map[string]int{inventory.IDSessions: 30})
	if err != nil {
		t.Fatal(err)
	}
	ctl := controller.Identity{Name: "Example <VPN> GmbH", Address: "1 Example Street, Berlin", Email: "privacy@example.org",
		DPO: controller.DPO{Name: "Dana Officer", Email: "dpo@example.org"}}
	h := newHarness(t, storetest.SQLite(t, storetest.DefaultPool()), func(c *privacy.Config) {
		c.Inventory, c.Controller = inv, ctl
	})
	ctx := t.Context()
	u := h.signup(t)
	d := h.addDevice(t, u, `<script>alert(1)</script>`, 7)
	blocking := []string{"gambling", "ads"}
	if _, err := h.dev.Change(ctx, u.id, d.ID, devices.Changes{DNSBlocking: &blocking}); err != nil {
		t.Fatal(err)
	}
	startIv := start().Truncate(time.Minute)
	end := startIv.Add(time.Hour)
	if _, err := h.st.RecordIntervals(ctx, "eu-west", []store.Interval{{DeviceID: d.ID, Start: startIv, End: &end}}); err != nil {
		t.Fatal(err)
	}
	r := h.request(t, u, store.RequestAccess, "")
	tok, _, err := h.svc.ExportToken(ctx, u.id, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := h.svc.Export(ctx, u.id, r.ID, tok)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range doc.Categories {
		if _, ok := inv.Category(id); !ok {
			t.Errorf("export claims category %q, which the inventory lacks", id)
		}
	}
	if len(doc.Article15.Categories) != len(inv) || len(doc.Article15.Rights) == 0 || len(doc.Article15.Retention) != len(inv) ||
		len(doc.Article15.Purposes) == 0 || len(doc.Article15.Recipients) == 0 || len(doc.Article15.Sources) == 0 {
		t.Fatalf("article 15 information incomplete: %+v", doc.Article15)
	}
	if doc.Sessions.Count != 1 || doc.Sessions.Intervals[0].Region != "eu-west" || doc.Sessions.Intervals[0].End == nil {
		t.Fatalf("sessions: got %+v", doc.Sessions)
	}
	if got := doc.Sections["test_section"]; got == nil {
		t.Fatalf("sections: got %v, want the test source's section", doc.Sections)
	}
	if len(doc.PrivacyRequests) != 1 || doc.PrivacyRequests[0].ID != r.ID {
		t.Fatalf("requests: got %+v", doc.PrivacyRequests)
	}
	if !doc.Account.EmailVerified || !doc.Account.MobileVerified || doc.Account.CreatedAt.IsZero() {
		t.Fatalf("account: got %+v", doc.Account)
	}
	// The JSON form carries the schema version, the documented keys, the
	// controller and the period in force.
	j, _ := json.Marshal(doc)
	var m map[string]any
	_ = json.Unmarshal(j, &m)
	for _, k := range []string{"schema_version", "controller", "account", "devices", "sessions", "privacy_requests", "sections", "article_15", "categories_included"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON export lacks %q", k)
		}
	}
	if m["schema_version"] != "1.4" {
		t.Errorf("schema_version = %v, want 1.4 (what DNS blocking added)", m["schema_version"])
	}
	if devs, _ := m["devices"].([]any); len(devs) != 1 || fmt.Sprint(devs[0].(map[string]any)["dns_blocking"]) != "[ads gambling]" {
		t.Errorf("JSON export devices = %v, want one with dns_blocking [ads gambling]", m["devices"])
	}
	proc, _ := m["account"].(map[string]any)["processing"].(map[string]any)
	for _, k := range []string{"restricted", "objected", "stopped", "continues", "effect"} {
		if _, ok := proc[k]; !ok {
			t.Errorf("JSON export account.processing lacks %q", k)
		}
	}
	wantCtl := map[string]any{"name": ctl.Name, "address": ctl.Address, "email": ctl.Email,
		"dpo": map[string]any{"name": "Dana Officer", "email": "dpo@example.org"}}
	if got := m["controller"]; fmt.Sprint(got) != fmt.Sprint(wantCtl) {
		t.Errorf("JSON controller = %v, want %v (unset phone and representative left out)", got, wantCtl)
	}
	var sessions inventory.RetentionInfo
	for _, ri := range doc.Article15.Retention {
		if ri.Category == inventory.IDSessions {
			sessions = ri
		}
	}
	if sessions.Days != 30 || sessions.Rule != "30 days after the session ended" || !strings.Contains(sessions.Criteria, "30 days") ||
		strings.Contains(sessions.Criteria, "90 days") {
		t.Errorf("export retention of sessions = %+v, want the 30 days in force", sessions)
	}
	var html bytes.Buffer
	if err := privacy.RenderHTML(&html, doc); err != nil {
		t.Fatal(err)
	}
	s := html.String()
	if strings.Contains(s, "<script>") || !strings.Contains(s, "&lt;script&gt;") || !strings.Contains(s, u.email) ||
		!strings.Contains(s, "Art. 15") || !strings.Contains(s, "Complaint") {
		t.Fatalf("HTML copy is not escaped or lacks content")
	}
	for _, want := range []string{"Example &lt;VPN&gt; GmbH", "1 Example Street, Berlin", "Dana Officer, dpo@example.org",
		"<th>Phone</th><td>not stated by the operator</td>", "Session intervals: 30 days after the session ended. Deleted 30 days after"} {
		if !strings.Contains(s, want) {
			t.Errorf("HTML copy lacks %q", want)
		}
	}
	if strings.Contains(s, "90 days") || strings.Contains(s, "--controller") {
		t.Errorf("HTML copy states the default 90 days or names a flag to the user")
	}
}

// TestExportLink checks that the download is owner-only, single-use and
// expires.
func TestExportLink(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t, storetest.DefaultPool()))
	ctx := t.Context()
	u, other := h.signup(t), h.signup(t)
	r := h.request(t, u, store.RequestAccess, "")
	tok, exp, err := h.svc.ExportToken(ctx, u.id, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := h.clk.Now().Add(privacy.ExportTokenTTL); exp.After(want) {
		t.Fatalf("token expires %v, want at most %v", exp, want)
	}
	_, _, err = h.svc.ExportToken(ctx, other.id, r.ID)
	wantCode(t, "token for another's request", err, errs.NotFound)
	_, err = h.svc.Export(ctx, other.id, r.ID, tok)
	wantCode(t, "another account uses the token", err, errs.NotFound)
	_, err = h.svc.Export(ctx, u.id, r.ID, "")
	wantCode(t, "no token", err, errs.Invalid)
	_, err = h.svc.Export(ctx, u.id, r.ID, "nnx_forged")
	wantCode(t, "forged token", err, errs.Gone)
	if _, err := h.svc.Export(ctx, u.id, r.ID, tok); err != nil {
		t.Fatalf("first use: got %v, want nil", err)
	}
	_, err = h.svc.Export(ctx, u.id, r.ID, tok)
	wantCode(t, "second use", err, errs.Gone)

	tok2, _, _ := h.svc.ExportToken(ctx, u.id, r.ID)
	h.clk.Add(privacy.ExportTokenTTL + time.Second)
	_, err = h.svc.Export(ctx, u.id, r.ID, tok2)
	wantCode(t, "expired token", err, errs.Gone)
	h.clk.Add(privacy.ExportWindow)
	_, _, err = h.svc.ExportToken(ctx, u.id, r.ID)
	wantCode(t, "after the export window", err, errs.Gone)

	// A pending request has no export yet; an erasure never has one.
	p, _ := h.svc.Create(ctx, u.id, store.RequestAccess, "")
	_, _, err = h.svc.ExportToken(ctx, u.id, p.ID)
	wantCode(t, "unverified", err, errs.Precondition)
	e, _ := h.svc.Create(ctx, u.id, store.RequestErasure, "")
	_, _, err = h.svc.ExportToken(ctx, u.id, e.ID)
	wantCode(t, "erasure request", err, errs.Precondition)
}

// BenchmarkExport builds the export of an account with 10,000 session
// intervals (the target: under 1 s), JSON encoding included.
func BenchmarkExport(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			st := be.OpenSQL(b, storetest.DefaultPool())
			h := newHarness(b, st)
			ctx := context.Background()
			u := h.signup(b)
			d := h.addDevice(b, u, "bench", 1)
			base := start().Add(-80 * 24 * time.Hour).Truncate(time.Minute)
			for i := 0; i < 10_000; i += 1000 {
				ivs := make([]store.Interval, 0, 1000)
				for j := i; j < i+1000; j++ {
					s := base.Add(time.Duration(j) * 10 * time.Minute)
					e := s.Add(5 * time.Minute)
					ivs = append(ivs, store.Interval{DeviceID: d.ID, Start: s, End: &e})
				}
				if _, err := st.RecordIntervals(ctx, "eu-west", ivs); err != nil {
					b.Fatal(err)
				}
			}
			r := h.request(b, u, store.RequestAccess, "")
			req, err := st.PrivacyRequest(ctx, r.ID)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				doc, err := h.svc.BuildExport(ctx, u.id, req)
				if err != nil {
					b.Fatal(err)
				}
				if doc.Sessions.Count != 10_000 {
					b.Fatalf("got %d intervals, want 10000", doc.Sessions.Count)
				}
				if err := json.NewEncoder(&bytes.Buffer{}).Encode(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
