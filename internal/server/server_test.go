package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/contact"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
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

type env struct {
	t    *testing.T
	url  string
	dir  string
	logs *lockedBuffer
	srv  *server.Server
	// check validates every API answer against the OpenAPI document.
	check *openAPICheck
	// also lists the data directories of other processes sharing the
	// database (replicas), whose outboxes lastMessage searches too: any
	// replica's queue worker may deliver a job.
	also []string
}

func testConfig(t *testing.T, dir string) config.Settings {
	t.Helper()
	var cfg config.Settings
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.Bind(fs)
	cfg.DataDir = dir
	cfg.DeviceLimit = 3
	// A contact point, which breach notices must name.
	cfg.Controller.Email = "privacy@operator.example"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newEnv assembles a server on backend b. For SQLite the database lives in
// the data directory, as with `nitronet serve`, so that the leak search
// covers it.
func newEnv(t *testing.T, b storetest.Backend, limits *httpedge.Limits) *env {
	t.Helper()
	return newEnvWith(t, b, limits, nil)
}

// newEnvWith is newEnv with the settings changed by edit (if not nil).
func newEnvWith(t *testing.T, b storetest.Backend, limits *httpedge.Limits, edit func(*config.Settings)) *env {
	t.Helper()
	return newEnvFull(t, b, limits, edit, time.Now, nil)
}

// newEnvClock is newEnv with the server's clock.
func newEnvClock(t *testing.T, b storetest.Backend, limits *httpedge.Limits, clock func() time.Time) *env {
	t.Helper()
	return newEnvFull(t, b, limits, nil, clock, nil)
}

// newEnvWrap is newEnvClock with the store the server uses wrapped by wrap
// (if not nil), to watch what the server asks of it.
func newEnvWrap(t *testing.T, b storetest.Backend, limits *httpedge.Limits, clock func() time.Time, wrap func(store.Store) store.Store) *env {
	t.Helper()
	return newEnvFull(t, b, limits, nil, clock, wrap)
}

// newEnvFull is newEnv with the settings changed by edit (if not nil), the
// server's clock, and the store wrapped by wrap (if not nil).
func newEnvFull(t *testing.T, b storetest.Backend, limits *httpedge.Limits, edit func(*config.Settings), clock func() time.Time,
	wrap func(store.Store) store.Store) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	if edit != nil {
		edit(&cfg)
	}
	var st store.Store
	if b.Name == "sqlite" {
		var err error
		st, err = server.OpenStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
	} else {
		st = b.Open(t)
	}
	if wrap != nil {
		st = wrap(st)
	}
	logs := &lockedBuffer{}
	srv, err := server.New(context.Background(), cfg, server.Deps{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:  clock, Rand: rand.Reader, Stdout: io.Discard, Limits: limits, Store: st,
	})
	if err != nil {
		t.Fatal(err)
	}
	check := newOpenAPICheck(t)
	hs := httptest.NewServer(check.wrap(srv.Handler))
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &env{t: t, url: hs.URL, dir: dir, logs: logs, srv: srv, check: check}
}

// with returns a copy of e that reports failures to t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// call sends a JSON request and decodes the JSON answer into a map.
func (e *env) call(method, path, token string, body any) (int, map[string]any) {
	e.t.Helper()
	code, _, out := e.callFrom(nil, method, path, token, body)
	return code, out
}

// callFrom is call from the client c (nil: http.DefaultClient), also
// returning the response headers.
func (e *env) callFrom(c *http.Client, method, path, token string, body any) (int, http.Header, map[string]any) {
	e.t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %q", method, path, data)
		}
	}
	return resp.StatusCode, resp.Header, out
}

func (e *env) want(method, path, token string, body any, status int) map[string]any {
	e.t.Helper()
	got, out := e.call(method, path, token, body)
	if got != status {
		e.t.Fatalf("%s %s: got status %d, want %d (body %v)", method, path, got, status, out)
	}
	if status >= 400 {
		errObj, ok := out["error"].(map[string]any)
		if !ok || errObj["code"] == "" || errObj["message"] == "" {
			e.t.Fatalf("%s %s: error body %v lacks error.code/message", method, path, out)
		}
	}
	return out
}

// metrics returns the server's metrics, as its metrics listener serves
// them (the main listener serves none without --metrics-token).
func (e *env) metrics() string {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.srv.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		e.t.Fatalf("metrics: got %d", rec.Code)
	}
	return rec.Body.String()
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

