package processors_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/processors"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// recorder is a Notifier that records what it was given.
type recorder struct {
	mu   sync.Mutex
	sent []notify.Message
}

func (r *recorder) Send(_ context.Context, m notify.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return nil
}

// fixedRegister is a Register over a map.
type fixedRegister map[string][]string

func (f fixedRegister) Scope(_ context.Context, name string) ([]string, error) {
	c, ok := f[name]
	if !ok {
		return nil, errs.E(errs.NotFound, "no such processor")
	}
	return c, nil
}

// Received records nothing: TestServiceOnStores checks the recording with
// the real register.
func (fixedRegister) Received(context.Context, string, string, []string) error { return nil }

func defaultRegister() fixedRegister {
	r := fixedRegister{}
	for _, p := range processors.Defaults() {
		r[p.Name] = p.Categories
	}
	return r
}

func TestGuard(t *testing.T) {
	const addr, mobile = "alice@example.com", "+447700900123"
	tests := []struct {
		name string
		reg  fixedRegister
		msg  notify.Message
		want errs.Code // "" means passed on
	}{
		{"email code", defaultRegister(), notify.Message{Channel: notify.Email, To: addr, Subject: "Code", Body: "123456", Kind: "verify-code"}, ""},
		{"email reset", defaultRegister(), notify.Message{Channel: notify.Email, To: addr, Body: "link", Kind: "password-reset"}, ""},
		{"email notice", defaultRegister(), notify.Message{Channel: notify.Email, To: addr, Body: "policy changed", Kind: "policy-change"}, ""},
		{"sms code", defaultRegister(), notify.Message{Channel: notify.SMS, To: mobile, Body: "123456", Kind: "verify-code"}, ""},
		{"sms notice out of scope", defaultRegister(), notify.Message{Channel: notify.SMS, To: mobile, Body: "policy changed", Kind: "policy-change"}, errs.Forbidden},
		{"sms to the old number after a change", defaultRegister(), notify.Message{Channel: notify.SMS, To: mobile, Body: "The mobile of your Nitronet account was changed.", Kind: processors.KindContactChanged}, ""},
		{"sms erasure notice", defaultRegister(), notify.Message{Channel: notify.SMS, To: mobile, Body: "Nitronet: your account is being erased.", Kind: processors.KindErasure}, ""},
		{"sms service notice quoting an email address", defaultRegister(), notify.Message{Channel: notify.SMS, To: mobile, Body: "Your email is now " + addr, Kind: processors.KindContactChanged}, errs.Forbidden},
		{"sms service notice, mobile out of scope", fixedRegister{processors.NameSMS: {inventory.IDCodes}}, notify.Message{Channel: notify.SMS, To: mobile, Body: "erased", Kind: processors.KindErasure}, errs.Forbidden},
		{"sms carrying an email address", defaultRegister(), notify.Message{Channel: notify.SMS, To: mobile, Body: "code 123456 for " + addr, Kind: "verify-code"}, errs.Forbidden},
		{"email carrying a mobile number", defaultRegister(), notify.Message{Channel: notify.Email, To: addr, Body: "your new number " + mobile, Kind: "contact-changed"}, errs.Forbidden},
		{"processor removed", fixedRegister{processors.NameSMS: {inventory.IDMobile, inventory.IDCodes}}, notify.Message{Channel: notify.Email, To: addr, Body: "code 482913", Kind: "verify-code"}, errs.Forbidden},
		{"scope narrowed", fixedRegister{processors.NameSMTP: {inventory.IDEmail}}, notify.Message{Channel: notify.Email, To: addr, Body: "code 482913", Kind: "verify-code"}, errs.Forbidden},
		{"unknown channel", defaultRegister(), notify.Message{Channel: "pigeon", To: addr, Kind: "x"}, errs.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			next := &recorder{}
			g := processors.Guard(next, tt.reg, slog.New(slog.NewTextHandler(&logs, nil)))
			err := g.Send(t.Context(), tt.msg)
			if got := errs.CodeOf(err); got != tt.want {
				t.Fatalf("Send: got error %v (code %q), want code %q", err, got, tt.want)
			}
			passed := len(next.sent) == 1
			if passed != (tt.want == "") {
				t.Fatalf("passed to next: got %v, want %v", passed, tt.want == "")
			}
			if passed && next.sent[0] != tt.msg {
				t.Errorf("next got %+v, want the message unchanged", next.sent[0])
			}
			for _, secret := range []string{addr, mobile, "alice", "7700900", "123456", tt.msg.Body} {
				if secret != "" && (strings.Contains(logs.String(), secret) || strings.Contains(errs.MessageOf(err), secret)) {
					t.Errorf("log or error contains %q: log %q, error %q", secret, logs.String(), errs.MessageOf(err))
				}
			}
			if tt.want == errs.Forbidden {
				if !strings.Contains(logs.String(), "kind="+tt.msg.Kind) || !strings.Contains(logs.String(), "processor=") {
					t.Errorf("refusal log = %q, want the kind and processor", logs.String())
				}
			}
		})
	}
}

