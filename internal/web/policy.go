package web

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/policy"
	"github.com/nitronet/nitronet/internal/store"
)

// Policies supplies the versioned privacy policy and terms, and records
// acceptances of material changes. *policy.Service implements it.
// Implementations must be safe for concurrent use.
type Policies interface {
	// Current returns the newest version of each kind, with bodies.
	Current(ctx context.Context) ([]policy.Document, error)
	// History returns every published version, newest first per kind.
	History(ctx context.Context, withBody bool) ([]policy.Document, error)
	// Document returns one version with its body; unknown ids are
	// NotFound.
	Document(ctx context.Context, id string) (policy.Document, error)
	// Pending returns the documents the account must accept.
	Pending(ctx context.Context, accountID string) ([]policy.Document, error)
	// Accept records the account's acceptance of document id.
	Accept(ctx context.Context, accountID, id string) (policy.Acceptance, error)
}

// kindName names a policy document kind for people.
func kindName(kind string) string {
	if kind == store.PolicyTerms {
		return "terms of use"
	}
	return "privacy policy"
}

// block is a piece of a policy rendered as HTML: a heading, a paragraph or
// a list (whose items may hold a nested list).
type block struct {
	Heading   string
	Paragraph string
	Items     []listItem
}

// listItem is a bullet with optional sub-bullets.
type listItem struct {
	Text string
	Sub  []string
}

// parsePolicy splits plain policy text into blocks. A block is separated
// by blank lines; a single short line without a final full stop is a
// heading; lines starting with "•" are bullets, nested by indentation.
func parsePolicy(text string) []block {
	var out []block
	for _, chunk := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		lines := []string{}
		for _, l := range strings.Split(chunk, "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			continue
		}
		first := strings.TrimSpace(lines[0])
		switch {
		case strings.HasPrefix(first, "•"):
			var items []listItem
			base := indent(lines[0])
			for _, l := range lines {
				t := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "•"))
				if indent(l) > base && len(items) > 0 && strings.HasPrefix(strings.TrimSpace(l), "•") {
					items[len(items)-1].Sub = append(items[len(items)-1].Sub, t)
				} else if strings.HasPrefix(strings.TrimSpace(l), "•") || len(items) == 0 {
					items = append(items, listItem{Text: t})
				} else {
					items[len(items)-1].Text += " " + t
				}
			}
			out = append(out, block{Items: items})
		case len(lines) == 1 && len(first) < 80 && !strings.HasSuffix(first, "."):
			out = append(out, block{Heading: first})
		default:
			parts := make([]string, len(lines))
			for i, l := range lines {
				parts[i] = strings.TrimSpace(l)
			}
			out = append(out, block{Paragraph: strings.Join(parts, " ")})
		}
	}
	return out
}

// indent returns the number of leading spaces of l.
func indent(l string) int { return len(l) - len(strings.TrimLeft(l, " \t")) }

// landingData is the data of the landing page.
type landingData struct {
	NeverKept  []string
	Categories []inventory.Category
	Controller []controller.Row
}

// landing is the home page: who is responsible, and what Nitronet keeps
// and what it never keeps, generated from the inventory in force.
func (h *Handler) landing(w http.ResponseWriter, r *http.Request, st *state) {
	gws, err := h.cfg.Gateways.Enrolled(r.Context())
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	var regions []string
	for _, g := range gws {
		if !slices.Contains(regions, g.Region) {
			regions = append(regions, g.Region)
		}
	}
	slices.Sort(regions)
	h.render(w, r, st, http.StatusOK, "landing", &view{Title: "A VPN that keeps only what it must", Nav: "home",
		Data: landingHome{Regions: regions, Apps: wireGuardApps(), NeverKept: inventory.NeverKept()}})
}

// landingHome is the data of the home page: what the service is, its
// regions, the apps and what it never keeps, on one screen.
type landingHome struct {
	Regions   []string
	Apps      []wgApp
	NeverKept []string
}

