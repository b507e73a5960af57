// Package api serves Nitronet's JSON HTTP API under /api/v1.
//
// Errors are answered as {"error": {"code", "message", "field"}} with the
// status of httpedge.Status, the program's one mapping; "field", when
// present, is the JSON name of the input the error is about (see
// docs/api-errors.md).
//
// Privacy rules enforced here: client addresses are used only as
// rate-limit keys (httpedge.ClientKey), which the limiter hashes before
// holding them in memory; they are never logged or stored. Request bodies
// are never logged. The access log (httpedge.AccessLog) records only the
// method, the route pattern, the status and the duration.
package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/devices"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gateways"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/inbox"
	"github.com/nitronet/nitronet/internal/password"
	"github.com/nitronet/nitronet/internal/peerfeed"
	"github.com/nitronet/nitronet/internal/policy"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/ratelimit"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/usage"
)

// Config holds the API's dependencies.
type Config struct {
	Accounts *accounts.Service
	Devices  *devices.Service
	Gateways *gateways.Service
	Feed     *peerfeed.Hub
	Usage    *usage.Service
	Privacy  *privacy.Service
	Inbox    *inbox.Service
	Policy   *policy.Service
	Logger   *slog.Logger
	Clock    func() time.Time
	Rand     io.Reader
	// Limiters are the rate limiters shared with the other front ends;
	// nil builds a set from Limits.
	Limiters *httpedge.Limiters
	Limits   httpedge.Limits
}

// Server holds the API's handlers. It is safe for concurrent use.
type Server struct {
	cfg  Config
	auth *Auth
	lim  *httpedge.Limiters
}

// New returns a Server, or an error if a service is missing.
func New(cfg Config) (*Server, error) {
	if cfg.Accounts == nil || cfg.Devices == nil || cfg.Gateways == nil || cfg.Feed == nil || cfg.Usage == nil ||
		cfg.Privacy == nil || cfg.Inbox == nil || cfg.Policy == nil || cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, errors.New("api: missing dependency")
	}
	s := &Server{cfg: cfg, lim: cfg.Limiters}
	if s.lim == nil {
		var err error
		if s.lim, err = httpedge.NewLimiters(cfg.Limits, nil, cfg.Clock, cfg.Rand); err != nil {
			return nil, err
		}
	}
	s.auth = &Auth{accounts: cfg.Accounts, log: cfg.Logger}
	return s, nil
}

// Mux is what Register registers routes on (see httpedge.Mux); every API
// route names its method, except the /api/ fallback.
type Mux = httpedge.Mux

// Register registers every API route on m: /healthz and everything under
// /api/, including GET /api/v1/openapi.json, the OpenAPI document that
// describes every other route (OpenAPI). The caller wraps m with the
// shared middleware (httpedge.AccessLog, BaselineHeaders, Recover).
func (s *Server) Register(m Mux) {
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	m.HandleFunc("POST /api/v1/accounts", s.handleSignup)
	m.HandleFunc("POST /api/v1/sessions", s.handleLogin)
	m.Handle("DELETE /api/v1/sessions/current", s.auth.Require(s.handleLogout))
	m.Handle("DELETE /api/v1/sessions", s.auth.Require(s.handleLogoutAll))
	m.Handle("GET /api/v1/me", s.auth.Require(s.handleMe))
	m.Handle("POST /api/v1/me/verify", s.auth.Require(s.handleVerify))
	m.Handle("POST /api/v1/me/verify/resend", s.auth.Require(s.handleResend))
	m.Handle("POST /api/v1/me/password", s.auth.Require(s.handleChangePassword))
	m.HandleFunc("POST /api/v1/password-reset", s.handleResetRequest)
	m.HandleFunc("POST /api/v1/password-reset/confirm", s.handleResetConfirm)
	// Typed passwords are judged as the user types: never access-logged.
	m.Handle("POST /api/v1/password-check", httpedge.Quiet(http.HandlerFunc(s.handlePasswordCheck)))

	m.Handle("POST /api/v1/devices", s.auth.Require(s.handleDeviceAdd))
	m.Handle("GET /api/v1/devices", s.auth.Require(s.handleDeviceList))
	m.Handle("GET /api/v1/devices/{id}", s.auth.Require(s.handleDeviceGet))
	m.Handle("PATCH /api/v1/devices/{id}", s.auth.Require(s.handleDeviceUpdate))
	m.Handle("DELETE /api/v1/devices/{id}", s.auth.Require(s.handleDeviceRemove))
	m.Handle("GET /api/v1/devices/{id}/wireguard", s.auth.Require(s.handleDeviceWireGuard))

	m.Handle("GET /api/v1/gateways", s.auth.Require(s.handleGatewayList))
	m.HandleFunc("POST /api/v1/gateway/enroll", s.handleGatewayEnroll)
	m.HandleFunc("GET /api/v1/gateway/peers", s.gatewayAuth(s.handleGatewayPeers))
	m.HandleFunc("POST /api/v1/gateway/hello", s.gatewayAuth(s.handleGatewayHello))
	m.HandleFunc("POST /api/v1/gateway/sessions", s.gatewayAuth(s.handleGatewaySessions))
	m.Handle("GET /api/v1/me/usage", s.auth.Require(s.handleUsage))

	s.registerInbox(m)
	s.registerPolicy(m)
	s.registerPrivacy(m)

	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, s.cfg.Logger, errs.E(errs.NotFound, "no such API route"))
	})
}

