package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/nitronet/nitronet/internal/deadline"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/web"
)

// waitPage waits until a page loaded after the last j.do shows sel.
func (j *journey) waitPage(what, sel string) {
	j.t.Helper()
	ctx, cancel := context.WithTimeout(j.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("body:not([data-stale]) "+sel))); err != nil {
		j.fail(what, err)
	}
}

// allowDownloads saves downloads into the artifacts directory.
func (j *journey) allowDownloads() {
	j.t.Helper()
	if _, err := chromedp.CallBrowser(j.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: j.dir, EventsEnabled: new(true)}); err != nil {
		j.t.Fatal(err)
	}
}

// download clicks sel and returns the downloaded file's content, which it
// then deletes (it holds test personal data).
func (j *journey) download(rec *capture, sel string) []byte {
	j.t.Helper()
	j.do("download "+sel, chromedp.Click(chromedp.CSS(sel)))
	var guid string
	select {
	case guid = <-rec.downloads:
	case <-time.After(30 * time.Second):
		j.t.Fatalf("download %s did not complete", sel)
	}
	p := filepath.Join(j.dir, guid)
	b, err := os.ReadFile(p)
	if err != nil {
		j.t.Fatal(err)
	}
	os.Remove(p)
	return b
}

// checkCapture checks what the browser saw during a journey: every page
// carried the security headers, nothing went to another origin, and no
// script error or CSP violation happened.
func checkCapture(t *testing.T, e *env, rec *capture, minPages int) {
	t.Helper()
	rec.mu.Lock()
	docs := rec.documents
	console := append([]string(nil), rec.console...)
	rec.mu.Unlock()
	if len(docs) < minPages {
		t.Errorf("captured %d page responses, want at least %d", len(docs), minPages)
	}
	for _, d := range docs {
		for k, want := range wantHeaders() {
			if got, _ := d.Headers[k].(string); got != want {
				t.Errorf("page %s: %s = %q, want %q", d.URL, k, got, want)
			}
		}
	}
	for _, r := range rec.all() {
		if !strings.HasPrefix(r.url, e.url+"/") && !strings.HasPrefix(r.url, "blob:"+e.url+"/") && !strings.HasPrefix(r.url, "data:") {
			t.Errorf("request to another origin: %s %s", r.method, r.url)
		}
	}
	for _, c := range console {
		t.Logf("browser console: %s", c)
		if strings.Contains(c, "exception") || strings.Contains(c, "Content Security Policy") || strings.Contains(c, "Refused to") {
			t.Errorf("browser reported a script error or CSP violation: %s", c)
		}
	}
}

