package web

import (
	"net/http"
	"strings"

	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/store"
)

// The account a request is about: the data the request concerns, for
// staff who may read accounts (the service audits every view), and the
// correction of a contact as part of a rectification.

// requestAccountData is the data of the request's account page.
type requestAccountData struct {
	privacy.AccountView
	TypeName string
	// Channels are the contacts that can be corrected.
	Channels []string
}

// requestAccountView reads the account of the request in the path
// (audited by the service).
func (h *Handler) requestAccountView(r *http.Request, st *staffState) (*view, error) {
	av, err := h.cfg.Privacy.StaffAccount(r.Context(), st.p, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return &view{Title: "Account of " + strings.ToLower(typeName(av.Request.Type)) + " request " + av.Request.ID,
		Nav: "/console/requests", Errors: map[string]string{}, Form: map[string]string{},
		Data: requestAccountData{AccountView: *av, TypeName: typeName(av.Request.Type),
			Channels: []string{string(store.Email), string(store.Mobile)}}}, nil
}

// requestAccountPage shows the account a request is about.
func (h *Handler) requestAccountPage(w http.ResponseWriter, r *http.Request, st *staffState) {
	v, err := h.requestAccountView(r, st)
	if err != nil {
		h.consoleError(w, r, st, err)
		return
	}
	h.renderConsole(w, r, st, http.StatusOK, "console/request-account", v)
}

// correctFields places the errors of the correction form.
var correctFields = fields{"channel": "correct_channel", "value": "correct_value"}

// correctContactPost enters a corrected email or mobile for a
// rectification; it takes effect once the code sent to it is entered.
func (h *Handler) correctContactPost(w http.ResponseWriter, r *http.Request, st *staffState) {
	id := r.PathValue("id")
	ch := strings.TrimSpace(r.PostForm.Get("channel"))
	value := strings.TrimSpace(r.PostForm.Get("value"))
	err := h.cfg.Privacy.StaffCorrectContact(r.Context(), st.p, id, store.Channel(ch), value)
	if err == nil {
		redirect(w, r, requestURL(id)+"/account?msg=correction-sent")
		return
	}
	if !onForm(correctFields, err) {
		h.consoleError(w, r, st, err)
		return
	}
	v, verr := h.requestAccountView(r, st)
	if verr != nil {
		h.consoleError(w, r, st, verr)
		return
	}
	v.Form = map[string]string{"correct_channel": ch, "correct_value": value}
	h.renderConsole(w, r, st, h.place(r, v, correctFields, err), "console/request-account", v)
}
