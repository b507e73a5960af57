package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/staff"
)

// The staff console lives under /console. It has its own login (staff
// accounts, package staff) and its own session cookie, separate from the
// portal's user session: a browser can hold both, and neither grants the
// other anything. CSRF works as in the portal: tokens are HMACs bound to
// the staff session (or, before login, to the pre-session cookie), and
// same-origin checks apply.
//
// Every console route names the staff action it needs; the wrapper asks
// the staff service whether the signed-in member may take it
// (staff.Service.Allowed) and answers 403 before the handler runs when
// not, and the nav shows only what the member may open. The services
// decide, authorise and audit every action themselves; the console only
// translates.

// staffNav is what console pages know about the signed-in staff member:
// who they are and the sections they may open.
type staffNav struct {
	Email    string
	Role     string
	Sections []section
}

// staffState is the console's request state.
type staffState struct {
	p     staff.Principal // zero when signed out
	token string
	anon  string
	csrf  string
}

// signedIn reports whether a staff member is signed in.
func (s *staffState) signedIn() bool { return s.p.ID != "" }

// consoleFunc is a console handler with the request's staff state.
type consoleFunc func(w http.ResponseWriter, r *http.Request, st *staffState)

// staffCookie returns the console session cookie's name. With Secure it
// takes the __Host- prefix.
func (h *Handler) staffCookie() string {
	if h.cfg.Secure {
		return "__Host-nitronet_staff"
	}
	return "nitronet_staff"
}

// loadStaff returns the console state of r: the staff member of a valid
// console cookie, or else the pre-session cookie for the login form.
func (h *Handler) loadStaff(r *http.Request) *staffState {
	st := &staffState{}
	if c, err := r.Cookie(h.staffCookie()); err == nil && c.Value != "" {
		p, err := h.cfg.Staff.Authenticate(r.Context(), c.Value)
		if err == nil {
			st.p, st.token = p, c.Value
			st.csrf = h.csrfToken("staff", c.Value)
			return st
		}
		if errs.CodeOf(err) != errs.Unauthenticated {
			h.cfg.Logger.Error("web: staff authenticate", "err", err)
		}
	}
	if c, err := r.Cookie(h.anonCookie()); err == nil && validAnon(c.Value) {
		st.anon = c.Value
		st.csrf = h.csrfToken("anon", c.Value)
	}
	return st
}

// consoleAnon gives a signed-out console browser a pre-session cookie for
// the login form's CSRF token.
func (h *Handler) consoleAnon(w http.ResponseWriter, st *staffState) error {
	if st.signedIn() || st.anon != "" {
		return nil
	}
	ps := &state{}
	if err := h.ensureAnon(w, ps); err != nil {
		return err
	}
	st.anon, st.csrf = ps.anon, ps.csrf
	return nil
}

// consolePage wraps a console GET handler. Without a staff session the
// browser goes to the console login; with one whose role may not take
// action ("" for any signed-in staff), the answer is 403.
func (h *Handler) consolePage(action string, f consoleFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := h.loadStaff(r)
		if !st.signedIn() {
			if _, err := r.Cookie(h.staffCookie()); err == nil {
				h.clearStaffCookie(w)
			}
			redirect(w, r, "/console/login")
			return
		}
		if action != "" && !h.cfg.Staff.Allowed(st.p, action) {
			h.consoleError(w, r, st, forbidden(st.p.Role, action))
			return
		}
		f(w, r, st)
	})
}

// consoleAction wraps a console POST handler: same-origin and CSRF checks
// (403), then the staff session (redirect to login unless needAuth is
// false), then the role (403), then the form is parsed.
func (h *Handler) consoleAction(action string, needAuth bool, f consoleFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.checkPost(w, r); err != nil {
			h.consoleError(w, r, &staffState{}, err)
			return
		}
		st := h.loadStaff(r)
		if !csrfOK(r, st.csrf) {
			msg := "This form has expired or did not come from this site. Go back, reload the page and try again."
			if needAuth && !st.signedIn() {
				msg = "Your console session has ended. Log in again and repeat what you were doing."
			}
			h.consoleError(w, r, st, errs.E(errs.Forbidden, "%s", msg))
			return
		}
		if needAuth && !st.signedIn() {
			redirect(w, r, "/console/login")
			return
		}
		if action != "" && !h.cfg.Staff.Allowed(st.p, action) {
			h.consoleError(w, r, st, forbidden(st.p.Role, action))
			return
		}
		f(w, r, st)
	})
}