// TestBrowserPrivacyJourney drives Chromium through the phase-2 portal:
// sign-up and verification, a device, a material policy change (banner,
// acceptance, inbox with unread count), an email change with
// re-verification, an access request verified with password and both
// codes and its JSON and HTML exports, then erasure through its own
// confirmation step, after which login fails.
func TestBrowserPrivacyJourney(t *testing.T) {
	e := newEnv(t)
	ctx, rec := startBrowser(t)
	j := &journey{t: t, ctx: ctx, e: e, dir: artifacts(t)}
	j.allowDownloads()
	const (
		email    = "privacy@example.com"
		newEmail = "privacy.new@example.com"
		mobile   = "+447911100701"
		pw       = "correct horse battery staple"
	)

	// Sign up, verify both contacts, add a device.
	j.open("/signup", "#email")
	j.do("sign up", chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("mobile"), mobile),
		chromedp.SendKeys(chromedp.ID("password"), pw), chromedp.Submit(chromedp.ID("password")))
	j.waitPage("login page", `form[action="/login"] #email`)
	j.do("log in", chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Submit(chromedp.ID("password")))
	j.waitPage("verification page", "#email_code")
	j.do("verify email", chromedp.SendKeys(chromedp.ID("email_code"), e.code(email)), chromedp.Submit(chromedp.ID("email_code")))
	j.waitPage("mobile code", "#mobile_code")
	j.do("verify mobile", chromedp.SendKeys(chromedp.ID("mobile_code"), e.code(mobile)), chromedp.Submit(chromedp.ID("mobile_code")))
	j.wantNotice("Both contacts are verified")
	j.open("/devices/new", "#name")
	j.do("add device", chromedp.SendKeys(chromedp.ID("name"), "phone"), chromedp.Click(chromedp.ID("add-submit")),
		chromedp.WaitVisible(chromedp.ID("result")))

	// A material policy change: notices go out, the banner and the unread
	// count appear on every page.
	officer := e.addStaff("officer@staff.example", staff.RolePrivacyOfficer)
	pub, err := e.srv.Policy.Publish(context.Background(), officer, store.PolicyPrivacy,
		"Nitronet Privacy Policy\n\nVersion two.\n\nWe now also keep the date you accepted each version of this policy.", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Notices.Run(context.Background(), pub.Run.ID, nil); err != nil {
		t.Fatal(err)
	}
	j.open("/devices", "#policy-banner-link")
	if got := j.text("#unread-count"); got != "1" {
		t.Errorf("unread count in the nav %q, want 1", got)
	}
	j.shot("policy-banner")
	j.do("open the change", chromedp.Click(chromedp.ID("policy-banner-link")))
	j.waitPage("accept page", "#accept-privacy-button")
	if got := j.text("main"); !strings.Contains(got, "We now also keep the date you accepted") {
		t.Errorf("accept page lacks the new text")
	}
	j.shot("policy-accept")
	j.do("accept", chromedp.Click(chromedp.ID("accept-privacy-button")))
	j.wantNotice("acceptance is recorded")
	if eval[bool](j, `!!document.getElementById('policy-banner-link')`) {
		t.Errorf("the banner is still shown after acceptance")
	}
	acc, err := e.srv.Policy.Acceptances(context.Background(), e.accountID(email, pw))
	// Newest first: version 2 now, version 1 at sign-up.
	if err != nil || len(acc) != 2 || acc[0].Version != 2 || acc[1].Version != 1 {
		t.Errorf("acceptances %+v (err %v), want version 2, and version 1 from sign-up", acc, err)
	}
	j.open("/privacy/history", "table.history")
	if n := eval[int](j, `document.querySelectorAll('table.history tbody tr').length`); n != 2 {
		t.Errorf("policy history lists %d versions, want 2", n)
	}
	j.shot("policy-history")

	// Inbox: the notice, marked read.
	j.open("/inbox", "li.message.unread")
	if got := j.text("li.message h2"); !strings.Contains(got, "privacy policy has changed") {
		t.Errorf("inbox message %q, want the policy notice", got)
	}
	j.shot("inbox")
	j.do("mark read", chromedp.Click(chromedp.CSS("li.message.unread form button")))
	j.wantNotice("Marked as read")
	if eval[bool](j, `!!document.getElementById('unread-count')`) {
		t.Errorf("unread count still shown after reading")
	}

	// Change the email address, re-verified by a code to the new one.
	j.open("/account", "#new_email")
	j.do("change email", chromedp.SendKeys(chromedp.ID("new_email"), newEmail), chromedp.SendKeys(chromedp.ID("email_password"), "wrong password"),
		chromedp.Submit(chromedp.ID("email_password")))
	j.waitPage("wrong password", "#email_password-error")
	if got := j.text("#email_password-error"); !strings.Contains(got, "rong password") {
		t.Errorf("wrong password error beside the field %q", got)
	}
	j.do("change email", chromedp.SendKeys(chromedp.ID("email_password"), pw), chromedp.Submit(chromedp.ID("email_password")))
	j.wantNotice("a code is on its way to the new contact")
	j.shot("contact-code")
	m := codeRE.FindStringSubmatch(e.lastMessage("contact-change-code", newEmail))
	if m == nil {
		t.Fatal("no contact-change code")
	}
	j.do("confirm email", chromedp.SendKeys(chromedp.ID("code"), m[1]), chromedp.Submit(chromedp.ID("code")))
	j.wantNotice("Your email address has been changed")
	if got := j.text("dl.pairs"); !strings.Contains(got, newEmail) {
		t.Errorf("account page does not show the new email")
	}
	j.shot("account-email-changed")

	// An access request: create, prove identity, download.
	j.open("/privacy-centre", "#type-access")
	j.shot("privacy-centre")
	j.do("create without a type", chromedp.Click(chromedp.ID("create-request")))
	j.waitPage("type error", "#type-error")
	if got := j.text("#type-error"); got == "" {
		t.Errorf("no error beside the request type")
	}
	j.do("create access", chromedp.Click(chromedp.ID("type-access")), chromedp.Click(chromedp.ID("create-request")))
	j.wantNotice("Your request is recorded")
	if got := j.text("#request-due"); got != deadline.Due(time.Now().UTC().Truncate(time.Second), deadline.Months).Format("2 Jan 2006") {
		t.Errorf("due date %q, want one calendar month from today", got)
	}
	j.shot("access-request")
	j.do("wrong code", chromedp.SendKeys(chromedp.ID("password"), pw), chromedp.SendKeys(chromedp.ID("email_code"), "000000"),
		chromedp.SendKeys(chromedp.ID("mobile_code"), e.privacyCode(mobile)), chromedp.Submit(chromedp.ID("mobile_code")))
	j.waitPage("wrong code", "#email_code-error")
	if got := j.text("#email_code-error"); !strings.Contains(strings.ToLower(got), "wrong code") {
		t.Errorf("wrong email code: error beside the field %q", got)
	}
	j.shot("access-wrong-code")
	j.do("resend codes", chromedp.Click(chromedp.ID("resend-codes")))
	j.wantNotice("New codes are on their way")
	j.do("verify access", chromedp.SendKeys(chromedp.ID("password"), pw), chromedp.SendKeys(chromedp.ID("email_code"), e.privacyCode(newEmail)),
		chromedp.SendKeys(chromedp.ID("mobile_code"), e.privacyCode(mobile)), chromedp.Submit(chromedp.ID("mobile_code")))
	j.wantNotice("Your identity is verified")
	j.waitPage("download buttons", "#download-json")
	if got := j.text("#request-status"); got != "Completed" {
		t.Errorf("access request status %q, want Completed", got)
	}
	j.shot("access-verified")
	var doc struct {
		Account struct {
			Email  string `json:"email"`
			Mobile string `json:"mobile"`
		} `json:"account"`
		Devices []struct {
			Name string `json:"name"`
		} `json:"devices"`
	}
	raw := j.download(rec, "#download-json")
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, raw)
	}
	if doc.Account.Email != newEmail || doc.Account.Mobile != mobile || len(doc.Devices) != 1 || doc.Devices[0].Name != "phone" {
		t.Errorf("export: account %+v, devices %+v; want %s, %s and the device phone", doc.Account, doc.Devices, newEmail, mobile)
	}
	html := string(j.download(rec, "#download-html"))
	if !strings.Contains(html, "<html") || !strings.Contains(html, newEmail) || !strings.Contains(html, "phone") {
		t.Errorf("HTML export lacks the page, the email or the device:\n%.500s", html)
	}

	// Phone width: the centre and a request page fit.
	j.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	for _, p := range []struct{ name, path, sel string }{{"privacy-centre", "/privacy-centre", "#type-access"},
		{"inbox", "/inbox", "h1"}, {"account", "/account", "#new_email"}} {
		j.open(p.path, p.sel)
		j.noOverflow(p.path)
		j.shot("phone-" + p.name)
	}
	j.do("desktop viewport", chromedp.EmulateViewport(1280, 900))

	// Erasure: request, prove identity, the confirmation step, confirm.
	j.open("/privacy-centre", "#type-erasure")
	j.do("create erasure", chromedp.Click(chromedp.ID("type-erasure")), chromedp.Click(chromedp.ID("create-request")))
	j.wantNotice("Your request is recorded")
	j.do("verify erasure", chromedp.SendKeys(chromedp.ID("password"), pw), chromedp.SendKeys(chromedp.ID("email_code"), e.privacyCode(newEmail)),
		chromedp.SendKeys(chromedp.ID("mobile_code"), e.privacyCode(mobile)), chromedp.Submit(chromedp.ID("mobile_code")))
	j.wantNotice("Your identity is verified")
	j.shot("erasure-verified")
	j.do("erasure step", chromedp.Click(chromedp.ID("erase-step")))
	j.waitPage("confirmation page", "#confirm-erasure")
	page := j.text("main")
	for _, want := range []string{"cannot be undone", "Your sessions end", "Your devices are removed", "“phone”",
		"Your data key is destroyed", "unrecoverable", "The service closes", "A tombstone", "request number", "date of erasure",
		"Data under a legal hold", "until"} {
		if !strings.Contains(page, want) {
			t.Errorf("erasure confirmation lacks %q", want)
		}
	}
	j.shot("erasure-confirm")
	j.do("confirm without ticking", chromedp.Click(chromedp.ID("confirm-erasure")))
	j.waitPage("tick error", "#understood-error")
	if got := j.text("#understood-error"); got == "" {
		t.Errorf("no error beside the confirmation box")
	}
	j.do("confirm", chromedp.Click(chromedp.ID("understood")), chromedp.Click(chromedp.ID("confirm-erasure")))
	j.waitPage("erased page", "#erased-message")
	if got := j.text("main"); !strings.Contains(got, "Your account is erased") || !strings.Contains(got, "Devices removed") ||
		!strings.Contains(got, "Nothing else is kept but the tombstone") {
		t.Errorf("erased page:\n%s", got)
	}
	j.shot("erased")
	if tok := j.sessionToken(); tok != "" {
		t.Errorf("the browser still holds a session cookie after erasure")
	}

	// Login fails now, with either address.
	for _, addr := range []string{newEmail, email} {
		j.open("/login", "#email")
		j.do("login after erasure", chromedp.SendKeys(chromedp.ID("email"), addr), chromedp.SendKeys(chromedp.ID("password"), pw),
			chromedp.Submit(chromedp.ID("password")))
		j.waitPage("login refused", "#form-error")
	}
	j.shot("login-after-erasure")
	if _, _, err := e.srv.Accounts.Login(context.Background(), newEmail, pw); err == nil {
		t.Errorf("the erased account can still log in")
	}
	checkCapture(t, e, rec, 30)
}

