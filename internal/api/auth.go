package api

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/nitronet/nitronet/internal/accounts"
)

// Principal is an authenticated user.
type Principal struct {
	AccountID string
	Token     string
}

// Auth authenticates users by their Bearer token.
type Auth struct {
	accounts *accounts.Service
	log      *slog.Logger
}

// Require wraps h so that it runs only for a valid Bearer token; otherwise
// the response is 401.
func (a *Auth) Require(h func(http.ResponseWriter, *http.Request, Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		id, err := a.accounts.Authenticate(r.Context(), tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nitronet"`)
			writeError(w, a.log, err)
			return
		}
		p := Principal{AccountID: id, Token: tok}
		h(w, r, p)
	})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
