package web_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/web"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// wantHeaders are the security headers every portal response carries.
func wantHeaders() map[string]string {
	return map[string]string{
		"Content-Security-Policy":      web.CSP,
		"Referrer-Policy":              "no-referrer",
		"X-Content-Type-Options":       "nosniff",
		"X-Frame-Options":              "DENY",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
	}
}

// inlineRE finds markup that a strict CSP would block: inline scripts,
// style elements or attributes, and event-handler attributes.
var inlineRE = regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]|<script>|<style|\sstyle=|\son[a-z]+=|javascript:`)

func checkHeaders(t *testing.T, path string, resp *http.Response, body string) {
	t.Helper()
	for k, want := range wantHeaders() {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("GET %s: %s = %q, want %q", path, k, got, want)
		}
	}
	if got := resp.Header.Get("Permissions-Policy"); !strings.Contains(got, "camera=()") {
		t.Errorf("GET %s: Permissions-Policy = %q, want camera=() among others", path, got)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s: Cache-Control = %q, want no-store", path, got)
		}
		if m := inlineRE.FindString(body); m != "" {
			t.Errorf("GET %s: page has inline code or style %q, which the CSP blocks", path, m)
		}
		if strings.Contains(body, "http://") && !strings.Contains(path, "privacy") {
			for _, u := range regexp.MustCompile(`(?:src|href)="(https?://[^"]+)"`).FindAllStringSubmatch(body, -1) {
				t.Errorf("GET %s: page references another origin: %s", path, u[1])
			}
		}
	}
}

// TestSecurityHeaders loops over every GET route, signed out and signed
// in, and checks the security headers, no-store on pages, and the absence
// of inline script or style.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	anon := e.client(t)
	public := []struct {
		path   string
		status int
	}{
		{"/", 200}, {"/privacy", 200}, {"/signup", 200}, {"/login", 200}, {"/forgot", 200},
		{"/reset", 200}, {"/reset?token=nnr_x", 200}, {"/static/css/app.css", 200}, {"/static/js/strength.js", 200},
		{"/static/js/device-new.js", 200}, {"/static/vendor/qrcode-generator/qrcode.js", 200},
		{"/static/favicon.svg", 200}, {"/static/nope.js", 404}, {"/no/such/page", 404},
		{"/devices", 303}, {"/devices/new", 303}, {"/usage", 303}, {"/account", 303}, {"/verify", 303},
	}
	for _, p := range public {
		resp, body := anon.get(p.path)
		if resp.StatusCode != p.status {
			t.Errorf("signed out: GET %s: got %d, want %d", p.path, resp.StatusCode, p.status)
		}
		checkHeaders(t, p.path, resp, body)
	}

	user := e.client(t)
	user.signup("headers@example.com", "+447911100201", "correct horse battery")
	k, _ := wgkey.Generate(rand.Reader)
	tok := user.csrf("/devices/new")
	resp, body := user.post("/devices", url.Values{"name": {"phone"}, "gateway": {e.gwID}, "public_key": {k.Public().String()}},
		"X-CSRF-Token", tok)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("add device: got %d, want 201: %s", resp.StatusCode, body)
	}
	var added struct {
		ID        string `json:"id"`
		ConfigURL string `json:"config_url"`
	}
	if err := json.Unmarshal([]byte(body), &added); err != nil {
		t.Fatal(err)
	}
	private := []string{"/", "/privacy", "/devices", "/devices/new", "/usage", "/account", "/verify", added.ConfigURL, "/nope"}
	for _, p := range private {
		resp, body := user.get(p)
		if resp.StatusCode != 200 && p != "/nope" {
			t.Errorf("signed in: GET %s: got %d, want 200", p, resp.StatusCode)
		}
		checkHeaders(t, p, resp, body)
		if p == added.ConfigURL {
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("GET %s: Cache-Control = %q, want no-store", p, resp.Header.Get("Cache-Control"))
			}
			if !strings.Contains(body, "PrivateKey = \n") || !strings.Contains(body, "PublicKey = "+e.gwKey) {
				t.Errorf("config template:\n%s\nwant an empty PrivateKey and the gateway's key", body)
			}
		}
	}
	// 405 keeps the headers too.
	req, _ := http.NewRequest(http.MethodPut, e.url+"/login", nil)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusMethodNotAllowed || r2.Header.Get("Content-Security-Policy") != web.CSP {
		t.Errorf("PUT /login: got %d with CSP %q, want 405 with the CSP", r2.StatusCode, r2.Header.Get("Content-Security-Policy"))
	}
}

