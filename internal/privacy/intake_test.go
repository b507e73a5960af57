package privacy_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/deadline"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/processors"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestStaffAddProvenByCodes: a request received by phone ten days ago,
// naming the account's mobile number, is due one calendar month after
// receipt; codes go to both verified contacts with a note saying how to
// use them; the codes read back to staff prove identity and an access
// request is then fulfilled. The recording is audited without the
// contact.
func TestStaffAddProvenByCodes(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			h := newHarness(t, b.Open(t))
			ctx := context.Background()
			u := h.signup(t)
			support := principal(staff.RoleSupport)
			received := start().Add(-10 * 24 * time.Hour).Add(-37 * time.Minute)
			r, err := h.svc.StaffAdd(ctx, support, privacy.Intake{Type: "Access", Mobile: " " + u.mobile, Channel: "phone",
				ReceivedAt: received, Note: "Caller wants a copy of everything."})
			if err != nil {
				t.Fatal(err)
			}
			// 31 May 08:53 + one calendar month: 30 June 08:53 (clamped
			// to the month's last day).
			want := time.Date(2025, 6, 30, 8, 53, 0, 0, time.UTC)
			if !r.ReceivedAt.Equal(received) || !r.DueAt.Equal(want) || !want.Equal(deadline.Due(received, deadline.Months)) {
				t.Fatalf("received %v due %v, want received %v due %v", r.ReceivedAt, r.DueAt, received, want)
			}
			if r.AccountID != u.id || r.Channel != store.ChannelPhone || r.Status != store.RequestPending || r.IdentityCheck != nil ||
				!slices.Equal(r.IdentityProof, []string{"email_code", "mobile_code"}) || r.Details != "Caller wants a copy of everything." {
				t.Fatalf("recorded request: got %+v", r)
			}
			for _, to := range []string{u.email, u.mobile} {
				m := h.out.last(t, "privacy-code", to)
				if !strings.Contains(m.Body, "by phone") || !strings.Contains(m.Body, "read this code to our privacy team") || !strings.Contains(m.Body, r.ID) {
					t.Errorf("code message to %s does not say how to use it:\n%s", to, m.Body)
				}
			}
			// The user sees it in the app too, with the channel.
			mine, err := h.svc.List(ctx, u.id)
			if err != nil || len(mine) != 1 || mine[0].ID != r.ID || mine[0].Channel != "phone" {
				t.Fatalf("the user's list: got %+v, %v", mine, err)
			}
			// The staff member may enter the codes; a wrong one is refused
			// naming its field.
			for _, a := range r.Actions {
				if a.Action == staff.ActPrivacyRecord && !a.Allowed {
					t.Errorf("support may not enter the codes: %+v", a)
				}
			}
			_, err = h.svc.StaffVerify(ctx, support, r.ID, h.code(t, "privacy-code", u.email), "000000")
			if errs.CodeOf(err) != errs.Unauthenticated || errs.FieldOf(err) != "mobile_code" {
				t.Fatalf("wrong mobile code: got %v (field %q)", err, errs.FieldOf(err))
			}
			_, err = h.svc.StaffVerify(ctx, support, r.ID, "", h.code(t, "privacy-code", u.mobile))
			if errs.CodeOf(err) != errs.Invalid || errs.FieldOf(err) != "email_code" {
				t.Fatalf("missing email code: got %v", err)
			}
			// Fresh codes, read back.
			if fields, err := h.svc.StaffSendCodes(ctx, support, r.ID); err != nil || len(fields) != 2 {
				t.Fatalf("StaffSendCodes: %v, %v", fields, err)
			}
			v, err := h.svc.StaffVerify(ctx, support, r.ID, h.code(t, "privacy-code", u.email), h.code(t, "privacy-code", u.mobile))
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != store.RequestCompleted || v.VerifiedAt == nil || v.ExportUntil == nil {
				t.Fatalf("after the codes: got %+v, want an access request fulfilled", v)
			}
			if _, err := h.svc.StaffVerify(ctx, support, r.ID, "111111", "222222"); errs.CodeOf(err) != errs.Conflict {
				t.Fatalf("verify twice: got %v, want Conflict", err)
			}
			es, err := h.st.AuditEntriesFor(ctx, u.id, 20)
			if err != nil {
				t.Fatal(err)
			}
			var details []string
			for _, e := range es {
				if e.Action == staff.ActPrivacyRecord {
					details = append(details, e.Detail)
				}
				for _, secret := range []string{u.mobile, strings.TrimPrefix(u.mobile, "+"), u.email} {
					if strings.Contains(e.Detail, secret) {
						t.Errorf("audit detail holds the contact: %q", e.Detail)
					}
				}
			}
			if len(details) != 3 || !strings.Contains(strings.Join(details, "\n"), "account found by mobile") {
				t.Errorf("privacy.record audit entries: got %q, want recording, new codes and proof", details)
			}
		})
	}
}

