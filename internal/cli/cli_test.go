package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/cli"
	"github.com/nitronet/nitronet/internal/clientstate"
	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/pquerna/otp/totp"
)

// wire records every request body the server received.
type wire struct {
	mu     sync.Mutex
	bodies []string
}

func (w *wire) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.bodies = append(w.bodies, r.URL.String()+"\n"+string(b))
		w.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(rw, r)
	})
}

func (w *wire) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.bodies, "\n")
}

type harness struct {
	t       *testing.T
	srv     *server.Server
	dataDir string
	confDir string
	url     string
	env     map[string]string
}

func (h *harness) run(stdin string, args ...string) (string, error) {
	h.t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		switch k {
		case "NITRONET_CONFIG_DIR":
			return h.confDir
		case "NITRONET_SERVER":
			if v, ok := h.env[k]; ok {
				return v
			}
			return h.url
		}
		return h.env[k]
	}
	err := cli.Run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errb)
	return out.String(), err
}

func (h *harness) must(stdin string, args ...string) string {
	h.t.Helper()
	out, err := h.run(stdin, args...)
	if err != nil {
		h.t.Fatalf("nitronet %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// drain delivers what the server queued, as serve's worker would.
func (h *harness) drain() {
	h.t.Helper()
	if _, err := h.srv.Outbound.Drain(context.Background()); err != nil {
		h.t.Fatalf("drain the outbound queue: %v", err)
	}
}

func (h *harness) code(channel string) string {
	h.t.Helper()
	h.drain()
	entries, err := os.ReadDir(filepath.Join(h.dataDir, "outbox"))
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for i := len(names) - 1; i >= 0; i-- {
		b, _ := os.ReadFile(filepath.Join(h.dataDir, "outbox", names[i]))
		if strings.Contains(string(b), "Channel: "+channel+"\n") {
			return regexp.MustCompile(`\b\d{6}\b`).FindString(string(b))
		}
	}
	h.t.Fatalf("no %s code in outbox", channel)
	return ""
}

// newHarness starts a control server with a fresh data directory (SQLite)
// on an httptest listener, its handler wrapped by wrap if not nil, and
// returns a CLI harness pointed at it.
func newHarness(t *testing.T, wrap func(http.Handler) http.Handler) (*harness, *server.Server) {
	t.Helper()
	dataDir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dataDir
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), cfg, server.Deps{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: time.Now, Rand: rand.Reader,
	})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv.Handler
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &harness{t: t, srv: srv, dataDir: dataDir, confDir: t.TempDir(), url: hs.URL, env: map[string]string{}}, srv
}

func TestREADMEJourney(t *testing.T) {
	var w wire
	h, _ := newHarness(t, w.wrap)
	dataDir := h.dataDir

	if _, err := h.run("", "device", "list"); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("got %v, want a not-logged-in error", err)
	}
	h.must("correct horse battery\n", "signup", "--email", "cli@example.com", "--mobile", "+447911100500")
	if _, err := h.run("", "device", "add", "laptop"); err == nil {
		t.Fatal("device add before verification succeeded, want an error")
	}
	h.must("", "verify", "email", h.code("email"))
	out := h.must("", "verify", "mobile", h.code("sms"))
	if !strings.Contains(out, "Both contacts are verified") {
		t.Fatalf("got %q", out)
	}
	h.must("", "logout")
	if _, err := h.run("", "whoami"); err == nil {
		t.Fatal("whoami after logout succeeded")
	}
	h.must("correct horse battery\n", "login", "--email", "cli@example.com")
	if out := h.must("", "whoami"); !strings.Contains(out, "cli@example.com") || !strings.Contains(out, "+447911100500") {
		t.Fatalf("whoami: got %q", out)
	}
	// The CLI keeps the server's device token and shows it at the next
	// login, so a stranger's failed logins do not slow this client down.
	if st, err := (clientstate.Dir{Path: h.confDir}).Load(); err != nil || !strings.HasPrefix(st.Device, "nnd_") {
		t.Fatalf("saved state: got %+v, %v; want a device token", st, err)
	}
	if !strings.Contains(w.all(), `"device":"nnd_`) {
		t.Fatal("the second login did not present the device token")
	}
	out = h.must("", "device", "add", "laptop")
	id := regexp.MustCompile(`dev_[a-z2-7]+`).FindString(out)
	if id == "" {
		t.Fatalf("device add: got %q", out)
	}
	dir := clientstate.Dir{Path: h.confDir}
	key, err := dir.Key(id)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(h.confDir, "keys", id+".key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: got %v %v, want 0600", fi.Mode(), err)
	}
	if out := h.must("", "device", "list"); !strings.Contains(out, id) || !strings.Contains(out, key.Public().String()) {
		t.Fatalf("device list: got %q", out)
	}
	h.must("", "device", "rotate", id)
	key2, err := dir.Key(id)
	if err != nil || key2 == key {
		t.Fatalf("rotate: key unchanged or unreadable: %v", err)
	}
	h.must("", "device", "rename", id, "work laptop")
	// DNS blocking: chosen on a device, shown by list, cleared with none.
	if out := h.must("", "device", "dns-blocking", "work laptop", "trackers, ads"); !strings.Contains(out, "now blocks: ads,trackers") {
		t.Fatalf("device dns-blocking: got %q", out)
	}
	if out := h.must("", "device", "list", "--json"); !strings.Contains(out, `"dns_blocking": [`) || !strings.Contains(out, `"ads",`) {
		t.Fatalf("device list --json: got %q", out)
	}
	if _, err := h.run("", "device", "dns-blocking", id, "casino"); err == nil || !strings.Contains(err.Error(), "casino") {
		t.Fatalf("device dns-blocking casino: got %v, want an error naming it", err)
	}
	if out := h.must("", "device", "dns-blocking", id, "none"); !strings.Contains(out, "now blocks: none") {
		t.Fatalf("device dns-blocking none: got %q", out)
	}
	out = h.must("", "device", "add", "phone", "--dns-blocking", "malware,gambling")
	phone := regexp.MustCompile(`dev_[a-z2-7]+`).FindString(out)
	if !strings.Contains(out, "Its DNS blocks malware, gambling.") {
		t.Fatalf("device add --dns-blocking: got %q", out)
	}
	if out := h.must("", "device", "list"); !strings.Contains(out, "malware,gambling") {
		t.Fatalf("device list: got %q, want the phone's blocking", out)
	}
	h.must("", "device", "remove", phone)
	h.must("", "device", "remove", id)

	// Neither private key ever crossed the wire, in any encoding.
	sent := w.all()
	for _, k := range []string{key.Base64(), key.Hex(), key2.Base64(), key2.Hex()} {
		if strings.Contains(sent, k) {
			t.Fatal("a device private key was sent to the server")
		}
	}
	if strings.Contains(sent, "private") {
		t.Fatal("a request mentions a private key field")
	}

	// The README's operator steps: the first staff account is an admin,
	// made with the data directory alone; gateways are added as staff.
	if _, err := h.run("", "admin", "gateway", "add", "--data", dataDir, "--region", "eu-west", "--endpoint", "198.18.0.1:51820"); err == nil {
		t.Fatal("admin gateway add without a staff login succeeded")
	}
	h.must("operator password 1\n", "admin", "staff", "add", "--data", dataDir, "--email", "ops@example.com", "--role", "admin")
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "ops@example.com", "operator password 1"
	// admin gateway add prints the token alone on stdout.
	out = h.must("", "admin", "gateway", "add", "--data", dataDir, "--region", "eu-west", "--endpoint", "198.18.0.1:51820")
	if !regexp.MustCompile(`^nne_[A-Za-z0-9_-]+\n$`).MatchString(out) {
		t.Fatalf("admin gateway add stdout: got %q, want the token alone", out)
	}
	if _, err := h.run("", "admin", "gateway", "add", "--data", dataDir, "--region", "EU WEST!", "--endpoint", "x:1"); err == nil {
		t.Fatal("bad region accepted")
	}
}

func TestServeConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad listen", []string{"serve", "--listen", "nope"}, nil, "--listen"},
		{"bad pool", []string{"serve", "--pool-v4", "10.0.0.0/31"}, nil, "--pool-v4"},
		{"non-ULA v6", []string{"serve", "--pool-v6", "2001:db8::/48"}, nil, "--pool-v6"},
		{"bad database", []string{"serve", "--database", "mysql://x"}, nil, "--database"},
		{"env bad value", []string{"serve"}, map[string]string{"NITRONET_DEVICE_LIMIT": "many"}, "NITRONET_DEVICE_LIMIT"},
		{"env validated", []string{"serve"}, map[string]string{"NITRONET_LOG_FORMAT": "xml"}, "--log-format"},
		{"smtp needs from", []string{"serve", "--smtp-host", "mail.example.com"}, nil, "--smtp-from"},
		{"plain HTTP off loopback", []string{"serve", "--listen", "0.0.0.0:8080"}, nil, "--behind-proxy"},
		{"plain HTTP off loopback from the environment", []string{"serve"}, map[string]string{"NITRONET_LISTEN": ":8080"}, "--insecure-http"},
		{"SMTP in clear", []string{"serve", "--smtp-host", "mail.example.com", "--smtp-from", "vpn@example.com", "--smtp-tls", "none"}, nil, "--smtp-insecure"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(c.args, "--data", t.TempDir())
			err := cli.Run(context.Background(), args, func(k string) string { return c.env[k] }, strings.NewReader(""), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %s", err, c.want)
			}
		})
	}
}