// forbidden is the error for a role that may not take action.
func forbidden(role, action string) error {
	return errs.E(errs.Forbidden, "Your role (%s) may not do this (%s).", roleName(role), action)
}

// roleName names a staff role for people.
func roleName(role string) string { return staff.RoleName(role) }

// clearStaffCookie removes the console session cookie.
func (h *Handler) clearStaffCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: h.staffCookie(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.cfg.Secure, SameSite: http.SameSiteStrictMode})
}

// renderConsole writes console page name ("console/NAME").
func (h *Handler) renderConsole(w http.ResponseWriter, r *http.Request, st *staffState, status int, name string, v *view) {
	t, ok := h.pages[name]
	if !ok {
		panic("web: no page " + name)
	}
	v.CSRF = st.csrf
	if st.signedIn() {
		v.Staff = &staffNav{Email: st.p.Email, Role: st.p.Role, Sections: h.visibleSections(st.p)}
	}
	if v.Notice == "" {
		v.Notice = notice(r)
	}
	w.Header().Set("X-Robots-Tag", "noindex, nofollow")
	h.write(w, r, status, name, t, v)
}

// consoleError shows the console's error page for err, like renderError,
// with httpedge's status. (Services report a record whose state does not
// allow an action as Conflict, so 403 here means the role may not take it.)
func (h *Handler) consoleError(w http.ResponseWriter, r *http.Request, st *staffState, err error) {
	status := httpedge.StatusOf(err)
	msg := errs.MessageOf(err)
	heading := "Something went wrong"
	switch status {
	case http.StatusNotFound:
		heading = "Not found"
	case http.StatusForbidden:
		heading = "Not allowed"
	case http.StatusTooManyRequests:
		heading = "Too many attempts"
		w.Header().Set("Retry-After", "60")
	case http.StatusBadRequest:
		heading = "Check the request"
	case http.StatusConflict:
		heading = "Not possible now"
	}
	if errs.CodeOf(err) == errs.Internal {
		h.cfg.Logger.Error("web: internal error", "route", r.Pattern, "err", err)
		msg = "Something went wrong on our side. Try again in a moment."
	}
	h.renderConsole(w, r, st, status, "console/error", &view{Title: heading,
		Data: errorData{Status: status, Heading: heading, Message: upperFirst(msg)}})
}

