package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/deadline"
	"github.com/nitronet/nitronet/internal/staff"
)

// TestBrowserIntakeAndBreach drives Chromium through the console: a
// privacy officer records a request received by post from someone with
// no account (due a month after receipt), then opens a breach record
// detected 73 hours ago (its notify-by time shown and marked overdue),
// completes it, sees the notice the people affected will get, sends it to
// the affected account, and records that the authority was notified.
func TestBrowserIntakeAndBreach(t *testing.T) {
	e := newEnvWith(t, func(cfg *config.Settings) { cfg.Controller.Email = "privacy@vpn.example" })
	const pw = "correct horse battery"
	user := e.client(t)
	user.signup("breached@example.com", "+447911100855", pw)
	acct := e.accountID("breached@example.com", pw)
	e.addStaff("officer@staff.example", staff.RolePrivacyOfficer)

	ctx, rec := startBrowser(t)
	j := &journey{t: t, ctx: ctx, e: e, dir: artifacts(t)}
	j.open("/console/login", "#email")
	j.do("staff login", chromedp.SendKeys(chromedp.ID("email"), "officer@staff.example"),
		chromedp.SendKeys(chromedp.ID("password"), staffPassword), chromedp.Submit(chromedp.ID("password")))
	j.waitPage("console home", "ul.sections")

	// A request received by post ten days ago, from someone with no
	// account: recorded with the staff member's identity check.
	received := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Minute)
	j.open("/console/requests", "#intake")
	j.do("open the intake form", chromedp.Click(chromedp.CSS("#intake summary")))
	j.do("fill the intake form",
		chromedp.SetValue(chromedp.ID("in_type"), "access"), chromedp.SetValue(chromedp.ID("in_channel"), "post"),
		chromedp.SendKeys(chromedp.ID("in_contact"), "letter@example.org"),
		chromedp.SetValue(chromedp.ID("in_received_at"), received.Format("2006-01-02T15:04")),
		chromedp.SetValue(chromedp.ID("in_check"), "letter"),
		chromedp.SendKeys(chromedp.ID("in_note"), "Letter asks what we hold about this address."))
	j.shot("console-intake")
	j.do("record", chromedp.Click(chromedp.ID("intake-submit")))
	j.wantNotice("The request is recorded")
	if got, want := j.text("#request-due"), deadline.Due(received, deadline.Months).Format("2 Jan 2006"); got != want {
		t.Errorf("due date %q, want %q", got, want)
	}
	if got := j.text("#identity-check"); !strings.Contains(got, "letter") {
		t.Errorf("identity check shown as %q", got)
	}
	j.shot("console-intake-recorded")

	// The breach register.
	detected := time.Now().UTC().Add(-73 * time.Hour).Truncate(time.Minute)
	j.open("/console/breaches", "#breach-form")
	j.do("open a record", chromedp.SetValue(chromedp.ID("detected_at"), detected.Format("2006-01-02T15:04")),
		chromedp.SendKeys(chromedp.ID("nature"), "A backup of the accounts table was left on a public bucket."),
		chromedp.Click(chromedp.ID("breach-submit")))
	j.wantNotice("The breach is recorded")
	if got, want := j.text("#breach-notify-by"), detected.Add(72*time.Hour).Format("2006-01-02 15:04 UTC"); got != want {
		t.Errorf("notify-by %q, want %q", got, want)
	}
	if !eval[bool](j, `!!document.querySelector('#breach-notify-by + .tag-bad')`) {
		t.Errorf("the overdue notification is not marked")
	}
	if got := j.text("#notice-missing"); !strings.Contains(got, "consequences") {
		t.Errorf("the notice form does not say what is missing: %q", got)
	}
	j.shot("console-breach-opened")
	j.do("complete the record",
		chromedp.Click(chromedp.CSS(`input[name=categories][value="account.email"]`)),
		chromedp.SendKeys(chromedp.ID("people"), "1"),
		chromedp.SendKeys(chromedp.ID("consequences"), "Your email address may be known to others."),
		chromedp.SendKeys(chromedp.ID("measures_taken"), "The bucket was closed and the backup deleted."),
		chromedp.SetValue(chromedp.ID("risk"), "high"),
		chromedp.Click(chromedp.ID("update-submit")))
	j.wantNotice("The breach record is updated")
	if got := j.text("#notice-preview"); !strings.Contains(got, "Your email address may be known to others.") ||
		!strings.Contains(got, "privacy@vpn.example") {
		t.Errorf("notice preview: %q", got)
	}
	j.shot("console-breach-completed")
	j.do("notify", chromedp.SendKeys(chromedp.ID("accounts"), acct), chromedp.Click(chromedp.ID("notify-submit")))
	j.wantNotice("The notice is on its way")
	if got := j.text("#breach-notices tbody"); !strings.Contains(got, "1/1") {
		t.Errorf("notices table: %q", got)
	}
	ms, _, err := e.srv.Inbox.List(context.Background(), acct, 10)
	if err != nil || len(ms) == 0 || ms[0].Kind != "breach-notice" {
		t.Errorf("the affected account's inbox: %+v, %v", ms, err)
	}
	j.do("authority notified", chromedp.SetValue(chromedp.ID("authority_notified_at"), time.Now().UTC().Format("2006-01-02T15:04")),
		chromedp.SendKeys(chromedp.ID("authority_reference"), "DPA-2026-88"), chromedp.Click(chromedp.ID("update-submit")))
	j.wantNotice("The breach record is updated")
	if eval[bool](j, `!!document.querySelector('#breach-notify-by + .tag-bad')`) {
		t.Errorf("still marked overdue after the authority was notified")
	}
	j.shot("console-breach-notified")
	j.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	for _, p := range []struct{ path, sel string }{{"/console/breaches", "#breaches"}, {"/console/requests", "#intake"}} {
		j.open(p.path, p.sel)
		j.noOverflow(p.path)
	}
	checkCapture(t, e, rec, 8)
}