// TestCSRF checks that every kind of forged state-changing request is
// refused with 403 and changes nothing.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	user := e.client(t)
	user.signup("csrf@example.com", "+447911100202", "correct horse battery")
	good := user.csrf("/account")
	other := e.client(t)
	other.signup("csrf2@example.com", "+447911100203", "correct horse battery")
	otherTok := other.csrf("/account")

	cases := []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"missing token", url.Values{}, nil},
		{"wrong token", url.Values{"csrf": {"AAAA" + good[4:]}}, nil},
		{"another session's token", url.Values{"csrf": {otherTok}}, nil},
		{"cross-site origin", url.Values{"csrf": {good}}, []string{"Origin", "https://evil.example"}},
		{"cross-site fetch", url.Values{"csrf": {good}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"null origin", url.Values{"csrf": {good}}, []string{"Origin", "null"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/account/sessions", "/logout", "/devices", "/account/password"} {
				resp, body := user.post(path, c.form, c.headers...)
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("POST %s: got %d, want 403", path, resp.StatusCode)
				}
				if !strings.Contains(body, "Request refused") || strings.Contains(body, "goroutine") {
					t.Errorf("POST %s: want the friendly error page, got:\n%s", path, body)
				}
			}
			// Still signed in: nothing was changed.
			if resp, _ := user.get("/account"); resp.StatusCode != 200 {
				t.Fatalf("after forged POSTs: GET /account = %d, want 200 (session intact)", resp.StatusCode)
			}
		})
	}

	// Signed-out forms are protected too (login CSRF).
	anon := e.client(t)
	anon.csrf("/login") // gets the pre-session cookie
	resp, _ := anon.post("/login", url.Values{"email": {"csrf@example.com"}, "password": {"correct horse battery"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without token: got %d, want 403", resp.StatusCode)
	}
	resp, _ = anon.post("/login", url.Values{"csrf": {good}, "email": {"csrf@example.com"}, "password": {"correct horse battery"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login with another session's token: got %d, want 403", resp.StatusCode)
	}
	tok := anon.csrf("/login")
	resp, _ = anon.post("/login", url.Values{"csrf": {tok}, "email": {"csrf@example.com"}, "password": {"correct horse battery"}},
		"Origin", e.url, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/devices" {
		t.Errorf("login with the right token: got %d to %q, want 303 to /devices", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestForms checks field-level validation errors, the reset request's
// uniform answer, and that the add-device endpoint refuses any field that
// could carry a private key.
func TestForms(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	tok := c.csrf("/signup")
	resp, body := c.post("/signup", url.Values{"csrf": {tok}, "email": {"not-an-email"}, "mobile": {"+447911100204"}, "password": {"short"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad signup: got %d, want 400", resp.StatusCode)
	}
	for _, id := range []string{"email-error", "password-error"} {
		m := regexp.MustCompile(`id="` + id + `">([^<]+)<`).FindStringSubmatch(body)
		if m == nil {
			t.Errorf("bad signup: no message in #%s:\n%s", id, body)
		}
	}
	if !strings.Contains(body, `value="&#43;447911100204"`) || strings.Contains(body, `value="short"`) {
		t.Errorf("bad signup: want the mobile kept and the password not echoed")
	}

	c.signup("forms@example.com", "+447911100205", "correct horse battery")
	anon := e.client(t)
	answers := map[string]string{}
	for _, email := range []string{"forms@example.com", "nobody@example.com"} {
		tok := anon.csrf("/forgot")
		resp, body := anon.post("/forgot", url.Values{"csrf": {tok}, "email": {email}})
		if resp.StatusCode != 200 {
			t.Fatalf("forgot %s: got %d", email, resp.StatusCode)
		}
		answers[email] = regexp.MustCompile(`(?s)<main.*</main>`).FindString(body)
	}
	if answers["forms@example.com"] != answers["nobody@example.com"] {
		t.Errorf("reset answers differ for an existing and an unknown account:\n%s\n---\n%s",
			answers["forms@example.com"], answers["nobody@example.com"])
	}

	tok = c.csrf("/devices/new")
	k, _ := wgkey.Generate(rand.Reader)
	resp, body = c.post("/devices", url.Values{"name": {"x"}, "gateway": {e.gwID}, "public_key": {k.Public().String()},
		"private_key": {k.Base64()}}, "X-CSRF-Token", tok)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Unexpected field") {
		t.Errorf("add with a private_key field: got %d %s, want 400 unexpected field", resp.StatusCode, body)
	}
	resp, body = c.post("/devices", url.Values{"name": {""}, "gateway": {e.gwID}, "public_key": {k.Public().String()}},
		"X-CSRF-Token", tok)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field":"name"`) {
		t.Errorf("add without a name: got %d %s, want 400 for field name", resp.StatusCode, body)
	}
}
