package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/errs"
)

// CSP is the Content-Security-Policy sent with every portal response. It
// allows no inline script or style and no origin but our own (blob: and
// data: images are for the locally drawn QR code).
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// permissionsPolicy turns off powerful features the portal never uses.
const permissionsPolicy = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), " +
	"microphone=(), payment=(), usb=(), browsing-topics=()"

// maxForm bounds a form body.
const maxForm = 64 << 10

// csrfField is the form field, and csrfHeader the request header, that
// carry the CSRF token.
const (
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// state is what a handler knows about the request's browser session.
type state struct {
	accountID string // "" when signed out
	token     string // the session token, when signed in
	anon      string // the pre-session cookie value, when signed out
	csrf      string // the CSRF token for forms on this page ("" if none yet)
}

// signedIn reports whether the request carries a valid session.
func (s *state) signedIn() bool { return s.accountID != "" }

// handlerFunc is a portal handler with the request's session state.
type handlerFunc func(w http.ResponseWriter, r *http.Request, st *state)

// sessionCookie and anonCookie return the cookie names. With Secure they
// take the __Host- prefix, which browsers only accept from HTTPS, with
// Path=/ and no Domain.
func (h *Handler) sessionCookie() string {
	if h.cfg.Secure {
		return "__Host-nitronet_session"
	}
	return "nitronet_session"
}

func (h *Handler) anonCookie() string {
	if h.cfg.Secure {
		return "__Host-nitronet_csrf"
	}
	return "nitronet_csrf"
}

// secure sets the security headers on every response and turns a panic
// into the friendly error page.
func (h *Handler) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", permissionsPolicy)
		if h.cfg.Secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.cfg.Logger.Error("web handler panic", "route", r.Pattern)
				h.renderError(w, r, &state{}, errs.E(errs.Internal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// load returns the request's session state: the account of a valid session
// cookie, or else the pre-session cookie. It never fails; a store error
// counts as signed out and is logged.
func (h *Handler) load(r *http.Request) *state {
	st := &state{}
	if c, err := r.Cookie(h.sessionCookie()); err == nil && c.Value != "" {
		id, err := h.cfg.Accounts.Authenticate(r.Context(), c.Value)
		if err == nil {
			st.accountID, st.token = id, c.Value
			st.csrf = h.csrfToken("session", c.Value)
			return st
		}
		if errs.CodeOf(err) != errs.Unauthenticated {
			h.cfg.Logger.Error("web: authenticate", "err", err)
		}
	}
	if c, err := r.Cookie(h.anonCookie()); err == nil && validAnon(c.Value) {
		st.anon = c.Value
		st.csrf = h.csrfToken("anon", c.Value)
	}
	return st
}

// validAnon reports whether v looks like a pre-session value we issued.
func validAnon(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// ensureAnon gives a signed-out browser a pre-session cookie, so that the
// forms on the page (sign-up, login, reset) carry a CSRF token. The cookie
// holds 32 random bytes and nothing else; it ends with the browser session.
func (h *Handler) ensureAnon(w http.ResponseWriter, st *state) error {
	if st.signedIn() || st.anon != "" {
		return nil
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(h.cfg.Rand, b); err != nil {
		return err
	}
	st.anon = base64.RawURLEncoding.EncodeToString(b)
	st.csrf = h.csrfToken("anon", st.anon)
	http.SetCookie(w, &http.Cookie{Name: h.anonCookie(), Value: st.anon, Path: "/",
		HttpOnly: true, Secure: h.cfg.Secure, SameSite: http.SameSiteLaxMode})
	return nil
}

// csrfToken returns HMAC-SHA256(key, kind|value), the synchronizer token
// for a session or pre-session.
func (h *Handler) csrfToken(kind, value string) string {
	m := hmac.New(sha256.New, h.csrfKey)
	io.WriteString(m, "nitronet web csrf v1\x00"+kind+"\x00"+value)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// deviceCookie returns the name of the cookie that holds the browser's
// device token for kind ("user" or "staff"; httpedge.LoginGuard): proof
// that this browser logged in before, which keeps a stranger's failed
// logins from slowing it down.
func (h *Handler) deviceCookie(kind string) string {
	name := "nitronet_device"
	if kind == "staff" {
		name = "nitronet_staff_device"
	}
	if h.cfg.Secure {
		return "__Host-" + name
	}
	return name
}

// deviceOf returns r's device token for kind, or "".
func (h *Handler) deviceOf(r *http.Request, kind string) string {
	if c, err := r.Cookie(h.deviceCookie(kind)); err == nil {
		return c.Value
	}
	return ""
}

// setDevice stores the device token for kind in the browser for a year.
// It grants nothing but a login budget of the browser's own.
func (h *Handler) setDevice(w http.ResponseWriter, kind, token string) {
	if token == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: h.deviceCookie(kind), Value: token, Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: h.cfg.Secure, SameSite: http.SameSiteStrictMode})
}

// setSession stores a new session in the browser and drops the
// pre-session cookie.
func (h *Handler) setSession(w http.ResponseWriter, st *state, s *accounts.Session, accountID string) {
	http.SetCookie(w, &http.Cookie{Name: h.sessionCookie(), Value: s.Token, Path: "/", Expires: s.ExpiresAt,
		MaxAge: max(1, int(s.ExpiresAt.Sub(h.cfg.Clock()).Seconds())), HttpOnly: true, Secure: h.cfg.Secure, SameSite: http.SameSiteLaxMode})
	h.clearCookie(w, h.anonCookie())
	st.accountID, st.token, st.anon = accountID, s.Token, ""
	st.csrf = h.csrfToken("session", s.Token)
}

// clearSession removes the session cookie from the browser.
func (h *Handler) clearSession(w http.ResponseWriter, st *state) {
	h.clearCookie(w, h.sessionCookie())
	st.accountID, st.token, st.csrf = "", "", ""
}

func (h *Handler) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.cfg.Secure, SameSite: http.SameSiteLaxMode})
}

// page wraps a GET handler that works signed in or out.
func (h *Handler) page(f handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(w, r, h.load(r)) })
}