// drain delivers everything the outbound queue holds, as serve's worker
// would, so the outbox shows what the server sent. When serve runs, Drain
// waits for its worker's jobs too. For a server in another process (a
// replica) it does nothing: serve's workers deliver.
func (e *env) drain() {
	e.t.Helper()
	if e.srv == nil {
		return
	}
	if _, err := e.srv.Outbound.Drain(context.Background()); err != nil {
		e.t.Fatalf("drain the outbound queue: %v", err)
	}
}

// lastMessage returns the body of the newest outbox message of kind for a
// recipient (masked as the outbox stores it), once the queue is drained.
// For a server in another process it waits up to 15 seconds for the
// message, which the replicas' queue workers deliver.
func (e *env) lastMessage(kind, to string) string {
	e.t.Helper()
	e.drain()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m, ok := e.findMessage(kind, to); ok {
			return m
		}
		if e.srv != nil || time.Now().After(deadline) {
			e.t.Fatalf("no %s message for %s in the outbox", kind, maskOf(to))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// findMessage returns the newest outbox message of kind for to in the
// outboxes of e.dir and e.also.
func (e *env) findMessage(kind, to string) (string, bool) {
	e.t.Helper()
	var paths []string
	for _, dir := range append([]string{e.dir}, e.also...) {
		entries, err := os.ReadDir(filepath.Join(dir, "outbox"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		for _, en := range entries {
			if strings.Contains(en.Name(), "-"+kind+"-") {
				paths = append(paths, filepath.Join(dir, "outbox", en.Name()))
			}
		}
	}
	sort.Slice(paths, func(i, j int) bool { return filepath.Base(paths[i]) < filepath.Base(paths[j]) })
	for i := len(paths) - 1; i >= 0; i-- {
		b, err := os.ReadFile(paths[i])
		if err != nil {
			e.t.Fatal(err)
		}
		if strings.Contains(string(b), "\nTo: "+maskOf(to)+"\n") {
			return string(b), true
		}
	}
	return "", false
}

// allMessages returns every outbox message of kind, once the queue is
// drained, joined.
func (e *env) allMessages(kind string) string {
	e.t.Helper()
	e.drain()
	entries, err := os.ReadDir(filepath.Join(e.dir, "outbox"))
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, en := range entries {
		if strings.Contains(en.Name(), "-"+kind+"-") {
			data, err := os.ReadFile(filepath.Join(e.dir, "outbox", en.Name()))
			if err != nil {
				e.t.Fatal(err)
			}
			b.Write(data)
		}
	}
	return b.String()
}

// maskOf is how the outbox names a recipient: the mask of its canonical
// form.
func maskOf(to string) string {
	if c, err := contact.NormalizeEmail(to); err == nil {
		to = c
	}
	return notify.Mask(to)
}

func (e *env) code(to string) string {
	e.t.Helper()
	m := codeRE.FindStringSubmatch(e.lastMessage("verify-code", to))
	if m == nil {
		e.t.Fatal("no code in message")
	}
	return m[1]
}

func newKey(t *testing.T) string {
	t.Helper()
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().String()
}

// signup creates a verified account and returns its id and token.
func (e *env) signup(email, mobile string) (string, string) {
	e.t.Helper()
	out := e.want("POST", "/api/v1/accounts", "", map[string]string{"email": email, "mobile": mobile, "password": "correct horse battery"}, 201)
	id, _ := out["id"].(string)
	tok := e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": "correct horse battery"}, 201)["token"].(string)
	e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "email", "code": e.code(email)}, 200)
	e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "mobile", "code": e.code(mobile)}, 200)
	return id, tok
}

func TestAPI(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			lim := httpedge.Limits{SignupPerHour: 1e6, SignupBurst: 1e4, LoginPerHour: 1e6, LoginBurst: 1e4,
				VerifyPerHour: 1e6, VerifyBurst: 1e4, ResetPerHour: 1e6, ResetBurst: 1e4}
			e := newEnv(t, b, &lim)
			run := func(name string, fn func(*testing.T, *env)) {
				t.Run(name, func(t *testing.T) { fn(t, e.with(t)) })
			}
			run("health", func(t *testing.T, e *env) { e.want("GET", "/healthz", "", nil, 200) })
			run("signup validation", testSignupValidation)
			run("account lifecycle", testAccountLifecycle)
			run("devices", testDevices)
			run("code attempts", testCodeAttempts)
			run("password reset", testPasswordReset)
			run("gateway protocol and usage", testGatewayProtocol)
			run("error fields", testErrorFields)
			run("no plaintext PII or secrets written", testNothingLeaks)
		})
	}
}

