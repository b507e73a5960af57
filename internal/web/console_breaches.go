package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/breaches"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
)

// The breach register in the console: the list with the 72-hour
// notification deadline, a form to open a record, and each record with
// the forms to complete it and to tell the people affected.

// breachURL is the console address of breach id.
func breachURL(id string) string { return "/console/breaches/" + url.PathEscape(id) }

// localTime is the format of a datetime-local field, taken as UTC.
const localTime = "2006-01-02T15:04"

// breachesData is the data of the register page.
type breachesData struct {
	Breaches  []breaches.Breach
	OverdueN  int
	CanManage bool
}

// breachesView reads the register (audited by the service).
func (h *Handler) breachesView(r *http.Request, st *staffState) (*view, error) {
	bs, err := h.cfg.Breaches.List(r.Context(), st.p)
	if err != nil {
		return nil, err
	}
	d := breachesData{Breaches: bs, CanManage: h.cfg.Staff.Allowed(st.p, staff.ActBreachManage)}
	for _, b := range bs {
		if b.Overdue {
			d.OverdueN++
		}
	}
	return &view{Title: "Breaches", Nav: "/console/breaches", Errors: map[string]string{}, Form: map[string]string{}, Data: d}, nil
}

// breachesPage lists the register, overdue notifications marked.
func (h *Handler) breachesPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	v, err := h.breachesView(r, st)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/breaches", v)
}

// breachAddFields places the errors of the form opening a record.
var breachAddFields = fields{"detected_at": "detected_at", "nature": "nature"}

// breachAddPost opens a breach record.
func (h *Handler) breachAddPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	detected, nature := strings.TrimSpace(r.PostForm.Get("detected_at")), r.PostForm.Get("nature")
	form := map[string]string{"detected_at": detected, "nature": nature}
	fail := func(status int, err error) {
		v, verr := h.breachesView(r, st)
		if verr != nil {
			h.consoleError(w, r, st, verr)
			return
		}
		v.Form = form
		if err != nil {
			status = h.place(r, v, breachAddFields, err)
		} else {
			v.Errors["detected_at"] = "Enter when the breach was detected (UTC)."
		}
		h.renderConsole(w, r, st, status, "console/breaches", v)
	}
	t, perr := time.ParseInLocation(localTime, detected, time.UTC)
	if perr != nil {
		fail(http.StatusBadRequest, nil)
		return
	}
	b, err := h.cfg.Breaches.Add(r.Context(), st.p, t, nature)
	if err != nil {
		if !onForm(breachAddFields, err) {
			h.consoleError(w, r, st, err)
			return
		}
		fail(0, err)
		return
	}
	redirect(w, r, breachURL(b.ID)+"?msg=breach-added")
}

// categoryChoice is one inventory category on the update form.
type categoryChoice struct {
	ID, Name string
	Checked  bool
}

// breachData is the data of a breach record's page.
type breachData struct {
	B                    *breaches.Breach
	CanManage, CanNotify bool
	Categories           []categoryChoice
	Risks                []string
	// Subject and Body preview the notice to the people affected;
	// Missing says what the record lacks for one.
	Subject, Body, Missing string
}

