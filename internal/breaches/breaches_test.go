package breaches_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/breaches"
	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// mailbox records the messages handed to the notifier, the boundary.
type mailbox struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (m *mailbox) Send(_ context.Context, msg notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

type fixture struct {
	st   store.Store
	svc  *breaches.Service
	mail *mailbox
	now  time.Time
}

func (f *fixture) clock() time.Time { return f.now }

func newFixture(t *testing.T, b storetest.Backend, id controller.Identity) *fixture {
	t.Helper()
	f := &fixture{st: b.Open(t), mail: &mailbox{}, now: time.Date(2025, 9, 1, 12, 0, 0, 0, time.UTC)}
	f.svc = f.service(t, id)
	return f
}

// service builds a Service on f's store and mailbox for the controller
// id.
func (f *fixture) service(t *testing.T, id controller.Identity) *breaches.Service {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	snd, err := notices.New(notices.Config{Store: f.st, Notifier: f.mail, Logger: log, Clock: f.clock, Rand: rand.Reader,
		Contacts: func(a *store.Account) (string, string, error) { return "user-" + a.ID + "@example.com", "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	auditLog, err := audit.New(audit.Config{Store: f.st, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := breaches.New(breaches.Config{Store: f.st, Notices: snd, Audit: auditLog,
		Inventory: inventory.Default(), Controller: id, Logger: log, Clock: f.clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

var (
	officer = staff.Principal{ID: "stf_officer", Role: staff.RolePrivacyOfficer}
	dpo     = controller.Identity{Name: "Example VPN Ltd", Email: "privacy@vpn.example",
		DPO: controller.DPO{Name: "Dana Officer", Email: "dpo@vpn.example"}}
)

func ptr[T any](v T) *T { return &v }

// TestNotifyBy: a record opened with a detection time and a nature is due
// to be notified 72 hours later, and is overdue, in the record and the
// metric's count, once that passes unless the authority was notified or
// the risk is assessed unlikely.
func TestNotifyBy(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, dpo)
			ctx := context.Background()
			detected := f.now.Add(-70 * time.Hour)
			br, err := f.svc.Add(ctx, officer, detected, "  Backups were copied by a former contractor.  ")
			if err != nil {
				t.Fatal(err)
			}
			if !br.NotifyBy.Equal(detected.Add(72*time.Hour)) || br.Overdue || br.Status != store.BreachOpen ||
				br.Nature != "Backups were copied by a former contractor." || br.RecordedBy != officer.ID {
				t.Fatalf("new record: got %+v", br)
			}
			other, err := f.svc.Add(ctx, officer, f.now.Add(-80*time.Hour), "A server was misconfigured.")
			if err != nil {
				t.Fatal(err)
			}
			if n, err := f.svc.OverdueCount(ctx); err != nil || n != 1 {
				t.Fatalf("OverdueCount: got %d, %v; want 1", n, err)
			}
			f.now = f.now.Add(3 * time.Hour) // 73 h after detection
			list, err := f.svc.List(ctx, officer)
			if err != nil || len(list) != 2 || list[0].ID != br.ID || !list[0].Overdue || !list[1].Overdue {
				t.Fatalf("list: got %+v, %v; want both overdue, newest detected first", list, err)
			}
			if n, _ := f.svc.OverdueCount(ctx); n != 2 {
				t.Fatalf("OverdueCount: got %d, want 2", n)
			}
			// Notified, and assessed unlikely: neither is overdue.
			if _, err := f.svc.Update(ctx, officer, br.ID, breaches.Update{AuthorityNotifiedAt: ptr(f.now.Add(-time.Hour)),
				AuthorityReference: ptr("DPA-2025-0042")}); err != nil {
				t.Fatal(err)
			}
			up, err := f.svc.Update(ctx, officer, other.ID, breaches.Update{Risk: ptr(breaches.RiskUnlikely)})
			if err != nil || up.Overdue {
				t.Fatalf("assessed unlikely: got %+v, %v", up, err)
			}
			if n, _ := f.svc.OverdueCount(ctx); n != 0 {
				t.Fatalf("OverdueCount after notifying: got %d, want 0", n)
			}
		})
	}
}

// TestUpdateRules: every field is validated and named in its error;
// closing needs the authority notified or the risk assessed unlikely;
// changes are audited by field name, never value.
func TestUpdateRules(t *testing.T) {
	f := newFixture(t, storetest.Backends()[0], dpo)
	ctx := context.Background()
	if _, err := f.svc.Add(ctx, officer, f.now.Add(time.Minute), "x"); errs.FieldOf(err) != "detected_at" {
		t.Fatalf("future detection: got %v", err)
	}
	if _, err := f.svc.Add(ctx, officer, time.Time{}, "x"); errs.FieldOf(err) != "detected_at" {
		t.Fatalf("no detection time: got %v", err)
	}
	if _, err := f.svc.Add(ctx, officer, f.now, " "); errs.FieldOf(err) != "nature" {
		t.Fatalf("no nature: got %v", err)
	}
	br, err := f.svc.Add(ctx, officer, f.now.Add(-time.Hour), "Mail relay credentials leaked.")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		u     breaches.Update
		code  errs.Code
		field string
	}{
		{"nothing", breaches.Update{}, errs.Invalid, ""},
		{"unknown category", breaches.Update{Categories: &[]string{"account.shoe_size"}}, errs.Invalid, "categories"},
		{"negative people", breaches.Update{People: ptr(int64(-1))}, errs.Invalid, "people"},
		{"negative records", breaches.Update{Records: ptr(int64(-5))}, errs.Invalid, "records"},
		{"unknown risk", breaches.Update{Risk: ptr("dire")}, errs.Invalid, "risk"},
		{"empty nature", breaches.Update{Nature: ptr("")}, errs.Invalid, "nature"},
		{"long consequences", breaches.Update{Consequences: ptr(strings.Repeat("x", breaches.MaxText+1))}, errs.Invalid, "consequences"},
		{"notified in the future", breaches.Update{AuthorityNotifiedAt: ptr(f.now.Add(time.Hour))}, errs.Invalid, "authority_notified_at"},
		{"notified before detection", breaches.Update{AuthorityNotifiedAt: ptr(f.now.Add(-2 * time.Hour))}, errs.Invalid, "authority_notified_at"},
		{"unknown status", breaches.Update{Status: ptr("done")}, errs.Invalid, "status"},
		{"closed unnotified", breaches.Update{Status: ptr("closed")}, errs.Precondition, "status"},
	} {
		_, err := f.svc.Update(ctx, officer, br.ID, tc.u)
		if errs.CodeOf(err) != tc.code || errs.FieldOf(err) != tc.field {
			t.Errorf("%s: got %v (field %q), want %s on %q", tc.name, err, errs.FieldOf(err), tc.code, tc.field)
		}
	}
	up, err := f.svc.Update(ctx, officer, br.ID, breaches.Update{Categories: &[]string{" account.email ", inventory.IDCodes, inventory.IDEmail},
		People: ptr(int64(1200)), Records: ptr(int64(1300)), Consequences: ptr("Phishing mails in our name."),
		MeasuresTaken: ptr("Credentials rotated."), MeasuresProposed: ptr("Watch for mails asking for codes."),
		Risk: ptr("HIGH"), AuthorityNotifiedAt: ptr(f.now), AuthorityReference: ptr("ICO-1"), Status: ptr("closed")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(up.Categories, []string{inventory.IDEmail, inventory.IDCodes}) || *up.People != 1200 || *up.Records != 1300 ||
		up.Risk != breaches.RiskHigh || up.Status != store.BreachClosed || up.ClosedAt == nil || up.Contact != "our data protection officer, Dana Officer, dpo@vpn.example" {
		t.Fatalf("after update: got %+v", up)
	}
	reopened, err := f.svc.Update(ctx, officer, br.ID, breaches.Update{Status: ptr("open")})
	if err != nil || reopened.ClosedAt != nil || reopened.Status != store.BreachOpen {
		t.Fatalf("reopen: got %+v, %v", reopened, err)
	}
	es, err := f.st.AuditEntriesFor(ctx, br.ID, 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		for _, value := range []string{"Phishing", "rotated", "ICO-1", "1200"} {
			if strings.Contains(e.Detail, value) {
				t.Errorf("audit detail holds a value: %q", e.Detail)
			}
		}
	}
	if len(es) != 3 || !strings.Contains(es[0].Detail+es[1].Detail, "authority_notified_at") {
		t.Errorf("audit of the record: got %+v, want opening and two updates naming fields", es)
	}
	for _, role := range []string{staff.RoleSupport, staff.RoleAdmin} {
		if _, err := f.svc.Update(ctx, staff.Principal{ID: "stf_x", Role: role}, br.ID, breaches.Update{Risk: ptr("risk")}); errs.CodeOf(err) != errs.Forbidden {
			t.Errorf("%s updates: got %v, want Forbidden", role, err)
		}
	}
}

// TestNotifyAffected: the notice states what Art. 34(2) requires and goes
// to the listed accounts only, in their inbox and by email; content
// missing from the record, or no contact point, is refused first.
func TestNotifyAffected(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, controller.Identity{})
			ctx := context.Background()
			a1, a2, a3 := storetest.NewAccountID(t, f.st), storetest.NewAccountID(t, f.st), storetest.NewAccountID(t, f.st)
			br, err := f.svc.Add(ctx, officer, f.now.Add(-5*time.Hour), "An attacker read the device table.")
			if err != nil {
				t.Fatal(err)
			}
			aud := breaches.Audience{Accounts: []string{a1, a3}}
			if _, err := f.svc.Notify(ctx, officer, br.ID, aud, true, nil); errs.CodeOf(err) != errs.Precondition || errs.FieldOf(err) != "consequences" {
				t.Fatalf("notify without consequences: got %v", err)
			}
			if _, err := f.svc.Update(ctx, officer, br.ID, breaches.Update{Consequences: ptr("Your device names may be known."),
				MeasuresTaken: ptr("We closed the hole."), Categories: &[]string{inventory.IDDevices}}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Notify(ctx, officer, br.ID, aud, true, nil); errs.FieldOf(err) != "contact" || !strings.Contains(errs.MessageOf(err), "--controller-dpo-email") {
				t.Fatalf("notify without a contact point: got %v", err)
			}
			// With a DPO configured, as the server is.
			withDPO := f.service(t, dpo)
			for _, tc := range []struct {
				name string
				aud  breaches.Audience
				code errs.Code
			}{
				{"nobody", breaches.Audience{}, errs.Invalid},
				{"both", breaches.Audience{All: true, Accounts: []string{a1}}, errs.Invalid},
				{"malformed", breaches.Audience{Accounts: []string{"alice"}}, errs.Invalid},
				{"unknown", breaches.Audience{Accounts: []string{a1, "acc_aaaaaaaaaaaaaaaaaaaaaaaaaa"}}, errs.NotFound},
			} {
				if _, err := withDPO.Notify(ctx, officer, br.ID, tc.aud, true, nil); errs.CodeOf(err) != tc.code || errs.FieldOf(err) != "accounts" {
					t.Errorf("%s: got %v, want %s on accounts", tc.name, err, tc.code)
				}
			}
			got, err := withDPO.Notify(ctx, officer, br.ID, aud, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Notices) != 1 || got.Notices[0].Audience != store.AudienceListed || got.Notices[0].Progress.Posted != 2 ||
				got.Notices[0].Progress.Sent != 2 || !got.Notices[0].Progress.Done {
				t.Fatalf("notices: got %+v", got.Notices)
			}
			if len(f.mail.msgs) != 2 {
				t.Fatalf("emails: got %d, want 2", len(f.mail.msgs))
			}
			for _, m := range f.mail.msgs {
				if m.Kind != breaches.NoticeKind || (m.To != "user-"+a1+"@example.com" && m.To != "user-"+a3+"@example.com") {
					t.Errorf("email to %s of kind %s", m.To, m.Kind)
				}
				for _, want := range []string{"An attacker read the device table.", "Your device names may be known.", "We closed the hole.",
					"dpo@vpn.example", "Devices", br.ID, "supervisory authority"} {
					if !strings.Contains(m.Body, want) {
						t.Errorf("notice lacks %q:\n%s", want, m.Body)
					}
				}
				if m.Account == "" {
					t.Errorf("notice email names no account for the recipients record")
				}
			}
			for acc, want := range map[string]int{a1: 1, a2: 0, a3: 1} {
				msgs, _, err := f.st.Messages(ctx, acc, 10)
				if err != nil || len(msgs) != want || (want == 1 && msgs[0].Kind != breaches.NoticeKind) {
					t.Errorf("inbox of %s: got %+v, %v; want %d breach notice", acc, msgs, err, want)
				}
			}
			// Nothing is left to resume, and a second notice to all
			// accounts reaches the third one.
			if _, err := withDPO.ResumeNotices(ctx, officer, br.ID, nil); err != nil {
				t.Fatal(err)
			}
			f.now = f.now.Add(time.Minute) // notices are listed newest first
			all, err := withDPO.Notify(ctx, officer, br.ID, breaches.Audience{All: true}, false, nil)
			if err != nil || len(all.Notices) != 2 || all.Notices[0].Audience != store.AudienceAll || all.Notices[0].Progress.Posted != 3 {
				t.Fatalf("notice to all: got %+v, %v", all, err)
			}
			if len(f.mail.msgs) != 2 {
				t.Fatalf("a notice without email sent %d emails", len(f.mail.msgs)-2)
			}
		})
	}
}
