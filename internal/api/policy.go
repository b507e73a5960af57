package api

import (
	"net/http"
)

// registerPolicy registers the policy routes on mux:
//
//	GET  /api/v1/policy               public: the current version of each document, with text
//	GET  /api/v1/policy/history       public: every version, without text
//	GET  /api/v1/policy/{id}          public: one version, with text
//	GET  /api/v1/me/policy            {"pending": [...], "accepted": [...]}: what the caller must accept
//	POST /api/v1/me/policy/accept     {"document_id"} -> 200 with the recorded acceptance
func (s *Server) registerPolicy(mux Mux) {
	svc := s.cfg.Policy
	log := s.cfg.Logger
	mux.HandleFunc("GET /api/v1/policy", func(w http.ResponseWriter, r *http.Request) {
		docs, err := svc.Current(r.Context())
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"documents": docs})
	})
	mux.HandleFunc("GET /api/v1/policy/history", func(w http.ResponseWriter, r *http.Request) {
		docs, err := svc.History(r.Context(), false)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"documents": docs})
	})
	mux.HandleFunc("GET /api/v1/policy/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, err := svc.Document(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, d)
	})
	mux.Handle("GET /api/v1/me/policy", s.auth.Require(func(w http.ResponseWriter, r *http.Request, p Principal) {
		pending, err := svc.Pending(r.Context(), p.AccountID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		acc, err := svc.Acceptances(r.Context(), p.AccountID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"pending": pending, "accepted": acc})
	}))
	mux.Handle("POST /api/v1/me/policy/accept", s.auth.Require(func(w http.ResponseWriter, r *http.Request, p Principal) {
		var req struct {
			DocumentID string `json:"document_id"`
		}
		if err := decode(w, r, &req); err != nil {
			writeError(w, log, err)
			return
		}
		if err := required(f("document_id", req.DocumentID)); err != nil {
			writeError(w, log, err)
			return
		}
		a, err := svc.Accept(r.Context(), p.AccountID, req.DocumentID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, a)
	}))
}