// failingRegister cannot be read.
type failingRegister struct{}

func (failingRegister) Scope(context.Context, string) ([]string, error) {
	return nil, errs.E(errs.Unavailable, "database down")
}

func (failingRegister) Received(context.Context, string, string, []string) error {
	return errs.E(errs.Unavailable, "database down")
}

// unrecordedRegister has the default scopes but cannot record transfers.
type unrecordedRegister struct{ fixedRegister }

func (unrecordedRegister) Received(context.Context, string, string, []string) error {
	return errs.E(errs.Unavailable, "database down")
}

// TestGuardRefusesUnrecorded: a message about an account whose transfer
// cannot be recorded does not reach the processor; one about no account
// needs no record.
func TestGuardRefusesUnrecorded(t *testing.T) {
	next := &recorder{}
	g := processors.Guard(next, unrecordedRegister{defaultRegister()}, slog.New(slog.DiscardHandler))
	m := notify.Message{Channel: notify.Email, To: "a@example.com", Body: "1", Kind: "verify-code", Account: "acc_1"}
	if err := g.Send(t.Context(), m); errs.CodeOf(err) != errs.Unavailable || len(next.sent) != 0 {
		t.Fatalf("got error %v and %d sent, want Unavailable and nothing sent", err, len(next.sent))
	}
	m.Account = ""
	if err := g.Send(t.Context(), m); err != nil || len(next.sent) != 1 {
		t.Fatalf("without an account: got %v and %d sent, want it sent", err, len(next.sent))
	}
}

func TestGuardFailsClosed(t *testing.T) {
	next := &recorder{}
	g := processors.Guard(next, failingRegister{}, slog.New(slog.DiscardHandler))
	err := g.Send(t.Context(), notify.Message{Channel: notify.Email, To: "a@example.com", Body: "1", Kind: "verify-code"})
	if errs.CodeOf(err) != errs.Unavailable || len(next.sent) != 0 {
		t.Fatalf("got error %v and %d sent, want Unavailable and nothing sent", err, len(next.sent))
	}
}

func TestTransfer(t *testing.T) {
	got := processors.Transfer(notify.Message{Channel: notify.Email, To: "a@example.com", Body: "code", Kind: "identity-code"})
	if want := []string{inventory.IDEmail, inventory.IDCodes}; !slices.Equal(got, want) {
		t.Errorf("Transfer: got %v, want %v", got, want)
	}
	// Every category a message can carry comes out in inventory order.
	got = processors.Transfer(notify.Message{Channel: notify.SMS, To: "+447911123456", Kind: "notice",
		Subject: "Contact changed", Body: "Your email is now new@example.com and your mobile +447911654321."})
	var want []string
	for _, c := range inventory.Default() {
		if slices.Contains(got, c.ID) {
			want = append(want, c.ID)
		}
	}
	if len(got) != 3 || !slices.Equal(got, want) {
		t.Errorf("Transfer(notice quoting contacts): got %v, want email, mobile and inbox in inventory order %v", got, want)
	}
}

// TestDefaultsMatchInventory checks that each default processor may
// receive exactly what the inventory says it receives.
func TestDefaultsMatchInventory(t *testing.T) {
	recipient := map[string]string{processors.NameSMTP: inventory.RecipientSMTP, processors.NameSMS: inventory.RecipientSMS}
	for _, p := range processors.Defaults() {
		for _, c := range inventory.Default() {
			declared := slices.Contains(c.Recipients, recipient[p.Name])
			if declared && !slices.Contains(p.Categories, c.ID) {
				t.Errorf("%s: inventory lists it as a recipient of %s, but the register does not allow it", p.Name, c.ID)
			}
		}
	}
}

