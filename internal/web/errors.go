package web

import (
	"net/http"

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
	return upperFirst(errs.MessageOf(err))
}

// place puts err's message into v: beside the form field fs maps err's
// domain field to, or above the form (v.Error) when fs has no entry for
// it. It returns the status to answer with, httpedge.StatusOf(err).
func (h *Handler) place(r *http.Request, v *view, fs fields, err error) int {
	msg := h.publicMessage(r, err)
	if id := fs.of(err); id != "" {
		if v.Errors == nil {
			v.Errors = map[string]string{}
		}
		v.Errors[id] = msg
	} else {
		v.Error = msg
	}
	return httpedge.StatusOf(err)
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
