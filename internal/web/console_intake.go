package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// Requests from outside the app, recorded in the console, and the
// recipients told of a rectification or erasure (Art. 19), shown on the
// request pages of the console and the portal.

// recipientRow is one processor that received a request's data, as the
// request pages show it.
type recipientRow struct {
	privacy.Recipient
	// Names are the names of the categories it received.
	Names []string
	// State says whether it was told, in words.
	State string
}

// recipientRows returns rs with category names and states in words.
func (h *Handler) recipientRows(rs []privacy.Recipient) []recipientRow {
	out := make([]recipientRow, 0, len(rs))
	for _, x := range rs {
		row := recipientRow{Recipient: x}
		for _, id := range x.Categories {
			if c, ok := h.cfg.Inventory.Category(id); ok {
				row.Names = append(row.Names, c.Name)
			} else {
				row.Names = append(row.Names, id)
			}
		}
		switch x.Status {
		case store.RecipientTold:
			row.State = "Told"
		case store.RecipientImpossible:
			row.State = "Cannot be told"
		default:
			row.State = "Not told yet"
		}
		out = append(out, row)
	}
	return out
}

// requestChannelName says how a request arrived.
func requestChannelName(ch string) string {
	switch ch {
	case store.ChannelEmail:
		return "By email"
	case store.ChannelPhone:
		return "By phone"
	case store.ChannelPost:
		return "By post"
	}
	return "In the app"
}

// intakeData is the data of the form recording a request from outside
// the app, on the queue page.
type intakeData struct {
	Types    []requestKind
	Channels []string
	Checks   []string
}

// intakeForm returns the choices of the intake form.
func intakeForm() intakeData {
	return intakeData{Types: requestKinds(), Channels: privacy.Channels(), Checks: privacy.CheckMethods()}
}

// The intake form's fields, by the service's field names.
var intakeFields = fields{"type": "in_type", "channel": "in_channel", "email": "in_contact", "mobile": "in_contact",
	"received_at": "in_received_at", "note": "in_note", "identity_check": "in_check"}

// intakePost records a request received by email, phone or post and
// shows it. received_at is a browser datetime-local value, taken as UTC.
func (h *Handler) intakePost(w http.ResponseWriter, r *http.Request, st *staffState) {
	f := r.PostForm
	form := map[string]string{"in_type": f.Get("type"), "in_channel": f.Get("channel"), "in_contact_kind": f.Get("contact_kind"),
		"in_contact": strings.TrimSpace(f.Get("contact")), "in_received_at": strings.TrimSpace(f.Get("received_at")),
		"in_note": f.Get("note"), "in_check": f.Get("identity_check")}
	in := privacy.Intake{Type: form["in_type"], Channel: form["in_channel"], Note: form["in_note"], Check: form["in_check"]}
	if form["in_contact_kind"] == "mobile" {
		in.Mobile = form["in_contact"]
	} else {
		in.Email = form["in_contact"]
	}
	if s := form["in_received_at"]; s != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", s, time.UTC)
		if err != nil {
			h.queueFail(w, r, st, http.StatusBadRequest, "in_received_at", "Enter the date and time it arrived (UTC).", form)
			return
		}
		in.ReceivedAt = t
	}
	req, err := h.cfg.Privacy.StaffAdd(r.Context(), st.p, in)
	if err != nil {
		if !onForm(intakeFields, err) {
			h.consoleError(w, r, st, err)
			return
		}
		v, verr := h.queueView(r, st)
		if verr != nil {
			h.consoleError(w, r, st, verr)
			return
		}
		for k, val := range form {
			v.Form[k] = val
		}
		h.renderConsole(w, r, st, h.place(r, v, intakeFields, err), "console/requests", v)
		return
	}
	redirect(w, r, requestURL(req.ID)+"?msg=recorded")
}

// queueFail re-renders the queue with msg beside field of the intake
// form.
func (h *Handler) queueFail(w http.ResponseWriter, r *http.Request, st *staffState, status int, field, msg string, form map[string]string) {
	v, err := h.queueView(r, st)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	for k, val := range form {
		v.Form[k] = val
	}
	v.Errors[field] = msg
	h.renderConsole(w, r, st, status, "console/requests", v)
}

