package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/deadline"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// DueSoon is the window in which an open request counts as due soon.
const DueSoon = 7 * 24 * time.Hour

// queueRow is one request in the console queue.
type queueRow struct {
	privacy.Request
	Answered bool
	Overdue  bool // deadline passed, not answered
	DueSoon  bool // due within DueSoon, not answered
	Left     string
}

// queueData is the data of the queue page.
type queueData struct {
	Open, Answered       []queueRow
	OverdueN, DueSoonN   int
	DueSoonDays, Showing int
	// CanRecord is set when the staff member may record requests from
	// outside the app, with the form's choices.
	CanRecord bool
	Intake    intakeData
}

// row classifies r at now.
func row(r privacy.Request, now time.Time) queueRow {
	answered := store.Answered(r.Status)
	q := queueRow{Request: r, Answered: answered,
		Overdue: deadline.Overdue(r.DueAt, now, answered),
		DueSoon: !answered && deadline.DueWithin(r.DueAt, now, DueSoon)}
	if !answered {
		q.Left = timeLeft(r.DueAt.Sub(now))
	}
	return q
}

// timeLeft says how long until (or since) a deadline, in days.
func timeLeft(d time.Duration) string {
	days := int((d.Abs() + 12*time.Hour) / (24 * time.Hour))
	switch {
	case d < 0 && days == 0:
		return "due today, passed"
	case d < 0:
		return strconv.Itoa(days) + " days overdue"
	case days == 0:
		return "due today"
	case days == 1:
		return "1 day left"
	}
	return strconv.Itoa(days) + " days left"
}

// queuePage lists requests: open ones by due date (soonest first) with
// overdue and due-soon ones marked, then answered ones, newest first.
// The listing is audited by the service.
func (h *Handler) queuePage(w http.ResponseWriter, r *http.Request, st *staffState) {
	v, err := h.queueView(r, st)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/requests", v)
}

// queueView reads the queue (audited by the service).
func (h *Handler) queueView(r *http.Request, st *staffState) (*view, error) {
	rs, err := h.cfg.Privacy.StaffList(r.Context(), st.p, false)
	if err != nil {
		return nil, err
	}
	now := h.cfg.Clock()
	d := queueData{DueSoonDays: int(DueSoon / (24 * time.Hour)), Showing: len(rs), CanRecord: h.mayRecord(st.p), Intake: intakeForm()}
	for _, x := range rs {
		q := row(x, now)
		if q.Answered {
			d.Answered = append(d.Answered, q)
			continue
		}
		d.Open = append(d.Open, q)
		if q.Overdue {
			d.OverdueN++
		}
		if q.DueSoon {
			d.DueSoonN++
		}
	}
	slices.SortStableFunc(d.Open, func(a, b queueRow) int { return a.DueAt.Compare(b.DueAt) })
	slices.SortStableFunc(d.Answered, func(a, b queueRow) int {
		return cmpTimePtr(b.CompletedAt, a.CompletedAt)
	})
	return &view{Title: "Privacy requests", Nav: "/console/requests", Data: d,
		Errors: map[string]string{}, Form: map[string]string{}}, nil
}

// cmpTimePtr compares two optional times, nil first.
func cmpTimePtr(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return a.Compare(*b)
}

// staffRequestData is the data of the console's request page.
type staffRequestData struct {
	Row                             queueRow
	CanExtend, CanComplete, CanDeny bool
	// CanVerify: the staff member may enter the codes a requester from
	// outside the app reads back (and send new ones).
	CanVerify bool
	// Channel says how the request arrived.
	Channel string
	// Recipients are the processors told of a rectification or erasure;
	// CanNoteRecipients whether the staff member may record that.
	Recipients        []recipientRow
	CanNoteRecipients bool
	Statuses          []string
	// ErasesNow: completing carries out an erasure received outside the
	// app.
	ErasesNow bool
	// Why explains controls that are not offered.
	Why []string
	// Months are the extensions still possible, in months.
	Months []int
	// AccountLink is set when the staff member may open the account.
	AccountLink bool
	// Refused says why each action the service does not allow now is
	// refused, by action.
	Refused map[string]string
}