// registerConsole registers the console's routes.
func (h *Handler) registerConsole(mux httpedge.Mux) {
	routes := []struct {
		pattern string
		m       methods
	}{
		{"/console", methods{http.MethodGet: h.consolePage("", h.consoleHome)}},
		{"/console/login", methods{http.MethodGet: http.HandlerFunc(h.consoleLoginPage), http.MethodPost: h.consoleAction("", false, h.consoleLoginPost)}},
		{"/console/logout", methods{http.MethodPost: h.consoleAction("", true, h.consoleLogoutPost)}},
		{"/console/requests", methods{http.MethodGet: h.consolePage(staff.ActPrivacyView, h.queuePage)}},
		{"/console/requests/{id}", methods{http.MethodGet: h.consolePage(staff.ActPrivacyView, h.staffRequestPage)}},
		{"/console/requests/{id}/extend", methods{http.MethodPost: h.consoleAction(staff.ActPrivacyExtend, true, h.extendPost)}},
		{"/console/requests/{id}/complete", methods{http.MethodPost: h.consoleAction(staff.ActPrivacyComplete, true, h.completePost)}},
		{"/console/requests/{id}/deny", methods{http.MethodPost: h.consoleAction(staff.ActPrivacyDeny, true, h.denyPost)}},
		{"/console/requests/new", methods{http.MethodPost: h.consoleAction(staff.ActPrivacyRecord, true, h.intakePost)}},
		{"/console/requests/{id}/verify", methods{http.MethodPost: h.consoleAction(staff.ActPrivacyRecord, true, h.staffVerifyPost)}},
		{"/console/requests/{id}/codes", methods{http.MethodPost: h.consoleAction(staff.ActPrivacyRecord, true, h.staffCodesPost)}},
		{"/console/requests/{id}/account", methods{http.MethodGet: h.consolePage(staff.ActAccountView, h.requestAccountPage)}},
		{"/console/requests/{id}/account/contact", methods{http.MethodPost: h.consoleAction(staff.ActPrivacyComplete, true, h.correctContactPost)}},
		{"/console/requests/{id}/recipients", methods{http.MethodPost: h.consoleAction(staff.ActPrivacyComplete, true, h.recipientPost)}},
		{"/console/accounts", methods{http.MethodGet: h.consolePage(staff.ActAccountView, h.accountsPage), http.MethodPost: h.consoleAction(staff.ActAccountView, true, h.accountLookupPost)}},
		{"/console/breaches", methods{http.MethodGet: h.consolePage(staff.ActBreachView, h.breachesPage), http.MethodPost: h.consoleAction(staff.ActBreachManage, true, h.breachAddPost)}},
		{"/console/breaches/{id}", methods{http.MethodGet: h.consolePage(staff.ActBreachView, h.breachPage)}},
		{"/console/breaches/{id}/update", methods{http.MethodPost: h.consoleAction(staff.ActBreachManage, true, h.breachUpdatePost)}},
		{"/console/breaches/{id}/notify", methods{http.MethodPost: h.consoleAction(staff.ActBreachNotify, true, h.breachNotifyPost)}},
		{"/console/holds", methods{http.MethodGet: h.consolePage(staff.ActHoldView, h.holdsPage), http.MethodPost: h.consoleAction(staff.ActHoldManage, true, h.holdAddPost)}},
		{"/console/holds/{id}/release", methods{http.MethodPost: h.consoleAction(staff.ActHoldManage, true, h.holdReleasePost)}},
		{"/console/disclosures", methods{http.MethodGet: h.consolePage(staff.ActDisclosureView, h.disclosuresPage)}},
		{"/console/disclosures/{id}", methods{http.MethodGet: h.consolePage(staff.ActDisclosureView, h.disclosurePage)}},
		{"/console/transparency", methods{http.MethodGet: h.consolePage(staff.ActTransparency, h.transparencyPage), http.MethodPost: h.consoleAction(staff.ActTransparency, true, h.transparencyPost)}},
		{"/console/retention", methods{http.MethodGet: h.consolePage(staff.ActRetentionView, h.retentionPage)}},
		{"/console/records", methods{http.MethodGet: h.consolePage(staff.ActRecordsView, h.recordsPage)}},
		{"/console/accounts/{id}", methods{http.MethodGet: h.consolePage(staff.ActAccountView, h.staffAccountPage)}},
		{"/console/gateways", methods{http.MethodGet: h.consolePage(staff.ActGatewayView, h.gatewaysPage)}},
		{"/console/audit", methods{http.MethodGet: h.consolePage(staff.ActAuditView, h.auditPage)}},
		{"/console/audit/verify", methods{http.MethodPost: h.consoleAction(staff.ActAuditView, true, h.auditVerifyPost)}},
		{"/console/", methods{http.MethodGet: h.consolePage("", func(w http.ResponseWriter, r *http.Request, st *staffState) {
			h.consoleError(w, r, st, errs.E(errs.NotFound, "There is no console page at this address."))
		})}},
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, h.route(rt.m))
	}
}

// section is one console area, shown in the nav and on the home page when
// the role may see it.
type section struct {
	Path, Name, Action, Blurb string
}

