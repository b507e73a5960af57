// Package web serves Nitronet's user portal and staff console.
//
// The portal (at /) has server-rendered pages for signing up, verifying
// contacts, logging in and out, recovering a forgotten password, account
// settings (password, contact changes with re-verification, ending
// sessions), managing devices, viewing usage, the inbox, the privacy
// centre (data-subject requests with identity proof, exports, erasure)
// and the versioned privacy policy with acceptance of material changes.
//
// The staff console (at /console) has its own login and session cookie.
// Its pages and controls show what the services say the staff member may
// do (staff.Service.Allowed, privacy.Request.Actions); the services
// authorise and audit every staff action themselves, and the console only
// translates their answers.
//
// The portal calls the same services as the JSON API and maps their errors
// to HTTP statuses with httpedge.StatusOf, the program's one mapping. An
// error goes beside the form field that each form's table (type fields)
// maps the error's domain field to (errs.Field), or above the form; the
// portal never reads an error's text to decide where it goes. Rate limits
// are the httpedge.Limiters shared with the API, counted by the same keys.
// The portal's routes are mounted beside the API's on one mux, behind
// httpedge's access log (method, route pattern, status, duration); the
// portal itself never logs request bodies, addresses or contact details.
// It does not import package api.
//
// Security: every response carries a strict Content-Security-Policy (no
// inline script or style, no third-party origin) and the related headers;
// the session cookie is HttpOnly, SameSite=Lax and Secure when serving TLS;
// every state-changing request needs a CSRF token bound to the session (or,
// before login, to a random pre-session cookie) and a same-origin Origin
// or Sec-Fetch-Site when the browser sends them.
//
// A device's WireGuard key pair is generated in the browser with WebCrypto.
// Only the public key is sent; the page fills the private key into the
// configuration locally and draws the QR code locally.
package web

import (
	"crypto/ed25519"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/breaches"
	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/devices"
	"github.com/nitronet/nitronet/internal/disclosures"
	"github.com/nitronet/nitronet/internal/gateways"
	"github.com/nitronet/nitronet/internal/holds"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/inbox"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/records"
	"github.com/nitronet/nitronet/internal/retention"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/usage"
	"golang.org/x/text/language"
	"golang.org/x/text/message/catalog"
)

//go:embed templates/*.html templates/console/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config holds the portal's dependencies and settings.
type Config struct {
	Accounts *accounts.Service
	Devices  *devices.Service
	Gateways *gateways.Service
	Usage    *usage.Service
	// Policy supplies the versioned privacy policy and terms shown at
	// /privacy and /privacy/history, and records acceptances of material
	// changes (a *policy.Service).
	Policy Policies
	// Privacy handles the user's data-subject requests and contact
	// changes, and the staff's handling of requests.
	Privacy *privacy.Service
	// Inbox is the account inbox.
	Inbox *inbox.Service
	// Staff authenticates staff for the console.
	Staff *staff.Service
	// Holds, Disclosures, Retention, Records and Audit back the console's
	// records and audit pages.
	Holds       *holds.Service
	Disclosures *disclosures.Service
	Retention   *retention.Sweeper
	Records     *records.Service
	Audit       *audit.Log
	// Breaches is the breach register, on the console's breach pages.
	Breaches *breaches.Service
	// Inventory is the data inventory in force (with the operator's
	// retention settings applied): the home page states its periods.
	Inventory inventory.Inventory
	// Controller is who runs the service, shown on the home page; it may
	// be empty (not configured). Records gives the record of processing.
	Controller controller.Identity
	// TransparencyKey returns the Ed25519 key that signs transparency
	// reports (for example transparency.LoadOrCreateKey on
	// DATA/transparency.key). It is called only when a report is built.
	TransparencyKey func() (ed25519.PrivateKey, error)
	Logger          *slog.Logger
	Clock           func() time.Time
	Rand            io.Reader
	// Secure marks cookies Secure (and gives them the __Host- prefix) and
	// sends Strict-Transport-Security. Set it when serving TLS.
	Secure bool
	// CSRFKey keys the HMAC that binds CSRF tokens to a session. Replicas
	// serving the same users must share it (for example a key derived from
	// the vault); if empty, New draws a random one from Rand, which is
	// right for a single process.
	CSRFKey []byte
	// Limiters are the rate limiters for sign-up, login, codes and password
	// reset, shared with the API; nil builds a set from
	// httpedge.DefaultLimits.
	Limiters *httpedge.Limiters
}