// staffRequestView reads the request (audited by the service) with the
// actions the service says the staff member may take on it now, and why
// not.
func (h *Handler) staffRequestView(r *http.Request, st *staffState) (*view, error) {
	req, err := h.cfg.Privacy.StaffShow(r.Context(), st.p, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := staffRequestData{Row: row(*req, h.cfg.Clock()),
		AccountLink: req.AccountID != "" && h.cfg.Staff.Allowed(st.p, staff.ActAccountView),
		Channel:     requestChannelName(req.Channel), Recipients: h.recipientRows(req.Recipients),
		CanNoteRecipients: h.cfg.Staff.Allowed(st.p, staff.ActPrivacyComplete), Statuses: privacy.RecipientStatuses(),
		ErasesNow: req.Type == store.RequestErasure && req.Channel != store.ChannelApp && req.AccountID != "",
		Refused:   map[string]string{}}
	for _, a := range req.Actions {
		if !a.Allowed {
			d.Refused[a.Action] = a.Reason
		}
		switch a.Action {
		case staff.ActPrivacyRecord:
			d.CanVerify = a.Allowed
		case staff.ActPrivacyExtend:
			d.CanExtend, d.Months = a.Allowed, a.Months
		case staff.ActPrivacyComplete:
			d.CanComplete = a.Allowed
		case staff.ActPrivacyDeny:
			d.CanDeny = a.Allowed
		}
		if a.Reason != "" && !slices.Contains(d.Why, a.Reason) {
			d.Why = append(d.Why, a.Reason)
		}
	}
	return &view{Title: typeName(req.Type) + " request " + req.ID, Nav: "/console/requests",
		Errors: map[string]string{}, Form: map[string]string{}, Data: d}, nil
}

// staffRequestPage shows one request with the controls the role allows.
// The read is audited by the service.
func (h *Handler) staffRequestPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	v, err := h.staffRequestView(r, st)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/request", v)
}

// staffFormFail re-renders the request page with err beside field (or
// above the forms), keeping what was typed in form.
func (h *Handler) staffFormFail(w http.ResponseWriter, r *http.Request, st *staffState, status int, field, msg string, form map[string]string) {
	v, err := h.staffRequestView(r, st)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	for k, val := range form {
		v.Form[k] = val
	}
	if field != "" {
		v.Errors[field] = upperFirst(msg)
	} else {
		v.Error = upperFirst(msg)
	}
	h.renderConsole(w, r, st, status, "console/request", v)
}

// serviceFail shows a service error of a request action: on the request
// page beside the form field fs maps its domain field to, or above the
// forms (see onForm); a missing request, a refused role and internal
// errors get the error page.
func (h *Handler) serviceFail(w http.ResponseWriter, r *http.Request, st *staffState, fs fields, err error, form map[string]string) {
	if !onForm(fs, err) {
		h.consoleError(w, r, st, err)
		return
	}
	v, verr := h.staffRequestView(r, st)
	if verr != nil {
		h.consoleError(w, r, st, verr)
		return
	}
	for k, val := range form {
		v.Form[k] = val
	}
	h.renderConsole(w, r, st, h.place(r, v, fs, err), "console/request", v)
}

// The request page's forms, by the service's field names.
var (
	extendFields   = fields{"months": "months", "reason": "extend_reason"}
	completeFields = fields{"note": "note"}
	denyFields     = fields{"reason": "deny_reason"}
)

// requestURL is the console address of request id.
func requestURL(id string) string { return "/console/requests/" + url.PathEscape(id) }

// extendPost extends a request's deadline by 1 or 2 months for a reason.
func (h *Handler) extendPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	monthsText := r.PostForm.Get("months")
	form := map[string]string{"extend_reason": reason, "months": monthsText}
	months, err := strconv.Atoi(monthsText)
	if err != nil || months < 1 || months > 2 {
		h.staffFormFail(w, r, st, http.StatusBadRequest, "months", "Choose 1 or 2 months.", form)
		return
	}
	if reason == "" {
		h.staffFormFail(w, r, st, http.StatusBadRequest, "extend_reason", "Give the reason: the requester is told it.", form)
		return
	}
	if _, err := h.cfg.Privacy.Extend(r.Context(), st.p, id, months, reason); err != nil {
		h.serviceFail(w, r, st, extendFields, err, form)
		return
	}
	redirect(w, r, requestURL(id)+"?msg=extended")
}