// TestStaffAddVerifiedInApp: a request recorded by staff can be proven by
// its requester in the app, with the password and the codes, like one
// made there.
func TestStaffAddVerifiedInApp(t *testing.T) {
	h := newHarness(t, storetest.Backends()[0].Open(t))
	ctx := context.Background()
	u := h.signup(t)
	r, err := h.svc.StaffAdd(ctx, principal(staff.RolePrivacyOfficer), privacy.Intake{Type: "objection", Email: strings.ToUpper(u.email),
		Channel: "email"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.ReceivedAt.Equal(start()) || !r.DueAt.Equal(start().AddDate(0, 1, 0)) {
		t.Fatalf("without --received-at: received %v due %v, want now and a month later", r.ReceivedAt, r.DueAt)
	}
	v, err := h.svc.Verify(ctx, u.id, r.ID, pw, h.code(t, "privacy-code", u.email), h.code(t, "privacy-code", u.mobile))
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != store.RequestCompleted || v.Channel != store.ChannelEmail {
		t.Fatalf("after the app's proof: got %+v", v)
	}
	if f, _ := h.svc.Flags(ctx, u.id); !f.Objected {
		t.Fatalf("the objection is not in force")
	}
	// A request made in the app is not verified by staff.
	app, err := h.svc.Create(ctx, u.id, "access", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.StaffVerify(ctx, principal(staff.RoleSupport), app.ID, "111111", "222222"); errs.CodeOf(err) != errs.Conflict {
		t.Fatalf("staff verify of an app request: got %v, want Conflict", err)
	}
	if _, err := h.svc.StaffSendCodes(ctx, principal(staff.RoleSupport), app.ID); errs.CodeOf(err) != errs.Conflict {
		t.Fatalf("staff codes for an app request: got %v, want Conflict", err)
	}
}

// TestStaffAddRefusals: bad intake is refused with a clear error naming
// its field, and nothing is recorded.
func TestStaffAddRefusals(t *testing.T) {
	h := newHarness(t, storetest.Backends()[0].Open(t))
	ctx := context.Background()
	u := h.signup(t)
	by := principal(staff.RolePrivacyOfficer)
	ok := privacy.Intake{Type: "access", Email: u.email, Channel: "post"}
	with := func(f func(*privacy.Intake)) privacy.Intake { in := ok; f(&in); return in }
	for _, tc := range []struct {
		name  string
		in    privacy.Intake
		field string
		says  string
	}{
		{"future", with(func(in *privacy.Intake) { in.ReceivedAt = start().Add(time.Hour) }), "received_at", "in the future"},
		{"too old", with(func(in *privacy.Intake) { in.ReceivedAt = start().Add(-privacy.MaxIntakeAge - time.Hour) }), "received_at", "more than 365 days ago"},
		{"unknown type", with(func(in *privacy.Intake) { in.Type = "deletion" }), "type", "unknown request type"},
		{"unknown channel", with(func(in *privacy.Intake) { in.Channel = "app" }), "channel", "email, phone, post"},
		{"both contacts", with(func(in *privacy.Intake) { in.Mobile = u.mobile }), "email", "not both"},
		{"no contact", with(func(in *privacy.Intake) { in.Email = "" }), "email", "finds the account"},
		{"bad email", with(func(in *privacy.Intake) { in.Email = "not an address" }), "email", ""},
		{"bad mobile", with(func(in *privacy.Intake) { in.Email, in.Mobile = "", "12" }), "mobile", ""},
		{"check with codes", with(func(in *privacy.Intake) { in.Check = privacy.CheckCallback }), "identity_check", "proven by the codes"},
		{"no check without account", with(func(in *privacy.Intake) { in.Email = "stranger@example.com" }), "identity_check", "no account holds this email"},
		{"unknown check", with(func(in *privacy.Intake) { in.Email, in.Check = "stranger@example.com", "passport-copy" }), "identity_check", "unknown identity check"},
		{"long note", with(func(in *privacy.Intake) { in.Note = strings.Repeat("x", privacy.MaxDetails+1) }), "note", "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.svc.StaffAdd(ctx, by, tc.in)
			if errs.CodeOf(err) != errs.Invalid || errs.FieldOf(err) != tc.field || !strings.Contains(errs.MessageOf(err), tc.says) {
				t.Fatalf("got %v (field %q), want Invalid on %s saying %q", err, errs.FieldOf(err), tc.field, tc.says)
			}
		})
	}
	if rs, _ := h.st.PrivacyRequests(ctx, store.PrivacyFilter{}); len(rs) != 0 {
		t.Fatalf("refused intakes recorded %d requests", len(rs))
	}
	if _, err := h.svc.StaffAdd(ctx, principal(staff.RoleLegal), ok); errs.CodeOf(err) != errs.Forbidden {
		t.Fatalf("legal records a request: got %v, want Forbidden", err)
	}
}

// TestStaffAddWithoutAccount: a request naming a contact no account holds
// is recorded with the staff member's identity check and verified by it;
// it counts in the overdue list and metric when its deadline passes, and
// staff answer it.
func TestStaffAddWithoutAccount(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			h := newHarness(t, b.Open(t))
			ctx := context.Background()
			by := principal(staff.RoleSupport)
			received := start().Add(-20 * 24 * time.Hour)
			r, err := h.svc.StaffAdd(ctx, by, privacy.Intake{Type: "erasure", Email: "stranger@example.com", Channel: "post",
				ReceivedAt: received, Check: "Letter", Note: "Letter dated 20 May"})
			if err != nil {
				t.Fatal(err)
			}
			c := r.IdentityCheck
			if r.AccountID != "" || r.Status != store.RequestVerified || c == nil || c.Method != privacy.CheckLetter || c.By != by.ID ||
				!c.At.Equal(start()) || c.Description == "" || !r.DueAt.Equal(received.AddDate(0, 1, 0)) {
				t.Fatalf("no-account request: got %+v (check %+v)", r, c)
			}
			if ms := h.out.count("privacy-code", "stranger@example.com"); ms != 0 {
				t.Fatalf("%d codes sent to a contact no account holds", ms)
			}
			// Twelve days later (a month and a day after receipt) it is
			// overdue.
			h.clk.Add(12 * 24 * time.Hour)
			po := principal(staff.RolePrivacyOfficer)
			over, err := h.svc.StaffList(ctx, po, true)
			if err != nil || len(over) != 1 || over[0].ID != r.ID || !over[0].Overdue {
				t.Fatalf("overdue list: got %+v, %v", over, err)
			}
			if n, err := h.svc.OverdueCount(ctx); err != nil || n != 1 {
				t.Fatalf("OverdueCount: got %d, %v; want 1", n, err)
			}
			// Staff answer it: an erasure with no account is completed,
			// nothing to erase.
			for _, a := range over[0].Actions {
				if a.Action == staff.ActPrivacyComplete && !a.Allowed {
					t.Fatalf("complete not offered: %+v", a)
				}
				if a.Action == staff.ActPrivacyRecord && a.Allowed {
					t.Fatalf("codes offered for a request without account: %+v", a)
				}
			}
			done, err := h.svc.Complete(ctx, po, r.ID, "We hold no account for this address.")
			if err != nil || done.Status != store.RequestCompleted || done.Outcome != "We hold no account for this address." {
				t.Fatalf("complete: got %+v, %v", done, err)
			}
			if n, _ := h.svc.OverdueCount(ctx); n != 0 {
				t.Fatalf("OverdueCount after answering: %d", n)
			}
			if es, _ := h.st.AuditEntriesFor(ctx, r.ID, 10); len(es) < 2 || es[len(es)-1].Action != staff.ActPrivacyRecord {
				t.Fatalf("audit of the request: got %+v", es)
			}
		})
	}
}