// Handler serves the portal. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	pages   map[string]*template.Template
	static  map[string]asset
	csrfKey []byte
	catalog *catalog.Builder
	matcher language.Matcher

	lim *httpedge.Limiters
}

// New returns a Handler, or an error if a dependency is missing, a
// template does not parse or Rand fails.
func New(cfg Config) (*Handler, error) {
	if cfg.Accounts == nil || cfg.Devices == nil || cfg.Gateways == nil || cfg.Usage == nil ||
		cfg.Policy == nil || cfg.Privacy == nil || cfg.Inbox == nil || cfg.Staff == nil || cfg.Holds == nil ||
		cfg.Disclosures == nil || cfg.Retention == nil || cfg.Records == nil || cfg.Audit == nil || cfg.Inventory == nil ||
		cfg.Breaches == nil ||
		cfg.TransparencyKey == nil ||
		cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, errors.New("web: missing dependency")
	}
	h := &Handler{cfg: cfg}
	if len(cfg.CSRFKey) > 0 {
		h.csrfKey = append([]byte(nil), cfg.CSRFKey...)
	} else {
		h.csrfKey = make([]byte, 32)
		if _, err := io.ReadFull(cfg.Rand, h.csrfKey); err != nil {
			return nil, fmt.Errorf("web: csrf key: %w", err)
		}
	}
	var err error
	if h.catalog, err = newCatalog(); err != nil {
		return nil, err
	}
	h.matcher = language.NewMatcher(languages)
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if h.static, err = loadStatic(); err != nil {
		return nil, err
	}
	h.lim = cfg.Limiters
	if h.lim == nil {
		if h.lim, err = httpedge.NewLimiters(httpedge.DefaultLimits(), nil, cfg.Clock, cfg.Rand); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// methods dispatches a route by request method. HEAD is served as GET.
type methods map[string]http.Handler

// route is a registered portal or console route: its methods behind the
// security headers and panic recovery of secure.
type route struct {
	m    methods
	next http.Handler
}

// route returns m behind secure, as registered.
func (h *Handler) route(m methods) route { return route{m: m, next: h.secure(m)} }

func (rt route) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.next.ServeHTTP(w, r) }

// Methods returns the methods the route serves, sorted (GET implies HEAD),
// for route listings such as the authorisation matrix's (httpedge.Mux).
func (rt route) Methods() []string { return slices.Sorted(maps.Keys(rt.m)) }

