package privacy_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestStaffAccount: the account a request is about, for staff with
// account.view: contacts decrypted, devices with their sessions, the
// account's requests, flags and holds (their reasons only for roles that
// may see holds); every view audited under the account.
func TestStaffAccount(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, b.Open(t))
			ctx := t.Context()
			u := h.signup(t)
			laptop := h.addDevice(t, u, "laptop", 1)
			h.addDevice(t, u, "phone", 2)
			t0 := start().Add(-2 * time.Hour).Truncate(time.Minute)
			end := t0.Add(30 * time.Minute)
			if _, err := h.st.RecordIntervals(ctx, "eu-west", []store.Interval{
				{DeviceID: laptop.ID, Start: t0, End: &end},
				{DeviceID: laptop.ID, Start: t0.Add(time.Hour)},
			}); err != nil {
				t.Fatal(err)
			}
			po := principal(staff.RolePrivacyOfficer)
			if _, err := h.holds.Add(ctx, principal(staff.RoleLegal), u.id, "court order 12", nil); err != nil {
				t.Fatal(err)
			}
			r := h.request(t, u, store.RequestRectification, "my email is wrong")
			other := h.request(t, u, store.RequestRestriction, "")

			v, err := h.svc.StaffAccount(ctx, po, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if v.Account.Email != u.email || v.Account.Mobile != u.mobile || v.Erased || v.Request.ID != r.ID {
				t.Fatalf("account: got %+v", v.Account)
			}
			if len(v.Devices) != 2 {
				t.Fatalf("devices: got %+v", v.Devices)
			}
			for _, d := range v.Devices {
				switch d.Name {
				case "laptop":
					if d.Sessions != 2 || !d.Connected || d.LastUsed == nil || !d.LastUsed.Equal(t0.Add(time.Hour)) {
						t.Errorf("laptop: got %+v, want 2 sessions, connected, last used %v", d, t0.Add(time.Hour))
					}
				case "phone":
					if d.Sessions != 0 || d.Connected || d.LastUsed != nil {
						t.Errorf("phone: got %+v, want no sessions", d)
					}
				default: // names are stored sealed: the view opens them
					t.Errorf("device %+v: want its name, laptop or phone", d)
				}
			}
			if v.Request.Details != "my email is wrong" {
				t.Errorf("request details: got %q, want the sealed text opened", v.Request.Details)
			}
			for _, x := range v.Requests {
				if x.ID == r.ID && x.Details != "my email is wrong" {
					t.Errorf("account's requests: details of %s got %q, want the sealed text opened", x.ID, x.Details)
				}
			}
			if v.Sessions.Count != 2 || v.Sessions.Open != 1 || !slices.Equal(v.Sessions.Regions, []string{"eu-west"}) {
				t.Errorf("sessions: got %+v", v.Sessions)
			}
			if len(v.Requests) != 2 || !v.Flags.Restricted || v.Requests[0].ID != other.ID && v.Requests[1].ID != other.ID {
				t.Errorf("requests %+v, flags %+v", v.Requests, v.Flags)
			}
			// The privacy officer may see holds; support sees only that
			// one applies.
			if v.Holds.Active != 1 || len(v.Holds.Holds) != 1 || v.Holds.Holds[0].Reason != "court order 12" {
				t.Errorf("holds for the privacy officer: got %+v", v.Holds)
			}
			if !v.Correct.Allowed {
				t.Errorf("correct: got %+v, want allowed on a verified rectification", v.Correct)
			}
			sv, err := h.svc.StaffAccount(ctx, principal(staff.RoleSupport), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if sv.Holds.Active != 1 || sv.Holds.Holds != nil {
				t.Errorf("holds for support: got %+v, want the count only", sv.Holds)
			}
			if sv.Correct.Allowed || !strings.Contains(sv.Correct.Reason, "support") {
				t.Errorf("correct for support: got %+v", sv.Correct)
			}
			// Not a rectification: nothing to correct.
			ov, err := h.svc.StaffAccount(ctx, po, other.ID)
			if err != nil || ov.Correct.Allowed {
				t.Fatalf("restriction: got %+v, %v; want no correction", ov.Correct, err)
			}

			// Every view is audited under the account, naming the request.
			es, err := h.st.AuditEntriesFor(ctx, u.id, 100)
			if err != nil {
				t.Fatal(err)
			}
			views := 0
			for _, e := range es {
				if e.Action == staff.ActAccountView && strings.Contains(e.Detail, "for request") {
					views++
					if strings.Contains(e.Detail, u.email) || strings.Contains(e.Detail, u.mobile) {
						t.Errorf("audit detail holds a contact: %q", e.Detail)
					}
				}
			}
			if views != 3 {
				t.Errorf("got %d audited views, want 3", views)
			}

			// Roles without account.view are refused, and nobody is
			// unauthenticated.
			_, err = h.svc.StaffAccount(ctx, principal(staff.RoleLegal), r.ID)
			wantCode(t, "legal", err, errs.Forbidden)
			_, err = h.svc.StaffAccount(ctx, staff.Principal{}, r.ID)
			wantCode(t, "nobody", err, errs.Unauthenticated)
			_, err = h.svc.StaffAccount(ctx, po, "prq_nope")
			wantCode(t, "malformed id", err, errs.Invalid)
		})
	}
}

