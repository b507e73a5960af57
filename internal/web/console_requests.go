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
		ErasesNow: req.Type == store.RequestErasure && req.Channel != store.ChannelApp && req.AccountID != ""}
	for _, a := range req.Actions {
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

// completePost completes a verified request, with an optional note.
func (h *Handler) completePost(w http.ResponseWriter, r *http.Request, st *staffState) {
	id := r.PathValue("id")
	note := strings.TrimSpace(r.PostForm.Get("note"))
	if _, err := h.cfg.Privacy.Complete(r.Context(), st.p, id, note); err != nil {
		h.serviceFail(w, r, st, completeFields, err, map[string]string{"note": note})
		return
	}
	redirect(w, r, requestURL(id)+"?msg=completed")
}

// denyPost denies a request for a reason (required).
func (h *Handler) denyPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	form := map[string]string{"deny_reason": reason}
	if reason == "" {
		h.staffFormFail(w, r, st, http.StatusBadRequest, "deny_reason", "Give the reason: the requester is told it.", form)
		return
	}
	if _, err := h.cfg.Privacy.Deny(r.Context(), st.p, id, reason); err != nil {
		h.serviceFail(w, r, st, denyFields, err, form)
		return
	}
	redirect(w, r, requestURL(id)+"?msg=denied")
}