// TestStaffAddAccountUnverified: an account with no verified contact
// cannot receive codes that prove anything, so a staff check is needed,
// and proves the request at once.
func TestStaffAddAccountUnverified(t *testing.T) {
	h := newHarness(t, storetest.Backends()[0].Open(t))
	ctx := context.Background()
	id, err := h.acc.Signup(ctx, "unverified@example.com", "+447911100777", pw)
	if err != nil {
		t.Fatal(err)
	}
	by := principal(staff.RolePrivacyOfficer)
	in := privacy.Intake{Type: "restriction", Email: "unverified@example.com", Channel: "email"}
	if _, err := h.svc.StaffAdd(ctx, by, in); errs.FieldOf(err) != "identity_check" || !strings.Contains(errs.MessageOf(err), "no verified contact") {
		t.Fatalf("without a check: got %v", err)
	}
	in.Check = privacy.CheckReply
	r, err := h.svc.StaffAdd(ctx, by, in)
	if err != nil {
		t.Fatal(err)
	}
	if r.AccountID != id || r.Status != store.RequestCompleted || r.IdentityCheck == nil || r.VerifiedAt == nil {
		t.Fatalf("got %+v, want the restriction fulfilled on the staff check", r)
	}
	if f, _ := h.svc.Flags(ctx, id); !f.Restricted {
		t.Fatalf("the restriction is not in force")
	}
}

