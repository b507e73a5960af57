package web

import (
	"net/http"

	"github.com/nitronet/nitronet/internal/inbox"
)

// inboxPageSize is how many messages the inbox page shows.
const inboxPageSize = 100

// inboxData is the data of the inbox page.
type inboxData struct {
	Messages []inbox.Message
	Unread   int
}

// inboxPage lists the account's messages, newest first, unread marked.
func (h *Handler) inboxPage(w http.ResponseWriter, r *http.Request, st *state) {
	ms, unread, err := h.cfg.Inbox.List(r.Context(), st.accountID, inboxPageSize)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "inbox", &view{Title: "Inbox", Nav: "inbox",
		Data: inboxData{Messages: ms, Unread: unread}})
}

// inboxReadPost marks one message read.
func (h *Handler) inboxReadPost(w http.ResponseWriter, r *http.Request, st *state) {
	if err := h.cfg.Inbox.MarkRead(r.Context(), st.accountID, r.PathValue("id")); err != nil {
		h.renderError(w, r, st, err)
		return
	}
	redirect(w, r, "/inbox?msg=read")
}

// inboxDeletePost deletes one message of the inbox.
func (h *Handler) inboxDeletePost(w http.ResponseWriter, r *http.Request, st *state) {
	if err := h.cfg.Inbox.Delete(r.Context(), st.accountID, r.PathValue("id")); err != nil {
		h.renderError(w, r, st, err)
		return
	}
	redirect(w, r, "/inbox?msg=deleted")
}

// inboxReadAllPost marks every listed unread message read.
func (h *Handler) inboxReadAllPost(w http.ResponseWriter, r *http.Request, st *state) {
	ms, _, err := h.cfg.Inbox.List(r.Context(), st.accountID, inbox.ListLimit)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	for _, m := range ms {
		if m.ReadAt != nil {
			continue
		}
		if err := h.cfg.Inbox.MarkRead(r.Context(), st.accountID, m.ID); err != nil {
			h.renderError(w, r, st, err)
			return
		}
	}
	redirect(w, r, "/inbox?msg=all-read")
}
