package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/privacy"
	"golang.org/x/text/message"
)

// view is the data every page template receives.
type view struct {
	Title    string
	Nav      string // the nav entry to mark current
	SignedIn bool
	CSRF     string
	Notice   string            // a confirmation shown at the top
	Error    string            // a form-level error
	Errors   map[string]string // field name -> error shown beside the field
	Form     map[string]string // values to put back into fields (never passwords)
	Scripts  []string          // page scripts under /static/js/
	Data     any               // page-specific data

	// Unread is the signed-in account's number of unread inbox messages;
	// PolicyPending is set when a material policy change waits for the
	// account's acceptance (a banner links to /policy/accept).
	Unread        int
	PolicyPending string // what changed, e.g. "privacy policy"; "" for none
	// Staff is the console's signed-in staff member (console pages only).
	Staff *staffNav
	// Lang is the page's language (from Accept-Language, see printer).
	Lang string

	printer    *message.Printer
	errorOrder []string // field ids in the order addError saw them
}

// ErrorSummary returns the entries of the error summary at the top of the
// page, one per field with an error.
func (v *view) ErrorSummary() []summaryItem { return v.summary() }

// notice returns the confirmation named by the request's msg parameter.
// Only these fixed texts can appear: the query never injects content.
func notice(r *http.Request) string {
	switch r.URL.Query().Get("msg") {
	case "logged-out":
		return "You have logged out."
	case "session-ended":
		return "Your session has ended. Log in again."
	case "sessions-ended":
		return "Every session of your account has ended, including this one. Log in again."
	case "password-reset":
		return "Your password has been changed and every session has ended. Log in with your new password."
	case "signed-up":
		return "Thank you. Log in to finish: we are sending one code to your email address and another to your mobile number. If the address already had an account, we have emailed its owner instead."
	case "email-verified":
		return "Your email address is verified."
	case "mobile-verified":
		return "Your mobile number is verified."
	case "verified":
		return "Both contacts are verified. You can add your devices now."
	case "code-sent":
		return "A new code is on its way. It replaces the previous one."
	case "renamed":
		return "The device's settings are saved: renamed if you gave a new name. A new DNS blocking choice applies once the device fetches its configuration again."
	case "removed":
		return "The device has been removed. It can no longer connect."
	case "password-changed":
		return "Your password has been changed. Every other session has ended; this browser has a new one."
	case "email-changed":
		return "Your email address has been changed. We told your previous address."
	case "mobile-changed":
		return "Your mobile number has been changed. We told your previous number."
	case "contact-code-sent":
		return "Unless another account uses it, a code is on its way to the new contact. Enter it below to confirm the change."
	case "request-created":
		return "Your request is recorded. We have sent one code to your email address and another to your mobile number: enter both with your password to prove it is you."
	case "request-verified":
		return "Your identity is verified."
	case "codes-sent":
		return "New codes are on their way. They replace the previous ones."
	case "policy-accepted":
		return "Thank you: your acceptance is recorded."
	case "read":
		return "Marked as read."
	case "all-read":
		return "Every message is marked as read."
	case "deleted":
		return "The message is deleted."
	// Console notices.
	case "staff-logged-out":
		return "You have logged out of the console."
	case "extended":
		return "The deadline is extended and the requester has been told why."
	case "completed":
		return "The request is completed and the requester has been told."
	case "denied":
		return "The request is denied and the requester has been told the reason."
	case "recorded":
		return "The request is recorded. Its deadline counts from when it was received."
	case "identity-proven":
		return "The codes are right: the requester's identity is proven."
	case "correction-sent":
		return "The corrected contact is entered. We sent a code to it; the correction takes effect, and the request is completed, once the requester enters that code on their account page."
	case "recipient-noted":
		return "The communication to the recipient is recorded."
	case "breach-added":
		return "The breach is recorded. Notify the supervisory authority within 72 hours of detection."
	case "breach-updated":
		return "The breach record is updated."
	case "breach-notified":
		return "The notice is on its way to the people affected."
	case "hold-added":
		return "The legal hold is in force."
	case "hold-released":
		return "The legal hold is released."
	}
	return ""
}

// templateFuncs are the helpers the templates use.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		// field bundles what the "field" template needs. extra holds
		// options: hint=TEXT, strength, required, inputmode=M, pattern=P,
		// id=ID (default name), value=V, maxlength=N.
		"field": func(v *view, name, label, typ, autocomplete string, extra ...string) fieldView {
			f := fieldView{Name: name, Label: label, Type: typ, Autocomplete: autocomplete}
			for _, e := range extra {
				k, val, _ := strings.Cut(e, "=")
				switch k {
				case "hint":
					f.Hint = val
				case "strength":
					f.Strength = true
				case "required":
					f.Required = true
				case "inputmode":
					f.InputMode = val
				case "pattern":
					f.Pattern = val
				case "id":
					f.ID = val
				case "value":
					f.Value = val
				case "maxlength":
					f.MaxLength = val
				}
			}
			if f.ID == "" {
				f.ID = name
			}
			// Errors and values are keyed by the field's id, which is
			// unique on the page even when two forms share a name.
			f.Error = v.Errors[f.ID]
			if typ != "password" && f.Value == "" {
				f.Value = v.Form[f.ID]
			}
			return f
		},
		"date": func(t time.Time) string { return t.UTC().Format("2 Jan 2006") },
		"datep": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return t.UTC().Format("2 Jan 2006")
		},
		// ts and tsdate write a time as <time datetime> with its UTC
		// text; js/site.js shows it in the browser's zone and language.
		"ts":          func(t time.Time) template.HTML { return timeTag(t, "datetime", "2 Jan 2006, 15:04 UTC") },
		"tsdate":      func(t time.Time) template.HTML { return timeTag(t, "date", "2 Jan 2006") },
		"typeName":    typeName,
		"statusName":  privacy.StatusText,
		"roleName":    roleName,
		"when":        func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"join":        strings.Join,
		"channelName": requestChannelName,
		"lower":       strings.ToLower,
	}
}