func testSignupValidation(t *testing.T, e *env) {
	ok := map[string]string{"email": "val@example.com", "mobile": "+447911100001", "password": "long enough pw"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	cases := []struct {
		name   string
		body   any
		status int
	}{
		{"bad email", with("email", "not-an-email"), 400},
		{"display name email", with("email", "Val <val@example.com>"), 400},
		{"bad mobile", with("mobile", "12"), 400},
		{"landline", with("mobile", "+442079460000"), 400},
		{"short password", with("password", "short"), 400},
		{"long password", with("password", strings.Repeat("x", 257)), 400},
		{"missing field", map[string]string{"email": "val@example.com"}, 400},
		{"unknown field", `{"email":"val@example.com","mobile":"+447911100001","password":"long enough pw","admin":true}`, 400},
		{"malformed", `{"email":`, 400},
		{"not an object", `[1,2]`, 400},
		{"trailing data", `{"email":"a@b.co"} {}`, 400},
		{"empty", ``, 400},
		{"oversized", `{"email":"` + strings.Repeat("a", 70<<10) + `"}`, 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { e.with(t).want("POST", "/api/v1/accounts", "", c.body, c.status) })
	}
}

func testAccountLifecycle(t *testing.T, e *env) {
	email, mobile := "Alice@Example.com", "+44 7911 100123"
	out := e.want("POST", "/api/v1/accounts", "", map[string]string{"email": email, "mobile": mobile, "password": "correct horse battery"}, 201)
	if id, _ := out["id"].(string); !strings.HasPrefix(id, "acc_") {
		t.Fatalf("got id %q, want acc_…", id)
	}
	// Same email in another spelling: answered like a new sign-up, but no
	// account is made (TestNoEnumeration has the details).
	e.want("POST", "/api/v1/accounts", "", map[string]string{"email": "alice@EXAMPLE.com", "mobile": "+447911100999", "password": "another horse battery"}, 201)
	e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "alice@example.com", "password": "another horse battery"}, 401)

	e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": "wrong password!"}, 401)
	e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "nobody@example.com", "password": "wrong password!"}, 401)
	sess := e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "alice@example.com", "password": "correct horse battery"}, 201)
	tok, _ := sess["token"].(string)
	if tok == "" || sess["expires_at"] == nil {
		t.Fatalf("got session %v, want token and expires_at", sess)
	}
	e.want("GET", "/api/v1/me", "", nil, 401)
	e.want("GET", "/api/v1/me", "nnt_garbage", nil, 401)
	me := e.want("GET", "/api/v1/me", tok, nil, 200)
	if me["email"] != "alice@example.com" || me["mobile"] != "+447911100123" {
		t.Fatalf("got me %v, want normalised email and E.164 mobile", me)
	}
	if me["email_verified"] != false || me["mobile_verified"] != false {
		t.Fatalf("got %v, want both unverified", me)
	}
	// Devices need both contacts verified.
	e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "laptop", "public_key": newKey(t)}, 403)
	e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "fax", "code": "123456"}, 400)
	e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "email", "code": "12345"}, 400)
	emailCode := e.code("alice@example.com")
	wrong := "000000"
	if emailCode == wrong {
		wrong = "111111"
	}
	e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "email", "code": wrong}, 401)
	e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "email", "code": emailCode}, 200)
	// A code is single-use.
	e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "email", "code": emailCode}, 410)
	e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "laptop", "public_key": newKey(t)}, 403)
	// Resend replaces the mobile code; the old one no longer works.
	old := e.code("+447911100123")
	e.want("POST", "/api/v1/me/verify/resend", tok, map[string]string{"channel": "mobile"}, 202)
	fresh := e.code("+447911100123")
	if old != fresh {
		e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "mobile", "code": old}, 401)
	}
	me = e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "mobile", "code": fresh}, 200)
	if me["email_verified"] != true || me["mobile_verified"] != true {
		t.Fatalf("got %v, want both verified", me)
	}
	e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "laptop", "public_key": newKey(t)}, 201)

	// Logout revokes only this token.
	other := e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "alice@example.com", "password": "correct horse battery"}, 201)["token"].(string)
	e.want("DELETE", "/api/v1/sessions/current", tok, nil, 204)
	e.want("GET", "/api/v1/me", tok, nil, 401)
	e.want("GET", "/api/v1/me", other, nil, 200)
	e.want("DELETE", "/api/v1/sessions", other, nil, 204)
	e.want("GET", "/api/v1/me", other, nil, 401)
}

