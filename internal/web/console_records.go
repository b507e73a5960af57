package web

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/retention"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/transparency"
)

// ---- legal holds ----

// holdRow is one hold as the console shows it.
type holdRow struct {
	store.Hold
	Active bool
}

// holdsData is the data of the holds page.
type holdsData struct {
	Active, Ended []holdRow
	CanManage     bool
}

func (h *Handler) holdsView(r *http.Request, st *staffState) (*view, error) {
	hs, err := h.cfg.Holds.List(r.Context(), st.p, "", false)
	if err != nil {
		return nil, err
	}
	now := h.cfg.Clock()
	d := holdsData{CanManage: h.cfg.Staff.Allowed(st.p, staff.ActHoldManage)}
	for _, x := range hs {
		row := holdRow{Hold: x, Active: x.Active(now)}
		if row.Active {
			d.Active = append(d.Active, row)
		} else {
			d.Ended = append(d.Ended, row)
		}
	}
	return &view{Title: "Legal holds", Nav: "/console/holds", Errors: map[string]string{}, Form: map[string]string{}, Data: d}, nil
}

// holdsPage lists legal holds (audited by the service); the legal role
// also gets the forms to add and release them.
func (h *Handler) holdsPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	v, err := h.holdsView(r, st)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/holds", v)
}

// holdFields places the errors of the add-hold form.
var holdFields = fields{"account": "account", "reason": "reason", "until": "until"}

// holdAddPost places a hold (fields account, reason, until as
// YYYY-MM-DD, empty for until released).
func (h *Handler) holdAddPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	account := strings.TrimSpace(r.PostForm.Get("account"))
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	untilText := strings.TrimSpace(r.PostForm.Get("until"))
	fail := func(status int, field, msg string) {
		v, err := h.holdsView(r, st)
		if err != nil {
			h.consoleError(w, r, st, err)
			return
		}
		v.Form = map[string]string{"account": account, "reason": reason, "until": untilText}
		if field == "" {
			v.Error = upperFirst(msg)
		} else {
			v.Errors[field] = upperFirst(msg)
		}
		h.renderConsole(w, r, st, status, "console/holds", v)
	}
	var until *time.Time
	if untilText != "" {
		t, err := time.Parse(time.DateOnly, untilText)
		if err != nil {
			fail(http.StatusBadRequest, "until", "Enter a date as YYYY-MM-DD, or leave it empty for a hold until released.")
			return
		}
		t = t.Add(24*time.Hour - time.Second) // the end of that day, UTC
		until = &t
	}
	if account == "" {
		fail(http.StatusBadRequest, "account", "Enter the account ID (acc_…).")
		return
	}
	if reason == "" {
		fail(http.StatusBadRequest, "reason", "Give the legal reason for the hold.")
		return
	}
	if _, err := h.cfg.Holds.Add(r.Context(), st.p, account, reason, until); err != nil {
		if !onForm(holdFields, err) {
			h.consoleError(w, r, st, err)
			return
		}
		v, verr := h.holdsView(r, st)
		if verr != nil {
			h.consoleError(w, r, st, verr)
			return
		}
		v.Form = map[string]string{"account": account, "reason": reason, "until": untilText}
		h.renderConsole(w, r, st, h.place(r, v, holdFields, err), "console/holds", v)
		return
	}
	redirect(w, r, "/console/holds?msg=hold-added")
}

// holdReleasePost ends a hold.
func (h *Handler) holdReleasePost(w http.ResponseWriter, r *http.Request, st *staffState) {
	if err := h.cfg.Holds.Release(r.Context(), st.p, r.PathValue("id")); err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	redirect(w, r, "/console/holds?msg=hold-released")
}

// ---- disclosures ----

// disclosuresPage lists the ledger, oldest first (audited by the
// service).
func (h *Handler) disclosuresPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	ds, err := h.cfg.Disclosures.List(r.Context(), st.p, time.Time{}, time.Time{})
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	slices.Reverse(ds) // newest first
	h.renderConsole(w, r, st, http.StatusOK, "console/disclosures", &view{Title: "Disclosure ledger", Nav: "/console/disclosures",
		Data: ds})
}

