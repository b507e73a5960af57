package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/nitronet/nitronet/internal/api"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// loadOpenAPI loads the API's embedded OpenAPI document and validates it.
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatalf("load the OpenAPI document: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	return doc
}

// documented returns the document's operations as mux patterns
// ("METHOD /path").
func documented(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// openAPICheck validates every answer of the API it wraps against the
// OpenAPI document: its status must be documented (or be an error with the
// documented error body), its content type must be documented, and a JSON
// body must match the schema. A request the API accepted (2xx) must match
// the documented parameters and request body too. It records the
// operations that answered with a 2xx and were validated.
type openAPICheck struct {
	t      *testing.T
	router routers.Router
	errors *openapi3.SchemaRef

	mu   sync.Mutex
	seen map[string]bool // "METHOD /path" of the document
}

func newOpenAPICheck(t *testing.T) *openAPICheck {
	t.Helper()
	doc := loadOpenAPI(t)
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &openAPICheck{t: t, router: r, errors: doc.Components.Schemas["Error"], seen: map[string]bool{}}
}

// wrap returns h with every API answer checked. Failures are reported to
// the test that made the check.
func (c *openAPICheck) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqBody, err := io.ReadAll(r.Body)
		if err != nil {
			c.t.Errorf("OpenAPI: read the request body: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		if err := c.check(r, rec.Code, rec.Header(), body); err != nil {
			c.t.Errorf("OpenAPI: %s %s answered %d: %v", r.Method, r.URL.Path, rec.Code, err)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

func (c *openAPICheck) check(r *http.Request, status int, header http.Header, body []byte) error {
	if !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/healthz" {
		return nil // the portal, the console, /metrics
	}
	route, params, err := c.router.FindRoute(r)
	if err != nil {
		// Not a documented operation: it must be the API's JSON error.
		if status < 400 {
			return fmt.Errorf("an undocumented route answered %d", status)
		}
		return c.isError(header, body)
	}
	reqIn := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if status/100 == 2 {
		if err := openapi3filter.ValidateRequest(context.Background(), reqIn); err != nil {
			return fmt.Errorf("the API accepted a request the document does not allow: %w", err)
		}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqIn,
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "" && mt != "application/json" {
		// kin-openapi decodes JSON bodies only: check that the type is
		// documented for this status and leave the body alone.
		resp := route.Operation.Responses.Status(status)
		if resp == nil {
			resp = route.Operation.Responses.Default()
		}
		if resp == nil || resp.Value.Content.Get(mt) == nil {
			return fmt.Errorf("content type %q is not documented for status %d", mt, status)
		}
		in.Options.ExcludeResponseBody = true
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	if status/100 == 2 {
		c.mu.Lock()
		c.seen[route.Method+" "+route.Path] = true
		c.mu.Unlock()
	}
	return nil
}

func (c *openAPICheck) isError(header http.Header, body []byte) error {
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("error answer of type %q, want application/json", header.Get("Content-Type"))
	}
	v, err := openapi3filter.JSONBodyDecoder(bytes.NewReader(body), header, c.errors, nil)
	if err != nil {
		return err
	}
	return c.errors.Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
}

// Seen returns the documented operations ("METHOD /path") that answered
// with a 2xx.
func (c *openAPICheck) Seen() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.seen)
}

// TestOpenAPIDocument: the embedded document is valid OpenAPI 3.1, it
// documents exactly the routes the API registers, and the server serves
// it at /api/v1/openapi.json.
func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	srv := newBareServer(t)
	a, err := api.New(api.Config{
		Accounts: srv.Accounts, Devices: srv.Devices, Gateways: srv.Gateways, Feed: srv.Feed, Usage: srv.Usage,
		Privacy: srv.Privacy, Inbox: srv.Inbox, Policy: srv.Policy,
		Logger: slog.New(slog.DiscardHandler), Clock: time.Now, Rand: rand.Reader, Limits: httpedge.DefaultLimits(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var rec routeLister
	a.Register(&rec)
	var registered []string
	for _, r := range rec.routes {
		if r.path == "/api/" {
			continue // the JSON 404 for every other path under /api/
		}
		if r.method == "*" {
			t.Errorf("route %q has no method: every API route but the /api/ fallback names one", r.path)
			continue
		}
		registered = append(registered, r.String())
	}
	sort.Strings(registered)
	docd := documented(doc)
	for _, p := range registered {
		if !slices.Contains(docd, p) {
			t.Errorf("registered route %q is not in the OpenAPI document", p)
		}
	}
	for _, p := range docd {
		if !slices.Contains(registered, p) {
			t.Errorf("the OpenAPI document describes %q, which the API does not register", p)
		}
	}
	if len(registered) < 40 {
		t.Errorf("recorded %d routes, want every API route (40 or more)", len(registered))
	}

	// Every operation answers errors with the error body, and says who
	// may call it.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Responses.Default() == nil {
				t.Errorf("%s %s: no default (error) response", method, path)
			}
			sec := doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			if strings.HasPrefix(path, "/api/v1/gateway/") && path != "/api/v1/gateway/enroll" {
				if len(sec) != 1 || sec[0]["gatewayCredential"] == nil {
					t.Errorf("%s %s: security %v, want the gateway credential", method, path, sec)
				}
			}
		}
	}

	rec2 := httptest.NewRecorder()
	srv.Handler.ServeHTTP(rec2, httptest.NewRequest("GET", "/api/v1/openapi.json", nil))
	if rec2.Code != 200 || !bytes.Equal(rec2.Body.Bytes(), api.OpenAPI()) ||
		!strings.HasPrefix(rec2.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/v1/openapi.json: got %d %q (%d bytes), want 200 with the embedded document",
			rec2.Code, rec2.Header().Get("Content-Type"), rec2.Body.Len())
	}
}