// TestOutsideErasureByStaff: an erasure received by phone, proven by the
// codes read back, is carried out by staff completing it; the request
// then lists the processors that received the account's data, kept
// after the account's own record is gone, and staff note each one.
func TestOutsideErasureByStaff(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			h := newHarness(t, b.Open(t))
			ctx := context.Background()
			u := h.signup(t)
			po := principal(staff.RolePrivacyOfficer)
			r, err := h.svc.StaffAdd(ctx, po, privacy.Intake{Type: "erasure", Email: u.email, Channel: "phone"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.svc.Complete(ctx, po, r.ID, "Erased as asked by phone."); errs.CodeOf(err) != errs.Conflict {
				t.Fatalf("complete before proof: got %v, want Conflict", err)
			}
			v, err := h.svc.StaffVerify(ctx, po, r.ID, h.code(t, "privacy-code", u.email), h.code(t, "privacy-code", u.mobile))
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != store.RequestVerified || !strings.Contains(v.Outcome, "Our privacy team carries out the erasure") {
				t.Fatalf("verified: got %+v", v)
			}
			// Listed once proven: the relay got the email, codes and the
			// sign-up notices; the SMS gateway the mobile and codes.
			want := map[string][]string{
				processors.NameSMTP: {inventory.IDEmail, inventory.IDCodes},
				processors.NameSMS:  {inventory.IDMobile, inventory.IDCodes},
			}
			checkRecipients(t, v.Recipients, want)
			done, err := h.svc.Complete(ctx, po, r.ID, "Erased as asked by phone.")
			if err != nil {
				t.Fatal(err)
			}
			if done.Status != store.RequestCompleted || done.AccountID != "" || done.ConfirmedAt == nil {
				t.Fatalf("after completion: got %+v, want the erasure carried out", done)
			}
			if a, err := h.st.Account(ctx, u.id); err != nil || a.Status != store.StatusClosed || a.WrappedKey != nil {
				t.Fatalf("account after the erasure: %+v, %v", a, err)
			}
			if ts, _ := h.st.ProcessorTransfers(ctx, u.id); len(ts) != 0 {
				t.Fatalf("the account's transfers survive the erasure: %+v", ts)
			}
			// The erasure notice went by email before the key was
			// destroyed: a service notice, it handed the relay only the
			// address, which its entry already covers.
			checkRecipients(t, done.Recipients, want)

			for _, tc := range []struct {
				name                    string
				by                      staff.Principal
				processor, status, note string
				code                    errs.Code
				field                   string
			}{
				{"support", principal(staff.RoleSupport), processors.NameSMTP, "told", "", errs.Forbidden, ""},
				{"unknown status", po, processors.NameSMTP, "forgotten", "", errs.Invalid, "status"},
				{"impossible without reason", po, processors.NameSMS, "impossible", " ", errs.Invalid, "note"},
				{"unknown processor", po, "Courier", "told", "", errs.NotFound, "processor"},
			} {
				_, err := h.svc.NoteRecipient(ctx, tc.by, r.ID, tc.processor, tc.status, tc.note)
				if errs.CodeOf(err) != tc.code || errs.FieldOf(err) != tc.field {
					t.Errorf("%s: got %v (field %q), want %s on %q", tc.name, err, errs.FieldOf(err), tc.code, tc.field)
				}
			}
			if _, err := h.svc.NoteRecipient(ctx, po, r.ID, processors.NameSMTP, "told", "ticket 4411"); err != nil {
				t.Fatal(err)
			}
			got, err := h.svc.NoteRecipient(ctx, po, r.ID, processors.NameSMS, "impossible", "keeps no copy after delivery")
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range got.Recipients {
				wantStatus := map[string]string{processors.NameSMTP: "told", processors.NameSMS: "impossible"}[x.Processor]
				if x.Status != wantStatus || x.NotedAt == nil {
					t.Errorf("%s: got status %q noted %v, want %q", x.Processor, x.Status, x.NotedAt, wantStatus)
				}
			}
		})
	}
}