func TestServiceOnStores(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := t.Context()
			clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
			log, err := audit.New(audit.Config{Store: st, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			svc, err := processors.New(processors.Config{Store: st, Audit: log, Inventory: inventory.Default(), Clock: clock,
				Rand: rand.Reader, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			po := staff.Principal{ID: "stf_po", Role: staff.RolePrivacyOfficer}

			// The migration seeds exactly the defaults.
			seeded, err := svc.List(ctx, po)
			if err != nil {
				t.Fatal(err)
			}
			want := processors.Defaults()
			slices.SortFunc(want, func(a, b store.Processor) int {
				return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
			})
			if len(seeded) != len(want) {
				t.Fatalf("seeded: got %d, want %d", len(seeded), len(want))
			}
			for i := range want {
				if seeded[i].Name != want[i].Name || seeded[i].Purpose != want[i].Purpose || !slices.Equal(seeded[i].Categories, want[i].Categories) {
					t.Errorf("seeded[%d] = %+v, want %+v", i, seeded[i], want[i])
				}
			}
			// The real register drives the guard.
			next := &recorder{}
			g := processors.Guard(next, svc, slog.New(slog.DiscardHandler))
			sms := notify.Message{Channel: notify.SMS, To: "+447700900123", Body: "1", Kind: "verify-code"}
			if err := g.Send(ctx, sms); err != nil {
				t.Fatalf("sms code with default register: %v", err)
			}
			// What passes the guard about an account is recorded (never
			// the content) and appears in the account's export; what is
			// refused is not.
			acct := storetest.NewAccountID(t, st)
			for _, m := range []notify.Message{
				{Channel: notify.Email, To: "a@example.com", Subject: "Code", Body: "123456", Kind: "verify-code", Account: acct},
				{Channel: notify.SMS, To: "+447700900123", Body: "654321", Kind: "privacy-code", Account: acct},
				{Channel: notify.Email, To: "a@example.com", Subject: "News", Body: "policy changed", Kind: "policy-change", Account: acct},
			} {
				if err := g.Send(ctx, m); err != nil {
					t.Fatalf("send %s: %v", m.Kind, err)
				}
			}
			if err := g.Send(ctx, notify.Message{Channel: notify.SMS, To: "+447700900123", Body: "news", Kind: "policy-change", Account: acct}); errs.CodeOf(err) != errs.Forbidden {
				t.Fatalf("sms notice: got %v, want Forbidden", err)
			}
			name, data, err := svc.ExportSection(ctx, acct)
			if err != nil {
				t.Fatal(err)
			}
			got := data.([]processors.Receipt)
			if name != "recipients" || len(got) != 2 || got[0].Processor != processors.NameSMS || got[1].Processor != processors.NameSMTP ||
				!slices.Equal(got[0].Categories, []string{inventory.IDMobile, inventory.IDCodes}) ||
				!slices.Equal(got[1].Categories, []string{inventory.IDEmail, inventory.IDCodes, inventory.IDInbox}) ||
				!got[1].FirstAt.Equal(clock()) {
				t.Fatalf("export section %q: got %+v", name, got)
			}
			if transfers, _ := st.ProcessorTransfers(ctx, acct); len(transfers) != 5 {
				t.Fatalf("recorded transfers: got %+v, want 5 (account, processor, category) rows", transfers)
			}

			// Roles: only the privacy officer manages the register.
			for _, role := range []string{staff.RoleAdmin, staff.RoleSupport, staff.RoleLegal} {
				_, err := svc.Add(ctx, staff.Principal{ID: "stf_" + role, Role: role}, "X", "y", []string{inventory.IDEmail})
				if errs.CodeOf(err) != errs.Forbidden {
					t.Errorf("Add as %s: got %v, want Forbidden", role, err)
				}
			}
			for _, tt := range []struct {
				name, pname, purpose string
				cats                 []string
				want                 errs.Code
			}{
				{"unknown category", "Backup", "backups", []string{"account.shoe_size"}, errs.Invalid},
				{"no category", "Backup", "backups", nil, errs.Invalid},
				{"no name", " ", "backups", []string{inventory.IDAccount}, errs.Invalid},
				{"no purpose", "Backup", "", []string{inventory.IDAccount}, errs.Invalid},
				{"duplicate name", "sms GATEWAY", "x", []string{inventory.IDMobile}, errs.Conflict},
				{"ok", "Backup", "off-site backups", []string{inventory.IDAccount, " account.record "}, ""},
			} {
				_, err := svc.Add(ctx, po, tt.pname, tt.purpose, tt.cats)
				if got := errs.CodeOf(err); got != tt.want {
					t.Errorf("Add %s: got %v, want code %q", tt.name, err, tt.want)
				}
			}
			if _, err := svc.Remove(ctx, po, processors.NameSMS); err != nil {
				t.Fatal(err)
			}
			if err := g.Send(ctx, sms); errs.CodeOf(err) != errs.Forbidden {
				t.Fatalf("sms after removing the gateway: got %v, want Forbidden", err)
			}
			if _, err := svc.Remove(ctx, po, processors.NameSMS); errs.CodeOf(err) != errs.NotFound {
				t.Fatalf("second removal: got %v, want NotFound", err)
			}
			entries, err := st.AuditEntries(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			changes := 0
			for _, e := range entries {
				if e.Action != staff.ActProcessorManage || e.Actor != po.ID {
					t.Errorf("audit entry %+v: want processor.manage by %s", e, po.ID)
				}
				if !strings.HasPrefix(e.Detail, "listed ") {
					changes++
				}
			}
			if changes != 2 {
				t.Errorf("audit: got %d changes in %+v, want one add and one remove", changes, entries)
			}
		})
	}
}
