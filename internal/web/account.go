package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/contact"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/password"
	"github.com/nitronet/nitronet/internal/store"
)

// passwordHint describes the server's password rule next to the field.
func passwordHint() string {
	return "At least " + strconv.Itoa(password.MinLength) + " characters, and hard to guess: not built from your email address or number, " +
		"a common password or a keyboard pattern. A few unrelated words work well. The meter shows the verdict the server applies."
}

// upperFirst capitalises an ASCII first letter, so service messages read
// as sentences.
func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// anonPage renders a signed-out form page, issuing the pre-session cookie
// its CSRF token is bound to.
func (h *Handler) anonPage(w http.ResponseWriter, r *http.Request, st *state, status int, name string, v *view) {
	if err := h.ensureAnon(w, st); err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, status, name, v)
}

// ---- sign-up ----

// signupFields places the errors of the sign-up form.
var signupFields = fields{"email": "email", "mobile": "mobile", "password": "password"}

func (h *Handler) signupView() *view {
	return &view{Title: "Create your account", Nav: "signup", Scripts: []string{"/static/js/strength.js"},
		Data: map[string]string{"PasswordHint": passwordHint()}}
}

func (h *Handler) signupPage(w http.ResponseWriter, r *http.Request, st *state) {
	if st.signedIn() {
		redirect(w, r, "/devices")
		return
	}
	h.anonPage(w, r, st, http.StatusOK, "signup", h.signupView())
}

// signupPost creates the account, signs the browser in and sends it to
// the verification page.
func (h *Handler) signupPost(w http.ResponseWriter, r *http.Request, st *state) {
	email := strings.TrimSpace(r.PostForm.Get("email"))
	mobile := strings.TrimSpace(r.PostForm.Get("mobile"))
	pw := r.PostForm.Get("password")
	v := h.signupView()
	v.Form = map[string]string{"email": email, "mobile": mobile}
	v.Errors = map[string]string{}
	// Every bad input at once, before a rate-limit token is spent.
	if err := h.cfg.Accounts.CheckSignup(email, mobile, pw); err != nil {
		h.anonPage(w, r, st, h.place(r, v, signupFields, err), "signup", v)
		return
	}
	if err := httpedge.Allow(h.lim.Signup, httpedge.ClientKey(r), httpedge.EmailKey(email)); err != nil {
		h.anonPage(w, r, st, h.place(r, v, signupFields, err), "signup", v)
		return
	}
	if _, err := h.cfg.Accounts.Signup(r.Context(), email, mobile, pw); err != nil {
		h.anonPage(w, r, st, h.place(r, v, signupFields, err), "signup", v)
		return
	}
	// The answer is the same whether or not the address had an account
	// (accounts.Signup), so the browser is not signed in here: it logs in,
	// which leads to the verification page.
	redirect(w, r, "/login?msg=signed-up")
}

// ---- login and logout ----

// loginFields places the errors of the login form. A refused login names
// no field: the answer does not say whether the email or the password was
// wrong.
var loginFields = fields{"email": "email", "password": "password"}

func (h *Handler) loginView() *view { return &view{Title: "Log in", Nav: "login"} }

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request, st *state) {
	if st.signedIn() {
		redirect(w, r, "/devices")
		return
	}
	h.anonPage(w, r, st, http.StatusOK, "login", h.loginView())
}

// loginPost checks the credentials and starts a browser session.
func (h *Handler) loginPost(w http.ResponseWriter, r *http.Request, st *state) {
	email := strings.TrimSpace(r.PostForm.Get("email"))
	pw := r.PostForm.Get("password")
	v := h.loginView()
	v.Form = map[string]string{"email": email}
	v.Errors = map[string]string{}
	if email == "" {
		v.addError("email", "Enter your email address.")
	}
	if pw == "" {
		v.addError("password", "Enter your password.")
	}
	if len(v.Errors) > 0 {
		h.anonPage(w, r, st, http.StatusBadRequest, "login", v)
		return
	}
	if err := httpedge.Allow(h.lim.Login, httpedge.ClientKey(r)); err != nil {
		h.anonPage(w, r, st, h.place(r, v, loginFields, err), "login", v)
		return
	}
	att, err := h.lim.UserLogin.Begin(email, h.deviceOf(r, "user"))
	if err != nil {
		httpedge.SetRetryAfter(w, err)
		h.anonPage(w, r, st, h.place(r, v, loginFields, err), "login", v)
		return
	}
	sess, id, err := h.cfg.Accounts.Login(r.Context(), email, pw)
	if err != nil {
		h.anonPage(w, r, st, h.place(r, v, loginFields, err), "login", v)
		return
	}
	h.setDevice(w, "user", att.Succeeded())
	h.setSession(w, st, sess, id)
	prof, err := h.cfg.Accounts.Profile(r.Context(), id)
	if err == nil && (!prof.EmailVerified || !prof.MobileVerified) {
		redirect(w, r, "/verify")
		return
	}
	redirect(w, r, "/devices")
}

