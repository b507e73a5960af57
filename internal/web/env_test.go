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
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/api"
	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/web"
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
}

// generous are rate limits a test journey does not hit.
func generous() api.Limits {
	return api.Limits{SignupPerHour: 1e6, SignupBurst: 1000, LoginPerHour: 1e6, LoginBurst: 1000,
		VerifyPerHour: 1e6, VerifyBurst: 1000, ResetPerHour: 1e6, ResetBurst: 1000}
}

// newEnv assembles the server as `nitronet serve` does, registers the
// portal on the API's mux through api.Config.Extra, and enrolls one
// gateway in region eu-west.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	var cfg config.Serve
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.Bind(fs)
	cfg.DataDir = dir
	cfg.DeviceLimit = 3
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := server.OpenStore(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	limits := generous()
	srv, err := server.Assemble(cfg, st, server.Deps{Logger: logger, Clock: time.Now, Rand: rand.Reader,
		Stdout: io.Discard, Limits: &limits})
	if err != nil {
		t.Fatal(err)
	}
	portal, err := web.New(web.Config{
		Accounts: srv.Accounts, Devices: srv.Devices, Gateways: srv.Gateways, Usage: srv.Usage,
		GatewayDNS: cfg.GatewayAddrs(), Logger: logger, Clock: time.Now, Rand: rand.Reader,
		CSRFKey: srv.Vault.DeriveKey("web portal csrf"), Limits: limits,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{
		Accounts: srv.Accounts, Devices: srv.Devices, Gateways: srv.Gateways, Feed: srv.Feed, Usage: srv.Usage,
		Logger: logger, Clock: time.Now, Rand: rand.Reader, Limits: limits, GatewayDNS: cfg.GatewayAddrs(),
		Extra: func(mux *http.ServeMux, _ *api.Server) { portal.Register(mux) },
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	e := &env{t: t, url: hs.URL, dir: dir, logs: logs, srv: srv}

	ctx := context.Background()
	_, tok, err := srv.Gateways.Add(ctx, "eu-west", "198.18.0.1:51820")
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

// lastMessage returns the newest outbox message of kind for a recipient
// (masked as the outbox stores it), as the server tests read codes.
func (e *env) lastMessage(kind, to string) string {
	e.t.Helper()
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
// leaves the client signed in.
func (b *browserless) signup(email, mobile, pw string) {
	b.t.Helper()
	tok := b.csrf("/signup")
	resp, body := b.post("/signup", url.Values{"csrf": {tok}, "email": {email}, "mobile": {mobile}, "password": {pw}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/verify?msg=signed-up" {
		b.t.Fatalf("signup: got %d %q, want 303 to /verify\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	for _, c := range []struct{ ch, to string }{{"email", email}, {"mobile", mobile}} {
		tok := b.csrf("/verify")
		resp, body := b.post("/verify", url.Values{"csrf": {tok}, "channel": {c.ch}, "code": {b.e.code(c.to)}})
		if resp.StatusCode != http.StatusSeeOther {
			b.t.Fatalf("verify %s: got %d, want 303\n%s", c.ch, resp.StatusCode, body)
		}
	}
}
