package web

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/nitronet/nitronet/internal/inventory"
)

//go:embed policy/privacy-policy.txt
var embeddedPolicy string

// Policy supplies the privacy policy the portal shows. It is the seam for
// versioned policies: a later implementation reads versions from the store
// and records acceptances; the portal only asks for the current one.
// Implementations must be safe for concurrent use.
type Policy interface {
	// Current returns the policy in force now.
	Current(ctx context.Context) (PolicyDocument, error)
}

// PolicyDocument is one version of the privacy policy.
type PolicyDocument struct {
	Version string // a label shown to users, e.g. "1"
	Digest  string // hex SHA-256 of Text, to tell versions apart
	Text    string // plain text: headings, paragraphs and "•" bullets
}

// staticPolicy is a Policy with a single, fixed version.
type staticPolicy struct{ doc PolicyDocument }

// Current implements Policy.
func (p staticPolicy) Current(context.Context) (PolicyDocument, error) { return p.doc, nil }

// DefaultPolicy returns the Policy built into this package: the privacy
// policy text shipped with Nitronet, as version "1".
func DefaultPolicy() Policy { return StaticPolicy("1", embeddedPolicy) }

// StaticPolicy returns a Policy that always answers with text as version.
func StaticPolicy(version, text string) Policy {
	sum := sha256.Sum256([]byte(text))
	return staticPolicy{PolicyDocument{Version: version, Digest: hex.EncodeToString(sum[:]), Text: text}}
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
}

// landing is the home page: what Nitronet keeps and what it never keeps,
// generated from the data inventory.
func (h *Handler) landing(w http.ResponseWriter, r *http.Request, st *state) {
	h.render(w, r, st, http.StatusOK, "landing", &view{Title: "A VPN that keeps only what it must", Nav: "home",
		Data: landingData{NeverKept: inventory.NeverKept(), Categories: inventory.Default()}})
}

// privacyData is the data of the privacy policy page.
type privacyData struct {
	Doc    PolicyDocument
	Blocks []block
}

// privacy renders the current privacy policy.
func (h *Handler) privacy(w http.ResponseWriter, r *http.Request, st *state) {
	doc, err := h.policy.Current(r.Context())
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "privacy", &view{Title: "Privacy policy", Nav: "privacy",
		Data: privacyData{Doc: doc, Blocks: parsePolicy(doc.Text)}})
}