// newBareServer assembles a server on SQLite in a temporary directory.
func newBareServer(t *testing.T) *server.Server {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	srv, err := server.New(context.Background(), cfg, server.Deps{
		Logger: slog.New(slog.DiscardHandler), Clock: time.Now, Rand: rand.Reader, Stdout: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestOpenAPIResponses walks one journey through every documented
// operation and checks (through the env's openAPICheck) that each answered
// with a documented status and a body that matches its schema. The other
// API tests run behind the same check, so their error answers are
// validated as well.
func TestOpenAPIResponses(t *testing.T) {
	lim := httpedge.Limits{SignupPerHour: 1e6, SignupBurst: 1e4, LoginPerHour: 1e6, LoginBurst: 1e4,
		VerifyPerHour: 1e6, VerifyBurst: 1e4, ResetPerHour: 1e6, ResetBurst: 1e4}
	e := newEnv(t, storetest.Backends()[0], &lim)
	ctx := t.Context()
	const pw = "correct horse battery"

	e.want("GET", "/healthz", "", nil, 200)
	e.want("GET", "/api/v1/openapi.json", "", nil, 200)
	accID, tok := e.signup("spec@example.com", "+447911100961")
	e.want("GET", "/api/v1/me", tok, nil, 200)
	e.want("POST", "/api/v1/me/verify/resend", tok, map[string]string{"channel": "email"}, 202)
	tok = e.want("POST", "/api/v1/me/password", tok, map[string]string{"current_password": pw, "new_password": pw + " 2"}, 201)["token"].(string)
	e.want("POST", "/api/v1/password-reset", "", map[string]string{"email": "spec@example.com"}, 202)
	reset := regexp.MustCompile(`nnr_[A-Za-z0-9_-]+`).FindString(e.lastMessage("password-reset", "spec@example.com"))
	e.want("POST", "/api/v1/password-check", "", map[string]string{"password": "password1234", "email": "spec@example.com"}, 200)
	e.want("POST", "/api/v1/password-check", "", map[string]string{"password": pw, "reset_token": reset}, 200)
	e.want("POST", "/api/v1/password-check", tok, map[string]string{"password": pw}, 200)
	e.want("POST", "/api/v1/password-reset/confirm", "", map[string]string{"token": reset, "password": pw}, 204)
	tok = e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "spec@example.com", "password": pw}, 201)["token"].(string)

	// Devices, and a gateway that serves them.
	_, enrollTok, err := e.srv.Gateways.Add(ctx, staff.System(), "eu-west", "198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	cred := e.want("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": enrollTok, "public_key": newKey(t)}, 201)["credential"].(string)
	dev := e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "laptop", "public_key": newKey(t)}, 201)["id"].(string)
	e.want("GET", "/api/v1/devices", tok, nil, 200)
	e.want("GET", "/api/v1/devices/"+dev, tok, nil, 200)
	e.want("PATCH", "/api/v1/devices/"+dev, tok, map[string]string{"name": "old laptop"}, 200)
	if got := fetch(t, e.url+"/api/v1/devices/"+dev+"/wireguard", tok); got != 200 {
		t.Fatalf("wireguard config: got %d, want 200", got)
	}
	e.want("GET", "/api/v1/gateways", tok, nil, 200)
	e.want("POST", "/api/v1/gateway/hello", cred, map[string]any{"listen_port": 51820, "region": "eu-central"}, 200)
	snap := e.want("GET", "/api/v1/gateway/peers?since=0&wait=0", cred, nil, 200)
	start := time.Now().UTC().Truncate(time.Minute) // not before the device was created
	e.want("POST", "/api/v1/gateway/sessions", cred, map[string]any{"intervals": []map[string]any{{"device_id": dev, "start": start}}}, 204)
	e.want("GET", "/api/v1/me/usage", tok, nil, 200)
	e.want("DELETE", "/api/v1/devices/"+dev, tok, nil, 204)
	e.want("GET", fmt.Sprintf("/api/v1/gateway/peers?since=%d&wait=5", int64(snap["version"].(float64))), cred, nil, 200)

	// Inbox and policy.
	if err := e.srv.Inbox.Post(ctx, accID, "announcement", "Maintenance", "Sunday 02:00 UTC."); err != nil {
		t.Fatal(err)
	}
	msg := e.want("GET", "/api/v1/me/inbox", tok, nil, 200)["messages"].([]any)[0].(map[string]any)["id"].(string)
	e.want("POST", "/api/v1/me/inbox/"+msg+"/read", tok, nil, 204)
	e.want("DELETE", "/api/v1/me/inbox/"+msg, tok, nil, 204)
	cur := e.want("GET", "/api/v1/policy", "", nil, 200)["documents"].([]any)[0].(map[string]any)["id"].(string)
	e.want("GET", "/api/v1/policy/history", "", nil, 200)
	e.want("GET", "/api/v1/policy/"+cur, "", nil, 200)
	e.want("GET", "/api/v1/me/policy", tok, nil, 200)
	e.want("POST", "/api/v1/me/policy/accept", tok, map[string]string{"document_id": cur}, 200)

	// Privacy requests: access with its export in both forms, a contact
	// correction, then erasure.
	verify := func(id string) {
		t.Helper()
		ec := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", "spec@example.com"))[1]
		mc := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", "+447911100961"))[1]
		e.want("POST", "/api/v1/privacy/requests/"+id+"/verify", tok, map[string]string{"password": pw, "email_code": ec, "mobile_code": mc}, 200)
	}
	acc := e.want("POST", "/api/v1/privacy/requests", tok, map[string]string{"type": "access"}, 201)["id"].(string)
	e.want("POST", "/api/v1/privacy/requests/"+acc+"/resend", tok, nil, 202)
	e.want("GET", "/api/v1/privacy/requests", tok, nil, 200)
	e.want("GET", "/api/v1/privacy/requests/"+acc, tok, nil, 200)
	verify(acc)
	for _, format := range []string{"json", "html"} {
		url := e.want("POST", "/api/v1/privacy/requests/"+acc+"/export-token", tok, nil, 201)["url"].(string)
		if got := fetch(t, e.url+strings.Replace(url, "format=json", "format="+format, 1), tok); got != 200 {
			t.Fatalf("export %s: got %d, want 200", format, got)
		}
	}
	e.want("POST", "/api/v1/me/contact", tok, map[string]string{"channel": "email", "value": "spec2@example.com", "password": pw}, 202)
	e.want("POST", "/api/v1/me/contact/verify", tok, map[string]string{"channel": "email", "code": codeRE.FindStringSubmatch(e.lastMessage("contact-change-code", "spec2@example.com"))[1]}, 200)
	other := e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "spec2@example.com", "password": pw}, 201)["token"].(string)
	e.want("DELETE", "/api/v1/sessions/current", other, nil, 204)
	other = e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "spec2@example.com", "password": pw}, 201)["token"].(string)
	e.want("DELETE", "/api/v1/sessions", other, nil, 204)
	tok = e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "spec2@example.com", "password": pw}, 201)["token"].(string)
	er := e.want("POST", "/api/v1/privacy/requests", tok, map[string]string{"type": "erasure"}, 201)["id"].(string)
	ec := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", "spec2@example.com"))[1]
	mc := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", "+447911100961"))[1]
	e.want("POST", "/api/v1/privacy/requests/"+er+"/verify", tok, map[string]string{"password": pw, "email_code": ec, "mobile_code": mc}, 200)
	e.want("POST", "/api/v1/privacy/requests/"+er+"/confirm-erasure", tok, map[string]bool{"confirm": true}, 200)

	seen := e.check.Seen()
	for _, op := range documented(loadOpenAPI(t)) {
		if !seen[op] {
			t.Errorf("%s: no successful answer was validated; add it to this journey", op)
		}
	}
}

// fetch GETs url with a Bearer token and returns the status.
func fetch(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