// The codes form's fields.
var staffCodeFields = fields{"email_code": "email_code", "mobile_code": "mobile_code"}

// staffVerifyPost enters the codes a requester from outside the app read
// back.
func (h *Handler) staffVerifyPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	id := r.PathValue("id")
	emailCode, mobileCode := strings.TrimSpace(r.PostForm.Get("email_code")), strings.TrimSpace(r.PostForm.Get("mobile_code"))
	if _, err := h.cfg.Privacy.StaffVerify(r.Context(), st.p, id, emailCode, mobileCode); err != nil {
		h.serviceFail(w, r, st, staffCodeFields, err, map[string]string{"email_code": emailCode, "mobile_code": mobileCode})
		return
	}
	redirect(w, r, requestURL(id)+"?msg=identity-proven")
}

// staffCodesPost sends fresh identity-proof codes.
func (h *Handler) staffCodesPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	id := r.PathValue("id")
	if _, err := h.cfg.Privacy.StaffSendCodes(r.Context(), st.p, id); err != nil {
		h.serviceFail(w, r, st, nil, err, nil)
		return
	}
	redirect(w, r, requestURL(id)+"?msg=codes-sent")
}

// recipientFields places the errors of a recipient's form.
var recipientFields = fields{"status": "recipient_status", "note": "recipient_note", "processor": "recipient_status"}

// recipientPost records whether a processor was told of the request.
func (h *Handler) recipientPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	id := r.PathValue("id")
	f := r.PostForm
	processor, status, note := f.Get("processor"), f.Get("status"), strings.TrimSpace(f.Get("note"))
	if _, err := h.cfg.Privacy.NoteRecipient(r.Context(), st.p, id, processor, status, note); err != nil {
		h.serviceFail(w, r, st, recipientFields, err, map[string]string{"recipient_processor": processor,
			"recipient_note": note})
		return
	}
	redirect(w, r, requestURL(id)+"?msg=recipient-noted")
}

// lookupFields places the errors of the account lookup form.
var lookupFields = fields{"email": "lookup_value", "mobile": "lookup_value", "channel": "lookup_channel"}

// accountsPage shows the account lookup form.
func (h *Handler) accountsPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	h.renderConsole(w, r, st, http.StatusOK, "console/accounts", &view{Title: "Find an account", Nav: "/console/accounts",
		Errors: map[string]string{}, Form: map[string]string{}})
}

// accountLookupPost finds an account by email or mobile (through the
// blind index; audited by the service without the value) and shows it.
func (h *Handler) accountLookupPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	ch, value := store.Channel(r.PostForm.Get("channel")), strings.TrimSpace(r.PostForm.Get("value"))
	v := &view{Title: "Find an account", Nav: "/console/accounts", Errors: map[string]string{},
		Form: map[string]string{"lookup_channel": string(ch), "lookup_value": value}}
	if !ch.Valid() {
		v.Errors["lookup_channel"] = "Choose email or mobile."
		h.renderConsole(w, r, st, http.StatusBadRequest, "console/accounts", v)
		return
	}
	if value == "" {
		v.Errors["lookup_value"] = "Enter the " + string(ch) + " to look for."
		h.renderConsole(w, r, st, http.StatusBadRequest, "console/accounts", v)
		return
	}
	a, err := h.cfg.Accounts.StaffLookup(r.Context(), st.p, ch, value)
	if err != nil {
		if lookupFields.of(err) == "" && !onForm(lookupFields, err) {
			h.consoleError(w, r, st, err)
			return
		}
		h.renderConsole(w, r, st, h.place(r, v, lookupFields, err), "console/accounts", v)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/account", &view{Title: "Account " + a.ID, Nav: "/console/accounts", Data: a})
}

// mayRecord reports whether p may record requests from outside the app,
// as the staff service says.
func (h *Handler) mayRecord(p staff.Principal) bool {
	return h.cfg.Staff.Allowed(p, staff.ActPrivacyRecord)
}