// timeTag returns a <time> element for t with the given js/site.js format
// (data-fmt) and the UTC text layout the page shows without script.
func timeTag(t time.Time, fmtName, layout string) template.HTML {
	t = t.UTC()
	return template.HTML(`<time datetime="` + t.Format(time.RFC3339) + `" data-fmt="` + fmtName + `">` +
		template.HTMLEscapeString(t.Format(layout)) + `</time>`)
}

// fieldView is one labelled form field.
type fieldView struct {
	ID, Name, Label, Type, Autocomplete, Value, Error, Hint string
	InputMode, Pattern, MaxLength                           string
	Strength, Required                                      bool
}

// parsePages parses each page template with its layout and the shared
// partials: portal pages (templates/*.html) with templates/layout.html,
// console pages (templates/console/*.html, named "console/NAME") with
// templates/console/layout.html.
func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, set := range []struct{ dir, prefix string }{{"templates", ""}, {"templates/console", "console/"}} {
		names, err := fs.Glob(templateFS, set.dir+"/*.html")
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			base := path.Base(n)
			if base == "layout.html" || base == "partials.html" {
				continue
			}
			t, err := template.New(base).Funcs(templateFuncs()).ParseFS(templateFS,
				set.dir+"/layout.html", "templates/partials.html", n)
			if err != nil {
				return nil, fmt.Errorf("web: template %s%s: %w", set.prefix, base, err)
			}
			out[set.prefix+strings.TrimSuffix(base, ".html")] = t
		}
	}
	return out, nil
}

// render writes page name with status. Pages are never cached: they may
// hold personal data and always hold a CSRF token.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, st *state, status int, name string, v *view) {
	t, ok := h.pages[name]
	if !ok {
		panic("web: no page " + name)
	}
	v.SignedIn = st.signedIn()
	v.CSRF = st.csrf
	v.printer, v.Lang = h.printer(r)
	w.Header().Add("Vary", "Accept-Language")
	if v.Notice == "" {
		v.Notice = notice(r)
	}
	if v.SignedIn {
		h.navCounts(r, st, v)
	}
	h.write(w, r, status, name, t, v)
}

// navCounts fills the inbox's unread count and the pending-policy banner.
// Errors only leave them out (and are logged): the page still renders.
func (h *Handler) navCounts(r *http.Request, st *state, v *view) {
	ctx := r.Context()
	if n, err := h.cfg.Inbox.Unread(ctx, st.accountID); err == nil {
		v.Unread = n
	} else {
		h.cfg.Logger.Warn("web: unread count", "err", errs.CodeOf(err))
	}
	if docs, err := h.cfg.Policy.Pending(ctx, st.accountID); err == nil {
		var names []string
		for _, d := range docs {
			names = append(names, kindName(d.Kind))
		}
		v.PolicyPending = strings.Join(names, " and ")
	} else {
		h.cfg.Logger.Warn("web: pending policy", "err", errs.CodeOf(err))
	}
}

// write executes the page's layout into a buffer, then writes it with
// status and no-store; a template error becomes a plain 500.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, status int, name string, t *template.Template, v *view) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		h.cfg.Logger.Error("web: render", "page", name, "err", err)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "Something went wrong on our side. Try again in a moment.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// errorData is the data of the error page.
type errorData struct {
	Status  int
	Heading string
	Message string
}

// renderError shows the friendly error page for err, with the status
// httpedge.StatusOf gives. Internal errors are logged (never request data) and
// shown as a generic message; no stack trace or cause reaches the page.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, st *state, err error) {
	status := httpedge.StatusOf(err)
	msg := errs.MessageOf(err)
	heading := "Something went wrong"
	switch status {
	case http.StatusNotFound:
		heading = "Page not found"
	case http.StatusForbidden:
		heading = "Request refused"
	case http.StatusTooManyRequests:
		heading = "Too many attempts"
		w.Header().Set("Retry-After", "60")
	case http.StatusServiceUnavailable:
		heading = "Temporarily unavailable"
	}
	if errs.CodeOf(err) == errs.Internal {
		h.cfg.Logger.Error("web: internal error", "route", r.Pattern, "err", err)
		msg = "Something went wrong on our side. Try again in a moment."
	}
	h.render(w, r, st, status, "error", &view{Title: heading, Data: errorData{Status: status, Heading: heading, Message: msg}})
}

// notFound is the catch-all page.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, st *state) {
	h.renderError(w, r, st, errs.E(errs.NotFound, "There is no page at this address."))
}