// logoutPost ends this browser's session.
func (h *Handler) logoutPost(w http.ResponseWriter, r *http.Request, st *state) {
	if err := h.cfg.Accounts.Logout(r.Context(), st.token); err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.clearSession(w, st)
	redirect(w, r, "/login?msg=logged-out")
}

// ---- contact verification ----

// verifyData is the data of the verification page.
type verifyData struct {
	Profile *accounts.Profile
}

func (h *Handler) verifyView(r *http.Request, st *state) (*view, error) {
	prof, err := h.cfg.Accounts.Profile(r.Context(), st.accountID)
	if err != nil {
		return nil, err
	}
	return &view{Title: "Verify your contacts", Nav: "account", Data: verifyData{Profile: prof},
		Errors: map[string]string{}}, nil
}

func (h *Handler) verifyPage(w http.ResponseWriter, r *http.Request, st *state) {
	v, err := h.verifyView(r, st)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "verify", v)
}

// channelOf returns the channel named in the form, or false.
func channelOf(s string) (store.Channel, bool) {
	ch := store.Channel(s)
	return ch, ch == store.Email || ch == store.Mobile
}

// verifyFields places the errors of the verification form of channel ch
// (the page has one form per channel, each with its code field).
func verifyFields(ch store.Channel) fields {
	return fields{"code": string(ch) + "_code", "channel": string(ch) + "_code"}
}

// verifyPost checks a code for one channel.
func (h *Handler) verifyPost(w http.ResponseWriter, r *http.Request, st *state) {
	ch, ok := channelOf(r.PostForm.Get("channel"))
	if !ok {
		h.renderError(w, r, st, errs.E(errs.Invalid, "Unknown contact type."))
		return
	}
	code := strings.TrimSpace(r.PostForm.Get("code"))
	fail := func(err error) {
		v, verr := h.verifyView(r, st)
		if verr != nil {
			h.renderError(w, r, st, verr)
			return
		}
		h.render(w, r, st, h.place(r, v, verifyFields(ch), err), "verify", v)
	}
	if err := httpedge.Allow(h.lim.Verify, httpedge.AccountKey(httpedge.Attempt, st.accountID)); err != nil {
		fail(err)
		return
	}
	if err := h.cfg.Accounts.Verify(r.Context(), st.accountID, ch, code); err != nil {
		fail(err)
		return
	}
	prof, err := h.cfg.Accounts.Profile(r.Context(), st.accountID)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	if prof.EmailVerified && prof.MobileVerified {
		redirect(w, r, "/devices?msg=verified")
		return
	}
	redirect(w, r, "/verify?msg="+string(ch)+"-verified")
}

// resendPost sends a new code to one channel.
func (h *Handler) resendPost(w http.ResponseWriter, r *http.Request, st *state) {
	ch, ok := channelOf(r.PostForm.Get("channel"))
	if !ok {
		h.renderError(w, r, st, errs.E(errs.Invalid, "Unknown contact type."))
		return
	}
	err := httpedge.Allow(h.lim.Verify, httpedge.AccountKey(httpedge.Resend, st.accountID))
	if err == nil {
		err = h.cfg.Accounts.SendCode(r.Context(), st.accountID, ch, accounts.PurposeVerify)
	}
	if err != nil {
		v, verr := h.verifyView(r, st)
		if verr != nil {
			h.renderError(w, r, st, verr)
			return
		}
		h.render(w, r, st, h.place(r, v, verifyFields(ch), err), "verify", v)
		return
	}
	redirect(w, r, "/verify?msg=code-sent")
}

// ---- forgotten password ----

// resetSent is shown after a reset request whether or not the account
// exists, so the page reveals nothing about who has an account.
const resetSent = "If an account uses this email address, we have sent it a link and a token to reset the password. They work once, for 30 minutes."

func (h *Handler) forgotView() *view { return &view{Title: "Forgotten password", Nav: "login"} }

// forgotFields places the errors of the forgotten-password form.
var forgotFields = fields{"email": "email"}

func (h *Handler) forgotPage(w http.ResponseWriter, r *http.Request, st *state) {
	h.anonPage(w, r, st, http.StatusOK, "forgot", h.forgotView())
}

