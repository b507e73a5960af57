package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/deadline"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/processors"
	"github.com/nitronet/nitronet/internal/staff"
)

// TestConsoleIntake: a privacy officer records a request received by
// phone in the console, enters the codes the requester reads back, and
// records that each processor that received the data was told; the
// requester sees the channel and the recipients in the portal. Bad input
// is shown beside its field.
func TestConsoleIntake(t *testing.T) {
	e := newEnv(t)
	const pw = "correct horse battery"
	const email, mobile = "caller@example.com", "+447911100811"
	user := e.client(t)
	user.signup(email, mobile, pw)
	acct := e.accountID(email, pw)
	// The processors that received the account's data (the guard records
	// this as messages reach the relay and the webhook; this server writes
	// to the outbox, which is no processor).
	ctx := context.Background()
	if err := e.srv.Store.RecordTransfer(ctx, acct, processors.NameSMTP, []string{inventory.IDEmail, inventory.IDCodes}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Store.RecordTransfer(ctx, acct, processors.NameSMS, []string{inventory.IDMobile}, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.addStaff("officer@staff.example", staff.RolePrivacyOfficer)
	c := e.client(t)
	c.staffLogin("officer@staff.example")
	resp, body := c.get("/console/requests")
	if resp.StatusCode != 200 || !strings.Contains(body, `id="intake-form"`) {
		t.Fatalf("queue: %d without the intake form", resp.StatusCode)
	}
	tok := c.csrf("/console/requests")
	post := func(form url.Values) (*http.Response, string) {
		form.Set("csrf", tok)
		return c.post("/console/requests/new", form)
	}
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"future", url.Values{"type": {"rectification"}, "channel": {"phone"}, "contact_kind": {"email"}, "contact": {email},
			"received_at": {time.Now().UTC().Add(2 * time.Hour).Format("2006-01-02T15:04")}}, "in_received_at"},
		{"garbled time", url.Values{"type": {"rectification"}, "channel": {"phone"}, "contact_kind": {"email"}, "contact": {email},
			"received_at": {"last Tuesday"}}, "in_received_at"},
		{"nobody's contact, no check", url.Values{"type": {"access"}, "channel": {"post"}, "contact_kind": {"email"},
			"contact": {"stranger@example.com"}}, "in_check"},
		{"no contact", url.Values{"type": {"access"}, "channel": {"post"}, "contact_kind": {"mobile"}}, "in_contact"},
	} {
		resp, body := post(tc.form)
		if resp.StatusCode != http.StatusBadRequest || fieldError(body, tc.field) == "" {
			t.Errorf("%s: got %d, error beside %s %q", tc.name, resp.StatusCode, tc.field, fieldError(body, tc.field))
		}
	}

	received := time.Now().UTC().Add(-5 * 24 * time.Hour).Truncate(time.Minute)
	resp, body = post(url.Values{"type": {"rectification"}, "channel": {"phone"}, "contact_kind": {"mobile"}, "contact": {mobile},
		"received_at": {received.Format("2006-01-02T15:04")}, "note": {"Caller wants the misspelt name fixed."}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("record: got %d\n%s", resp.StatusCode, body)
	}
	page, _, _ := strings.Cut(resp.Header.Get("Location"), "?")
	id := regexp.MustCompile(`prq_[a-z2-7]+`).FindString(page)
	_, body = c.get(page)
	if !strings.Contains(body, "By phone") || !strings.Contains(body, `id="codes-form"`) ||
		!strings.Contains(body, deadline.Due(received, deadline.Months).Format("2 Jan 2006")) {
		t.Fatalf("request page lacks the channel, the codes form or the due date:\n%s", body)
	}
	vtok := c.csrf(page)
	resp, body = c.post(page+"/verify", url.Values{"csrf": {vtok}, "email_code": {"000000"}, "mobile_code": {"000000"}})
	if resp.StatusCode != http.StatusUnauthorized || fieldError(body, "email_code") == "" {
		t.Fatalf("wrong codes: got %d, error %q", resp.StatusCode, fieldError(body, "email_code"))
	}
	if resp, _ := c.post(page+"/codes", url.Values{"csrf": {vtok}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("new codes: got %d", resp.StatusCode)
	}
	resp, body = c.post(page+"/verify", url.Values{"csrf": {vtok}, "email_code": {e.privacyCode(email)}, "mobile_code": {e.privacyCode(mobile)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right codes: got %d\n%s", resp.StatusCode, body)
	}
	_, body = c.get(page)
	if !strings.Contains(body, "Identity verified") || !strings.Contains(body, `id="recipients"`) ||
		!strings.Contains(body, processors.NameSMTP) || !strings.Contains(body, "Email address") {
		t.Fatalf("verified request page lacks the recipients:\n%s", body)
	}
	resp, body = c.post(page+"/recipients", url.Values{"csrf": {vtok}, "processor": {processors.NameSMS}, "status": {"impossible"}})
	if resp.StatusCode != http.StatusBadRequest || fieldError(body, "recipient_note") == "" {
		t.Fatalf("impossible without a reason: got %d", resp.StatusCode)
	}
	resp, _ = c.post(page+"/recipients", url.Values{"csrf": {vtok}, "processor": {processors.NameSMTP}, "status": {"told"}, "note": {"ticket 55"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("told: got %d", resp.StatusCode)
	}

	// The requester's portal page.
	resp, body = user.get("/privacy-centre/requests/" + id)
	if resp.StatusCode != 200 || !strings.Contains(body, "(by phone, recorded by our staff)") || !strings.Contains(body, "Who received this data") ||
		!regexp.MustCompile(`Told on [^<]+: <span class="prewrap">ticket 55`).MatchString(body) || !strings.Contains(body, "Not told yet") {
		t.Fatalf("portal request page:\n%s", body)
	}

	// A legal member may read requests but not record them.
	e.addStaff("legal@staff.example", staff.RoleLegal)
	lawyer := e.client(t)
	lawyer.staffLogin("legal@staff.example")
	if _, body := lawyer.get("/console/requests"); strings.Contains(body, `id="intake-form"`) {
		t.Errorf("legal sees the intake form")
	}
	if _, body := lawyer.get(page); strings.Contains(body, `id="recipient-form"`) {
		t.Errorf("legal sees the recipient form")
	}
}

// TestConsoleAccountLookup: staff who may read accounts find one by its
// mobile number; an unknown one is said beside the field; the audit log
// names the channel, never the value.
func TestConsoleAccountLookup(t *testing.T) {
	e := newEnv(t)
	const email, mobile = "found@example.com", "+447911100822"
	e.client(t).signup(email, mobile, "correct horse battery")
	e.addStaff("support@staff.example", staff.RoleSupport)
	c := e.client(t)
	c.staffLogin("support@staff.example")
	tok := c.csrf("/console/accounts")
	resp, body := c.post("/console/accounts", url.Values{"csrf": {tok}, "channel": {"mobile"}, "value": {"+44 7911 100822"}})
	if resp.StatusCode != 200 || !strings.Contains(body, `id="account-email">`+email) {
		t.Fatalf("lookup: got %d\n%s", resp.StatusCode, body)
	}
	resp, body = c.post("/console/accounts", url.Values{"csrf": {tok}, "channel": {"email"}, "value": {"nobody@example.com"}})
	if resp.StatusCode != http.StatusNotFound || fieldError(body, "lookup_value") == "" {
		t.Fatalf("unknown: got %d, error %q", resp.StatusCode, fieldError(body, "lookup_value"))
	}
	es, err := e.srv.Store.AuditEntries(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	lookups := 0
	for _, en := range es {
		if strings.Contains(en.Detail, "looked up") {
			lookups++
		}
		for _, secret := range []string{mobile, "7911100822", "nobody@example.com", email} {
			if strings.Contains(en.Detail, secret) || strings.Contains(en.Subject, secret) {
				t.Errorf("audit entry holds %q: %+v", secret, en)
			}
		}
	}
	if lookups != 2 {
		t.Errorf("audited lookups: %d, want 2", lookups)
	}
}

// TestConsoleBreaches: a privacy officer opens a breach record in the
// console, sees its notify-by time 72 hours after detection marked
// overdue, completes it (bad numbers shown beside the field), previews
// the notice and sends it to a listed account, whose inbox gets it; an
// admin reads the register without its forms, support not at all.
func TestConsoleBreaches(t *testing.T) {
	e := newEnvWith(t, func(cfg *config.Settings) { cfg.Controller.Email = "privacy@vpn.example" })
	const pw = "correct horse battery"
	user := e.client(t)
	user.signup("affected@example.com", "+447911100833", pw)
	acct := e.accountID("affected@example.com", pw)
	e.addStaff("officer@staff.example", staff.RolePrivacyOfficer)
	c := e.client(t)
	c.staffLogin("officer@staff.example")
	resp, body := c.get("/console/breaches")
	if resp.StatusCode != 200 || !strings.Contains(body, `id="breach-form"`) {
		t.Fatalf("breaches: %d without the form", resp.StatusCode)
	}
	tok := c.csrf("/console/breaches")
	resp, body = c.post("/console/breaches", url.Values{"csrf": {tok}, "detected_at": {"soon"}, "nature": {"x"}})
	if resp.StatusCode != http.StatusBadRequest || fieldError(body, "detected_at") == "" {
		t.Fatalf("bad time: got %d", resp.StatusCode)
	}
	detected := time.Now().UTC().Add(-80 * time.Hour).Truncate(time.Minute)
	resp, body = c.post("/console/breaches", url.Values{"csrf": {tok}, "detected_at": {detected.Format("2006-01-02T15:04")},
		"nature": {"A support laptop with exported tickets was stolen."}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: got %d\n%s", resp.StatusCode, body)
	}
	page := resp.Header.Get("Location")
	page = page[:strings.Index(page, "?")]
	_, body = c.get(page)
	notifyBy := detected.Add(72 * time.Hour).Format("2006-01-02 15:04 UTC")
	if !strings.Contains(body, `<span id="breach-notify-by">`+notifyBy+`</span> <span class="tag tag-bad">overdue</span>`) {
		t.Fatalf("breach page lacks the overdue notify-by time %s:\n%s", notifyBy, body)
	}
	if !strings.Contains(body, `id="notice-missing"`) {
		t.Errorf("no word on what the notice lacks")
	}
	if _, body := c.get("/console/breaches"); !strings.Contains(body, `<strong id="breach-overdue-count">1</strong>`) {
		t.Errorf("register does not count the overdue breach")
	}
	utok := c.csrf(page)
	update := url.Values{"csrf": {utok}, "detected_at": {detected.Format("2006-01-02T15:04")}, "nature": {"A support laptop with exported tickets was stolen."},
		"categories": {inventory.IDEmail}, "people": {"about forty"}, "consequences": {"Phishing emails in our name."},
		"measures_taken": {"We wiped the laptop remotely."}, "risk": {"high"}, "status": {"open"}}
	resp, body = c.post(page+"/update", update)
	if resp.StatusCode != http.StatusBadRequest || fieldError(body, "people") == "" {
		t.Fatalf("bad number: got %d", resp.StatusCode)
	}
	update.Set("people", "40")
	update.Set("authority_notified_at", time.Now().UTC().Format("2006-01-02T15:04"))
	if resp, body := c.post(page+"/update", update); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("update: got %d\n%s", resp.StatusCode, body)
	}
	_, body = c.get(page)
	if strings.Contains(body, "tag-bad") || !strings.Contains(body, `id="notice-preview"`) || !strings.Contains(body, "Phishing emails in our name.") ||
		!strings.Contains(body, "privacy@vpn.example") {
		t.Fatalf("after the update: still overdue, or no notice preview:\n%s", body)
	}
	resp, body = c.post(page+"/notify", url.Values{"csrf": {utok}, "audience": {"listed"}, "accounts": {"acc_nobody"}, "email": {"yes"}})
	if resp.StatusCode != http.StatusBadRequest || fieldError(body, "accounts") == "" {
		t.Fatalf("malformed account: got %d", resp.StatusCode)
	}
	if resp, body := c.post(page+"/notify", url.Values{"csrf": {utok}, "audience": {"listed"}, "accounts": {acct + "\n"}, "email": {"yes"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("notify: got %d\n%s", resp.StatusCode, body)
	}
	e.drain() // the notice email is sent, and counted, once the queue delivers it
	_, body = c.get(page)
	if !regexp.MustCompile(`listed accounts</td><td>1/1</td><td>1</td>`).MatchString(body) {
		t.Fatalf("notice progress not shown:\n%s", body)
	}
	ms, _, err := e.srv.Inbox.List(context.Background(), acct, 10)
	if err != nil || len(ms) == 0 || ms[0].Kind != "breach-notice" || !strings.Contains(ms[0].Body, "We wiped the laptop remotely.") {
		t.Fatalf("the affected account's inbox: %+v, %v", ms, err)
	}

	admin := e.client(t)
	admin.staffLogin("admin@staff.example")
	if resp, body := admin.get(page); resp.StatusCode != 200 || strings.Contains(body, `id="update-form"`) || strings.Contains(body, `id="notify-form"`) {
		t.Errorf("admin's breach page: %d, with forms", resp.StatusCode)
	}
	e.addStaff("support@staff.example", staff.RoleSupport)
	support := e.client(t)
	support.staffLogin("support@staff.example")
	if resp, _ := support.get("/console/breaches"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("support reads the register: %d", resp.StatusCode)
	}
}