// disclosurePage shows one ledger entry (audited by the service).
func (h *Handler) disclosurePage(w http.ResponseWriter, r *http.Request, st *staffState) {
	d, err := h.cfg.Disclosures.Get(r.Context(), st.p, r.PathValue("id"))
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/disclosure", &view{Title: "Disclosure " + d.Reference, Nav: "/console/disclosures",
		Data: struct {
			D      *store.Disclosure
			Gagged bool
		}{d, d.Gagged(h.cfg.Clock())}})
}

// ---- transparency report ----

// transparencyData is the data of the transparency page.
type transparencyData struct {
	Periods   []string // ended half-years, newest first
	PublicKey string
}

// endedPeriods returns the n most recent half-years that have ended by
// now, newest first.
func endedPeriods(now time.Time, n int) []string {
	p := transparency.PeriodOf(now)
	var out []string
	for len(out) < n {
		if p.Half == 2 {
			p.Half = 1
		} else {
			p.Year, p.Half = p.Year-1, 2
		}
		out = append(out, p.String())
	}
	return out
}

func (h *Handler) transparencyView(st *staffState) *view {
	d := transparencyData{Periods: endedPeriods(h.cfg.Clock(), 6)}
	if key, err := h.cfg.TransparencyKey(); err == nil {
		d.PublicKey = transparency.EncodePublicKey(key.Public().(ed25519.PublicKey))
	} else {
		h.cfg.Logger.Error("web: transparency key", "err", err)
	}
	return &view{Title: "Transparency report", Nav: "/console/transparency", Errors: map[string]string{},
		Form: map[string]string{}, Data: d}
}

// transparencyPage shows the form that builds a report.
func (h *Handler) transparencyPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	h.renderConsole(w, r, st, http.StatusOK, "console/transparency", h.transparencyView(st))
}

// transparencyFields places the errors of the report form.
var transparencyFields = fields{"period": "period", "canary": "canary"}

// transparencyPost builds and signs the report for a half-year (fields
// period, canary) and sends the signed file as a download. The signing is
// audited by the service.
func (h *Handler) transparencyPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	periodText := strings.TrimSpace(r.PostForm.Get("period"))
	canary := strings.TrimSpace(r.PostForm.Get("canary"))
	fail := func(err error) {
		if !onForm(transparencyFields, err) {
			h.consoleError(w, r, st, err)
			return
		}
		v := h.transparencyView(st)
		v.Form = map[string]string{"period": periodText, "canary": canary}
		h.renderConsole(w, r, st, h.place(r, v, transparencyFields, err), "console/transparency", v)
	}
	p, err := transparency.ParsePeriod(periodText)
	if err != nil {
		fail(err)
		return
	}
	key, err := h.cfg.TransparencyKey()
	if err != nil {
		h.consoleError(w, r, st, fmt.Errorf("transparency key: %w", err))
		return
	}
	file, _, err := h.cfg.Disclosures.Transparency(r.Context(), st.p, p, canary, key)
	if err != nil {
		fail(err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Disposition", `attachment; filename="transparency-`+p.String()+`.json"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(file)
}

// ---- retention ----

// retentionData is the data of the retention page.
type retentionData struct {
	Rules []retention.Rule
	Last  *store.RetentionRun
}

// retentionPage shows the retention rules and the last sweep's counts.
func (h *Handler) retentionPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	rules, last, err := h.cfg.Retention.Status(r.Context(), st.p)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/retention", &view{Title: "Retention", Nav: "/console/retention",
		Data: retentionData{Rules: rules, Last: last}})
}

// ---- record of processing ----

// recordsPage shows the record of processing activities, generated from
// the inventory in force and the controller's identity (the read is
// audited by the service). It holds no personal data of users.
func (h *Handler) recordsPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	rop, err := h.cfg.Records.Record(r.Context(), st.p)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/records", &view{Title: "Record of processing", Nav: "/console/records",
		Data: rop})
}

// ---- accounts ----

// staffAccountPage shows an account's contacts to staff who may read
// them (audited by the service).
func (h *Handler) staffAccountPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	a, err := h.cfg.Accounts.StaffShow(r.Context(), st.p, r.PathValue("id"))
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/account", &view{Title: "Account " + a.ID, Nav: "/console/requests", Data: a})
}

// ---- gateways ----

