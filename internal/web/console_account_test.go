package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// TestConsoleAnswerConfirmation: completing or denying a request takes a
// note (the service's rule) and a confirmation page that shows what the
// requester will be told; nothing changes until it is confirmed, "go
// back" keeps the note, and an action the service would refuse gets no
// confirmation page.
func TestConsoleAnswerConfirmation(t *testing.T) {
	e := newEnv(t)
	u, acct, req := consoleUser(t, e, "confirm@example.com", "+447911100811")
	e.addStaff("officer@confirm.example", staff.RolePrivacyOfficer)
	c := e.client(t)
	c.staffLogin("officer@confirm.example")
	page := "/console/requests/" + req
	status := func() string {
		r, err := e.srv.Store.PrivacyRequest(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}

	// No note: refused beside the field, by the service's rule.
	resp, body := c.post(page+"/complete", url.Values{"csrf": {c.csrf(page)}, "note": {"  "}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="note-error">A completion needs a note`) {
		t.Fatalf("complete without a note: got %d\n%s", resp.StatusCode, body)
	}
	// A note: the confirmation page, nothing done yet.
	const note = "We corrected the typo in your mobile number."
	resp, body = c.post(page+"/complete", url.Values{"csrf": {c.csrf(page)}, "note": {note}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Complete this rectification request?") ||
		!strings.Contains(body, `id="confirm-note">`+note) || !strings.Contains(body, `id="confirm-submit"`) {
		t.Fatalf("confirmation page: got %d\n%s", resp.StatusCode, body)
	}
	if s := status(); s != store.RequestVerified {
		t.Fatalf("before confirmation: status %s, want verified", s)
	}
	// Go back: the request page with the note kept.
	resp, body = c.post(page+"/complete", url.Values{"csrf": {c.csrf(page)}, "note": {note}, "edit": {"1"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="complete-form"`) || !strings.Contains(body, ">"+note+"</textarea>") {
		t.Fatalf("go back: got %d\n%s", resp.StatusCode, body)
	}
	// Confirmed: done, and the requester's inbox links to the request.
	resp, _ = c.post(page+"/complete", url.Values{"csrf": {c.csrf(page)}, "note": {note}, "confirm": {"yes"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page+"?msg=completed" {
		t.Fatalf("confirm: got %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if s := status(); s != store.RequestCompleted {
		t.Fatalf("after confirmation: status %s, want completed", s)
	}
	_, inbox := u.get("/inbox")
	if !strings.Contains(inbox, "Your privacy request is completed") || !strings.Contains(inbox, note) ||
		!strings.Contains(inbox, `href="/privacy-centre/requests/`+req+`"`) {
		t.Errorf("inbox after completion lacks the notice or its link:\n%s", inbox)
	}

	// Deny: a request already answered gets no confirmation page (409,
	// the service's reason above the forms).
	resp, body = c.post(page+"/deny", url.Values{"csrf": {c.csrf(page)}, "reason": {"too late"}})
	if resp.StatusCode != http.StatusConflict || strings.Contains(body, `id="confirm-submit"`) || !strings.Contains(body, "already completed") {
		t.Fatalf("deny an answered request: got %d\n%s", resp.StatusCode, body)
	}
	// Deny an open one: confirmation, then denied.
	other, err := e.srv.Privacy.Create(context.Background(), acct, store.RequestObjection, "")
	if err != nil {
		t.Fatal(err)
	}
	opage := "/console/requests/" + other.ID
	resp, body = c.post(opage+"/deny", url.Values{"csrf": {c.csrf(opage)}, "reason": {"No identity proof came."}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Deny this objection request?") || !strings.Contains(body, "Yes, deny the request") {
		t.Fatalf("deny confirmation: got %d\n%s", resp.StatusCode, body)
	}
	resp, _ = c.post(opage+"/deny", url.Values{"csrf": {c.csrf(opage)}, "reason": {"No identity proof came."}, "confirm": {"yes"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deny confirmed: got %d", resp.StatusCode)
	}
}

// TestConsoleRequestAccount: from a rectification's page, the privacy
// officer opens the account's data (contacts, devices, sessions,
// requests, holds), audited under the account; corrects the email, which
// takes effect once the requester enters the code sent to it; support
// sees the data but no correction form; legal may not open it.
func TestConsoleRequestAccount(t *testing.T) {
	e := newEnv(t)
	u, acct, req := consoleUser(t, e, "account-view@example.com", "+447911100821")
	ctx := context.Background()
	legal := e.addStaff("legal@acct.example", staff.RoleLegal)
	if _, err := e.srv.Holds.Add(ctx, legal, acct, "court order 7", nil); err != nil {
		t.Fatal(err)
	}
	e.addStaff("officer@acct.example", staff.RolePrivacyOfficer)
	e.addStaff("support@acct.example", staff.RoleSupport)
	officer, support, lawyer := e.client(t), e.client(t), e.client(t)
	officer.staffLogin("officer@acct.example")
	support.staffLogin("support@acct.example")
	lawyer.staffLogin("legal@acct.example")
	page := "/console/requests/" + req + "/account"

	before, _ := e.srv.Store.AuditEntriesFor(ctx, acct, 1000)
	resp, body := officer.get(page)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("officer: got %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{`id="account-email">account-view@example.com`, "447911100821", `id="account-holds">1 in force`,
		"court order 7", `href="/console/requests/` + req + `"`, `id="correct-form"`, `id="account-sessions"`} {
		if !strings.Contains(body, want) {
			t.Errorf("officer's account page lacks %q", want)
		}
	}
	after, _ := e.srv.Store.AuditEntriesFor(ctx, acct, 1000)
	if len(after) != len(before)+1 || after[0].Action != staff.ActAccountView || !strings.Contains(after[0].Detail, req) {
		t.Errorf("the view was not audited under the account: %+v", after)
	}

	// Support: the data, the hold's existence only, no correction.
	_, body = support.get(page)
	if !strings.Contains(body, "account-view@example.com") || strings.Contains(body, "court order 7") ||
		strings.Contains(body, `id="correct-form"`) || !strings.Contains(body, `id="correct-why">Your role (support) may not correct contacts.`) {
		t.Errorf("support's account page:\n%s", body)
	}
	// Legal may not read accounts.
	if resp, _ := lawyer.get(page); resp.StatusCode != http.StatusForbidden {
		t.Errorf("legal: got %d, want 403", resp.StatusCode)
	}

	// A bad address is refused beside the field.
	resp, body = officer.post(page+"/contact", url.Values{"csrf": {officer.csrf(page)}, "channel": {"email"}, "value": {"not an address"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="correct_value-error">`) || strings.Contains(body, `id="correct_value-error"></p>`) {
		t.Fatalf("bad address: got %d\n%s", resp.StatusCode, body)
	}
	const fixed = "zed-fixed@example.org"
	resp, _ = officer.post(page+"/contact", url.Values{"csrf": {officer.csrf(page)}, "channel": {"email"}, "value": {fixed}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page+"?msg=correction-sent" {
		t.Fatalf("correct: got %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := officer.get(page); !strings.Contains(body, `id="account-email">account-view@example.com`) {
		t.Errorf("the correction took effect before the code was entered")
	}
	// The requester enters the code on the portal's page.
	codePage := "/account/contact/email"
	resp, body = u.post(codePage, url.Values{"csrf": {u.csrf(codePage)}, "code": {codeRE.FindStringSubmatch(e.lastMessage("contact-change-code", fixed))[1]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("enter the code: got %d\n%s", resp.StatusCode, body)
	}
	_, body = officer.get(page)
	if !strings.Contains(body, `id="account-email">`+fixed) || !strings.Contains(body, "Completed") {
		t.Errorf("after the code: the page does not show the corrected email and the completed request:\n%s", body)
	}
}

// TestPortalAnsweredRequest: an answered request shows when it was
// answered, never a "Was due" date, and the rectification's outcome
// names no command to run; its inbox notices link to it.
func TestPortalAnsweredRequest(t *testing.T) {
	e := newEnv(t)
	const email, mobile, pw = "answered@example.com", "+447911100831", "correct horse battery"
	u := e.client(t)
	u.signup(email, mobile, pw)
	acct := e.accountID(email, pw)
	access := e.verifiedRequest(acct, store.RequestAccess, "", email, mobile, pw)
	rect := e.verifiedRequest(acct, store.RequestRectification, "", email, mobile, pw)

	_, body := u.get("/privacy-centre")
	if strings.Contains(body, "Was due") || !strings.Contains(body, `<dt>Answered</dt><dd class="answered">`) {
		t.Errorf("privacy centre: an answered request shows a due date or no answer date:\n%s", body)
	}
	_, body = u.get("/privacy-centre/requests/" + access)
	if strings.Contains(body, `id="request-due"`) || !strings.Contains(body, "<dt>Answered</dt>") {
		t.Errorf("answered request page shows a due date")
	}
	_, body = u.get("/privacy-centre/requests/" + rect)
	if strings.Contains(body, "nitronet ") || !strings.Contains(body, "account page") {
		t.Errorf("rectification page names a command or lacks the way to correct contacts:\n%s", body)
	}
	_, body = u.get("/inbox")
	for _, id := range []string{access, rect} {
		if !strings.Contains(body, `href="/privacy-centre/requests/`+id+`"`) {
			t.Errorf("inbox does not link request %s", id)
		}
	}
	for _, subject := range []string{"We received your access request", "Your access request is completed",
		"Your rectification request: identity verified"} {
		if !strings.Contains(body, subject) {
			t.Errorf("inbox lacks %q", subject)
		}
	}
}
