package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/devices"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/store"
)

// requestKind describes one type of privacy request for the create form.
type requestKind struct {
	Type, Name, Hint string
	Liftable         bool // restriction and objection can be lifted
}

// requestKinds returns the request types in the order privacy.Types gives,
// with plain descriptions.
func requestKinds() []requestKind {
	desc := map[string]requestKind{
		store.RequestAccess: {Name: "Get a copy of my data (access)",
			Hint: "Download everything we hold about you, as a JSON file and as a readable web page, with what we do with it and why."},
		store.RequestPortability: {Name: "Take my data elsewhere (portability)",
			Hint: "The same machine-readable JSON export, for moving your data to another service."},
		store.RequestRectification: {Name: "Correct my data (rectification)",
			Hint: "Tell us what is wrong. Your email address and mobile number you can change yourself on the account page once this request is verified."},
		store.RequestErasure: {Name: "Erase my account (erasure)",
			Hint: "Close your account and destroy your data. You confirm once more, after proving it is you, on a page that says exactly what happens."},
		store.RequestRestriction: {Name: "Restrict processing (restriction)",
			Hint: "Stop all processing of your data except storing it and the service you use (with the messages it needs and the notices the law requires): no announcements, no statistics. For example while a question about your data is settled.", Liftable: true},
		store.RequestObjection: {Name: "Object to processing (objection)",
			Hint: "Stop product announcements and leave your account out of aggregate statistics. Service messages and legal notices still reach you.", Liftable: true},
	}
	var out []requestKind
	for _, t := range privacy.Types() {
		k := desc[t]
		k.Type = t
		out = append(out, k)
	}
	return out
}

// typeName names a request type for people.
func typeName(t string) string {
	switch t {
	case store.RequestAccess:
		return "Access"
	case store.RequestPortability:
		return "Portability"
	case store.RequestRectification:
		return "Rectification"
	case store.RequestErasure:
		return "Erasure"
	case store.RequestRestriction:
		return "Restriction"
	case store.RequestObjection:
		return "Objection"
	}
	return t
}

// centreData is the data of the privacy centre.
type centreData struct {
	Requests []privacy.Request
	Kinds    []requestKind
	Lift     string // privacy.Lift
	Flags    store.Flags
}

func (h *Handler) centreView(r *http.Request, st *state) (*view, error) {
	rs, err := h.cfg.Privacy.List(r.Context(), st.accountID)
	if err != nil {
		return nil, err
	}
	flags, err := h.cfg.Privacy.Flags(r.Context(), st.accountID)
	if err != nil {
		return nil, err
	}
	return &view{Title: "Privacy centre", Nav: "centre", Errors: map[string]string{}, Form: map[string]string{},
		Data: centreData{Requests: rs, Kinds: requestKinds(), Lift: privacy.Lift, Flags: flags}}, nil
}

// centrePage lists the account's requests with status and due date, and
// the form to make a new one.
func (h *Handler) centrePage(w http.ResponseWriter, r *http.Request, st *state) {
	v, err := h.centreView(r, st)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "centre", v)
}

// centreFields places the errors of the new-request form.
var centreFields = fields{"type": "type", "details": "details", "lift": "lift"}

// centreCreatePost records a new request and sends the identity-proof
// codes. A ticked "lift" box on a restriction or objection sends the
// details "lift", which undoes the earlier one.
func (h *Handler) centreCreatePost(w http.ResponseWriter, r *http.Request, st *state) {
	typ := r.PostForm.Get("type")
	details := r.PostForm.Get("details")
	lift := r.PostForm.Get("lift") != ""
	fail := func(err error) {
		v, verr := h.centreView(r, st)
		if verr != nil {
			h.renderError(w, r, st, verr)
			return
		}
		v.Form = map[string]string{"type": typ, "details": details}
		h.render(w, r, st, h.place(r, v, centreFields, err), "centre", v)
	}
	if typ == "" {
		fail(errs.Field(errs.Invalid, "type", "Choose what you would like to do."))
		return
	}
	if lift {
		if typ != store.RequestRestriction && typ != store.RequestObjection {
			fail(errs.Field(errs.Invalid, "lift", "Only a restriction or an objection can be lifted."))
			return
		}
		details = privacy.Lift
	}
	if err := httpedge.Allow(h.lim.Verify, httpedge.AccountKey(httpedge.PrivacyNew, st.accountID)); err != nil {
		fail(err)
		return
	}
	req, err := h.cfg.Privacy.Create(r.Context(), st.accountID, typ, details)
	if err != nil {
		fail(err)
		return
	}
	redirect(w, r, "/privacy-centre/requests/"+url.PathEscape(req.ID)+"?msg=request-created")
}