func TestAdminStaffHoldsAudit(t *testing.T) {
	h, srv := newHarness(t, nil)
	dataDir := h.dataDir
	accountID, err := srv.Accounts.Signup(context.Background(), "held@example.com", "+447911100800", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	d := []string{"--data", dataDir}
	admin := func(args ...string) []string { return append(append([]string{"admin"}, args...), d...) }

	// The first staff account is the data-directory holder's to create.
	h.must("admin password 1\n", admin("staff", "add", "--email", "boss@example.com", "--role", "admin")...)
	// After that, only an admin may add staff.
	if _, err := h.run("pw\n", admin("staff", "add", "--email", "x@example.com", "--role", "legal")...); err == nil {
		t.Fatal("second staff add without --staff succeeded")
	}
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "boss@example.com", "admin password 1"
	h.must("legal password 1\n", admin("staff", "add", "--email", "law@example.com", "--role", "legal")...)
	h.must("support password 1\n", admin("staff", "add", "--email", "help@example.com", "--role", "support")...)
	if out := h.must("", admin("staff", "list")...); !strings.Contains(out, "law@example.com") {
		t.Fatalf("staff list: got %q", out)
	}
	h.env["NITRONET_STAFF_PASSWORD"] = "wrong password!"
	if _, err := h.run("", admin("staff", "list")...); err == nil {
		t.Fatal("wrong staff password accepted")
	}

	// Roles: support and admin may not place holds; legal may.
	for _, who := range []struct{ email, pw string }{{"help@example.com", "support password 1"}, {"boss@example.com", "admin password 1"}} {
		h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = who.email, who.pw
		_, err := h.run("", admin("hold", "add", "--account", accountID, "--reason", "case 42")...)
		if err == nil || !strings.Contains(err.Error(), "may not") {
			t.Fatalf("%s placed a hold: %v", who.email, err)
		}
	}
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "law@example.com", "legal password 1"
	if _, err := h.run("", admin("hold", "add", "--account", "acc_aaaaaaaaaaaaaaaaaaaaaaaaaa", "--reason", "case 42")...); err == nil {
		t.Fatal("hold on a missing account accepted")
	}
	if _, err := h.run("", admin("hold", "add", "--account", accountID, "--reason", "case 42", "--until", "2001-01-01")...); err == nil {
		t.Fatal("hold ending in the past accepted")
	}
	out := h.must("", admin("hold", "add", "--account", accountID, "--reason", "case 42", "--until", "2999-01-01")...)
	holdID := regexp.MustCompile(`hold_[a-z2-7]+`).FindString(out)
	if out := h.must("", admin("hold", "list", "--active")...); !strings.Contains(out, holdID) || !strings.Contains(out, "case 42") {
		t.Fatalf("hold list: got %q", out)
	}
	h.must("", admin("hold", "release", holdID)...)
	if _, err := h.run("", admin("hold", "release", holdID)...); err == nil {
		t.Fatal("double release accepted")
	}

	// Every staff action above is in the audit log, and the chain verifies.
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "boss@example.com", "admin password 1"
	if out := h.must("", admin("audit", "verify")...); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: got %q", out)
	}
	out = h.must("", admin("audit", "list")...)
	for _, want := range []string{"staff.manage", "hold.manage", "hold.view", accountID} {
		if !strings.Contains(out, want) {
			t.Errorf("audit list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "held@example.com") {
		t.Error("audit log names a user by email")
	}
}

// TestStaffTwoFactorCLI enrolls a staff member's authenticator through the
// CLI, then shows that admin commands need a code from it.
func TestStaffTwoFactorCLI(t *testing.T) {
	h, _ := newHarness(t, nil)
	d := []string{"--data", h.dataDir}
	h.must("admin password 1\n", append([]string{"admin", "staff", "add", "--email", "boss@example.com", "--role", "admin"}, d...)...)
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "boss@example.com", "admin password 1"

	// Enroll: the seed is printed on stderr, the code read from stdin.
	stdinR, stdinW := io.Pipe()
	var stderr lockedBuffer
	getenv := func(k string) string {
		if k == "NITRONET_CONFIG_DIR" {
			return h.confDir
		}
		return h.env[k]
	}
	done := make(chan error, 1)
	var stdout bytes.Buffer
	go func() {
		done <- cli.Run(context.Background(), append([]string{"admin", "staff", "totp"}, d...), getenv, stdinR, &stdout, &stderr)
	}()
	keyRE := regexp.MustCompile(`enter the key ([A-Z2-7]+)`)
	var secret string
	deadline := time.Now().Add(30 * time.Second)
	for secret == "" {
		if m := keyRE.FindStringSubmatch(stderr.String()); m != nil {
			secret = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no key printed: %q", stderr.String())
		} else {
			time.Sleep(10 * time.Millisecond) // polling the child's output
		}
	}
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdinW, code+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("totp enroll: %v", err)
	}
	if !strings.Contains(stdout.String(), "Two-factor login is on") {
		t.Fatalf("enroll: got %q", stdout.String())
	}

	// Without a code (and no terminal to ask on), admin commands fail; with
	// the next code they work.
	if _, err := h.run("", append([]string{"admin", "staff", "list"}, d...)...); err == nil {
		t.Fatal("staff list without a two-factor code succeeded")
	}
	// The refusal is the one every failed login gets: it does not say
	// that the password was right.
	_, errNoCode := h.run("", append([]string{"admin", "staff", "list"}, d...)...)
	h.env["NITRONET_STAFF_PASSWORD"] = "not the password"
	_, errWrongPW := h.run("", append([]string{"admin", "staff", "list"}, d...)...)
	if errNoCode == nil || errWrongPW == nil || errNoCode.Error() != errWrongPW.Error() {
		t.Fatalf("no code: %v; wrong password: %v; want the same refusal", errNoCode, errWrongPW)
	}
	h.env["NITRONET_STAFF_PASSWORD"] = "admin password 1"
	// NITRONET_STAFF_TOTP=1 says the account has a second factor: the
	// code is read from stdin (after the password, when that is read too).
	next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	h.env["NITRONET_STAFF_TOTP"] = "1"
	if out := h.must(next+"\n", append([]string{"admin", "staff", "list"}, d...)...); !strings.Contains(out, "boss@example.com") {
		t.Fatalf("staff list with the code on stdin: got %q", out)
	}
	if _, err := h.run("", append([]string{"admin", "staff", "list"}, d...)...); err == nil || !strings.Contains(err.Error(), "no two-factor code given") {
		t.Fatalf("NITRONET_STAFF_TOTP without a code: got %v, want a clear error", err)
	}
	// NITRONET_STAFF_CODE wins over stdin; a used code is refused like
	// any failure.
	h.env["NITRONET_STAFF_CODE"] = next
	if _, err := h.run("", append([]string{"admin", "staff", "list"}, d...)...); err == nil || err.Error() != errWrongPW.Error() {
		t.Fatalf("a replayed code in NITRONET_STAFF_CODE: got %v, want the one refusal", err)
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
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