func testDevices(t *testing.T, e *env) {
	_, tok := e.signup("dev@example.com", "+447911100200")
	_, tok2 := e.signup("dev2@example.com", "+447911100201")
	key := newKey(t)
	d := e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "phone", "public_key": key}, 201)
	id := d["id"].(string)
	addrs, _ := d["addresses"].([]any)
	if len(addrs) != 2 || !strings.HasPrefix(addrs[0].(string), "100.") || !strings.HasPrefix(addrs[1].(string), "fd00:6e6e:") {
		t.Fatalf("got addresses %v, want one in 100.64.0.0/10 and one in fd00:6e6e::/48", addrs)
	}
	if d["public_key"] != key || d["name"] != "phone" || fmt.Sprint(d["dns_blocking"]) != "[]" {
		t.Fatalf("got %v", d)
	}
	cases := []struct {
		name   string
		body   any
		status int
	}{
		{"duplicate key", map[string]string{"name": "x", "public_key": key}, 409},
		{"bad key", map[string]string{"name": "x", "public_key": "not base64"}, 400},
		{"short key", map[string]string{"name": "x", "public_key": "AAAA"}, 400},
		{"zero key", map[string]string{"name": "x", "public_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, 400},
		{"empty name", map[string]string{"name": " ", "public_key": newKey(t)}, 400},
		{"long name", map[string]string{"name": strings.Repeat("n", 65), "public_key": newKey(t)}, 400},
		{"private key field", map[string]string{"name": "x", "public_key": newKey(t), "private_key": "x"}, 400},
		{"unknown blocking category", map[string]any{"name": "x", "public_key": newKey(t), "dns_blocking": []string{"ads", "porn"}}, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { e.with(t).want("POST", "/api/v1/devices", tok, c.body, c.status) })
	}
	// Another account's device answers 404 everywhere.
	e.want("GET", "/api/v1/devices/"+id, tok2, nil, 404)
	e.want("PATCH", "/api/v1/devices/"+id, tok2, map[string]string{"name": "stolen"}, 404)
	e.want("DELETE", "/api/v1/devices/"+id, tok2, nil, 404)
	e.want("GET", "/api/v1/devices/dev_nope", tok, nil, 404)
	// Rename and rotate.
	got := e.want("PATCH", "/api/v1/devices/"+id, tok, map[string]string{"name": "old phone"}, 200)
	if got["name"] != "old phone" {
		t.Fatalf("got name %v, want old phone", got["name"])
	}
	e.want("PATCH", "/api/v1/devices/"+id, tok, map[string]string{}, 400)
	// DNS blocking: any order in, canonical out; [] blocks nothing.
	got = e.want("PATCH", "/api/v1/devices/"+id, tok, map[string]any{"dns_blocking": []string{"trackers", "ads", "ads"}}, 200)
	if fmt.Sprint(got["dns_blocking"]) != "[ads trackers]" || got["name"] != "old phone" {
		t.Fatalf("got %v, want dns_blocking [ads trackers] and the name kept", got)
	}
	if got := e.want("GET", "/api/v1/devices/"+id, tok, nil, 200); fmt.Sprint(got["dns_blocking"]) != "[ads trackers]" {
		t.Fatalf("stored dns_blocking: got %v", got["dns_blocking"])
	}
	if got := e.want("PATCH", "/api/v1/devices/"+id, tok, map[string]any{"dns_blocking": []string{}}, 200); fmt.Sprint(got["dns_blocking"]) != "[]" {
		t.Fatalf("dns_blocking []: got %v", got["dns_blocking"])
	}
	e.want("PATCH", "/api/v1/devices/"+id, tok, map[string]any{"dns_blocking": []string{"casino"}}, 400)
	key2 := newKey(t)
	got = e.want("PATCH", "/api/v1/devices/"+id, tok, map[string]string{"public_key": key2}, 200)
	if got["public_key"] != key2 {
		t.Fatalf("got key %v, want rotated", got["public_key"])
	}
	// The old key is free again; the limit (3 in this config) applies.
	e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "b", "public_key": key}, 201)
	e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "c", "public_key": newKey(t)}, 201)
	e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "d", "public_key": newKey(t)}, 403)
	list := e.want("GET", "/api/v1/devices", tok, nil, 200)["devices"].([]any)
	if len(list) != 3 {
		t.Fatalf("got %d devices, want 3", len(list))
	}
	if l2 := e.want("GET", "/api/v1/devices", tok2, nil, 200)["devices"].([]any); len(l2) != 0 {
		t.Fatalf("other account sees %d devices, want 0", len(l2))
	}
	e.want("DELETE", "/api/v1/devices/"+id, tok, nil, 204)
	e.want("GET", "/api/v1/devices/"+id, tok, nil, 404)
	e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "e", "public_key": newKey(t)}, 201)
}

