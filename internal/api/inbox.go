package api

import (
	"net/http"
	"strconv"

	"github.com/nitronet/nitronet/internal/errs"
)

// registerInbox registers the account inbox routes on mux, authenticated
// by s:
//
//	GET  /api/v1/me/inbox            {"messages": [...], "unread": n}; ?limit=N
//	POST /api/v1/me/inbox/{id}/read  204; another account's message is 404
//	DELETE /api/v1/me/inbox/{id}     204; deleted for good; another account's message is 404
func (s *Server) registerInbox(mux Mux) {
	svc := s.cfg.Inbox
	log := s.cfg.Logger
	mux.Handle("GET /api/v1/me/inbox", s.auth.Require(func(w http.ResponseWriter, r *http.Request, p Principal) {
		limit := 0
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				writeError(w, log, errs.Field(errs.Invalid, "limit", "limit must be a positive number"))
				return
			}
			limit = n
		}
		msgs, unread, err := svc.List(r.Context(), p.AccountID, limit)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"messages": msgs, "unread": unread})
	}))
	mux.Handle("POST /api/v1/me/inbox/{id}/read", s.auth.Require(func(w http.ResponseWriter, r *http.Request, p Principal) {
		if err := svc.MarkRead(r.Context(), p.AccountID, r.PathValue("id")); err != nil {
			writeError(w, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.Handle("DELETE /api/v1/me/inbox/{id}", s.auth.Require(func(w http.ResponseWriter, r *http.Request, p Principal) {
		if err := svc.Delete(r.Context(), p.AccountID, r.PathValue("id")); err != nil {
			writeError(w, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}