// gatewayRow is one gateway: where it is and how many sessions it
// carries now. There is no per-client data.
type gatewayRow struct {
	ID, Region, Endpoint string
	Enrolled             bool
	LastSeen             *time.Time
	Live                 int
}

// gatewaysPage lists the gateways with live session counts (the listing
// is audited by the service).
func (h *Handler) gatewaysPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	gws, err := h.cfg.Gateways.StaffList(r.Context(), st.p)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	live := h.cfg.Usage.Live()
	rows := make([]gatewayRow, 0, len(gws))
	total := 0
	for _, g := range gws {
		rows = append(rows, gatewayRow{ID: g.ID, Region: g.Region, Endpoint: g.Endpoint, Enrolled: g.PublicKey != "",
			LastSeen: g.LastSeen, Live: live[g.ID]})
		total += live[g.ID]
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/gateways", &view{Title: "Gateways", Nav: "/console/gateways",
		Data: struct {
			Gateways []gatewayRow
			Total    int
			Mode     string
		}{rows, total, h.cfg.Usage.Mode()}})
}

// ---- audit log ----

// AuditPageSize is how many audit entries a page of the viewer shows.
const AuditPageSize = 50

// auditEntry is an audit entry as the viewer shows it.
type auditEntry struct {
	auditchain.Entry
	HashHex string
	// Email is the staff actor's work email ("" for the System, the
	// operator and removed staff); RoleTitle the role in words.
	Email, RoleTitle string
}

// auditData is the data of the audit viewer.
type auditData struct {
	Entries      []auditEntry
	Older, Newer string // page links ("" at either end)
	First, Last  int64
	Verified     *verifyResult
}

// verifyResult is the outcome of "verify chain".
type verifyResult struct {
	OK      bool
	Checked int
	Message string
}

// auditView reads one page: the entries after ?after=N, or the newest
// page without it. The service records the read in the log itself.
func (h *Handler) auditView(r *http.Request, st *staffState) (*view, error) {
	after := int64(-1)
	if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, errs.E(errs.Invalid, "after must be a sequence number")
		}
		after = n
	}
	page, err := h.cfg.Audit.Read(r.Context(), st.p, after, AuditPageSize)
	if err != nil {
		return nil, err
	}
	es, last := page.Entries, page.Last
	d := auditData{Last: last}
	for i := len(es) - 1; i >= 0; i-- { // newest first on the page
		d.Entries = append(d.Entries, auditEntry{Entry: es[i], HashHex: fmt.Sprintf("%x", es[i].Hash),
			Email: page.Emails[es[i].Actor], RoleTitle: staff.RoleTitle(es[i].Role)})
	}
	if len(es) > 0 {
		d.First = es[0].Seq
		if es[len(es)-1].Seq < last {
			d.Newer = "/console/audit?after=" + strconv.FormatInt(es[len(es)-1].Seq, 10)
		}
		if after < 0 { // the newest page
			after = max(0, last-AuditPageSize)
		}
		if es[0].Seq > 1 && after > 0 {
			d.Older = "/console/audit?after=" + strconv.FormatInt(max(0, es[0].Seq-1-AuditPageSize), 10)
		}
	}
	return &view{Title: "Audit log", Nav: "/console/audit", Data: &d}, nil
}

// auditPage shows a page of the audit log, newest first.
func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	v, err := h.auditView(r, st)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/audit", v)
}

// auditVerifyPost checks the whole hash chain (the service records the
// check) and shows the result above the newest page.
func (h *Handler) auditVerifyPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	n, verr := h.cfg.Audit.Verify(r.Context(), st.p)
	res := &verifyResult{OK: verr == nil, Checked: n}
	var brk *auditchain.BreakError
	switch {
	case verr == nil:
		res.Message = fmt.Sprintf("The chain is intact: %d entries checked, each one's hash links to the one before.", n)
	case errors.As(verr, &brk):
		res.Message = "The chain is BROKEN: " + brk.Error() + ". Entries were changed or removed; treat the log as tampered with."
	default:
		h.consoleError(w, r, st, verr)
		return
	}
	r.URL.RawQuery = ""
	v, err := h.auditView(r, st)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	v.Data.(*auditData).Verified = res
	status := http.StatusOK
	if !res.OK {
		status = http.StatusConflict
	}
	h.renderConsole(w, r, st, status, "console/audit", v)
}