func (h *Handler) forgotPost(w http.ResponseWriter, r *http.Request, st *state) {
	email := strings.TrimSpace(r.PostForm.Get("email"))
	v := h.forgotView()
	v.Form = map[string]string{"email": email}
	if _, err := contact.NormalizeEmail(email); err != nil {
		h.anonPage(w, r, st, h.place(r, v, forgotFields, err), "forgot", v)
		return
	}
	if err := httpedge.Allow(h.lim.Reset, httpedge.ClientKey(r), httpedge.EmailKey(email)); err != nil {
		h.anonPage(w, r, st, h.place(r, v, forgotFields, err), "forgot", v)
		return
	}
	if err := h.cfg.Accounts.RequestReset(r.Context(), email); err != nil {
		h.anonPage(w, r, st, h.place(r, v, forgotFields, err), "forgot", v)
		return
	}
	v.Form = nil
	v.Notice = resetSent
	v.Data = true // sent
	h.anonPage(w, r, st, http.StatusOK, "forgot", v)
}

// resetFields places the errors of the new-password form.
var resetFields = fields{"token": "token", "password": "password"}

func (h *Handler) resetView() *view {
	return &view{Title: "Choose a new password", Nav: "login", Scripts: []string{"/static/js/strength.js"},
		Data: map[string]string{"PasswordHint": passwordHint()}}
}

// resetPage shows the new-password form; a token from the emailed link
// (?token=) fills the token field. Referrer-Policy: no-referrer keeps it
// from leaking, and the access log records only the route.
func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request, st *state) {
	v := h.resetView()
	v.Form = map[string]string{"token": r.URL.Query().Get("token")}
	h.anonPage(w, r, st, http.StatusOK, "reset", v)
}

func (h *Handler) resetPost(w http.ResponseWriter, r *http.Request, st *state) {
	token := strings.TrimSpace(r.PostForm.Get("token"))
	pw, confirm := r.PostForm.Get("password"), r.PostForm.Get("confirm")
	v := h.resetView()
	v.Form = map[string]string{"token": token}
	v.Errors = map[string]string{}
	if token == "" {
		v.addError("token", "Enter the token from the email.")
	}
	if err := password.Validate(pw); err != nil {
		v.addError("password", h.publicMessage(r, err))
	} else if pw != confirm {
		v.addError("confirm", "The two passwords differ.")
	}
	if len(v.Errors) > 0 {
		h.anonPage(w, r, st, http.StatusBadRequest, "reset", v)
		return
	}
	if err := httpedge.Allow(h.lim.Reset, httpedge.ClientKey(r)); err != nil {
		h.anonPage(w, r, st, h.place(r, v, resetFields, err), "reset", v)
		return
	}
	email, err := h.cfg.Accounts.Reset(r.Context(), token, pw)
	if err != nil {
		h.anonPage(w, r, st, h.place(r, v, resetFields, err), "reset", v)
		return
	}
	// The reset proved the mailbox: this browser logs in with a budget of
	// its own, whatever strangers do to the account's.
	h.setDevice(w, "user", h.lim.UserLogin.NewDevice(email))
	// Every session ended with the reset, this browser's included.
	if st.signedIn() {
		h.clearSession(w, st)
	}
	redirect(w, r, "/login?msg=password-reset")
}

// ---- account settings ----

// accountData is the data of the account page.
type accountData struct {
	Profile      *accounts.Profile
	PasswordHint string
}

func (h *Handler) accountView(r *http.Request, st *state) (*view, error) {
	prof, err := h.cfg.Accounts.Profile(r.Context(), st.accountID)
	if err != nil {
		return nil, err
	}
	return &view{Title: "Account", Nav: "account", Scripts: []string{"/static/js/strength.js"}, Errors: map[string]string{},
		Form: map[string]string{}, Data: accountData{Profile: prof, PasswordHint: passwordHint()}}, nil
}

func (h *Handler) accountPage(w http.ResponseWriter, r *http.Request, st *state) {
	v, err := h.accountView(r, st)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "account", v)
}

// passwordFields places the errors of the change-password form.
var passwordFields = fields{"current_password": "current_password", "new_password": "new_password"}

// passwordPost changes the password. The change ends every session; this
// browser gets a fresh one.
func (h *Handler) passwordPost(w http.ResponseWriter, r *http.Request, st *state) {
	current, next, confirm := r.PostForm.Get("current_password"), r.PostForm.Get("new_password"), r.PostForm.Get("confirm")
	v, err := h.accountView(r, st)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	if current == "" {
		v.addError("current_password", "Enter your current password.")
	}
	if err := password.Validate(next); err != nil {
		v.addError("new_password", h.publicMessage(r, err))
	} else if next != confirm {
		v.addError("confirm", "The two passwords differ.")
	}
	if len(v.Errors) > 0 {
		h.render(w, r, st, http.StatusBadRequest, "account", v)
		return
	}
	if err := httpedge.Allow(h.lim.Login, httpedge.AccountKey(httpedge.Attempt, st.accountID)); err != nil {
		h.render(w, r, st, h.place(r, v, passwordFields, err), "account", v)
		return
	}
	if err := h.cfg.Accounts.ChangePassword(r.Context(), st.accountID, current, next); err != nil {
		h.render(w, r, st, h.place(r, v, passwordFields, err), "account", v)
		return
	}
	sess, err := h.cfg.Accounts.NewSession(r.Context(), st.accountID)
	if err != nil {
		h.clearSession(w, st)
		h.renderError(w, r, st, err)
		return
	}
	h.setSession(w, st, sess, st.accountID)
	redirect(w, r, "/account?msg=password-changed")
}