// answer is one of the two answers to a request, complete or deny: both
// take a note to the requester and a confirmation step.
type answer struct {
	// Action is the last path element: "complete" or "deny"; act the
	// staff action.
	Action, act string
	// Field is the service's field name and the form's input name of the
	// note ("note" or "reason"); FormID is the input's id on the request
	// page.
	Field, FormID string
	fs            fields
	do            func(r *http.Request, st *staffState, id, note string) error
	done          string // the msg of the redirect
}

// confirmData is the data of the confirmation page of an answer.
type confirmData struct {
	Row       queueRow
	Action    string // "complete" or "deny"
	Field     string // the note's input name
	Note      string
	Channel   string
	ErasesNow bool
}

// answerPost handles a complete or deny form: the note is checked by the
// service's rule first; then, unless the post carries confirm=yes, a
// confirmation page shows what the requester will be told (edit=1 goes
// back to the request page with the note kept); a confirmed post takes
// the action.
func (h *Handler) answerPost(w http.ResponseWriter, r *http.Request, st *staffState, a answer) {
	id := r.PathValue("id")
	raw := r.PostForm.Get(a.Field)
	form := map[string]string{a.FormID: strings.TrimSpace(raw)}
	note, err := privacy.CheckNote(a.Field, raw)
	if err != nil {
		h.serviceFail(w, r, st, a.fs, err, form)
		return
	}
	if r.PostForm.Get("edit") != "" {
		v, err := h.staffRequestView(r, st)
		if err != nil {
			h.consoleError(w, r, st, err)
			return
		}
		v.Form = form
		h.renderConsole(w, r, st, http.StatusOK, "console/request", v)
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		v, err := h.staffRequestView(r, st)
		if err != nil {
			h.consoleError(w, r, st, err)
			return
		}
		d := v.Data.(staffRequestData)
		if why, refused := d.Refused[a.act]; refused {
			// Not possible now, as the service says: no confirmation
			// of what would fail.
			v.Form, v.Error = form, why
			h.renderConsole(w, r, st, http.StatusConflict, "console/request", v)
			return
		}
		verb := "Complete"
		if a.Action == "deny" {
			verb = "Deny"
		}
		h.renderConsole(w, r, st, http.StatusOK, "console/confirm", &view{
			Title: verb + " " + strings.ToLower(typeName(d.Row.Type)) + " request " + id + "?", Nav: "/console/requests",
			Data: confirmData{Row: d.Row, Action: a.Action, Field: a.Field, Note: note, Channel: d.Channel, ErasesNow: d.ErasesNow}})
		return
	}
	if err := a.do(r, st, id, note); err != nil {
		h.serviceFail(w, r, st, a.fs, err, form)
		return
	}
	redirect(w, r, requestURL(id)+"?msg="+a.done)
}

// completePost completes a verified request with a note to the
// requester, after a confirmation step.
func (h *Handler) completePost(w http.ResponseWriter, r *http.Request, st *staffState) {
	h.answerPost(w, r, st, answer{Action: "complete", act: staff.ActPrivacyComplete, Field: "note", FormID: "note", fs: completeFields, done: "completed",
		do: func(r *http.Request, st *staffState, id, note string) error {
			_, err := h.cfg.Privacy.Complete(r.Context(), st.p, id, note)
			return err
		}})
}

// denyPost denies a request for a reason (required), after a
// confirmation step.
func (h *Handler) denyPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	h.answerPost(w, r, st, answer{Action: "deny", act: staff.ActPrivacyDeny, Field: "reason", FormID: "deny_reason", fs: denyFields, done: "denied",
		do: func(r *http.Request, st *staffState, id, reason string) error {
			_, err := h.cfg.Privacy.Deny(r.Context(), st.p, id, reason)
			return err
		}})
}