// requestData is the data of one request's page.
type requestData struct {
	Req        *privacy.Request
	Proof      map[string]bool // the identity-proof fields to ask for
	CanExport  bool
	CanErase   bool // a verified erasure waiting for confirmation
	CanCorrect bool // a verified rectification: change contacts on /account
	Liftable   bool
	// Recipients are the processors told of a rectification or erasure.
	Recipients []recipientRow
}

func (h *Handler) requestView(r *http.Request, st *state) (*view, error) {
	req, err := h.cfg.Privacy.Get(r.Context(), st.accountID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := requestData{Req: req, Proof: map[string]bool{}, Recipients: h.recipientRows(req.Recipients)}
	for _, f := range req.IdentityProof {
		d.Proof[f] = true
	}
	now := h.cfg.Clock()
	d.CanExport = req.ExportUntil != nil && now.Before(*req.ExportUntil)
	d.CanErase = req.Type == store.RequestErasure && req.Status == store.RequestVerified
	d.CanCorrect = req.Type == store.RequestRectification && req.Status == store.RequestVerified
	d.Liftable = (req.Type == store.RequestRestriction || req.Type == store.RequestObjection) &&
		req.Status == store.RequestCompleted && !strings.EqualFold(req.Details, privacy.Lift)
	return &view{Title: typeName(req.Type) + " request", Nav: "centre", Errors: map[string]string{}, Form: map[string]string{},
		Data: d}, nil
}

// requestPage shows one request: status, due date and what comes next
// (identity proof, downloads, the erasure step).
func (h *Handler) requestPage(w http.ResponseWriter, r *http.Request, st *state) {
	v, err := h.requestView(r, st)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "request", v)
}

// proofFields places the errors of the identity-proof form.
var proofFields = fields{"password": "password", "email_code": "email_code", "mobile_code": "mobile_code"}

// requestVerifyPost proves identity with the password and both codes.
func (h *Handler) requestVerifyPost(w http.ResponseWriter, r *http.Request, st *state) {
	id := r.PathValue("id")
	pw := r.PostForm.Get("password")
	emailCode, mobileCode := strings.TrimSpace(r.PostForm.Get("email_code")), strings.TrimSpace(r.PostForm.Get("mobile_code"))
	err := httpedge.Allow(h.lim.Verify, httpedge.AccountKey(httpedge.Attempt, st.accountID))
	if err == nil {
		_, err = h.cfg.Privacy.Verify(r.Context(), st.accountID, id, pw, emailCode, mobileCode)
	}
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			h.renderError(w, r, st, err)
			return
		}
		v, verr := h.requestView(r, st)
		if verr != nil {
			h.renderError(w, r, st, verr)
			return
		}
		v.Form = map[string]string{"email_code": emailCode, "mobile_code": mobileCode}
		h.render(w, r, st, h.place(r, v, proofFields, err), "request", v)
		return
	}
	redirect(w, r, "/privacy-centre/requests/"+url.PathEscape(id)+"?msg=request-verified")
}