// TestStaffCorrectContact: staff correct an email as part of a verified
// rectification; it takes effect only once the code sent to the new
// address is entered, which completes the request. The owner is told in
// the inbox, and the audit names the channel, never the value.
func TestStaffCorrectContact(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, b.Open(t))
			ctx := t.Context()
			u, other := h.signup(t), h.signup(t)
			po := principal(staff.RolePrivacyOfficer)
			access := h.request(t, u, store.RequestAccess, "")
			pending, err := h.svc.Create(ctx, u.id, store.RequestRectification, "")
			if err != nil {
				t.Fatal(err)
			}
			const fixed = "corrected@example.com"
			err = h.svc.StaffCorrectContact(ctx, po, access.ID, store.Email, fixed)
			wantCode(t, "access request", err, errs.Conflict)
			err = h.svc.StaffCorrectContact(ctx, po, pending.ID, store.Email, fixed)
			wantCode(t, "unverified rectification", err, errs.Conflict)
			r := h.request(t, u, store.RequestRectification, "")
			err = h.svc.StaffCorrectContact(ctx, principal(staff.RoleSupport), r.ID, store.Email, fixed)
			wantCode(t, "support", err, errs.Forbidden)
			err = h.svc.StaffCorrectContact(ctx, po, r.ID, store.Email, "not an address")
			wantCode(t, "bad value", err, errs.Invalid)
			wantField(t, "bad value", err, "value")
			err = h.svc.StaffCorrectContact(ctx, po, r.ID, store.Email, other.email)
			wantCode(t, "another account's", err, errs.Conflict)
			wantField(t, "another account's", err, "value")
			err = h.svc.StaffCorrectContact(ctx, po, r.ID, store.Email, u.email)
			wantCode(t, "the same", err, errs.Invalid)

			if err := h.svc.StaffCorrectContact(ctx, po, r.ID, store.Email, fixed); err != nil {
				t.Fatal(err)
			}
			// Not in effect yet.
			v, err := h.svc.StaffAccount(ctx, po, r.ID)
			if err != nil || v.Account.Email != u.email || v.Request.Status != store.RequestVerified {
				t.Fatalf("before the code: got %+v, %v", v, err)
			}
			if p, ok := h.inbox.find(u.id, privacy.KindCorrection); !ok || p.request != r.ID {
				t.Fatalf("no correction notice about %s in the inbox: %+v", r.ID, h.inbox.posts)
			}
			if err := h.svc.ConfirmContactChange(ctx, u.id, store.Email, h.code(t, "contact-change-code", fixed)); err != nil {
				t.Fatal(err)
			}
			v, err = h.svc.StaffAccount(ctx, po, r.ID)
			if err != nil || v.Account.Email != fixed || v.Request.Status != store.RequestCompleted {
				t.Fatalf("after the code: got %+v, %v", v, err)
			}
			es, err := h.st.AuditEntriesFor(ctx, u.id, 100)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range es {
				if strings.Contains(e.Detail, "corrected") || strings.Contains(e.Detail, fixed) {
					found = found || (e.Action == staff.ActPrivacyComplete && e.Actor == po.ID)
					if strings.Contains(e.Detail, fixed) {
						t.Errorf("audit detail holds the new address: %q", e.Detail)
					}
				}
			}
			if !found {
				t.Errorf("no audit entry of the correction in %+v", es)
			}
		})
	}
}

// TestStatusNotices: every change of a request's status reaches the inbox
// as a message about the request.
func TestStatusNotices(t *testing.T) {
	h := newHarness(t, storetest.Backends()[0].Open(t))
	ctx := t.Context()
	u := h.signup(t)
	po := principal(staff.RolePrivacyOfficer)

	access := h.request(t, u, store.RequestAccess, "")
	rect := h.request(t, u, store.RequestRectification, "")
	if _, err := h.svc.Extend(ctx, po, rect.ID, 1, "many systems to search"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Complete(ctx, po, rect.ID, "We corrected your name in our records."); err != nil {
		t.Fatal(err)
	}
	denied, err := h.svc.Create(ctx, u.id, store.RequestObjection, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Deny(ctx, po, denied.ID, "manifestly unfounded"); err != nil {
		t.Fatal(err)
	}
	outsideReq, err := h.svc.StaffAdd(ctx, po, privacy.Intake{Type: store.RequestPortability, Email: u.email, Channel: store.ChannelEmail})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][]string{
		access.ID:     {privacy.KindReceived, privacy.KindCompleted},
		rect.ID:       {privacy.KindReceived, privacy.KindVerified, privacy.KindExtended, privacy.KindCompleted},
		denied.ID:     {privacy.KindReceived, privacy.KindDenied},
		outsideReq.ID: {privacy.KindReceived},
	} {
		if got := h.inbox.about(id); !slices.Equal(got, want) {
			t.Errorf("notices about %s: got %v, want %v", id, got, want)
		}
	}
	if p, ok := h.inbox.find(u.id, privacy.KindCompleted); !ok || !strings.Contains(p.body, "We corrected your name") {
		t.Errorf("completion notice: got %+v", p)
	}
}
