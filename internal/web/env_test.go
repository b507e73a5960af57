package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/wgkey"
	"github.com/spf13/pflag"
)

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a control server with the portal, on a real SQLite store in a
// temporary data directory, served over HTTP.
type env struct {
	t     *testing.T
	url   string
	dir   string
	logs  *lockedBuffer
	srv   *server.Server
	gwKey string // the enrolled gateway's public key
	gwID  string
	// shift moves the server's clock (nanoseconds added to time.Now), so
	// a test can create requests "in the past".
	shift *atomic.Int64
}

// at runs f with the server's clock moved by d, then puts it back.
func (e *env) at(d time.Duration, f func()) {
	e.shift.Store(int64(d))
	defer e.shift.Store(0)
	f()
}

// generous are rate limits a test journey does not hit.
func generous() httpedge.Limits {
	return httpedge.Limits{SignupPerHour: 1e6, SignupBurst: 1000, LoginPerHour: 1e6, LoginBurst: 1000,
		StaffPerHour: 1e6, StaffBurst: 1000, EnrollPerHour: 1e6, EnrollBurst: 1000, CheckPerHour: 1e6, CheckBurst: 1000,
		VerifyPerHour: 1e6, VerifyBurst: 1000, ResetPerHour: 1e6, ResetBurst: 1000}
}

