package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/breaches"
	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/transparency"
)

// This file holds the authorisation matrix: every route the main listener
// registers (Server.Mount, recorded as it registers them) must have a row
// in routeMatrix saying who may call it, and each route is called as
// every kind of caller and the answer checked against the row.

// registered is one route as registered: its method ("*" for a pattern
// that serves every method) and its pattern's path.
type registered struct{ method, path string }

func (r registered) String() string { return r.method + " " + r.path }

// routeLister is an httpedge.Mux that records the routes registered on
// it. A pattern without a method is expanded into the methods its handler
// reports (the portal's and console's routes do, see httpedge.Mux), or
// recorded as "*".
type routeLister struct{ routes []registered }

func (l *routeLister) Handle(pattern string, h http.Handler) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	switch lm, reports := h.(interface{ Methods() []string }); {
	case method != "":
		l.routes = append(l.routes, registered{method, path})
	case reports:
		for _, m := range lm.Methods() {
			l.routes = append(l.routes, registered{m, path})
		}
	default:
		l.routes = append(l.routes, registered{"*", path})
	}
}

func (l *routeLister) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	l.Handle(pattern, http.HandlerFunc(f))
}

var _ httpedge.Mux = (*routeLister)(nil)

// who says which callers a route is for.
type who int

const (
	// anyone: every caller gets the same answer (the row's status).
	anyone who = iota
	// account: any signed-in account, acting on its own data; no other
	// account's data is in the answer.
	account
	// owner: the owner of the object the path names; another account is
	// told it does not exist (404).
	owner
	// staffWith: a staff member whose role may take the row's action
	// (any staff member when the action is ""); another role gets 403.
	staffWith
	// gatewayCred: a gateway credential.
	gatewayCred
	// metricsToken: only the --metrics-token, which no caller here holds.
	metricsToken
)

// callerKind is one kind of caller the matrix is run as.
type callerKind int

const (
	anonymous callerKind = iota
	ownerAccount
	otherAccount
	staffMember
	gatewayClient
)

// caller is one party calling routes: its cookies (a pre-session cookie,
// and the portal session or console session it signed in to) and the
// Bearer token it presents (an account's session token, or a gateway's
// credential). The cookies change only when the matrix signs the caller
// in, never by a route's answer (a sign-up or login row would otherwise
// sign the anonymous caller in).
type caller struct {
	name string
	kind callerKind
	role string // staffMember's

	cookies map[string]string
	bearer  string
	// portalCSRF and consoleCSRF are the CSRF tokens the portal and the
	// console give this caller's cookies; each request sends the one of
	// its front end, so that a refusal is the authorisation's, not the
	// CSRF check's.
	portalCSRF, consoleCSRF string

	// An account's credentials and what it owns.
	id, email, mobile string
	passwords         []string // every password it had, newest last
	device, devKey    string
	devName           string
	request           string // a verified access request
	message           string // an inbox message
}

// rowCtx is what a row's path and body are made from: the matrix, the
// caller, the owner of the objects (the matrix's owner, or a fresh one for
// a row that destroys it), and a memo shared by the row's calls.
type rowCtx struct {
	t     *testing.T
	m     *matrix
	c     *caller
	owner *caller
	memo  map[string]string
}

// once returns the memo's value for key, made by mk the first time.
func (x *rowCtx) once(key string, mk func() string) string {
	if v, ok := x.memo[key]; ok {
		return v
	}
	v := mk()
	x.memo[key] = v
	return v
}

// perCall returns a fresh value from mk for each caller that is allowed
// the call (so that one caller's success does not change the next one's
// answer), and a shared one for the callers that are refused.
func (x *rowCtx) perCall(allowed bool, key string, mk func() string) string {
	if allowed {
		return mk()
	}
	return x.once(key, mk)
}

// matrixRow says who may call a route and how to call it.
type matrixRow struct {
	who    who
	action string // staffWith's
	// status is the answer to a caller the row allows (for anyone,
	// every caller); 0 means 200 for GET and 303 (the redirect after a
	// form) for a portal or console POST.
	status int
	// loc is the start of the Location an allowed caller is sent to,
	// when that is a login page (after logging out).
	loc string
	// badBearer, if set, is anyone's answer to a caller whose Bearer is
	// no account session (a gateway's credential), on an API route that
	// reads an optional Bearer (the password check).
	badBearer int
	// signedInStatus, if set, is anyone's answer to a caller signed in
	// to the route's front end (a login page sends it on).
	signedInStatus int
	path           func(x *rowCtx) string // default: the pattern
	body           func(x *rowCtx) any    // JSON for the API, url.Values for forms
	// fresh makes a new owner for the row (which ends or erases it).
	fresh bool
	// ends says the row ends sessions or changes passwords: the callers
	// sign in again after it.
	ends bool
}

// matrix is the server and its callers.
type matrix struct {
	e       *env
	callers []*caller
	owner   *caller
	staff   map[string]staff.Principal // by role, for the fixtures
	n       int
	policy  string // the current policy document
}

func (m *matrix) uniq() int { m.n++; return m.n }

const matrixPassword = "matrix passphrase 1"

// matrixMetricsToken is the --metrics-token of the matrix's server.
const matrixMetricsToken = "matrix-metrics-token-0123456789abcdef"