// checkRecipients fails unless got lists exactly the processors of want,
// each with at least want's categories.
func checkRecipients(t *testing.T, got []privacy.Recipient, want map[string][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("recipients: got %+v, want %v", got, want)
	}
	for _, x := range got {
		for _, c := range want[x.Processor] {
			if !slices.Contains(x.Categories, c) {
				t.Errorf("recipient %s: categories %v lack %s", x.Processor, x.Categories, c)
			}
		}
		if x.Status != store.RecipientPending && x.NotedAt == nil {
			t.Errorf("recipient %s: status %s without a time", x.Processor, x.Status)
		}
	}
}

// TestRectificationRecipients: a rectification lists, for its requester,
// the processors that received the data, and staff note the
// communication; other request types have no recipients to tell.
func TestRectificationRecipients(t *testing.T) {
	h := newHarness(t, storetest.Backends()[0].Open(t))
	ctx := context.Background()
	u := h.signup(t)
	r := h.request(t, u, store.RequestRectification, "My name is spelled wrong.")
	checkRecipients(t, r.Recipients, map[string][]string{
		processors.NameSMTP: {inventory.IDEmail, inventory.IDCodes},
		processors.NameSMS:  {inventory.IDMobile, inventory.IDCodes},
	})
	mine, err := h.svc.Get(ctx, u.id, r.ID)
	if err != nil || len(mine.Recipients) != 2 || mine.Recipients[0].Status != store.RecipientPending {
		t.Fatalf("the user's view: got %+v, %v", mine, err)
	}
	po := principal(staff.RolePrivacyOfficer)
	if _, err := h.svc.NoteRecipient(ctx, po, r.ID, processors.NameSMS, "told", "Told their DPO, ticket 4412"); err != nil {
		t.Fatal(err)
	}
	mine, _ = h.svc.Get(ctx, u.id, r.ID)
	if mine.Recipients[0].Processor != processors.NameSMS || mine.Recipients[0].Status != store.RecipientTold ||
		mine.Recipients[0].Note != "Told their DPO, ticket 4412" {
		t.Fatalf("the user does not see the communication: %+v", mine.Recipients)
	}
	// The note is stored sealed under the account's key.
	stored, err := h.st.RequestRecipients(ctx, r.ID)
	if err != nil || len(stored) != 2 || stored[0].Note != "" || len(stored[0].NoteSealed) == 0 ||
		bytes.Contains(stored[0].NoteSealed, []byte("4412")) {
		t.Fatalf("stored recipients: got %+v, %v, want the note sealed", stored, err)
	}
	access := h.request(t, u, store.RequestAccess, "")
	if access.Recipients != nil {
		t.Fatalf("an access request lists recipients: %+v", access.Recipients)
	}
	if _, err := h.svc.NoteRecipient(ctx, po, access.ID, processors.NameSMS, "told", ""); errs.CodeOf(err) != errs.Conflict {
		t.Fatalf("note on an access request: got %v, want Conflict", err)
	}
}