func testCodeAttempts(t *testing.T, e *env) {
	e.want("POST", "/api/v1/accounts", "", map[string]string{"email": "try@example.com", "mobile": "+447911100300", "password": "correct horse battery"}, 201)
	tok := e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "try@example.com", "password": "correct horse battery"}, 201)["token"].(string)
	code := e.code("try@example.com")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := 0; i < 5; i++ {
		e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "email", "code": wrong}, 401)
	}
	// The right code no longer helps after five wrong tries.
	e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "email", "code": code}, 429)
}

func testPasswordReset(t *testing.T, e *env) {
	_, tok := e.signup("reset@example.com", "+447911100400")
	known := e.want("POST", "/api/v1/password-reset", "", map[string]string{"email": "reset@example.com"}, 202)
	unknown := e.want("POST", "/api/v1/password-reset", "", map[string]string{"email": "ghost@example.com"}, 202)
	if known["status"] != unknown["status"] {
		t.Fatalf("got different answers %v and %v for known and unknown accounts", known, unknown)
	}
	msg := e.lastMessage("password-reset", "reset@example.com")
	m := regexp.MustCompile(`nnr_[A-Za-z0-9_-]+`).FindString(msg)
	if m == "" {
		t.Fatal("no reset token in the email")
	}
	e.want("POST", "/api/v1/password-reset/confirm", "", map[string]string{"token": m, "password": "short"}, 400)
	e.want("POST", "/api/v1/password-reset/confirm", "", map[string]string{"token": "nnr_bogus", "password": "a brand new password"}, 410)
	e.want("POST", "/api/v1/password-reset/confirm", "", map[string]string{"token": m, "password": "a brand new password"}, 204)
	e.want("POST", "/api/v1/password-reset/confirm", "", map[string]string{"token": m, "password": "another new password"}, 410)
	e.want("GET", "/api/v1/me", tok, nil, 401)
	e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "reset@example.com", "password": "correct horse battery"}, 401)
	e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "reset@example.com", "password": "a brand new password"}, 201)
}