// Register registers the portal's and the console's routes on mux: every
// path except /api/ and /healthz (the API's). Unknown paths get the
// portal's 404 page. Each route is registered by path alone and reports
// its methods (see httpedge.Mux); other methods get 405.
func (h *Handler) Register(mux httpedge.Mux) {
	get := func(f handlerFunc) methods { return methods{http.MethodGet: h.page(f)} }
	routes := []struct {
		pattern string
		m       methods
	}{
		{"/{$}", get(h.landing)},
		{"/data", get(h.dataPage)},
		{"/privacy", get(h.privacy)},
		{"/privacy/history", get(h.privacyHistory)},
		{"/privacy/versions/{id}", get(h.privacyVersion)},
		{"/policy/accept", methods{http.MethodGet: h.private(h.acceptPage), http.MethodPost: h.action(h.acceptPost, true)}},
		{"/inbox", methods{http.MethodGet: h.private(h.inboxPage)}},
		{"/inbox/read-all", methods{http.MethodPost: h.action(h.inboxReadAllPost, true)}},
		{"/inbox/{id}/read", methods{http.MethodPost: h.action(h.inboxReadPost, true)}},
		{"/inbox/{id}/delete", methods{http.MethodPost: h.action(h.inboxDeletePost, true)}},
		{"/privacy-centre", methods{http.MethodGet: h.private(h.centrePage), http.MethodPost: h.action(h.centreCreatePost, true)}},
		{"/privacy-centre/requests/{id}", methods{http.MethodGet: h.private(h.requestPage)}},
		{"/privacy-centre/requests/{id}/verify", methods{http.MethodPost: h.action(h.requestVerifyPost, true)}},
		{"/privacy-centre/requests/{id}/resend", methods{http.MethodPost: h.action(h.requestResendPost, true)}},
		{"/privacy-centre/requests/{id}/export", methods{http.MethodPost: h.action(h.requestExportPost, true)}},
		{"/privacy-centre/requests/{id}/erase", methods{http.MethodGet: h.private(h.erasePage), http.MethodPost: h.action(h.erasePost, true)}},
		{"/account/contact", methods{http.MethodPost: h.action(h.contactPost, true)}},
		{"/account/contact/{channel}", methods{http.MethodGet: h.private(h.contactCodePage), http.MethodPost: h.action(h.contactCodePost, true)}},
		{"/static/{path...}", methods{http.MethodGet: http.HandlerFunc(h.serveStatic)}},
		{"/signup", methods{http.MethodGet: h.page(h.signupPage), http.MethodPost: h.action(h.signupPost, false)}},
		{"/login", methods{http.MethodGet: h.page(h.loginPage), http.MethodPost: h.action(h.loginPost, false)}},
		{"/logout", methods{http.MethodPost: h.action(h.logoutPost, true)}},
		{"/verify", methods{http.MethodGet: h.private(h.verifyPage), http.MethodPost: h.action(h.verifyPost, true)}},
		{"/verify/resend", methods{http.MethodPost: h.action(h.resendPost, true)}},
		{"/forgot", methods{http.MethodGet: h.page(h.forgotPage), http.MethodPost: h.action(h.forgotPost, false)}},
		{"/reset", methods{http.MethodGet: h.page(h.resetPage), http.MethodPost: h.action(h.resetPost, false)}},
		{"/account", methods{http.MethodGet: h.private(h.accountPage)}},
		{"/account/password", methods{http.MethodPost: h.action(h.passwordPost, true)}},
		{"/account/sessions", methods{http.MethodPost: h.action(h.endSessionsPost, true)}},
		{"/devices", methods{http.MethodGet: h.private(h.devicesPage), http.MethodPost: h.action(h.deviceAddPost, true)}},
		{"/devices/new", methods{http.MethodGet: h.private(h.deviceNewPage)}},
		{"/devices/{id}/rename", methods{http.MethodPost: h.action(h.deviceRenamePost, true)}},
		{"/devices/{id}/rotate", methods{http.MethodGet: h.private(h.deviceRotatePage)}},
		{"/devices/{id}/key", methods{http.MethodPost: h.action(h.deviceKeyPost, true)}},
		{"/devices/{id}/remove", methods{http.MethodPost: h.action(h.deviceRemovePost, true)}},
		{"/devices/{id}/config", methods{http.MethodGet: h.private(h.deviceConfig)}},
		{"/usage", methods{http.MethodGet: h.private(h.usagePage)}},
		{"/", get(h.notFound)},
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, h.route(rt.m))
	}
	h.registerConsole(mux)
}

// ServeHTTP dispatches by method; other methods get 405 with Allow.
func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if next, ok := m[method]; ok {
		next.ServeHTTP(w, r)
		return
	}
	allow := ""
	for _, k := range []string{http.MethodGet, http.MethodPost} {
		if _, ok := m[k]; ok {
			if allow != "" {
				allow += ", "
			}
			allow += k
			if k == http.MethodGet {
				allow += ", HEAD"
			}
		}
	}
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// asset is an embedded static file.
type asset struct {
	body  []byte
	etag  string
	ctype string
}

// loadStatic reads every embedded static file once.
func loadStatic() (map[string]asset, error) {
	out := map[string]asset{}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[p] = asset{body: b, etag: fmt.Sprintf(`"%x"`, sum[:12]), ctype: contentType(p)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: static assets: %w", err)
	}
	return out, nil
}

// contentType returns the media type for an asset path.
func contentType(p string) string {
	switch {
	case strings.HasSuffix(p, ".css"):
		return "text/css; charset=utf-8"
	case strings.HasSuffix(p, ".js"):
		return "text/javascript; charset=utf-8"
	case strings.HasSuffix(p, ".svg"):
		return "image/svg+xml"
	case strings.HasSuffix(p, ".png"):
		return "image/png"
	default:
		return "text/plain; charset=utf-8"
	}
}

// serveStatic serves an embedded asset with a content-hash ETag, so
// browsers revalidate cheaply and never keep a stale script.
func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := h.static[r.PathValue("path")]
	if !ok {
		h.notFound(w, r, &state{})
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Cache-Control", "no-cache")
	if match := r.Header.Get("If-None-Match"); match == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(a.body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(a.body)
}
