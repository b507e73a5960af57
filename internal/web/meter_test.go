package web_test

import (
	"bytes"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestPasswordMeterVerdict: the sign-up, reset and password-change forms
// carry the strength meter (strength.js, which shows the verdict of POST
// /api/v1/password-check), and the password-change form gives it the
// account's email address and mobile number as the context the server
// judges with; so the meter's verdict is the form's: a password built
// from the address, acceptable without that context, is "not accepted"
// with it, and the form refuses it beside the new password, while one the
// meter accepts the form takes.
func TestPasswordMeterVerdict(t *testing.T) {
	e := newEnv(t)
	const (
		email  = "zqxjvbkwlmtr@example.com"
		mobile = "+447911100127"
		pw     = "correct horse battery staple"
	)
	b := e.client(t)
	for _, page := range []struct{ path, input string }{{"/signup", "password"}, {"/reset?token=nnr_x", "password"}} {
		_, body := b.get(page.path)
		wantMeter(t, page.path, body, page.input)
	}
	b.signup(email, mobile, pw)
	_, body := b.get("/account")
	wantMeter(t, "/account", body, "new_password")

	// The context strength.js sends from this form.
	form := regexp.MustCompile(`(?s)<form method="post" action="/account/password".*?</form>`).FindString(body)
	ctxEmail := attr(t, form, `<input type="email" autocomplete="username"[^>]*>`)
	ctxMobile := attr(t, form, `<input type="tel"[^>]*data-mobile[^>]*>`)
	if ctxEmail != email || ctxMobile != mobile {
		t.Fatalf("password form context: email %q, mobile %q; want %q and %q", ctxEmail, ctxMobile, email, mobile)
	}

	verdict := func(pw string, context bool) bool {
		t.Helper()
		req := map[string]string{"password": pw}
		if context {
			req["email"], req["mobile"] = ctxEmail, ctxMobile
		}
		raw, _ := json.Marshal(req)
		resp, err := http.Post(e.url+"/api/v1/password-check", "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct {
			Acceptable *bool `json:"acceptable"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 || v.Acceptable == nil {
			t.Fatalf("password-check: %d, %v", resp.StatusCode, err)
		}
		return *v.Acceptable
	}
	change := func(newPW string) (*http.Response, string) {
		return b.post("/account/password", url.Values{"csrf": {b.csrf("/account")}, "current_password": {pw},
			"new_password": {newPW}, "confirm": {newPW}})
	}

	const fromAddress = "zqxjvbkwlmtr7"
	if !verdict(fromAddress, false) {
		t.Fatalf("%q without context: not acceptable; the test needs one that only the context makes weak", fromAddress)
	}
	if verdict(fromAddress, true) {
		t.Errorf("%q with the form's context: acceptable, want not (it is the email address)", fromAddress)
	}
	resp, body := change(fromAddress)
	if resp.StatusCode != http.StatusBadRequest || fieldError(body, "new_password") == "" {
		t.Errorf("password change to %q: %d, error beside new_password %q; want 400 with one (the meter said not accepted)",
			fromAddress, resp.StatusCode, fieldError(body, "new_password"))
	}

	const strong = "lantern orbit velvet quarry"
	if !verdict(strong, true) {
		t.Fatalf("%q with the form's context: not acceptable", strong)
	}
	if resp, body := change(strong); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("password change to a password the meter accepts: %d, want 303\n%s", resp.StatusCode, body)
	}
}

// wantMeter checks that page body has the strength meter on input id: its
// data-strength output, the live region, and strength.js.
func wantMeter(t *testing.T, page, body, id string) {
	t.Helper()
	for _, want := range []string{`id="` + id + `"`, `data-strength="` + id + `-strength"`,
		`<p class="strength" id="` + id + `-strength" aria-live="polite">`, `src="/static/js/strength.js"`} {
		if !strings.Contains(body, want) {
			t.Errorf("%s: no %s: the password meter is not wired", page, want)
		}
	}
}

// attr returns the value attribute of the first element matching re in s.
func attr(t *testing.T, s, re string) string {
	t.Helper()
	el := regexp.MustCompile(re).FindString(s)
	m := regexp.MustCompile(`value="([^"]*)"`).FindStringSubmatch(el)
	if m == nil {
		t.Fatalf("no element %s with a value", re)
	}
	return html.UnescapeString(m[1])
}