// testNothingLeaks searches every file in the data directory and every log
// line for the contacts and secrets used above.
func testNothingLeaks(t *testing.T, e *env) {
	needles := []string{
		"alice@example.com", "Alice@Example.com", "+447911100123", "7911100123", "7911 100123",
		"dev@example.com", "+447911100200", "reset@example.com", "+447911100400",
		"correct horse battery", "a brand new password", "127.0.0.1",
	}
	var haystacks []string
	haystacks = append(haystacks, e.logs.String())
	err := filepath.Walk(e.dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		haystacks = append(haystacks, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(haystacks) < 2 {
		t.Fatalf("got %d files to search, want the outbox at least", len(haystacks)-1)
	}
	for _, n := range needles {
		for i, h := range haystacks {
			if strings.Contains(strings.ToLower(h), strings.ToLower(n)) {
				t.Errorf("found %q in haystack %d (0 = logs)", n, i)
			}
		}
	}
	// The access log holds method, route pattern, status and duration only.
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if !strings.Contains(line, "msg=http ") {
			continue
		}
		if strings.Contains(line, "acc_") || strings.Contains(line, "dev_") || strings.Contains(line, "nnt_") {
			t.Errorf("access log line holds an id or token: %s", line)
		}
		if !strings.Contains(line, "route=") || !strings.Contains(line, "status=") {
			t.Errorf("access log line lacks route/status: %s", line)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "nitronet.db")); err == nil {
		t.Logf("searched %d files including the SQLite database", len(haystacks)-1)
	}
}

// TestRateLimits checks that signup, login and verify answer 429 past their
// burst, on default-shaped limits made small.
func TestRateLimits(t *testing.T) {
	lim := httpedge.Limits{SignupPerHour: 1, SignupBurst: 2, LoginPerHour: 1, LoginBurst: 3,
		VerifyPerHour: 1, VerifyBurst: 2, ResetPerHour: 1, ResetBurst: 1}
	e := newEnv(t, storetest.Backends()[0], &lim)
	body := func(n int) map[string]string {
		return map[string]string{"email": fmt.Sprintf("rl%d@example.com", n), "mobile": fmt.Sprintf("+4479111006%02d", n), "password": "correct horse battery"}
	}
	e.want("POST", "/api/v1/accounts", "", body(1), 201)
	e.want("POST", "/api/v1/accounts", "", body(2), 201)
	e.want("POST", "/api/v1/accounts", "", body(3), 429)
	login := map[string]string{"email": "rl1@example.com", "password": "wrong password!!"}
	for i := 0; i < 3; i++ {
		e.want("POST", "/api/v1/sessions", "", login, 401)
	}
	e.want("POST", "/api/v1/sessions", "", login, 429)
	e.want("POST", "/api/v1/password-reset", "", map[string]string{"email": "rl2@example.com"}, 202)
	e.want("POST", "/api/v1/password-reset", "", map[string]string{"email": "rl2@example.com"}, 429)
}

func testGatewayProtocol(t *testing.T, e *env) {
	ctx := context.Background()
	_, tok := e.signup("gw@example.com", "+447911100700")
	dev := e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "phone", "public_key": newKey(t)}, 201)
	devID := dev["id"].(string)

	_, enrollTok, err := e.srv.Gateways.Add(ctx, gatewayAdmin, "eu-west", "198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	gwKey := newKey(t)
	e.want("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": "nne_bogus", "public_key": gwKey}, 401)
	enr := e.want("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": enrollTok, "public_key": gwKey}, 201)
	cred := enr["credential"].(string)
	if enr["region"] != "eu-west" || cred == "" {
		t.Fatalf("got %v", enr)
	}
	// The token is single-use.
	e.want("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": enrollTok, "public_key": newKey(t)}, 401)
	// Users cannot use gateway routes, nor gateways user routes.
	e.want("GET", "/api/v1/gateway/peers?since=0&wait=0", tok, nil, 401)
	e.want("GET", "/api/v1/me", cred, nil, 401)
	e.want("GET", "/api/v1/gateway/peers?since=-1", cred, nil, 400)
	e.want("GET", "/api/v1/gateway/peers?wait=600", cred, nil, 400)

	snap := e.want("GET", "/api/v1/gateway/peers?since=0&wait=1", cred, nil, 200)
	if snap["full"] != true {
		t.Fatalf("got %v, want a full snapshot", snap)
	}
	found := false
	for _, p := range snap["peers"].([]any) {
		if p.(map[string]any)["device_id"] == devID {
			found = true
		}
	}
	if !found {
		t.Fatalf("snapshot %v lacks device %s", snap, devID)
	}

	// Not before the device was created (usage.ClockSkew earlier at most).
	start := time.Now().UTC().Truncate(time.Minute)
	e.want("POST", "/api/v1/gateway/sessions", cred, map[string]any{"intervals": []map[string]any{
		{"device_id": devID, "start": start.Add(37 * time.Second)},
	}}, 204)
	e.want("POST", "/api/v1/gateway/sessions", cred, map[string]any{"intervals": []map[string]any{
		{"device_id": "not-a-device", "start": start},
	}}, 400)
	e.want("POST", "/api/v1/gateway/sessions", cred, map[string]any{"intervals": []map[string]any{
		{"device_id": devID, "start": start, "end": start.Add(-time.Hour)},
	}}, 400)
	e.want("POST", "/api/v1/gateway/sessions", tok, map[string]any{"intervals": []any{}}, 401)
	if live := e.srv.Usage.Live(); live[enr["id"].(string)] != 1 {
		t.Fatalf("got live %v, want 1 open session", live)
	}

	u := e.want("GET", "/api/v1/me/usage", tok, nil, 200)
	sessions := u["sessions"].([]any)
	if len(sessions) != 1 {
		t.Fatalf("got %v, want one session", u)
	}
	s0 := sessions[0].(map[string]any)
	if s0["device_id"] != devID || s0["region"] != "eu-west" || s0["ended_at"] != nil ||
		s0["started_at"] != start.Format(time.RFC3339) {
		t.Fatalf("got session %v, want open session of %s from %s (minute granularity)", s0, devID, start.Format(time.RFC3339))
	}
	e.want("GET", "/api/v1/me/usage?days=0", tok, nil, 400)

	// The wg-quick export names the gateway and leaves the private key blank.
	req, _ := http.NewRequest("GET", e.url+"/api/v1/devices/"+devID+"/wireguard?gateway=eu-west", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	conf := string(body)
	for _, want := range []string{"PrivateKey = \n", "PublicKey = " + gwKey, "Endpoint = 198.18.0.1:51820", "AllowedIPs = 0.0.0.0/0, ::/0", "DNS = 100.64.0.1, fd00:6e6e::1"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	e.want("GET", "/api/v1/devices/"+devID+"/wireguard?gateway=nope", tok, nil, 404)

	// A device that chose categories gets its set's resolver as its only
	// DNS server (dnsblock: ads|malware = 5).
	e.want("PATCH", "/api/v1/devices/"+devID, tok, map[string]any{"dns_blocking": []string{"malware", "ads"}}, 200)
	req, _ = http.NewRequest("GET", e.url+"/api/v1/devices/"+devID+"/wireguard?gateway=eu-west", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "DNS = fd00:6e6e::53:0:5\n") {
		t.Errorf("config of a device blocking ads and malware lacks DNS = fd00:6e6e::53:0:5:\n%s", body)
	}
	e.want("PATCH", "/api/v1/devices/"+devID, tok, map[string]any{"dns_blocking": []string{}}, 200)

	// Deleting the device ends its session and reaches the feed: as a
	// removal naming only the device to a gateway that drops peers by
	// device ID, as a snapshot without it to one that does not.
	v := int64(snap["version"].(float64))
	e.want("DELETE", "/api/v1/devices/"+devID, tok, nil, 204)
	e.want("GET", fmt.Sprintf("/api/v1/gateway/peers?since=%d&removals=all", v), cred, nil, 400)
	ch := e.want("GET", fmt.Sprintf("/api/v1/gateway/peers?since=%d&wait=5&removals=device", v), cred, nil, 200)
	changes, _ := ch["changes"].([]any)
	if len(changes) != 1 || changes[0].(map[string]any)["removed"] != true || changes[0].(map[string]any)["device_id"] != devID ||
		changes[0].(map[string]any)["public_key"] != "" || changes[0].(map[string]any)["addresses"] != nil {
		t.Fatalf("got %v, want one removal naming only %s", ch, devID)
	}
	old := e.want("GET", fmt.Sprintf("/api/v1/gateway/peers?since=%d&wait=5", v), cred, nil, 200)
	if old["full"] != true {
		t.Fatalf("older gateway: got %v, want a full snapshot", old)
	}
	for _, p := range old["peers"].([]any) {
		if p.(map[string]any)["device_id"] == devID {
			t.Fatalf("older gateway: snapshot %v still lists %s", old, devID)
		}
	}
	u = e.want("GET", "/api/v1/me/usage", tok, nil, 200)
	if s0 := u["sessions"].([]any)[0].(map[string]any); s0["ended_at"] == nil {
		t.Fatalf("got %v, want the session ended by the deletion", s0)
	}
	testGatewayRemoval(t, e, enr["id"].(string), cred, tok, int64(ch["version"].(float64)))
}

// gatewayAdmin is an admin principal for the gateway service.
var gatewayAdmin = staff.Principal{ID: "stf_gwadmin", Role: staff.RoleAdmin}

// testGatewayRemoval removes gateway id while it waits on the peer feed:
// the waiting poll gets no peers but 401, and from then on its credential
// reads nothing and reports nothing.
func testGatewayRemoval(t *testing.T, e *env, id, cred, userTok string, version int64) {
	ctx := context.Background()
	if _, err := e.srv.Gateways.Remove(ctx, staff.Principal{ID: "stf_gwsupport", Role: staff.RoleSupport}, id); !errs.Is(err, errs.Forbidden) {
		t.Fatalf("support removes a gateway: got %v, want Forbidden", err)
	}
	// Mark the gateway unseen, start a poll and wait until it passed
	// authentication (which marks it seen): from then on it is waiting.
	if err := e.srv.Store.TouchGateway(ctx, id, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	polled := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/gateway/peers?since=%d&wait=30", e.url, version), nil)
		req.Header.Set("Authorization", "Bearer "+cred)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			polled <- 0
			return
		}
		resp.Body.Close()
		polled <- resp.StatusCode
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		gs, err := e.srv.Store.Gateways(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen := false
		for _, g := range gs {
			seen = seen || (g.ID == id && g.LastSeen != nil && g.LastSeen.Unix() > 0)
		}
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the poll never reached the server")
		}
		runtime.Gosched()
	}
	g, err := e.srv.Gateways.Remove(ctx, gatewayAdmin, id)
	if err != nil || g.ID != id {
		t.Fatalf("remove: got %+v, %v", g, err)
	}
	// A peer change wakes the waiting poll: it must not be handed over.
	e.want("POST", "/api/v1/devices", userTok, map[string]string{"name": "tablet", "public_key": newKey(t)}, 201)
	if got := <-polled; got != http.StatusUnauthorized {
		t.Fatalf("poll of a gateway removed while it waited: got %d, want 401", got)
	}
	e.want("GET", "/api/v1/gateway/peers?since=0&wait=0", cred, nil, 401)
	e.want("POST", "/api/v1/gateway/sessions", cred, map[string]any{"intervals": []any{}}, 401)
	if _, err := e.srv.Gateways.Remove(ctx, gatewayAdmin, id); !errs.Is(err, errs.NotFound) {
		t.Fatalf("remove twice: got %v, want NotFound", err)
	}
	es, err := e.srv.Store.AuditEntriesFor(ctx, id, 10)
	if err != nil || len(es) != 2 || es[0].Action != staff.ActGatewayManage || es[0].Actor != gatewayAdmin.ID {
		t.Fatalf("gateway audit: got %+v, %v; want the addition and the removal by the admin", es, err)
	}
}