// newEnv assembles the server as `nitronet serve` does (the portal and the
// console on the API's mux), publishes the shipped policy, and enrolls one
// gateway in region eu-west.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with settings changed by set (if not nil) before
// the server is built.
func newEnvWith(t *testing.T, set func(*config.Settings)) *env {
	t.Helper()
	dir := t.TempDir()
	var cfg config.Settings
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.Bind(fs)
	cfg.DataDir = dir
	cfg.DeviceLimit = 3
	if set != nil {
		set(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	limits := generous()
	shift := &atomic.Int64{}
	clock := func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	// Built by the one composition root, as in `nitronet serve`: the
	// portal and console beside the API, the shipped policy published.
	srv, err := server.New(context.Background(), cfg, server.Deps{Logger: logger, Clock: clock, Rand: rand.Reader,
		Stdout: io.Discard, Limits: &limits})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	e := &env{t: t, url: hs.URL, dir: dir, logs: logs, srv: srv, shift: shift}

	ctx := context.Background()
	_, tok, err := srv.Gateways.Add(ctx, staff.System(), "eu-west", "198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.gwKey = k.Public().String()
	enr, err := srv.Gateways.Enroll(ctx, gwproto.EnrollRequest{Token: tok, PublicKey: e.gwKey})
	if err != nil {
		t.Fatal(err)
	}
	e.gwID = enr.ID
	return e
}

// drain delivers the outbound queue's due jobs (no worker runs in tests).
func (e *env) drain() {
	e.t.Helper()
	if _, err := e.srv.Outbound.Drain(context.Background()); err != nil {
		e.t.Fatalf("drain the outbound queue: %v", err)
	}
}

// lastMessage returns the newest outbox message of kind for a recipient
// (masked as the outbox stores it), as the server tests read codes.
func (e *env) lastMessage(kind, to string) string {
	e.t.Helper()
	e.drain()
	entries, err := os.ReadDir(filepath.Join(e.dir, "outbox"))
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		if strings.Contains(en.Name(), "-"+kind+"-") {
			names = append(names, en.Name())
		}
	}
	sort.Strings(names)
	for i := len(names) - 1; i >= 0; i-- {
		b, err := os.ReadFile(filepath.Join(e.dir, "outbox", names[i]))
		if err != nil {
			e.t.Fatal(err)
		}
		if strings.Contains(string(b), "\nTo: "+notify.Mask(to)+"\n") {
			return string(b)
		}
	}
	e.t.Fatalf("no %s message for %s in the outbox", kind, notify.Mask(to))
	return ""
}

var (
	codeRE  = regexp.MustCompile(`\b(\d{6})\b`)
	resetRE = regexp.MustCompile(`\b(nnr_[A-Za-z0-9_-]+)`)
	csrfRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// code returns the newest verification code sent to to.
func (e *env) code(to string) string {
	e.t.Helper()
	m := codeRE.FindStringSubmatch(e.lastMessage("verify-code", to))
	if m == nil {
		e.t.Fatal("no code in message")
	}
	return m[1]
}

// resetToken returns the newest password-reset token sent to email.
func (e *env) resetToken(email string) string {
	e.t.Helper()
	m := resetRE.FindStringSubmatch(e.lastMessage("password-reset", email))
	if m == nil {
		e.t.Fatal("no reset token in message")
	}
	return m[1]
}

// browserless is a cookie-keeping HTTP client for portal requests that
// need no JavaScript.
type browserless struct {
	t   *testing.T
	e   *env
	c   *http.Client
	jar http.CookieJar
}

func (e *env) client(t *testing.T) *browserless {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browserless{t: t, e: e, jar: jar, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get fetches path and returns the response with its body read.
func (b *browserless) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.e.url + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// csrf returns the CSRF token of the form on path.
func (b *browserless) csrf(path string) string {
	b.t.Helper()
	_, body := b.get(path)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("GET %s: no CSRF token in the page", path)
	}
	return m[1]
}

// post submits a form with extra headers (name, value pairs).
func (b *browserless) post(path string, form url.Values, headers ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// signup creates and verifies an account through the portal's forms and
// leaves the client signed in. Sign-up answers alike whether or not the
// address had an account, so it does not sign the browser in: the client
// logs in, which leads to the verification page.
func (b *browserless) signup(email, mobile, pw string) {
	b.t.Helper()
	tok := b.csrf("/signup")
	resp, body := b.post("/signup", url.Values{"csrf": {tok}, "email": {email}, "mobile": {mobile}, "password": {pw}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?msg=signed-up" {
		b.t.Fatalf("signup: got %d %q, want 303 to /login?msg=signed-up\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	tok = b.csrf("/login")
	resp, body = b.post("/login", url.Values{"csrf": {tok}, "email": {email}, "password": {pw}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/verify" {
		b.t.Fatalf("login after sign-up: got %d %q, want 303 to /verify\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	for _, c := range []struct{ ch, to string }{{"email", email}, {"mobile", mobile}} {
		tok := b.csrf("/verify")
		resp, body := b.post("/verify", url.Values{"csrf": {tok}, "channel": {c.ch}, "code": {b.e.code(c.to)}})
		if resp.StatusCode != http.StatusSeeOther {
			b.t.Fatalf("verify %s: got %d, want 303\n%s", c.ch, resp.StatusCode, body)
		}
	}
}

// staffPassword is the password of every staff account a test creates.
const staffPassword = "staff passphrase for the console"

// addStaff creates a staff account with role, as an administrator would:
// the operator bootstraps an admin (once), and the admin adds the others.
func (e *env) addStaff(email, role string) staff.Principal {
	e.t.Helper()
	ctx := context.Background()
	admin, err := e.srv.Staff.Check(ctx, staff.Credentials{Email: "admin@staff.example", Password: staffPassword})
	if err != nil {
		if _, err := e.srv.Staff.Bootstrap(ctx, "admin@staff.example", staff.RoleAdmin, staffPassword); err != nil {
			e.t.Fatal(err)
		}
		if admin, err = e.srv.Staff.Check(ctx, staff.Credentials{Email: "admin@staff.example", Password: staffPassword}); err != nil {
			e.t.Fatal(err)
		}
	}
	if email == "admin@staff.example" {
		return admin
	}
	if _, err := e.srv.Staff.Add(ctx, admin, email, role, staffPassword); err != nil {
		e.t.Fatal(err)
	}
	p, err := e.srv.Staff.Check(ctx, staff.Credentials{Email: email, Password: staffPassword})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// privacyCode returns the newest identity-proof code for a privacy
// request sent to to.
func (e *env) privacyCode(to string) string {
	e.t.Helper()
	m := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", to))
	if m == nil {
		e.t.Fatal("no code in the privacy message")
	}
	return m[1]
}

// verifiedRequest makes a request of typ for the account and proves the
// identity with pw and the codes from the outbox, through the service.
func (e *env) verifiedRequest(accountID, typ, details, email, mobile, pw string) string {
	e.t.Helper()
	ctx := context.Background()
	r, err := e.srv.Privacy.Create(ctx, accountID, typ, details)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.srv.Privacy.Verify(ctx, accountID, r.ID, pw, e.privacyCode(email), e.privacyCode(mobile)); err != nil {
		e.t.Fatal(err)
	}
	return r.ID
}

// staffLogin signs the client in to the console.
func (b *browserless) staffLogin(email string) {
	b.t.Helper()
	tok := b.csrf("/console/login")
	resp, body := b.post("/console/login", url.Values{"csrf": {tok}, "email": {email}, "password": {staffPassword}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console" {
		b.t.Fatalf("console login %s: got %d %q, want 303 to /console\n%s", email, resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// accountID returns the account id of the signed-in client's email.
func (e *env) accountID(email, pw string) string {
	e.t.Helper()
	_, id, err := e.srv.Accounts.Login(context.Background(), email, pw)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}
