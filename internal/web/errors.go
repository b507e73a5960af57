package web

import (
	"net/http"
	"sort"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
)

// fields is a form's table from the domain fields its service names in
// errors (errs.Field: the inputs' JSON API names) to the ids of the
// form's own fields. It is how the portal and the console place an error:
// by the field the service says it is about, never by its text.
type fields map[string]string

// of returns the form field id err belongs beside, or "" when err names no
// field of this form (it then goes above the form).
func (fs fields) of(err error) string { return fs[errs.FieldOf(err)] }

// publicMessage returns err's message for a page: the service's
// client-safe message with a capital first letter, or, for an internal
// error, a generic text (the error is logged, never request data).
func (h *Handler) publicMessage(r *http.Request, err error) string {
	if errs.CodeOf(err) == errs.Internal {
		h.cfg.Logger.Error("web: internal error", "route", r.Pattern, "err", err)
		return "Something went wrong on our side. Try again in a moment."
	}
	return sentence(errs.MessageOf(err))
}

// sentence makes a service message read as the portal's own do: a capital
// first letter and a closing full stop.
func sentence(s string) string {
	s = upperFirst(s)
	if s != "" && !strings.ContainsAny(s[len(s)-1:], ".?!") {
		s += "."
	}
	return s
}

// place puts err's messages into v: each of its domain errors (errs.All:
// every input's error when the service checked them all at once) beside
// the form field fs maps its domain field to, or above the form (v.Error)
// when fs has no entry for it. It returns the status to answer with,
// httpedge.StatusOf(err).
func (h *Handler) place(r *http.Request, v *view, fs fields, err error) int {
	all := errs.All(err)
	if len(all) == 0 {
		v.Error = h.publicMessage(r, err)
		return httpedge.StatusOf(err)
	}
	for _, e := range all {
		msg := h.publicMessage(r, e)
		if id := fs.of(e); id != "" {
			v.addError(id, msg)
		} else if v.Error == "" {
			v.Error = msg
		}
	}
	return httpedge.StatusOf(err)
}

// addError puts msg beside the form field id. The error summary at the
// top of the page lists the fields in the order their errors were added.
func (v *view) addError(id, msg string) {
	if v.Errors == nil {
		v.Errors = map[string]string{}
	}
	if _, ok := v.Errors[id]; !ok {
		v.errorOrder = append(v.errorOrder, id)
	}
	v.Errors[id] = msg
}

// summaryItem is one entry of the error summary: a link to the field.
type summaryItem struct {
	ID, Message string
}

// summary returns the entries of the error summary: the fields in the
// order addError saw them, then any others set directly (console pages)
// by id.
func (v *view) summary() []summaryItem {
	var out []summaryItem
	seen := map[string]bool{}
	for _, id := range v.errorOrder {
		if msg := v.Errors[id]; msg != "" && !seen[id] {
			seen[id] = true
			out = append(out, summaryItem{ID: id, Message: msg})
		}
	}
	var rest []string
	for id, msg := range v.Errors {
		if msg != "" && !seen[id] {
			rest = append(rest, id)
		}
	}
	sort.Strings(rest)
	for _, id := range rest {
		out = append(out, summaryItem{ID: id, Message: v.Errors[id]})
	}
	return out
}

// onForm reports whether a console action's error is shown on its form
// (beside a field of fs, or above the form) rather than on the error page:
// it names a field of fs, or the input or the record's state was refused
// (Invalid, Conflict, Precondition). A missing record, a refused role and
// internal errors get the error page.
func onForm(fs fields, err error) bool {
	if fs.of(err) != "" {
		return true
	}
	switch errs.CodeOf(err) {
	case errs.Invalid, errs.Conflict, errs.Precondition:
		return true
	}
	return false
}