// TestBrowserStaffJourney drives Chromium through the staff console: a
// privacy officer logs in, sees the queue with overdue and due-soon
// requests marked, opens the user's request, extends it with a reason
// (the new due date shows), completes it, verifies the audit chain and
// looks at the records pages; a support member sees the request without
// controls and is refused (403) when posting anyway.
func TestBrowserStaffJourney(t *testing.T) {
	e := newEnv(t)
	const pw = "correct horse battery"
	user := e.client(t)
	user.signup("queue@example.com", "+447911100801", pw)
	acct := e.accountID("queue@example.com", pw)
	req := e.verifiedRequest(acct, store.RequestRectification, "My name is misspelt in your letters.", "queue@example.com", "+447911100801", pw)
	var overdue, soon string
	e.at(-40*24*time.Hour, func() {
		r, err := e.srv.Privacy.Create(context.Background(), acct, store.RequestObjection, "")
		if err != nil {
			t.Fatal(err)
		}
		overdue = r.ID
	})
	e.at(-27*24*time.Hour, func() {
		r, err := e.srv.Privacy.Create(context.Background(), acct, store.RequestRestriction, "")
		if err != nil {
			t.Fatal(err)
		}
		soon = r.ID
	})
	officer := e.addStaff("officer@staff.example", staff.RolePrivacyOfficer)
	e.addStaff("support@staff.example", staff.RoleSupport)
	e.addStaff("legal@staff.example", staff.RoleLegal)
	if _, err := e.srv.Retention.RunNow(context.Background(), staff.System()); err != nil {
		t.Fatal(err)
	}

	ctx, rec := startBrowser(t)
	j := &journey{t: t, ctx: ctx, e: e, dir: artifacts(t)}
	login := func(email string) {
		j.open("/console/login", "#email")
		j.do("staff login", chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("password"), staffPassword),
			chromedp.Submit(chromedp.ID("password")))
		j.waitPage("console home", "ul.sections")
	}
	j.open("/console", "#email") // redirected to the login
	j.shot("console-login")
	login("officer@staff.example")
	if got := j.text("#staff-role"); got != "privacy officer" {
		t.Errorf("role shown %q", got)
	}
	j.shot("console-home")

	// The queue: soonest deadline first, overdue and due-soon marked.
	j.do("open queue", chromedp.Click(chromedp.CSS(`header nav a[href="/console/requests"]`)))
	j.waitPage("queue", "#queue")
	order := eval[[]string](j, `Array.from(document.querySelectorAll('#queue tbody tr')).map(r => r.id.replace('row-', ''))`)
	if len(order) != 3 || order[0] != overdue || order[1] != soon || order[2] != req {
		t.Errorf("queue order %v, want overdue %s, due-soon %s, then %s", order, overdue, soon, req)
	}
	if got := j.text("#row-" + overdue + " .tag"); got != "overdue" {
		t.Errorf("overdue request marked %q", got)
	}
	if got := j.text("#row-" + soon + " .tag"); got != "due soon" {
		t.Errorf("due-soon request marked %q", got)
	}
	if eval[bool](j, `!!document.querySelector('#row-`+req+` .tag')`) {
		t.Errorf("the fresh request is marked")
	}
	j.shot("console-queue")

	// Open the user's request, extend it, complete it.
	j.do("open request", chromedp.Click(chromedp.CSS(`#row-`+req+` a`)))
	j.waitPage("request", "#extend-form")
	before := j.text("#request-due")
	j.shot("console-request")
	j.do("extend without reason", chromedp.Click(chromedp.ID("extend-submit")))
	j.waitPage("reason error", "#extend_reason-error")
	if got := j.text("#extend_reason-error"); got == "" {
		t.Errorf("no error beside the reason")
	}
	j.shot("console-extend-error")
	reason := "We must check your letters with our print processor."
	j.do("extend", chromedp.SetValue(chromedp.ID("months"), "2"), chromedp.SendKeys(chromedp.ID("extend_reason"), reason),
		chromedp.Click(chromedp.ID("extend-submit")))
	j.wantNotice("The deadline is extended")
	r, err := e.srv.Privacy.StaffShow(context.Background(), officer, req)
	if err != nil {
		t.Fatal(err)
	}
	want := deadline.Due(r.ReceivedAt, deadline.Months+2).Format("2 Jan 2006")
	if got := j.text("#request-due"); got != want || got == before {
		t.Errorf("due date after extension %q (before %q), want %q", got, before, want)
	}
	if got := j.text("#request-extension"); !strings.Contains(got, reason) {
		t.Errorf("extension reason not shown: %q", got)
	}
	// The notice waits in the outbound queue until the relay (here the
	// file outbox) accepts it.
	if got := j.text("#extension-notice"); !strings.HasPrefix(got, "notice queued") {
		t.Errorf("queued extension notice not shown: %q", got)
	}
	e.drain()
	j.do("reload", chromedp.Reload())
	j.waitPage("request", "#extension-notice")
	if got := j.text("#extension-notice"); !strings.HasPrefix(got, "Notice delivered") {
		t.Errorf("extension notice delivery not shown: %q", got)
	}
	j.shot("console-extended")

	// The data the request is about, from the request's page (audited).
	j.do("open account", chromedp.Click(chromedp.ID("account-link")))
	j.waitPage("request account", "#account-email")
	if got := j.text("#account-email"); !strings.Contains(got, "queue@example.com") {
		t.Errorf("account view shows email %q", got)
	}
	if !strings.Contains(j.text("#account-requests"), req) || !strings.Contains(j.text("#audit-note"), "audit log") {
		t.Errorf("account view lacks the account's requests or the audit note")
	}
	if !eval[bool](j, `!!document.getElementById('correct-form')`) {
		t.Errorf("no correction form for the privacy officer on a verified rectification")
	}
	j.shot("console-request-account")
	if es, _ := e.srv.Store.AuditEntriesFor(context.Background(), acct, 5); len(es) == 0 || es[0].Action != staff.ActAccountView {
		t.Errorf("the account view was not audited: %+v", es)
	}
	j.do("back to request", chromedp.Click(chromedp.CSS(`.crumbs a[href="/console/requests/`+req+`"]`)))
	j.waitPage("request", "#complete-form")

	// Completing asks for confirmation, showing the note.
	const note = "Corrected in our print templates."
	j.do("complete", chromedp.SendKeys(chromedp.ID("note"), note), chromedp.Click(chromedp.ID("complete-submit")))
	j.waitPage("confirmation", "#confirm-submit")
	if got := j.text("#confirm-note"); got != note {
		t.Errorf("confirmation shows note %q, want %q", got, note)
	}
	if got, _ := e.srv.Privacy.StaffShow(context.Background(), officer, req); got == nil || got.Status != store.RequestVerified {
		t.Errorf("the request changed before the confirmation: %+v", got)
	}
	j.shot("console-complete-confirm")
	j.do("confirm", chromedp.Click(chromedp.ID("confirm-submit")))
	j.wantNotice("The request is completed")
	if got := j.text("#request-status"); got != "Completed" {
		t.Errorf("status after completion %q", got)
	}
	if eval[bool](j, `!!document.getElementById('extend-form') || !!document.getElementById('complete-form')`) {
		t.Errorf("controls still offered on a completed request")
	}
	j.shot("console-completed")
	ms, _, err := e.srv.Inbox.List(context.Background(), acct, 10)
	if err != nil || len(ms) < 2 {
		t.Errorf("user's inbox has %d messages (err %v), want the extension and the completion", len(ms), err)
	}

	// The audit log, with chain verification.
	j.open("/console/audit", "#audit")
	if got := j.text("#audit"); !strings.Contains(got, "privacy.extend") || !strings.Contains(got, "privacy.view") {
		t.Errorf("audit log lacks the staff's reads and actions")
	}
	// Actors by email and roles in words, not ids and raw role names.
	who := eval[[]string](j, `Array.from(document.querySelectorAll('#audit tbody tr')).map(r => r.cells[2].textContent.trim() + ' | ' + r.cells[3].textContent.trim())`)
	if !slices.Contains(who, "officer@staff.example | Privacy officer") {
		t.Errorf("audit log actors and roles: %q, want officer@staff.example | Privacy officer", who)
	}
	for _, w := range who {
		if strings.Contains(w, officer.ID) || strings.Contains(w, "_") {
			t.Errorf("audit log shows a staff id or a raw role name: %q", w)
		}
	}
	j.shot("console-audit")
	j.do("verify chain", chromedp.Click(chromedp.ID("verify-chain")))
	j.waitPage("verification", "#verify-result")
	if got := j.text("#verify-result"); !strings.Contains(got, "intact") {
		t.Errorf("chain verification: %q", got)
	}
	j.shot("console-audit-verified")
	for _, p := range []struct{ name, path, sel string }{{"holds", "/console/holds", "h1"}, {"retention", "/console/retention", "#sweep-counts"},
		{"records", "/console/records", ".categories"}} {
		j.open(p.path, p.sel)
		j.shot("console-" + p.name)
	}
	// Phone width.
	j.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	for _, p := range []struct{ name, path, sel string }{{"queue", "/console/requests", "#queue"}, {"request", "/console/requests/" + soon, "#extend-form"},
		{"audit", "/console/audit", "#audit"}} {
		j.open(p.path, p.sel)
		j.noOverflow(p.path)
		j.shot("phone-console-" + p.name)
	}
	j.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
	j.do("log out", chromedp.Click(chromedp.CSS(`form[action="/console/logout"] button`)))
	j.wantNotice("You have logged out of the console")

	// Legal: holds and the transparency report download.
	login("legal@staff.example")
	j.open("/console/holds", "#hold-form")
	j.do("place hold", chromedp.SendKeys(chromedp.ID("account"), acct), chromedp.SendKeys(chromedp.ID("reason"), "Preservation order 7/2026"),
		chromedp.Click(chromedp.ID("hold-submit")))
	j.wantNotice("The legal hold is in force")
	j.shot("console-holds-legal")
	j.allowDownloads()
	j.open("/console/transparency", "#transparency-form")
	j.shot("console-transparency")
	file := j.download(rec, "#transparency-submit")
	if !strings.Contains(string(file), `"alg":"ed25519"`) && !strings.Contains(string(file), `"alg": "ed25519"`) {
		t.Errorf("transparency download is not a signed file: %.200s", file)
	}
	j.do("log out", chromedp.Click(chromedp.CSS(`form[action="/console/logout"] button`)))
	j.wantNotice("You have logged out of the console")

	// Support: the request without controls, and 403 on a forged POST.
	login("support@staff.example")
	j.open("/console/requests/"+soon, "#request-status")
	if eval[bool](j, `!!document.getElementById('extend-form') || !!document.getElementById('complete-form') || !!document.getElementById('deny-form')`) {
		t.Errorf("support sees request controls")
	}
	j.shot("console-support-request")
	status := eval[int](j, `(() => { const tok = document.querySelector('input[name=csrf]').value;
		return fetch('/console/requests/`+soon+`/extend', {method: 'POST', body: new URLSearchParams({csrf: tok, months: '1', reason: 'x'})}).then(r => r.status); })()`)
	if status != http.StatusForbidden {
		t.Errorf("support POST extend: got %d, want 403", status)
	}
	status = eval[int](j, `(() => { const tok = document.querySelector('input[name=csrf]').value;
		return fetch('/console/requests/`+req+`/complete', {method: 'POST', body: new URLSearchParams({csrf: tok})}).then(r => r.status); })()`)
	if status != http.StatusForbidden {
		t.Errorf("support POST complete: got %d, want 403", status)
	}
	if got, _ := e.srv.Privacy.StaffShow(context.Background(), officer, soon); got != nil && got.Extension != nil {
		t.Errorf("support's forged extension took effect")
	}
	j.open("/console/gateways", "#gateways")
	j.shot("console-gateways")
	if !strings.Contains(j.text("#gateways"), "eu-west") {
		t.Errorf("gateways page lacks the gateway")
	}
	// Every console page carried the portal's security headers too.
	checkCapture(t, e, rec, 20)
	rec.mu.Lock()
	consolePages := 0
	for _, d := range rec.documents {
		if strings.Contains(d.URL, "/console") {
			consolePages++
			if csp, _ := d.Headers["Content-Security-Policy"].(string); csp != web.CSP {
				t.Errorf("console page %s: CSP %q", d.URL, csp)
			}
		}
	}
	rec.mu.Unlock()
	if consolePages < 15 {
		t.Errorf("only %d console pages captured", consolePages)
	}
}