// private wraps a GET handler that needs a session; without one the
// browser is sent to the login page.
func (h *Handler) private(f handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := h.load(r)
		if !st.signedIn() {
			if _, err := r.Cookie(h.sessionCookie()); err == nil {
				h.clearCookie(w, h.sessionCookie())
				redirect(w, r, "/login?msg=session-ended")
				return
			}
			redirect(w, r, "/login")
			return
		}
		f(w, r, st)
	})
}

// checkPost runs the checks every state-changing request passes before its
// session is looked at: it must come from this site, and its form (at most
// maxForm bytes) must parse. It returns the error to show, or nil.
func (h *Handler) checkPost(w http.ResponseWriter, r *http.Request) error {
	if !h.sameOrigin(r) {
		return errs.E(errs.Forbidden, "This request came from another site, so it was refused.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return errs.E(errs.Invalid, "The form could not be read. Go back and try again.")
	}
	return nil
}

// csrfOK reports, in constant time, whether the request carries want as
// its CSRF token (header or form field). An empty want never matches.
func csrfOK(r *http.Request, want string) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostForm.Get(csrfField)
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// action wraps a state-changing (POST) handler. It rejects cross-site
// requests (Origin or Sec-Fetch-Site) and a missing or wrong CSRF token
// with 403, then parses the form. With needAuth, a request without a
// session is sent to the login page.
func (h *Handler) action(f handlerFunc, needAuth bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.checkPost(w, r); err != nil {
			h.renderError(w, r, &state{}, err)
			return
		}
		st := h.load(r)
		if !csrfOK(r, st.csrf) {
			msg := "This form has expired or did not come from this site. Go back, reload the page and try again."
			if needAuth && !st.signedIn() {
				msg = "Your session has ended. Log in again and repeat what you were doing."
			}
			h.renderError(w, r, st, errs.E(errs.Forbidden, "%s", msg))
			return
		}
		if needAuth && !st.signedIn() {
			redirect(w, r, "/login")
			return
		}
		f(w, r, st)
	})
}

// sameOrigin reports whether a state-changing request may come from this
// page: Sec-Fetch-Site, when sent, must be same-origin; Origin, when sent,
// must be this server's own origin. Because the portal sends
// Referrer-Policy: no-referrer, browsers send "Origin: null" with form
// posts; that is accepted only together with Sec-Fetch-Site: same-origin.
// Browsers that send neither header are left to the CSRF token.
func (h *Handler) sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if o == "null" {
		return site == "same-origin"
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if h.cfg.Secure || r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

// redirect sends the browser to a local path with 303 See Other.
func redirect(w http.ResponseWriter, r *http.Request, path string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, path, http.StatusSeeOther)
}