// dataPage shows the data inventory: what is kept, why and for how long,
// what is never kept, and who the controller is.
func (h *Handler) dataPage(w http.ResponseWriter, r *http.Request, st *state) {
	h.render(w, r, st, http.StatusOK, "data", &view{Title: "What we keep", Nav: "data",
		Data: landingData{NeverKept: inventory.NeverKept(), Categories: h.cfg.Inventory, Controller: h.cfg.Controller.Rows()}})
}

// docView is one policy version ready to show.
type docView struct {
	Doc    policy.Document
	Name   string // "privacy policy" or "terms of use"
	Blocks []block
}

func newDocView(d policy.Document) docView {
	return docView{Doc: d, Name: kindName(d.Kind), Blocks: parsePolicy(d.Body)}
}

// privacyData is the data of the policy pages.
type privacyData struct {
	Docs    []docView
	Old     bool // an older version: link to the current one
	History []policy.Document
}

// privacy renders the current privacy policy (and the terms, if any are
// published), with a link to the history.
func (h *Handler) privacy(w http.ResponseWriter, r *http.Request, st *state) {
	docs, err := h.cfg.Policy.Current(r.Context())
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	d := privacyData{}
	for _, doc := range docs {
		d.Docs = append(d.Docs, newDocView(doc))
	}
	h.render(w, r, st, http.StatusOK, "privacy", &view{Title: "Privacy policy", Nav: "privacy", Data: d})
}

// privacyHistory lists every published version.
func (h *Handler) privacyHistory(w http.ResponseWriter, r *http.Request, st *state) {
	hist, err := h.cfg.Policy.History(r.Context(), false)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "privacy-history", &view{Title: "Policy history", Nav: "privacy",
		Data: privacyData{History: hist}})
}

// privacyVersion shows one published version.
func (h *Handler) privacyVersion(w http.ResponseWriter, r *http.Request, st *state) {
	doc, err := h.cfg.Policy.Document(r.Context(), r.PathValue("id"))
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	cur, err := h.cfg.Policy.Current(r.Context())
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	old := true
	for _, c := range cur {
		if c.ID == doc.ID {
			old = false
		}
	}
	h.render(w, r, st, http.StatusOK, "privacy", &view{Title: "Privacy policy, version history", Nav: "privacy",
		Data: privacyData{Docs: []docView{newDocView(doc)}, Old: old}})
}

// acceptPage shows each document the account must accept, with its text
// and an Accept button.
func (h *Handler) acceptPage(w http.ResponseWriter, r *http.Request, st *state) {
	pending, err := h.cfg.Policy.Pending(r.Context(), st.accountID)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	var docs []docView
	for _, p := range pending {
		d, err := h.cfg.Policy.Document(r.Context(), p.ID)
		if err != nil {
			h.renderError(w, r, st, err)
			return
		}
		docs = append(docs, newDocView(d))
	}
	v := &view{Title: "Policy changes to accept", Nav: "privacy", Data: privacyData{Docs: docs}}
	h.render(w, r, st, http.StatusOK, "policy-accept", v)
}

// acceptPost records the acceptance of the document named in the form.
func (h *Handler) acceptPost(w http.ResponseWriter, r *http.Request, st *state) {
	id := r.PostForm.Get("document")
	if _, err := h.cfg.Policy.Accept(r.Context(), st.accountID, id); err != nil {
		if errs.Is(err, errs.Precondition) {
			// A newer version appeared while the page was open: show it.
			redirect(w, r, "/policy/accept")
			return
		}
		h.renderError(w, r, st, err)
		return
	}
	pending, err := h.cfg.Policy.Pending(r.Context(), st.accountID)
	if err == nil && len(pending) > 0 {
		redirect(w, r, "/policy/accept?msg=policy-accepted")
		return
	}
	redirect(w, r, "/devices?msg=policy-accepted")
}