// testErrorFields: an error about one input names it in the error body's
// "field", by its JSON name; an error about no single input has no
// "field" at all.
func testErrorFields(t *testing.T, e *env) {
	const pw = "correct horse battery"
	_, tok := e.signup("fields@example.com", "+447911100851")
	dev := e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "laptop", "public_key": newKey(t)}, 201)["id"].(string)
	req := e.want("POST", "/api/v1/privacy/requests", tok, map[string]string{"type": "access"}, 201)["id"].(string)
	signup := func(email, mobile, password string) map[string]string {
		return map[string]string{"email": email, "mobile": mobile, "password": password}
	}
	for _, c := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		field                     string
	}{
		{"malformed email", "POST", "/api/v1/accounts", "", signup("not-an-email", "+447911100852", pw), 400, "email"},
		{"malformed mobile", "POST", "/api/v1/accounts", "", signup("f2@example.com", "12", pw), 400, "mobile"},
		{"short password", "POST", "/api/v1/accounts", "", signup("f2@example.com", "+447911100852", "short"), 400, "password"},
		{"missing email", "POST", "/api/v1/accounts", "", map[string]string{"mobile": "+447911100852", "password": pw}, 400, "email"},
		{"unknown JSON field", "POST", "/api/v1/accounts", "", `{"email":"f2@example.com","mobile":"+447911100852","password":"` + pw + `","admin":true}`, 400, "admin"},
		{"field of the wrong type", "POST", "/api/v1/accounts", "", `{"email":1}`, 400, "email"},
		{"login refused (no field)", "POST", "/api/v1/sessions", "", map[string]string{"email": "fields@example.com", "password": "wrong"}, 401, ""},
		{"bad channel", "POST", "/api/v1/me/verify", tok, map[string]string{"channel": "fax", "code": "123456"}, 400, "channel"},
		{"wrong current password", "POST", "/api/v1/me/password", tok, map[string]string{"current_password": "wrong", "new_password": "a new long passphrase"}, 401, "current_password"},
		{"short new password", "POST", "/api/v1/me/password", tok, map[string]string{"current_password": pw, "new_password": "short"}, 400, "new_password"},
		{"malformed public key", "POST", "/api/v1/devices", tok, map[string]string{"name": "phone", "public_key": "not a key"}, 400, "public_key"},
		{"unknown device", "GET", "/api/v1/devices/dev_aaaaaaaaaaaaaaaaaaaaaaaaaa/wireguard", tok, nil, 404, "id"},
		{"unknown gateway", "GET", "/api/v1/devices/" + dev + "/wireguard?gateway=nope", tok, nil, 404, "gateway"},
		{"unknown request type", "POST", "/api/v1/privacy/requests", tok, map[string]string{"type": "everything"}, 400, "type"},
		{"missing mobile code", "POST", "/api/v1/privacy/requests/" + req + "/verify", tok, map[string]string{"password": pw, "email_code": "123456"}, 400, "mobile_code"},
		{"malformed new contact", "POST", "/api/v1/me/contact", tok, map[string]string{"channel": "email", "value": "not an email", "password": pw}, 400, "value"},
		{"unknown reset token", "POST", "/api/v1/password-reset/confirm", "", map[string]string{"token": "nnr_nosuchtoken", "password": "a new long passphrase"}, 410, "token"},
		{"bad inbox limit", "GET", "/api/v1/me/inbox?limit=0", tok, nil, 400, "limit"},
		{"no such route (no field)", "GET", "/api/v1/nowhere", tok, nil, 404, ""},
	} {
		out := e.want(c.method, c.path, c.token, c.body, c.status)
		errObj := out["error"].(map[string]any)
		field, has := errObj["field"]
		if c.field == "" && has {
			t.Errorf("%s: error body %v has a field, want none", c.name, errObj)
		}
		if c.field != "" && field != c.field {
			t.Errorf("%s: error body %v, want field %q", c.name, errObj, c.field)
		}
	}
}