// requestResendPost sends fresh identity-proof codes.
func (h *Handler) requestResendPost(w http.ResponseWriter, r *http.Request, st *state) {
	id := r.PathValue("id")
	err := httpedge.Allow(h.lim.Verify, httpedge.AccountKey(httpedge.Resend, st.accountID))
	if err == nil {
		err = h.cfg.Privacy.ResendCodes(r.Context(), st.accountID, id)
	}
	if err != nil {
		v, verr := h.requestView(r, st)
		if verr != nil {
			h.renderError(w, r, st, verr)
			return
		}
		h.render(w, r, st, h.place(r, v, nil, err), "request", v)
		return
	}
	redirect(w, r, "/privacy-centre/requests/"+url.PathEscape(id)+"?msg=codes-sent")
}

// requestExportPost downloads the export of a verified access or
// portability request, as JSON or as the human-readable HTML copy. It
// issues a single-use export token and spends it at once, so no token
// ever appears in a URL.
func (h *Handler) requestExportPost(w http.ResponseWriter, r *http.Request, st *state) {
	id := r.PathValue("id")
	format := r.PostForm.Get("format")
	if format != "json" && format != "html" {
		h.renderError(w, r, st, errs.E(errs.Invalid, "Choose the JSON or the HTML copy."))
		return
	}
	tok, _, err := h.cfg.Privacy.ExportToken(r.Context(), st.accountID, id)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	doc, err := h.cfg.Privacy.Export(r.Context(), st.accountID, id, tok)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	var b bytes.Buffer
	ctype := "application/json; charset=utf-8"
	if format == "html" {
		ctype = "text/html; charset=utf-8"
		err = privacy.RenderHTML(&b, doc)
	} else {
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		err = enc.Encode(doc)
	}
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Disposition", `attachment; filename="nitronet-export-`+id+`.`+format+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// eraseData is the data of the erasure confirmation page.
type eraseData struct {
	Req     *privacy.Request
	Devices []devices.Device
	Warning string
	// Backups is what holds for backups, from the inventory in force.
	Backups string
}

func (h *Handler) eraseView(r *http.Request, st *state) (*view, error) {
	req, err := h.cfg.Privacy.Get(r.Context(), st.accountID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if req.Type != store.RequestErasure {
		return nil, errs.E(errs.NotFound, "This request is not an erasure request.")
	}
	if req.Status == store.RequestPending {
		return nil, errs.E(errs.Precondition, "Prove that it is you first: enter your password and both codes on the request's page.")
	}
	if req.Status != store.RequestVerified {
		return nil, errs.E(errs.Conflict, "This erasure request is already %s.", strings.ToLower(privacy.StatusText(req.Status)))
	}
	ds, err := h.cfg.Devices.List(r.Context(), st.accountID)
	if err != nil {
		return nil, err
	}
	return &view{Title: "Confirm erasure", Nav: "centre", Errors: map[string]string{},
		Data: eraseData{Req: req, Devices: ds, Warning: privacy.ErasureWarning, Backups: h.cfg.Inventory.Backups()}}, nil
}

// erasePage is erasure's own confirmation step: what happens, what is
// kept, and the button that does it.
func (h *Handler) erasePage(w http.ResponseWriter, r *http.Request, st *state) {
	v, err := h.eraseView(r, st)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "erase", v)
}

// erasedData is the data of the page shown after erasure.
type erasedData struct {
	Report    *privacy.ErasureReport
	RequestID string
	At        time.Time
}

// erasePost carries out the confirmed erasure. The account's sessions end
// with it, so the browser's session cookie is cleared and the report is
// shown signed out.
func (h *Handler) erasePost(w http.ResponseWriter, r *http.Request, st *state) {
	v, err := h.eraseView(r, st)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	if r.PostForm.Get("understood") != "yes" {
		v.addError("understood", "Tick this box to confirm that you understand erasure cannot be undone.")
		h.render(w, r, st, http.StatusBadRequest, "erase", v)
		return
	}
	id := r.PathValue("id")
	rep, err := h.cfg.Privacy.ConfirmErasure(r.Context(), st.accountID, id)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.clearSession(w, st)
	h.render(w, r, st, http.StatusOK, "erased", &view{Title: "Your account is erased",
		Data: erasedData{Report: rep, RequestID: id, At: h.cfg.Clock()}})
}