// sections returns the console's areas in nav order.
func sections() []section {
	return []section{
		{"/console/requests", "Privacy requests", staff.ActPrivacyView, "The queue of data-subject requests by due date; record those received by email, phone or post; extend, complete or deny them."},
		{"/console/accounts", "Accounts", staff.ActAccountView, "Find an account by email address or mobile number."},
		{"/console/breaches", "Breaches", staff.ActBreachView, "The breach register: the 72-hour notification to the authority, and notices to the people affected."},
		{"/console/holds", "Legal holds", staff.ActHoldView, "Holds that keep an account's data from deletion."},
		{"/console/disclosures", "Disclosures", staff.ActDisclosureView, "The ledger of requests from authorities."},
		{"/console/transparency", "Transparency", staff.ActTransparency, "Build and download the signed transparency report."},
		{"/console/retention", "Retention", staff.ActRetentionView, "Retention rules and the last sweep's counts."},
		{"/console/records", "Records", staff.ActRecordsView, "The record of processing activities (Art. 30)."},
		{"/console/gateways", "Gateways", staff.ActGatewayView, "Regions, endpoints, last contact and live session counts."},
		{"/console/audit", "Audit log", staff.ActAuditView, "Every staff access to personal data, with chain verification."},
	}
}

// visibleSections returns the sections p may open, as the staff service
// says.
func (h *Handler) visibleSections(p staff.Principal) []section {
	var out []section
	for _, s := range sections() {
		if h.cfg.Staff.Allowed(p, s.Action) {
			out = append(out, s)
		}
	}
	return out
}

// homeData is the data of the console home page.
type homeData struct {
	Sections []section
	RoleName string
}

// consoleHome lists the areas the staff member's role may open.
func (h *Handler) consoleHome(w http.ResponseWriter, r *http.Request, st *staffState) {
	h.renderConsole(w, r, st, http.StatusOK, "console/home", &view{Title: "Console", Nav: "home",
		Data: homeData{Sections: h.visibleSections(st.p), RoleName: roleName(st.p.Role)}})
}

// consoleLoginPage shows the staff login form.
func (h *Handler) consoleLoginPage(w http.ResponseWriter, r *http.Request) {
	st := h.loadStaff(r)
	if st.signedIn() {
		redirect(w, r, "/console")
		return
	}
	if err := h.consoleAnon(w, st); err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/login", &view{Title: "Staff login", Nav: "login"})
}

// staffLoginFields places the errors of the console login form. A refused
// login names no field: staff.Check gives every failure (password, code,
// disabled account) one answer, so the form never says which was wrong.
var staffLoginFields = fields{"email": "email", "password": "password", "code": "code"}

// consoleLoginPost checks staff credentials and starts a console session.
func (h *Handler) consoleLoginPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	email := strings.TrimSpace(r.PostForm.Get("email"))
	pw := r.PostForm.Get("password")
	code := strings.TrimSpace(r.PostForm.Get("code"))
	v := &view{Title: "Staff login", Nav: "login", Form: map[string]string{"email": email}, Errors: map[string]string{}}
	if email == "" {
		v.Errors["email"] = "Enter your staff email address."
	}
	if pw == "" {
		v.Errors["password"] = "Enter your password."
	}
	if len(v.Errors) > 0 {
		h.renderConsole(w, r, st, http.StatusBadRequest, "console/login", v)
		return
	}
	// Staff logins have their own budgets, per address and per account,
	// apart from users' logins and gateway enrolment.
	var tok string
	var exp time.Time
	var att *httpedge.LoginAttempt
	err := httpedge.Allow(h.lim.Staff, httpedge.ClientKey(r))
	if err == nil {
		att, err = h.lim.StaffLogin.Begin(email, h.deviceOf(r, "staff"))
	}
	if err == nil {
		tok, exp, _, err = h.cfg.Staff.Login(r.Context(), staff.Credentials{Email: email, Password: pw, Code: code})
	}
	if err != nil {
		httpedge.SetRetryAfter(w, err)
		h.renderConsole(w, r, st, h.place(r, v, staffLoginFields, err), "console/login", v)
		return
	}
	h.setDevice(w, "staff", att.Succeeded())
	http.SetCookie(w, &http.Cookie{Name: h.staffCookie(), Value: tok, Path: "/", Expires: exp,
		MaxAge: max(1, int(exp.Sub(h.cfg.Clock()).Seconds())), HttpOnly: true, Secure: h.cfg.Secure,
		SameSite: http.SameSiteStrictMode})
	redirect(w, r, "/console")
}

// consoleLogoutPost ends the console session.
func (h *Handler) consoleLogoutPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	if err := h.cfg.Staff.Logout(r.Context(), st.token); err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.clearStaffCookie(w)
	redirect(w, r, "/console/login?msg=staff-logged-out")
}