// breachView reads breach id (audited by the service) for the page, with
// the update form filled from the record.
func (h *Handler) breachView(r *http.Request, st *staffState) (*view, error) {
	b, err := h.cfg.Breaches.Get(r.Context(), st.p, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := breachData{B: b, CanManage: h.cfg.Staff.Allowed(st.p, staff.ActBreachManage),
		CanNotify: h.cfg.Staff.Allowed(st.p, staff.ActBreachNotify), Risks: breaches.Risks()}
	for _, c := range h.cfg.Inventory {
		d.Categories = append(d.Categories, categoryChoice{ID: c.ID, Name: c.Name, Checked: contains(b.Categories, c.ID)})
	}
	if d.Subject, d.Body, err = h.cfg.Breaches.NoticeText(b); err != nil {
		d.Missing = upperFirst(h.publicMessage(r, err))
	}
	form := map[string]string{"nature": b.Nature, "consequences": b.Consequences, "measures_taken": b.MeasuresTaken,
		"measures_proposed": b.MeasuresProposed, "risk": b.Risk, "authority_reference": b.AuthorityReference,
		"status": b.Status, "detected_at": b.DetectedAt.UTC().Format(localTime)}
	if b.People != nil {
		form["people"] = strconv.FormatInt(*b.People, 10)
	}
	if b.Records != nil {
		form["records"] = strconv.FormatInt(*b.Records, 10)
	}
	if b.AuthorityNotifiedAt != nil {
		form["authority_notified_at"] = b.AuthorityNotifiedAt.UTC().Format(localTime)
	}
	return &view{Title: "Breach " + b.ID, Nav: "/console/breaches", Errors: map[string]string{}, Form: form, Data: d}, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// breachPage shows a breach record, its notices and the forms the role
// may use.
func (h *Handler) breachPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	v, err := h.breachView(r, st)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/breach", v)
}

// breachFields places the errors of the update and notify forms.
var breachFields = fields{"detected_at": "detected_at", "nature": "nature", "categories": "categories", "people": "people",
	"records": "records", "consequences": "consequences", "measures_taken": "measures_taken",
	"measures_proposed": "measures_proposed", "risk": "risk", "authority_notified_at": "authority_notified_at",
	"authority_reference": "authority_reference", "status": "status", "accounts": "accounts"}

// breachFail re-renders the breach page with err placed, keeping what was
// typed in form.
func (h *Handler) breachFail(w http.ResponseWriter, r *http.Request, st *staffState, err error, form map[string]string) {
	if !onForm(breachFields, err) {
		h.consoleError(w, r, st, err)
		return
	}
	v, verr := h.breachView(r, st)
	if verr != nil {
		h.consoleError(w, r, st, verr)
		return
	}
	for k, val := range form {
		v.Form[k] = val
	}
	h.renderConsole(w, r, st, h.place(r, v, breachFields, err), "console/breach", v)
}

// breachUpdatePost saves the update form: every text as given, numbers
// and times when filled in.
func (h *Handler) breachUpdatePost(w http.ResponseWriter, r *http.Request, st *staffState) {
	f := r.PostForm
	form := map[string]string{}
	var u breaches.Update
	for _, k := range []struct {
		name string
		dst  **string
	}{{"nature", &u.Nature}, {"consequences", &u.Consequences}, {"measures_taken", &u.MeasuresTaken},
		{"measures_proposed", &u.MeasuresProposed}, {"risk", &u.Risk}, {"authority_reference", &u.AuthorityReference},
		{"status", &u.Status}} {
		v := f.Get(k.name)
		form[k.name] = v
		*k.dst = &v
	}
	cats := f["categories"]
	u.Categories = &cats
	for _, n := range []struct {
		name string
		dst  **int64
	}{{"people", &u.People}, {"records", &u.Records}} {
		s := strings.TrimSpace(f.Get(n.name))
		form[n.name] = s
		if s == "" {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			h.breachFail(w, r, st, fieldErr(n.name, "Enter a whole number (an approximation is fine)."), form)
			return
		}
		*n.dst = &v
	}
	for _, t := range []struct {
		name string
		dst  **time.Time
	}{{"detected_at", &u.DetectedAt}, {"authority_notified_at", &u.AuthorityNotifiedAt}} {
		s := strings.TrimSpace(f.Get(t.name))
		form[t.name] = s
		if s == "" {
			continue
		}
		v, err := time.ParseInLocation(localTime, s, time.UTC)
		if err != nil {
			h.breachFail(w, r, st, fieldErr(t.name, "Enter a date and time (UTC)."), form)
			return
		}
		*t.dst = &v
	}
	if _, err := h.cfg.Breaches.Update(r.Context(), st.p, r.PathValue("id"), u); err != nil {
		h.breachFail(w, r, st, err, form)
		return
	}
	redirect(w, r, breachURL(r.PathValue("id"))+"?msg=breach-updated")
}

// breachNotifyPost tells the people affected: all accounts, or the
// account IDs listed (one per line, or separated by commas or spaces).
func (h *Handler) breachNotifyPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	f := r.PostForm
	form := map[string]string{"audience": f.Get("audience"), "accounts": f.Get("accounts"), "email": f.Get("email")}
	var aud breaches.Audience
	if f.Get("audience") == "all" {
		aud.All = true
	} else {
		aud.Accounts = strings.FieldsFunc(f.Get("accounts"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	}
	if _, err := h.cfg.Breaches.Notify(r.Context(), st.p, r.PathValue("id"), aud, f.Get("email") == "yes", nil); err != nil {
		h.breachFail(w, r, st, err, form)
		return
	}
	redirect(w, r, breachURL(r.PathValue("id"))+"?msg=breach-notified")
}

// fieldErr is the Invalid error msg about field of a form.
func fieldErr(field, msg string) error { return errs.Field(errs.Invalid, field, "%s", msg) }
