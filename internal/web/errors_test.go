package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nitronet/nitronet/internal/errs"
)

// TestPlace: an error goes beside the form field its domain field maps to,
// whatever its code and message; an error naming no field of the form,
// or no field at all, goes above the form; internal errors are shown
// generically.
func TestPlace(t *testing.T) {
	h := &Handler{cfg: Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	r := httptest.NewRequest(http.MethodPost, "/account/contact", nil)
	fs := fields{"value": "new_email", "password": "email_password"}
	for _, c := range []struct {
		name       string
		err        error
		id, msg    string
		formLevel  string
		wantStatus int
	}{
		{"invalid, mapped", errs.Field(errs.Invalid, "value", "email address is not valid"), "new_email", "Email address is not valid.", "", 400},
		{"conflict, mapped", errs.Field(errs.Conflict, "value", "this email is already used"), "new_email", "This email is already used.", "", 409},
		{"a message naming another field", errs.Field(errs.Unauthenticated, "password", "the value is wrong"), "email_password", "The value is wrong.", "", 401},
		{"a field the form lacks", errs.Field(errs.Invalid, "channel", "channel must be email or mobile"), "", "", "Channel must be email or mobile.", 400},
		{"no field", errs.E(errs.RateLimited, "too many attempts"), "", "", "Too many attempts.", 429},
		{"internal", &errs.Error{Code: errs.Internal, Message: "db down", Field: "value"}, "", "",
			"Something went wrong on our side. Try again in a moment.", 500},
		{"joined", errs.Join(errs.Field(errs.Invalid, "password", "wrong"), errs.Field(errs.Invalid, "value", "bad address!")),
			"new_email", "Bad address!", "", 400},
	} {
		v := &view{}
		status := h.place(r, v, fs, c.err)
		if c.name == "joined" {
			// Both inputs' errors, in the service's order, in the summary.
			if got := v.summary(); len(got) != 2 || got[0] != (summaryItem{"email_password", "Wrong."}) || got[1] != (summaryItem{"new_email", "Bad address!"}) {
				t.Errorf("joined: summary %v, want email_password then new_email", got)
			}
			continue
		}
		if status != c.wantStatus {
			t.Errorf("%s: status %d, want %d", c.name, status, c.wantStatus)
		}
		if c.id != "" && (v.Errors[c.id] != c.msg || len(v.Errors) != 1 || v.Error != "") {
			t.Errorf("%s: got errors %v and %q, want %q beside %s only", c.name, v.Errors, v.Error, c.msg, c.id)
		}
		if c.id == "" && (v.Error != c.formLevel || len(v.Errors) != 0) {
			t.Errorf("%s: got errors %v and %q, want %q above the form only", c.name, v.Errors, v.Error, c.formLevel)
		}
	}
}