// endSessionsPost logs the account out everywhere, this browser included.
func (h *Handler) endSessionsPost(w http.ResponseWriter, r *http.Request, st *state) {
	if err := h.cfg.Accounts.LogoutAll(r.Context(), st.accountID); err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.clearSession(w, st)
	redirect(w, r, "/login?msg=sessions-ended")
}

// ---- contact changes ----

// contactPost starts changing the email address or mobile number (form
// fields channel, value, password). The change waits for the code sent to
// the new contact (contactCodePage).
func (h *Handler) contactPost(w http.ResponseWriter, r *http.Request, st *state) {
	ch, ok := channelOf(r.PostForm.Get("channel"))
	if !ok {
		h.renderError(w, r, st, errs.E(errs.Invalid, "Unknown contact type."))
		return
	}
	value := strings.TrimSpace(r.PostForm.Get("value"))
	pw := r.PostForm.Get("password")
	v, err := h.accountView(r, st)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	valueID, pwID := "new_"+string(ch), string(ch)+"_password"
	v.Form[valueID] = value
	if value == "" {
		v.addError(valueID, "Enter the new "+channelName(ch)+".")
	}
	if pw == "" {
		v.addError(pwID, "Enter your current password.")
	}
	if len(v.Errors) > 0 {
		h.render(w, r, st, http.StatusBadRequest, "account", v)
		return
	}
	err = httpedge.Allow(h.lim.Verify, httpedge.AccountKey(httpedge.Contact, st.accountID))
	if err == nil {
		err = h.cfg.Privacy.RequestContactChange(r.Context(), st.accountID, ch, value, pw)
	}
	if err != nil {
		// The account page has one change form per channel.
		fs := fields{"value": valueID, "channel": valueID, "password": pwID}
		h.render(w, r, st, h.place(r, v, fs, err), "account", v)
		return
	}
	redirect(w, r, "/account/contact/"+string(ch)+"?msg=contact-code-sent")
}

// channelName names a contact channel for people.
func channelName(ch store.Channel) string {
	if ch == store.Mobile {
		return "mobile number"
	}
	return "email address"
}

// contactCodeData is the data of the contact-change code page.
type contactCodeData struct {
	Channel string
	Name    string
}

func contactCodeView(ch store.Channel) *view {
	return &view{Title: "Confirm your new " + channelName(ch), Nav: "account", Errors: map[string]string{},
		Data: contactCodeData{Channel: string(ch), Name: channelName(ch)}}
}

// contactCodePage asks for the code sent to the new contact.
func (h *Handler) contactCodePage(w http.ResponseWriter, r *http.Request, st *state) {
	ch, ok := channelOf(r.PathValue("channel"))
	if !ok {
		h.notFound(w, r, st)
		return
	}
	h.render(w, r, st, http.StatusOK, "contact-code", contactCodeView(ch))
}

// contactCodeFields places the errors of the contact-change code form.
var contactCodeFields = fields{"code": "code", "channel": "code"}

// contactCodePost applies the change once the code is right.
func (h *Handler) contactCodePost(w http.ResponseWriter, r *http.Request, st *state) {
	ch, ok := channelOf(r.PathValue("channel"))
	if !ok {
		h.notFound(w, r, st)
		return
	}
	code := strings.TrimSpace(r.PostForm.Get("code"))
	v := contactCodeView(ch)
	if code == "" {
		v.addError("code", "Enter the code we sent to your new "+channelName(ch)+".")
		h.render(w, r, st, http.StatusBadRequest, "contact-code", v)
		return
	}
	err := httpedge.Allow(h.lim.Verify, httpedge.AccountKey(httpedge.Attempt, st.accountID))
	if err == nil {
		err = h.cfg.Privacy.ConfirmContactChange(r.Context(), st.accountID, ch, code)
	}
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			err = errs.E(errs.NotFound, "No change is waiting: it may have expired. Start again on the account page.")
		}
		h.render(w, r, st, h.place(r, v, contactCodeFields, err), "contact-code", v)
		return
	}
	redirect(w, r, "/account?msg="+string(ch)+"-changed")
}
