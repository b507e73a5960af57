package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/store"
)

// registerPrivacy registers the privacy-request routes on mux:
//
//	POST /api/v1/privacy/requests                       {type, details?} → 201 request
//	GET  /api/v1/privacy/requests                       the caller's requests
//	GET  /api/v1/privacy/requests/{id}                  one of them (another account's: 404)
//	POST /api/v1/privacy/requests/{id}/verify           {password, email_code, mobile_code}
//	POST /api/v1/privacy/requests/{id}/resend           new identity-proof codes
//	POST /api/v1/privacy/requests/{id}/export-token     → 201 {token, expires_at, url}
//	GET  /api/v1/privacy/requests/{id}/export?format=json|html&token=T
//	POST /api/v1/privacy/requests/{id}/confirm-erasure  {confirm: true}
//	POST /api/v1/me/contact                             {channel, value, password}
//	POST /api/v1/me/contact/verify                      {channel, code}
//
// Every route needs the account's Bearer token. The export also needs a
// single-use token from export-token (query parameter token, or header
// X-Export-Token) issued to the same account.
func (s *Server) registerPrivacy(mux Mux) {
	h := &privacyHandlers{s: s, svc: s.cfg.Privacy}
	a := s.auth
	mux.Handle("POST /api/v1/privacy/requests", a.Require(h.create))
	mux.Handle("GET /api/v1/privacy/requests", a.Require(h.list))
	mux.Handle("GET /api/v1/privacy/requests/{id}", a.Require(h.get))
	mux.Handle("POST /api/v1/privacy/requests/{id}/verify", a.Require(h.verify))
	mux.Handle("POST /api/v1/privacy/requests/{id}/resend", a.Require(h.resend))
	mux.Handle("POST /api/v1/privacy/requests/{id}/export-token", a.Require(h.exportToken))
	mux.Handle("GET /api/v1/privacy/requests/{id}/export", a.Require(h.export))
	mux.Handle("POST /api/v1/privacy/requests/{id}/confirm-erasure", a.Require(h.confirmErasure))
	mux.Handle("POST /api/v1/me/contact", a.Require(h.contact))
	mux.Handle("POST /api/v1/me/contact/verify", a.Require(h.contactVerify))
}

type privacyHandlers struct {
	s   *Server
	svc *privacy.Service
}

func (h *privacyHandlers) fail(w http.ResponseWriter, err error) { writeError(w, h.s.cfg.Logger, err) }

func (h *privacyHandlers) create(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Type    string `json:"type"`
		Details string `json:"details"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, err)
		return
	}
	if err := required(f("type", req.Type)); err != nil {
		h.fail(w, err)
		return
	}
	// Creating a request sends codes: bound it like code resends.
	if err := limited(h.s.lim.Verify, httpedge.AccountKey(httpedge.PrivacyNew, p.AccountID)); err != nil {
		h.fail(w, err)
		return
	}
	out, err := h.svc.Create(r.Context(), p.AccountID, req.Type, req.Details)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (h *privacyHandlers) list(w http.ResponseWriter, r *http.Request, p Principal) {
	rs, err := h.svc.List(r.Context(), p.AccountID)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": rs})
}

func (h *privacyHandlers) get(w http.ResponseWriter, r *http.Request, p Principal) {
	out, err := h.svc.Get(r.Context(), p.AccountID, r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *privacyHandlers) verify(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Password   string `json:"password"`
		EmailCode  string `json:"email_code"`
		MobileCode string `json:"mobile_code"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, err)
		return
	}
	if err := limited(h.s.lim.Verify, httpedge.AccountKey(httpedge.Attempt, p.AccountID)); err != nil {
		h.fail(w, err)
		return
	}
	out, err := h.svc.Verify(r.Context(), p.AccountID, r.PathValue("id"), req.Password, req.EmailCode, req.MobileCode)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *privacyHandlers) resend(w http.ResponseWriter, r *http.Request, p Principal) {
	if err := limited(h.s.lim.Verify, httpedge.AccountKey(httpedge.Resend, p.AccountID)); err != nil {
		h.fail(w, err)
		return
	}
	if err := h.svc.ResendCodes(r.Context(), p.AccountID, r.PathValue("id")); err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "sent"})
}

func (h *privacyHandlers) exportToken(w http.ResponseWriter, r *http.Request, p Principal) {
	id := r.PathValue("id")
	tok, exp, err := h.svc.ExportToken(r.Context(), p.AccountID, id)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":      tok,
		"expires_at": exp.UTC(),
		"url":        "/api/v1/privacy/requests/" + url.PathEscape(id) + "/export?format=json&token=" + url.QueryEscape(tok),
		"single_use": true,
	})
}

func (h *privacyHandlers) export(w http.ResponseWriter, r *http.Request, p Principal) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "html" {
		h.fail(w, errs.Field(errs.Invalid, "format", `format must be "json" or "html"`))
		return
	}
	tok := q.Get("token")
	if tok == "" {
		tok = r.Header.Get("X-Export-Token")
	}
	id := r.PathValue("id")
	doc, err := h.svc.Export(r.Context(), p.AccountID, id, tok)
	if err != nil {
		h.fail(w, err)
		return
	}
	var buf bytes.Buffer
	ctype := "application/json; charset=utf-8"
	if format == "html" {
		ctype = "text/html; charset=utf-8"
		err = privacy.RenderHTML(&buf, doc)
	} else {
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		err = enc.Encode(doc)
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	hd.Set("Content-Disposition", `attachment; filename="nitronet-export-`+id+`.`+format+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func (h *privacyHandlers) confirmErasure(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Confirm bool `json:"confirm"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, err)
		return
	}
	if !req.Confirm {
		h.fail(w, errs.Field(errs.Invalid, "confirm", `send {"confirm": true} to confirm: %s`, privacy.ErasureWarning))
		return
	}
	rep, err := h.svc.ConfirmErasure(r.Context(), p.AccountID, r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (h *privacyHandlers) contact(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Channel  string `json:"channel"`
		Value    string `json:"value"`
		Password string `json:"password"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, err)
		return
	}
	if err := required(f("channel", req.Channel), f("value", req.Value), f("password", req.Password)); err != nil {
		h.fail(w, err)
		return
	}
	if err := limited(h.s.lim.Verify, httpedge.AccountKey(httpedge.Contact, p.AccountID)); err != nil {
		h.fail(w, err)
		return
	}
	if err := h.svc.RequestContactChange(r.Context(), p.AccountID, store.Channel(req.Channel), req.Value, req.Password); err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{
		// The same answer whether or not another account holds the value.
		"status":     "if no other account uses this " + req.Channel + ", a code is on its way to it",
		"expires_at": h.s.cfg.Clock().Add(privacy.ContactChangeTTL).UTC().Truncate(time.Second),
	})
}

func (h *privacyHandlers) contactVerify(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Channel string `json:"channel"`
		Code    string `json:"code"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, err)
		return
	}
	if err := required(f("channel", req.Channel), f("code", req.Code)); err != nil {
		h.fail(w, err)
		return
	}
	if err := limited(h.s.lim.Verify, httpedge.AccountKey(httpedge.Attempt, p.AccountID)); err != nil {
		h.fail(w, err)
		return
	}
	if err := h.svc.ConfirmContactChange(r.Context(), p.AccountID, store.Channel(req.Channel), req.Code); err != nil {
		h.fail(w, err)
		return
	}
	prof, err := h.s.cfg.Accounts.Profile(r.Context(), p.AccountID)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, prof)
}