// newAccount signs up a verified account, accepts the policy and signs in
// (Bearer and portal cookie), with a device, an inbox message and a
// verified access request.
func (m *matrix) newAccount(t *testing.T, name string, kind callerKind) *caller {
	t.Helper()
	e := m.e.with(t)
	n := m.uniq()
	c := m.newCaller(t, name, kind)
	c.email, c.mobile = fmt.Sprintf("matrix%d@example.com", n), fmt.Sprintf("+4479112%05d", n)
	c.passwords = []string{matrixPassword}
	c.id = e.want("POST", "/api/v1/accounts", "", map[string]string{"email": c.email, "mobile": c.mobile, "password": matrixPassword}, 201)["id"].(string)
	m.signIn(t, c)
	e.want("POST", "/api/v1/me/verify", c.bearer, map[string]string{"channel": "email", "code": e.code(c.email)}, 200)
	e.want("POST", "/api/v1/me/verify", c.bearer, map[string]string{"channel": "mobile", "code": e.code(c.mobile)}, 200)
	e.want("POST", "/api/v1/me/policy/accept", c.bearer, map[string]string{"document_id": m.policy}, 200)
	c.devName = fmt.Sprintf("matrix-device-%d-zq", n)
	c.devKey = newKey(t)
	c.device = e.want("POST", "/api/v1/devices", c.bearer, map[string]string{"name": c.devName, "public_key": c.devKey}, 201)["id"].(string)
	ctx := context.Background()
	if err := m.e.srv.Inbox.Post(ctx, c.id, "announcement", "Matrix", fmt.Sprintf("Message for account %d.", n)); err != nil {
		t.Fatal(err)
	}
	c.message = e.want("GET", "/api/v1/me/inbox", c.bearer, nil, 200)["messages"].([]any)[0].(map[string]any)["id"].(string)
	c.request = m.verifiedRequest(t, c, store.RequestAccess)
	return c
}