// limited spends one event of l for each key (see httpedge.Allow).
func limited(l ratelimit.Budget, keys ...string) error { return httpedge.Allow(l, keys...) }

func (s *Server) handleSignup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string `json:"email"`
		Mobile   string `json:"mobile"`
		Password string `json:"password"`
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := required(f("email", req.Email), f("mobile", req.Mobile), f("password", req.Password)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	// The per-email budget is spent whether or not the address is taken,
	// so a 429 tells nothing about who has an account.
	if err := limited(s.lim.Signup, httpedge.ClientKey(r), httpedge.EmailKey(req.Email)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	id, err := s.cfg.Accounts.Signup(r.Context(), req.Email, req.Mobile, req.Password)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

// loginAnswer is the answer to a login: the session and the device token
// the client presents at its next login (httpedge.LoginGuard), which keeps
// a stranger's failed logins from slowing this client down.
type loginAnswer struct {
	*accounts.Session
	Device string `json:"device"`
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Device   string `json:"device"`
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := required(f("email", req.Email), f("password", req.Password)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := limited(s.lim.Login, httpedge.ClientKey(r)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	att, err := s.lim.UserLogin.Begin(req.Email, req.Device)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	sess, _, err := s.cfg.Accounts.Login(r.Context(), req.Email, req.Password)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, loginAnswer{Session: sess, Device: att.Succeeded()})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, p Principal) {
	if err := s.cfg.Accounts.Logout(r.Context(), p.Token); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleLogoutAll(w http.ResponseWriter, r *http.Request, p Principal) {
	if err := s.cfg.Accounts.LogoutAll(r.Context(), p.AccountID); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, p Principal) {
	prof, err := s.cfg.Accounts.Profile(r.Context(), p.AccountID)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, prof)
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Channel string `json:"channel"`
		Code    string `json:"code"`
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := required(f("channel", req.Channel), f("code", req.Code)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := limited(s.lim.Verify, httpedge.AccountKey(httpedge.Attempt, p.AccountID)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := s.cfg.Accounts.Verify(r.Context(), p.AccountID, store.Channel(req.Channel), req.Code); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	prof, err := s.cfg.Accounts.Profile(r.Context(), p.AccountID)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, prof)
}

func (s *Server) handleResend(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Channel string `json:"channel"`
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := limited(s.lim.Verify, httpedge.AccountKey(httpedge.Resend, p.AccountID)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := s.cfg.Accounts.SendCode(r.Context(), p.AccountID, store.Channel(req.Channel), accounts.PurposeVerify); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "sent"})
}

func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := limited(s.lim.Login, httpedge.AccountKey(httpedge.Attempt, p.AccountID)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := s.cfg.Accounts.ChangePassword(r.Context(), p.AccountID, req.Current, req.New); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	// Every session ended with the change; give the caller a fresh one.
	sess, err := s.cfg.Accounts.NewSession(r.Context(), p.AccountID)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, sess)
}

func (s *Server) handleResetRequest(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email string `json:"email"`
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := required(f("email", req.Email)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := limited(s.lim.Reset, httpedge.ClientKey(r), httpedge.EmailKey(req.Email)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := s.cfg.Accounts.RequestReset(r.Context(), req.Email); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{
		"status": "If an account uses this email, a reset token has been sent to it.",
	})
}

func (s *Server) handleResetConfirm(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := required(f("token", req.Token), f("password", req.Password)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := limited(s.lim.Reset, httpedge.ClientKey(r)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if _, err := s.cfg.Accounts.Reset(r.Context(), req.Token, req.Password); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handlePasswordCheck answers the password policy's verdict on a password
// (password.Check): {score, acceptable, feedback}, the verdict sign-up,
// reset and change apply, for the portal's strength meter. The context is
// the caller's account (with a valid Bearer token), the account of a live
// reset_token, or the email and mobile given. The route is rate-limited
// per address and never logged (httpedge.Quiet).
func (s *Server) handlePasswordCheck(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password   string `json:"password"`
		Email      string `json:"email"`
		Mobile     string `json:"mobile"`
		ResetToken string `json:"reset_token"`
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := limited(s.lim.Check, httpedge.ClientKey(r)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	var v password.Verdict
	switch tok := bearer(r); {
	case tok != "":
		id, err := s.cfg.Accounts.Authenticate(r.Context(), tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nitronet"`)
			writeError(w, s.cfg.Logger, err)
			return
		}
		if v, err = s.cfg.Accounts.CheckNewPassword(r.Context(), id, req.Password); err != nil {
			writeError(w, s.cfg.Logger, err)
			return
		}
	case req.ResetToken != "":
		v = s.cfg.Accounts.CheckResetPassword(r.Context(), req.ResetToken, req.Password)
	default:
		v = password.Check(req.Password, req.Email, req.Mobile)
	}
	if v.Feedback == nil {
		v.Feedback = []string{}
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleDeviceAdd(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Name        string   `json:"name"`
		PublicKey   string   `json:"public_key"`
		DNSBlocking []string `json:"dns_blocking"`
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := required(f("name", req.Name), f("public_key", req.PublicKey)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	d, err := s.cfg.Devices.Create(r.Context(), p.AccountID, devices.NewDevice{Name: req.Name, PublicKey: req.PublicKey, DNSBlocking: req.DNSBlocking})
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, d)
}

func (s *Server) handleDeviceList(w http.ResponseWriter, r *http.Request, p Principal) {
	ds, err := s.cfg.Devices.List(r.Context(), p.AccountID)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": ds})
}

func (s *Server) handleDeviceGet(w http.ResponseWriter, r *http.Request, p Principal) {
	d, err := s.cfg.Devices.Get(r.Context(), p.AccountID, r.PathValue("id"))
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleDeviceUpdate(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Name        *string   `json:"name"`
		PublicKey   *string   `json:"public_key"`
		DNSBlocking *[]string `json:"dns_blocking"`
	}
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	d, err := s.cfg.Devices.Change(r.Context(), p.AccountID, r.PathValue("id"),
		devices.Changes{Name: req.Name, PublicKey: req.PublicKey, DNSBlocking: req.DNSBlocking})
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleDeviceRemove(w http.ResponseWriter, r *http.Request, p Principal) {
	if err := s.cfg.Devices.Remove(r.Context(), p.AccountID, r.PathValue("id")); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleGatewayList(w http.ResponseWriter, r *http.Request, p Principal) {
	gs, err := s.cfg.Gateways.List(r.Context())
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"gateways": gs})
}

func (s *Server) handleGatewayEnroll(w http.ResponseWriter, r *http.Request) {
	var req gwproto.EnrollRequest
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	if err := limited(s.lim.Enroll, httpedge.ClientKey(r)); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	resp, err := s.cfg.Gateways.Enroll(r.Context(), req)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

type gatewayKey struct{}

// GatewayFrom returns the authenticated gateway from ctx, or nil.
func GatewayFrom(ctx context.Context) *store.Gateway {
	g, _ := ctx.Value(gatewayKey{}).(*store.Gateway)
	return g
}

// gatewayAuth authenticates a gateway by its Bearer credential.
func (s *Server) gatewayAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g, err := s.cfg.Gateways.Authenticate(r.Context(), bearer(r))
		if err != nil {
			writeError(w, s.cfg.Logger, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), gatewayKey{}, g)))
	}
}

func (s *Server) handleGatewayPeers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since int64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, s.cfg.Logger, errs.Field(errs.Invalid, "since", "since must be a non-negative integer"))
			return
		}
		since = n
	}
	wait := 25 * time.Second
	if v := q.Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 60 {
			writeError(w, s.cfg.Logger, errs.Field(errs.Invalid, "wait", "wait must be 0 to 60 seconds"))
			return
		}
		wait = time.Duration(n) * time.Second
	}
	var byDevice bool
	switch v := q.Get("removals"); v {
	case "":
	case gwproto.RemovalsByDevice:
		byDevice = true
	default:
		writeError(w, s.cfg.Logger, errs.Field(errs.Invalid, "removals", "removals must be %q or absent", gwproto.RemovalsByDevice))
		return
	}
	// A gateway removed while its poll waited gets no more peers.
	stillEnrolled := func() error {
		_, err := s.cfg.Gateways.Authenticate(r.Context(), bearer(r))
		return err
	}
	snap := newSnapshotResponse(w, acceptsSnapshot(r.Header), stillEnrolled)
	u, err := s.cfg.Feed.Poll(r.Context(), since, wait, byDevice, snap)
	if err != nil {
		if r.Context().Err() != nil {
			return // the gateway went away
		}
		if snap.started {
			// The status is sent: end the snapshot incomplete, which the
			// gateway detects (no end record, or unterminated JSON).
			s.cfg.Logger.Error("peer snapshot interrupted", "err", err)
			return
		}
		writeError(w, s.cfg.Logger, err)
		return
	}
	if u.Full {
		return // streamed into snap, which checked the gateway first
	}
	if err := stillEnrolled(); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) handleGatewaySessions(w http.ResponseWriter, r *http.Request) {
	var rep gwproto.SessionReport
	if err := decodeLimit(w, r, &rep, MaxReportBody); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	g := GatewayFrom(r.Context())
	if err := s.cfg.Usage.Report(r.Context(), g.ID, g.Region, rep); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request, p Principal) {
	days := 90
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, s.cfg.Logger, errs.Field(errs.Invalid, "days", "days must be a number"))
			return
		}
		days = n
	}
	sessions, err := s.cfg.Usage.ForAccount(r.Context(), p.AccountID, days)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recording": s.cfg.Usage.Mode(), "sessions": sessions})
}