// verifiedRequest makes a request of typ for c and proves c's identity.
func (m *matrix) verifiedRequest(t *testing.T, c *caller, typ string) string {
	t.Helper()
	ctx := context.Background()
	e := m.e.with(t)
	r, err := m.e.srv.Privacy.Create(ctx, c.id, typ, "Matrix request.")
	if err != nil {
		t.Fatal(err)
	}
	ec := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", c.email))[1]
	mc := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", c.mobile))[1]
	if _, err := m.e.srv.Privacy.Verify(ctx, c.id, r.ID, c.passwords[len(c.passwords)-1], ec, mc); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// newCaller returns a caller with a pre-session cookie and its CSRF
// tokens.
func (m *matrix) newCaller(t *testing.T, name string, kind callerKind) *caller {
	t.Helper()
	c := &caller{name: name, kind: kind, cookies: map[string]string{}}
	c.portalCSRF = m.csrfOf(t, c, "/login")
	c.consoleCSRF = m.csrfOf(t, c, "/console/login")
	return c
}

// matrixClient follows no redirect and keeps no cookie.
var matrixClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

var matrixCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token of the first form on page as c sees it.
func (m *matrix) csrfOf(t *testing.T, c *caller, page string) string {
	t.Helper()
	status, _, body := m.send(t, c, "GET", page, nil, true)
	f := matrixCSRF.FindStringSubmatch(body)
	if status != 200 || f == nil {
		t.Fatalf("%s: GET %s got %d without a CSRF token", c.name, page, status)
	}
	return f[1]
}

// signIn signs an account in with its newest password that works: a
// session token presented as Bearer and as the portal's cookie.
func (m *matrix) signIn(t *testing.T, c *caller) {
	t.Helper()
	for i := len(c.passwords) - 1; i >= 0; i-- {
		code, out := m.e.with(t).call("POST", "/api/v1/sessions", "", map[string]string{"email": c.email, "password": c.passwords[i]})
		if code != 201 {
			continue
		}
		c.bearer = out["token"].(string)
		c.cookies["nitronet_session"] = c.bearer
		c.portalCSRF = m.csrfOf(t, c, "/account")
		return
	}
	t.Fatalf("%s: cannot sign in again", c.name)
}

// staffSignIn signs a staff caller in to the console through its form.
func (m *matrix) staffSignIn(t *testing.T, c *caller, email string) {
	t.Helper()
	c.consoleCSRF = m.csrfOf(t, c, "/console/login")
	status, loc, body := m.send(t, c, "POST", "/console/login", url.Values{"csrf": {c.consoleCSRF}, "email": {email}, "password": {matrixPassword}}, true)
	if status != 303 || loc != "/console" {
		t.Fatalf("console login %s: got %d %q\n%s", email, status, loc, body)
	}
	c.email = email
	c.consoleCSRF = m.csrfOf(t, c, "/console")
}

// restore signs in again every caller whose session a row ended.
func (m *matrix) restore(t *testing.T) {
	t.Helper()
	for _, c := range m.callers {
		switch c.kind {
		case ownerAccount, otherAccount:
			if code, _ := m.e.with(t).call("GET", "/api/v1/me", c.bearer, nil); code != 200 {
				m.signIn(t, c)
			}
		case staffMember:
			if status, _, _ := m.do(t, c, "GET", "/console", nil); status != 200 {
				m.staffSignIn(t, c, c.email)
			}
		}
	}
}

// do sends one request as c: JSON for the API, a form elsewhere; with
// c's cookies, its Bearer token and the CSRF token of the front end. It
// returns the status, the Location and the body.
func (m *matrix) do(t *testing.T, c *caller, method, path string, body any) (int, string, string) {
	t.Helper()
	return m.send(t, c, method, path, body, false)
}

// send is do, keeping the cookies the answer sets if keep.
func (m *matrix) send(t *testing.T, c *caller, method, path string, body any, keep bool) (int, string, string) {
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, m.e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if csrf := c.portalCSRF; strings.HasPrefix(path, "/console") {
		req.Header.Set("X-CSRF-Token", c.consoleCSRF)
	} else if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := matrixClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if keep {
		for _, ck := range resp.Cookies() {
			if ck.MaxAge < 0 {
				delete(c.cookies, ck.Name)
			} else {
				c.cookies[ck.Name] = ck.Value
			}
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// frontEnd names the front end that serves path.
func frontEnd(path string) string {
	switch {
	case path == "/healthz" || path == "/metrics" || strings.HasPrefix(path, "/api/"):
		return "api"
	case path == "/console" || strings.HasPrefix(path, "/console/"):
		return "console"
	}
	return "portal"
}

// TestRouteAuthorisationMatrix records every route the server registers
// and fails for one without a row in routeMatrix (or a row without a
// route). It then calls every route as anonymous, the owner of the
// objects it names, another account, a staff member of each role and a
// gateway, and checks each answer against the row: the allowed get the
// row's status, the others the refusal of the front end (401 from the
// API, the login page from the portal and the console, 403 for a staff
// role without the action, 404 for another account's object), and no
// answer to anyone but the owner holds the owner's data.
func TestRouteAuthorisationMatrix(t *testing.T) {
	// Budgets nobody reaches, and no login slow-down: every caller makes
	// the same failed logins.
	lim := roomy()
	lim.SlowFree, lim.SlowBase, lim.SlowMax = 1<<30, time.Second, time.Minute
	e := newEnvWith(t, storetest.Backends()[0], &lim, func(cfg *config.Settings) {
		cfg.DeviceLimit = 50
		cfg.Transport.MetricsToken = matrixMetricsToken
	})
	var rec routeLister
	e.srv.Mount(&rec)
	rows := routeMatrix()
	var routes []registered
	for _, r := range rec.routes {
		if r.method == http.MethodHead {
			continue // served as GET
		}
		if _, ok := rows[r.String()]; !ok {
			t.Errorf("route %s has no row in routeMatrix: say who may call it", r)
			continue
		}
		routes = append(routes, r)
	}
	for k := range rows {
		if !slices.ContainsFunc(rec.routes, func(r registered) bool { return r.String() == k }) {
			t.Errorf("routeMatrix has a row for %s, which is not registered", k)
		}
	}
	if len(routes) < 100 {
		t.Fatalf("recorded %d routes, want every route (100 or more)", len(routes))
	}
	if t.Failed() {
		t.FailNow()
	}

	m := newMatrix(t, e)
	for _, r := range routes {
		row := rows[r.String()]
		t.Run(r.String(), func(t *testing.T) {
			m.runRow(t, r, row)
			if row.ends {
				m.restore(t)
			}
		})
	}
}

// newMatrix makes the callers: anonymous, the owner, another account,
// one staff member per role and an enrolled gateway. The owner comes last,
// so that a row's refused calls are made before the owner's changes what
// the row acts on.
func newMatrix(t *testing.T, e *env) *matrix {
	t.Helper()
	m := &matrix{e: e, staff: map[string]staff.Principal{}}
	ctx := context.Background()
	m.policy = e.want("GET", "/api/v1/policy", "", nil, 200)["documents"].([]any)[0].(map[string]any)["id"].(string)

	m.callers = append(m.callers, m.newCaller(t, "anonymous", anonymous))
	other := m.newAccount(t, "other account", otherAccount)
	m.callers = append(m.callers, other)

	if _, err := e.srv.Staff.Bootstrap(ctx, "admin@matrix.example", staff.RoleAdmin, matrixPassword); err != nil {
		t.Fatal(err)
	}
	admin, err := e.srv.Staff.Check(ctx, staff.Credentials{Email: "admin@matrix.example", Password: matrixPassword})
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range staff.Roles() {
		email := role + "@matrix.example"
		if role != staff.RoleAdmin {
			if _, err := e.srv.Staff.Add(ctx, admin, email, role, matrixPassword); err != nil {
				t.Fatal(err)
			}
		}
		if m.staff[role], err = e.srv.Staff.Check(ctx, staff.Credentials{Email: email, Password: matrixPassword}); err != nil {
			t.Fatal(err)
		}
		c := m.newCaller(t, "staff "+role, staffMember)
		c.role = role
		m.staffSignIn(t, c, email)
		m.callers = append(m.callers, c)
	}

	_, enrol, err := e.srv.Gateways.Add(ctx, staff.System(), "matrix-gw", "198.18.0.9:51820")
	if err != nil {
		t.Fatal(err)
	}
	gw := m.newCaller(t, "gateway", gatewayClient)
	gw.bearer = e.want("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": enrol, "public_key": newKey(t)}, 201)["credential"].(string)
	m.callers = append(m.callers, gw)

	m.owner = m.newAccount(t, "owner", ownerAccount)
	m.callers = append(m.callers, m.owner)
	return m
}

// allowed reports whether the row lets c call it.
func (row matrixRow) allowed(c *caller) bool {
	switch row.who {
	case anyone:
		return true
	case account:
		return c.kind == ownerAccount || c.kind == otherAccount
	case owner:
		return c.kind == ownerAccount
	case staffWith:
		return c.kind == staffMember && (row.action == "" || staff.Can(c.role, row.action))
	case gatewayCred:
		return c.kind == gatewayClient
	}
	return false
}

// runRow calls the route as every caller and checks the answers.
func (m *matrix) runRow(t *testing.T, r registered, row matrixRow) {
	x := &rowCtx{t: t, m: m, owner: m.owner, memo: map[string]string{}}
	if row.fresh {
		x.owner = m.newAccount(t, "fresh owner", ownerAccount)
	}
	method := r.method
	if method == "*" {
		method = http.MethodGet
	}
	fe := frontEnd(r.path)
	for _, c := range m.callers {
		if c.kind == ownerAccount {
			c = x.owner
		}
		x.c = c
		path := strings.TrimSuffix(r.path, "{$}")
		if row.path != nil {
			path = row.path(x)
		}
		var body any
		if row.body != nil {
			body = row.body(x)
		} else if method == http.MethodPost && fe != "api" {
			body = url.Values{}
		}
		if v, ok := body.(url.Values); ok {
			v = cloneForm(v)
			if fe == "console" {
				v.Set("csrf", c.consoleCSRF)
			} else {
				v.Set("csrf", c.portalCSRF)
			}
			body = v
		}
		status, loc, answer := m.do(t, c, method, path, body)
		want, wantLoc := row.expect(c, method, fe)
		if status != want || (wantLoc != "" && !strings.HasPrefix(loc, wantLoc)) ||
			(wantLoc == "" && status/100 == 3 && isLogin(loc)) {
			t.Errorf("%s %s as %s: got %d %q, want %d %q\n%.300s", method, path, c.name, status, loc, want, wantLoc, answer)
		}
		// Staff the row allows may see the owner's data in the console, and
		// the gateway the owner's devices' keys in its feed.
		if c.kind != ownerAccount && !(row.allowed(c) && (fe == "console" || row.who == gatewayCred)) {
			m.checkNoLeak(t, x.owner, c, method+" "+path, fmt.Sprint(body), answer+loc)
		}
	}
	if row.who == metricsToken {
		// The token's holder, whom no other caller is, gets through.
		holder := &caller{name: "metrics token holder", cookies: map[string]string{}, bearer: matrixMetricsToken}
		if status, _, _ := m.do(t, holder, method, r.path, nil); status != http.StatusOK {
			t.Errorf("%s %s with the metrics token: got %d, want 200", method, r.path, status)
		}
	}
}

// cloneForm returns a copy of v.
func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// isLogin reports whether a redirect goes to a login page.
func isLogin(loc string) bool {
	return strings.HasPrefix(loc, "/login") || strings.HasPrefix(loc, "/console/login")
}

// expect returns the status (and, for a redirect, the start of the
// Location) the row gives c.
func (row matrixRow) expect(c *caller, method, fe string) (int, string) {
	if row.allowed(c) {
		if row.who == anyone && row.signedInStatus != 0 && signedInTo(c, fe) {
			return row.signedInStatus, ""
		}
		if row.badBearer != 0 && c.kind == gatewayClient && fe == "api" {
			return row.badBearer, ""
		}
		if row.status != 0 {
			return row.status, row.loc
		}
		if method == http.MethodPost && fe != "api" {
			return http.StatusSeeOther, row.loc
		}
		return http.StatusOK, ""
	}
	switch {
	case row.who == metricsToken || row.who == gatewayCred:
		return http.StatusUnauthorized, ""
	case row.who == owner && c.kind == otherAccount:
		return http.StatusNotFound, ""
	case row.who == staffWith && c.kind == staffMember:
		return http.StatusForbidden, ""
	case fe == "api":
		return http.StatusUnauthorized, ""
	case fe == "console":
		return http.StatusSeeOther, "/console/login"
	}
	return http.StatusSeeOther, "/login"
}

// signedInTo reports whether c has a session on front end fe.
func signedInTo(c *caller, fe string) bool {
	switch fe {
	case "portal":
		return c.kind == ownerAccount || c.kind == otherAccount
	case "console":
		return c.kind == staffMember
	}
	return false
}

// checkNoLeak fails if answer holds any of the owner's data that the
// request itself did not name.
func (m *matrix) checkNoLeak(t *testing.T, o, c *caller, req, body, answer string) {
	t.Helper()
	for _, v := range []string{o.id, o.email, strings.TrimPrefix(o.mobile, "+"), o.device, o.devKey, o.devName, o.request, o.message} {
		if v == "" || strings.Contains(req, v) || strings.Contains(req, url.PathEscape(v)) || strings.Contains(body, v) {
			continue
		}
		if strings.Contains(answer, v) || strings.Contains(answer, url.QueryEscape(v)) {
			t.Errorf("%s as %s: the answer holds the owner's %q", req, c.name, v)
		}
	}
}

// newDevice adds a device to o and returns its id.
func (x *rowCtx) newDevice(o *caller) string {
	return x.m.e.with(x.t).want("POST", "/api/v1/devices", o.bearer, map[string]string{
		"name": fmt.Sprintf("extra-%d", x.m.uniq()), "public_key": newKey(x.t)}, 201)["id"].(string)
}

// newPassword returns a new password for the row's caller and keeps it
// as the caller's (sign-in tries it first, then the older ones).
func (x *rowCtx) newPassword() string {
	pw := fmt.Sprintf("matrix passphrase %d", x.m.uniq())
	x.c.passwords = append(x.c.passwords, pw)
	return pw
}

// password returns the caller's current password.
func (x *rowCtx) password() string {
	if len(x.c.passwords) == 0 {
		return "not a password"
	}
	return x.c.passwords[len(x.c.passwords)-1]
}

// pendingRequest makes an unverified request of typ for the owner and
// returns its id; the codes sent for it are the newest in the outbox.
func (x *rowCtx) pendingRequest(typ string) string {
	r, err := x.m.e.srv.Privacy.Create(context.Background(), x.owner.id, typ, "Matrix pending request.")
	if err != nil {
		x.t.Fatal(err)
	}
	return r.ID
}

// freshMessage returns a new inbox message of the owner for each caller
// the row lets delete it, and a shared one for the refused.
func (x *rowCtx) freshMessage() string {
	return x.perCall(x.c.kind == ownerAccount, "message", func() string {
		ctx := context.Background()
		body := fmt.Sprintf("A message to delete, %d.", time.Now().UnixNano())
		if err := x.m.e.srv.Inbox.Post(ctx, x.owner.id, "announcement", "Matrix", body); err != nil {
			x.t.Fatal(err)
		}
		ms, _, err := x.m.e.srv.Inbox.List(ctx, x.owner.id, 1000)
		if err != nil {
			x.t.Fatal(err)
		}
		for _, m := range ms {
			if m.Body == body {
				return m.ID
			}
		}
		x.t.Fatal("the new message is not listed")
		return ""
	})
}

// codes returns the newest identity-proof codes sent to the owner.
func (x *rowCtx) codes() (string, string) {
	e := x.m.e.with(x.t)
	return codeRE.FindStringSubmatch(e.lastMessage("privacy-code", x.owner.email))[1],
		codeRE.FindStringSubmatch(e.lastMessage("privacy-code", x.owner.mobile))[1]
}

// consoleRequest returns a verified rectification request of the
// owner's, a new one for each staff call (a console action completes or
// denies it, which a second one could not).
func (x *rowCtx) consoleRequest() string {
	return x.perCall(x.c.kind == staffMember, "request", func() string {
		return x.m.verifiedRequest(x.t, x.owner, store.RequestRectification)
	})
}

// staffAct returns the principal of the matrix's member with role.
func (x *rowCtx) staffAct(role string) staff.Principal { return x.m.staff[role] }

// routeMatrix is who may call each route ("METHOD /pattern" as
// registered, a path-only pattern by each method it serves) and how the
// matrix calls it.
func routeMatrix() map[string]matrixRow {
	api := func(status int) matrixRow { return matrixRow{who: account, status: status} }
	own := func(status int, path func(x *rowCtx) string) matrixRow {
		return matrixRow{who: owner, status: status, path: path}
	}
	get := func(action string) matrixRow { return matrixRow{who: staffWith, action: action} }
	devPath := func(suffix string) func(x *rowCtx) string {
		return func(x *rowCtx) string { return "/api/v1/devices/" + x.owner.device + suffix }
	}
	reqPath := func(prefix, suffix string) func(x *rowCtx) string {
		return func(x *rowCtx) string { return prefix + x.owner.request + suffix }
	}
	signupBody := func(x *rowCtx) any {
		n := x.m.uniq()
		return map[string]string{"email": fmt.Sprintf("new%d@example.com", n), "mobile": fmt.Sprintf("+4479112%05d", 50000+n), "password": matrixPassword}
	}
	return map[string]matrixRow{
		// The API.
		"GET /healthz":             {who: anyone},
		"GET /api/v1/openapi.json": {who: anyone},
		"* /api/":                  {who: anyone, status: 404, path: func(*rowCtx) string { return "/api/v1/no-such-route" }},
		"POST /api/v1/accounts":    {who: anyone, status: 201, body: signupBody},
		"POST /api/v1/sessions": {who: anyone, status: 401, body: func(x *rowCtx) any {
			return map[string]string{"email": "nobody@example.com", "password": matrixPassword}
		}},
		"DELETE /api/v1/sessions/current": {who: account, status: 204, ends: true},
		"DELETE /api/v1/sessions":         {who: account, status: 204, ends: true},
		"GET /api/v1/me":                  api(200),
		"POST /api/v1/me/verify": {who: account, status: 410, body: func(*rowCtx) any {
			return map[string]string{"channel": "email", "code": "000000"}
		}},
		"POST /api/v1/me/verify/resend": {who: account, status: 202, body: func(*rowCtx) any { return map[string]string{"channel": "email"} }},
		"POST /api/v1/me/password": {who: account, status: 201, ends: true, body: func(x *rowCtx) any {
			return map[string]string{"current_password": x.password(), "new_password": x.newPassword()}
		}},
		"POST /api/v1/password-reset": {who: anyone, status: 202, body: func(x *rowCtx) any { return map[string]string{"email": x.owner.email} }},
		"POST /api/v1/password-check": {who: anyone, status: 200, badBearer: 401, body: func(*rowCtx) any {
			return map[string]string{"password": "password1234"}
		}},
		"POST /api/v1/password-reset/confirm": {who: anyone, status: 410, body: func(*rowCtx) any {
			return map[string]string{"token": "nnr_notatoken", "password": "another matrix passphrase"}
		}},
		"POST /api/v1/devices": {who: account, status: 201, body: func(x *rowCtx) any {
			return map[string]string{"name": fmt.Sprintf("added-%d", x.m.uniq()), "public_key": newKey(x.t)}
		}},
		"GET /api/v1/devices":      api(200),
		"GET /api/v1/devices/{id}": own(200, devPath("")),
		"PATCH /api/v1/devices/{id}": {who: owner, status: 200, path: devPath(""), body: func(x *rowCtx) any {
			return map[string]string{"name": x.owner.devName}
		}},
		"DELETE /api/v1/devices/{id}": own(204, func(x *rowCtx) string {
			return "/api/v1/devices/" + x.once("dev", func() string { return x.newDevice(x.owner) })
		}),
		"GET /api/v1/devices/{id}/wireguard": own(200, devPath("/wireguard")),
		"GET /api/v1/gateways":               api(200),
		"POST /api/v1/gateway/enroll": {who: anyone, status: 401, body: func(x *rowCtx) any {
			return map[string]string{"token": "nng_notatoken", "public_key": newKey(x.t)}
		}},
		"GET /api/v1/gateway/peers": {who: gatewayCred, path: func(*rowCtx) string { return "/api/v1/gateway/peers?since=0&wait=0" }},
		"POST /api/v1/gateway/hello": {who: gatewayCred, body: func(*rowCtx) any {
			return map[string]any{"listen_port": 51820, "region": "matrix-gw"}
		}},
		"POST /api/v1/gateway/sessions": {who: gatewayCred, status: 204, body: func(x *rowCtx) any {
			return map[string]any{"intervals": []map[string]any{{"device_id": x.owner.device, "start": time.Now().UTC().Truncate(time.Second)}}}
		}},
		"GET /api/v1/me/usage":              api(200),
		"GET /api/v1/me/inbox":              api(200),
		"POST /api/v1/me/inbox/{id}/read":   own(204, func(x *rowCtx) string { return "/api/v1/me/inbox/" + x.owner.message + "/read" }),
		"DELETE /api/v1/me/inbox/{id}":      own(204, func(x *rowCtx) string { return "/api/v1/me/inbox/" + x.freshMessage() }),
		"GET /api/v1/policy":                {who: anyone},
		"GET /api/v1/policy/history":        {who: anyone},
		"GET /api/v1/policy/{id}":           {who: anyone, path: func(x *rowCtx) string { return "/api/v1/policy/" + x.m.policy }},
		"GET /api/v1/me/policy":             api(200),
		"POST /api/v1/me/policy/accept":     {who: account, body: func(x *rowCtx) any { return map[string]string{"document_id": x.m.policy} }},
		"POST /api/v1/privacy/requests":     {who: account, status: 201, body: func(*rowCtx) any { return map[string]string{"type": "access"} }},
		"GET /api/v1/privacy/requests":      api(200),
		"GET /api/v1/privacy/requests/{id}": own(200, reqPath("/api/v1/privacy/requests/", "")),
		"POST /api/v1/privacy/requests/{id}/verify": {who: owner, path: func(x *rowCtx) string {
			return "/api/v1/privacy/requests/" + x.once("req", func() string { return x.pendingRequest(store.RequestAccess) }) + "/verify"
		}, body: func(x *rowCtx) any {
			ec, mc := x.codes()
			return map[string]string{"password": x.owner.passwords[len(x.owner.passwords)-1], "email_code": ec, "mobile_code": mc}
		}},
		"POST /api/v1/privacy/requests/{id}/resend": own(202, func(x *rowCtx) string {
			return "/api/v1/privacy/requests/" + x.once("req", func() string { return x.pendingRequest(store.RequestAccess) }) + "/resend"
		}),
		"POST /api/v1/privacy/requests/{id}/export-token": own(201, reqPath("/api/v1/privacy/requests/", "/export-token")),
		"GET /api/v1/privacy/requests/{id}/export": own(200, func(x *rowCtx) string {
			// The owner's export link, which only the owner may follow.
			return x.once("url", func() string {
				return x.m.e.with(x.t).want("POST", "/api/v1/privacy/requests/"+x.owner.request+"/export-token", x.owner.bearer, nil, 201)["url"].(string)
			})
		}),
		"POST /api/v1/privacy/requests/{id}/confirm-erasure": {who: owner, fresh: true, path: func(x *rowCtx) string {
			return "/api/v1/privacy/requests/" + x.once("req", func() string { return x.m.verifiedRequest(x.t, x.owner, store.RequestErasure) }) + "/confirm-erasure"
		}, body: func(*rowCtx) any { return map[string]bool{"confirm": true} }},
		"POST /api/v1/me/contact": {who: account, status: 202, body: func(x *rowCtx) any {
			return map[string]string{"channel": "email", "value": fmt.Sprintf("changed%d@example.com", x.m.uniq()), "password": x.password()}
		}},
		"POST /api/v1/me/contact/verify": {who: account, status: 410, body: func(*rowCtx) any {
			return map[string]string{"channel": "email", "code": "000000"}
		}},
		"GET /metrics": {who: metricsToken},

		// The portal.
		"GET /{$}":                   {who: anyone},
		"GET /":                      {who: anyone, status: 404, path: func(*rowCtx) string { return "/no-such-page" }},
		"GET /privacy":               {who: anyone},
		"GET /data":                  {who: anyone},
		"GET /privacy/history":       {who: anyone},
		"GET /privacy/versions/{id}": {who: anyone, path: func(x *rowCtx) string { return "/privacy/versions/" + x.m.policy }},
		"GET /static/{path...}":      {who: anyone, path: func(*rowCtx) string { return "/static/css/app.css" }},
		"GET /signup":                {who: anyone, signedInStatus: 303},
		"POST /signup": {who: anyone, status: 303, loc: "/login?msg=signed-up", body: func(x *rowCtx) any {
			n := x.m.uniq()
			return url.Values{"email": {fmt.Sprintf("form%d@example.com", n)}, "mobile": {fmt.Sprintf("+4479112%05d", 60000+n)}, "password": {matrixPassword}}
		}},
		"GET /login": {who: anyone, signedInStatus: 303},
		"POST /login": {who: anyone, status: 401, body: func(*rowCtx) any {
			return url.Values{"email": {"nobody@example.com"}, "password": {matrixPassword}}
		}},
		"POST /logout": {who: account, ends: true, loc: "/login?msg=logged-out"},
		"GET /forgot":  {who: anyone},
		"POST /forgot": {who: anyone, status: 200, body: func(x *rowCtx) any { return url.Values{"email": {x.owner.email}} }},
		"GET /reset":   {who: anyone, path: func(*rowCtx) string { return "/reset?token=nnr_notatoken" }},
		"POST /reset": {who: anyone, status: 410, body: func(*rowCtx) any {
			return url.Values{"token": {"nnr_notatoken"}, "password": {"another matrix passphrase"}, "confirm": {"another matrix passphrase"}}
		}},
		"GET /verify":         {who: account},
		"POST /verify":        {who: account, status: 401, body: func(*rowCtx) any { return url.Values{"channel": {"email"}, "code": {"000000"}} }},
		"POST /verify/resend": {who: account, body: func(*rowCtx) any { return url.Values{"channel": {"email"}} }},
		"GET /account":        {who: account},
		"POST /account/password": {who: account, ends: true, body: func(x *rowCtx) any {
			pw := x.password()
			next := x.newPassword()
			return url.Values{"current_password": {pw}, "new_password": {next}, "confirm": {next}}
		}},
		"POST /account/sessions": {who: account, ends: true, loc: "/login?msg=sessions-ended"},
		"POST /account/contact": {who: account, body: func(x *rowCtx) any {
			return url.Values{"channel": {"email"}, "value": {fmt.Sprintf("formchanged%d@example.com", x.m.uniq())}, "password": {x.password()}}
		}},
		"GET /account/contact/{channel}":    {who: account, path: func(*rowCtx) string { return "/account/contact/email" }},
		"POST /account/contact/{channel}":   {who: account, status: 401, path: func(*rowCtx) string { return "/account/contact/email" }, body: func(*rowCtx) any { return url.Values{"code": {"000000"}} }},
		"GET /policy/accept":                {who: account},
		"POST /policy/accept":               {who: account, body: func(x *rowCtx) any { return url.Values{"document": {x.m.policy}} }},
		"GET /inbox":                        {who: account},
		"POST /inbox/read-all":              {who: account},
		"POST /inbox/{id}/read":             {who: owner, status: 303, path: func(x *rowCtx) string { return "/inbox/" + x.owner.message + "/read" }},
		"POST /inbox/{id}/delete":           {who: owner, status: 303, path: func(x *rowCtx) string { return "/inbox/" + x.freshMessage() + "/delete" }},
		"GET /privacy-centre":               {who: account},
		"POST /privacy-centre":              {who: account, body: func(*rowCtx) any { return url.Values{"type": {"access"}} }},
		"GET /privacy-centre/requests/{id}": {who: owner, path: func(x *rowCtx) string { return "/privacy-centre/requests/" + x.owner.request }},
		"POST /privacy-centre/requests/{id}/verify": {who: owner, path: func(x *rowCtx) string {
			return "/privacy-centre/requests/" + x.once("req", func() string { return x.pendingRequest(store.RequestAccess) }) + "/verify"
		}, body: func(x *rowCtx) any {
			ec, mc := x.codes()
			return url.Values{"password": {x.owner.passwords[len(x.owner.passwords)-1]}, "email_code": {ec}, "mobile_code": {mc}}
		}},
		"POST /privacy-centre/requests/{id}/resend": {who: owner, path: func(x *rowCtx) string {
			return "/privacy-centre/requests/" + x.once("req", func() string { return x.pendingRequest(store.RequestAccess) }) + "/resend"
		}},
		"POST /privacy-centre/requests/{id}/export": {who: owner, status: 200, path: func(x *rowCtx) string { return "/privacy-centre/requests/" + x.owner.request + "/export" },
			body: func(*rowCtx) any { return url.Values{"format": {"json"}} }},
		"GET /privacy-centre/requests/{id}/erase": {who: owner, fresh: true, path: func(x *rowCtx) string {
			return "/privacy-centre/requests/" + x.once("req", func() string { return x.m.verifiedRequest(x.t, x.owner, store.RequestErasure) }) + "/erase"
		}},
		"POST /privacy-centre/requests/{id}/erase": {who: owner, status: 200, fresh: true, path: func(x *rowCtx) string {
			return "/privacy-centre/requests/" + x.once("req", func() string { return x.m.verifiedRequest(x.t, x.owner, store.RequestErasure) }) + "/erase"
		}, body: func(*rowCtx) any { return url.Values{"understood": {"yes"}} }},
		"GET /devices": {who: account},
		"POST /devices": {who: account, status: 201, body: func(x *rowCtx) any {
			return url.Values{"name": {fmt.Sprintf("form-added-%d", x.m.uniq())}, "public_key": {newKey(x.t)}, "gateway": {"matrix-gw"}}
		}},
		"GET /devices/new": {who: account},
		"POST /devices/{id}/rename": {who: owner, path: func(x *rowCtx) string { return "/devices/" + x.owner.device + "/rename" },
			body: func(x *rowCtx) any { return url.Values{"name": {x.owner.devName}} }},
		"POST /devices/{id}/remove": {who: owner, path: func(x *rowCtx) string {
			return "/devices/" + x.once("dev", func() string { return x.newDevice(x.owner) }) + "/remove"
		}},
		"GET /devices/{id}/config": {who: owner, path: func(x *rowCtx) string { return "/devices/" + x.owner.device + "/config?gateway=matrix-gw" }},
		"GET /devices/{id}/rotate": {who: owner, path: func(x *rowCtx) string { return "/devices/" + x.owner.device + "/rotate" }},
		"POST /devices/{id}/key": {who: owner, status: 200, path: func(x *rowCtx) string {
			return "/devices/" + x.once("dev", func() string { return x.newDevice(x.owner) }) + "/key"
		}, body: func(x *rowCtx) any { return url.Values{"public_key": {newKey(x.t)}, "gateway": {"matrix-gw"}} }},
		"GET /usage": {who: account},

		// The console.
		"GET /console/login": {who: anyone, signedInStatus: 303},
		"POST /console/login": {who: anyone, status: 401, body: func(*rowCtx) any {
			return url.Values{"email": {"nobody@matrix.example"}, "password": {matrixPassword}}
		}},
		"POST /console/logout":  {who: staffWith, ends: true, loc: "/console/login?msg=staff-logged-out"},
		"GET /console":          get(""),
		"GET /console/":         {who: staffWith, status: 404, path: func(*rowCtx) string { return "/console/no-such-page" }},
		"GET /console/requests": get(staff.ActPrivacyView),
		"GET /console/requests/{id}": {who: staffWith, action: staff.ActPrivacyView, path: func(x *rowCtx) string {
			return "/console/requests/" + x.owner.request
		}},
		"POST /console/requests/{id}/extend": {who: staffWith, action: staff.ActPrivacyExtend,
			path: func(x *rowCtx) string { return "/console/requests/" + x.consoleRequest() + "/extend" },
			body: func(*rowCtx) any { return url.Values{"months": {"1"}, "reason": {"complex"}} }},
		"POST /console/requests/{id}/complete": {who: staffWith, action: staff.ActPrivacyComplete,
			path: func(x *rowCtx) string { return "/console/requests/" + x.consoleRequest() + "/complete" },
			body: func(*rowCtx) any { return url.Values{"note": {"done"}, "confirm": {"yes"}} }},
		"POST /console/requests/{id}/deny": {who: staffWith, action: staff.ActPrivacyDeny,
			path: func(x *rowCtx) string { return "/console/requests/" + x.consoleRequest() + "/deny" },
			body: func(*rowCtx) any { return url.Values{"reason": {"no"}, "confirm": {"yes"}} }},
		"GET /console/requests/{id}/account": {who: staffWith, action: staff.ActAccountView, path: func(x *rowCtx) string {
			return "/console/requests/" + x.owner.request + "/account"
		}},
		"POST /console/requests/{id}/account/contact": {who: staffWith, action: staff.ActPrivacyComplete,
			path: func(x *rowCtx) string { return "/console/requests/" + x.consoleRequest() + "/account/contact" },
			body: func(x *rowCtx) any {
				return url.Values{"channel": {"email"}, "value": {fmt.Sprintf("fixed%d@matrix.example", x.m.uniq())}}
			}},
		"POST /console/requests/new": {who: staffWith, action: staff.ActPrivacyRecord, body: func(x *rowCtx) any {
			return url.Values{"type": {"access"}, "channel": {"post"}, "contact_kind": {"email"},
				"contact": {fmt.Sprintf("letter%d@example.org", x.m.uniq())}, "identity_check": {"letter"}}
		}},
		"POST /console/requests/{id}/verify": {who: staffWith, action: staff.ActPrivacyRecord,
			path: func(x *rowCtx) string { return "/console/requests/" + x.outsideRequest() + "/verify" },
			body: func(x *rowCtx) any {
				ec, mc := x.codes()
				return url.Values{"email_code": {ec}, "mobile_code": {mc}}
			}},
		"POST /console/requests/{id}/codes": {who: staffWith, action: staff.ActPrivacyRecord,
			path: func(x *rowCtx) string { return "/console/requests/" + x.outsideRequest() + "/codes" }},
		"POST /console/requests/{id}/recipients": {who: staffWith, action: staff.ActPrivacyComplete,
			path: func(x *rowCtx) string { return "/console/requests/" + x.recipientRequest() + "/recipients" },
			body: func(*rowCtx) any { return url.Values{"processor": {"SMTP relay"}, "status": {"told"}} }},
		"GET /console/accounts": get(staff.ActAccountView),
		"POST /console/accounts": {who: staffWith, action: staff.ActAccountView, status: 200,
			body: func(x *rowCtx) any { return url.Values{"channel": {"email"}, "value": {x.owner.email}} }},
		"GET /console/accounts/{id}": {who: staffWith, action: staff.ActAccountView,
			path: func(x *rowCtx) string { return "/console/accounts/" + x.owner.id }},
		"GET /console/breaches": get(staff.ActBreachView),
		"POST /console/breaches": {who: staffWith, action: staff.ActBreachManage, body: func(*rowCtx) any {
			return url.Values{"detected_at": {time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")}, "nature": {"Backups leaked."}}
		}},
		"GET /console/breaches/{id}": {who: staffWith, action: staff.ActBreachView,
			path: func(x *rowCtx) string { return "/console/breaches/" + x.breach() }},
		"POST /console/breaches/{id}/update": {who: staffWith, action: staff.ActBreachManage,
			path: func(x *rowCtx) string { return "/console/breaches/" + x.breach() + "/update" },
			body: func(*rowCtx) any {
				return url.Values{"detected_at": {time.Now().UTC().Add(-2 * time.Hour).Format("2006-01-02T15:04")},
					"nature": {"A laptop was stolen."}, "consequences": {"Little."}, "measures_taken": {"Wiped."}, "risk": {"high"}, "status": {"open"}}
			}},
		"POST /console/breaches/{id}/notify": {who: staffWith, action: staff.ActBreachNotify,
			path: func(x *rowCtx) string { return "/console/breaches/" + x.breach() + "/notify" },
			body: func(x *rowCtx) any { return url.Values{"audience": {"listed"}, "accounts": {x.owner.id}} }},
		"GET /console/holds": get(staff.ActHoldView),
		"POST /console/holds": {who: staffWith, action: staff.ActHoldManage,
			body: func(x *rowCtx) any {
				return url.Values{"account": {x.owner.id}, "reason": {fmt.Sprintf("subpoena %d", x.m.uniq())}}
			}},
		"POST /console/holds/{id}/release": {who: staffWith, action: staff.ActHoldManage,
			path: func(x *rowCtx) string { return "/console/holds/" + x.hold() + "/release" }},
		"GET /console/disclosures": get(staff.ActDisclosureView),
		"GET /console/disclosures/{id}": {who: staffWith, action: staff.ActDisclosureView,
			path: func(x *rowCtx) string { return "/console/disclosures/" + x.disclosure() }},
		"GET /console/transparency": get(staff.ActTransparency),
		"POST /console/transparency": {who: staffWith, action: staff.ActTransparency, status: 200, body: func(*rowCtx) any {
			return url.Values{"period": {transparency.PeriodOf(time.Now().AddDate(0, -7, 0)).String()}, "canary": {"No warrants."}}
		}},
		"GET /console/retention":     get(staff.ActRetentionView),
		"GET /console/records":       get(staff.ActRecordsView),
		"GET /console/gateways":      get(staff.ActGatewayView),
		"GET /console/audit":         get(staff.ActAuditView),
		"POST /console/audit/verify": {who: staffWith, action: staff.ActAuditView, status: 200},
	}
}

// outsideRequest records, per allowed staff call, an access request
// received by post for the owner, which sends the owner codes.
func (x *rowCtx) outsideRequest() string {
	return x.perCall(x.c.kind == staffMember, "outside", func() string {
		r, err := x.m.e.srv.Privacy.StaffAdd(context.Background(), x.staffAct(staff.RolePrivacyOfficer),
			privacy.Intake{Type: store.RequestAccess, Email: x.owner.email, Channel: store.ChannelPost})
		if err != nil {
			x.t.Fatal(err)
		}
		return r.ID
	})
}

// recipientRequest returns, per allowed staff call, a rectification of
// the owner's that lists the SMTP relay as a recipient of the owner's
// email address.
func (x *rowCtx) recipientRequest() string {
	return x.perCall(x.c.kind == staffMember && staff.Can(x.c.role, staff.ActPrivacyComplete), "recipient", func() string {
		id := x.m.verifiedRequest(x.t, x.owner, store.RequestRectification)
		if err := x.m.e.srv.Store.MergeRequestRecipients(context.Background(), id, []store.RequestRecipient{{Processor: "SMTP relay",
			Categories: []string{inventory.IDEmail}, FirstAt: time.Now(), LastAt: time.Now()}}); err != nil {
			x.t.Fatal(err)
		}
		return id
	})
}

// breach opens a breach record with what a notice needs.
func (x *rowCtx) breach() string {
	return x.once("breach", func() string {
		ctx := context.Background()
		po := x.staffAct(staff.RolePrivacyOfficer)
		b, err := x.m.e.srv.Breaches.Add(ctx, po, time.Now().Add(-2*time.Hour), "A laptop was stolen.")
		if err != nil {
			x.t.Fatal(err)
		}
		cons, meas := "Little.", "Wiped."
		if _, err := x.m.e.srv.Breaches.Update(ctx, po, b.ID, breaches.Update{Consequences: &cons, MeasuresTaken: &meas}); err != nil {
			x.t.Fatal(err)
		}
		return b.ID
	})
}

// hold places a legal hold on the owner, per allowed staff call.
func (x *rowCtx) hold() string {
	return x.perCall(x.c.kind == staffMember && staff.Can(x.c.role, staff.ActHoldManage), "hold", func() string {
		h, err := x.m.e.srv.Holds.Add(context.Background(), x.staffAct(staff.RoleLegal), x.owner.id, fmt.Sprintf("order %d", x.m.uniq()), nil)
		if err != nil {
			x.t.Fatal(err)
		}
		return h.ID
	})
}

// disclosure records a disclosure about the owner.
func (x *rowCtx) disclosure() string {
	return x.once("disclosure", func() string {
		f := &authzFixture{n: x.m.uniq()}
		d, err := x.m.e.srv.Disclosures.Add(context.Background(), x.staffAct(staff.RoleLegal), f.disclosure(x.owner.id))
		if err != nil {
			x.t.Fatal(err)
		}
		return d.ID
	})
}
