package inventory

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nitronet/nitronet/internal/controller"
)

// RoP is the record of processing activities of GDPR Art. 30(1). It marshals
// to JSON with the tags shown, and to Markdown with Markdown.
type RoP struct {
	Controller       controller.Identity `json:"controller"`              // Art. 30(1)(a); empty fields are not configured
	Purposes         []string            `json:"purposes"`                // Art. 30(1)(b)
	DataSubjects     []string            `json:"data_subjects"`           // Art. 30(1)(c)
	Categories       []Category          `json:"categories"`              // Art. 30(1)(c), (d), (f) per category
	Recipients       []string            `json:"recipients"`              // Art. 30(1)(d)
	Transfers        string              `json:"third_country_transfers"` // Art. 30(1)(e)
	SecurityMeasures []string            `json:"security_measures"`       // Art. 30(1)(g)
	LegalHolds       string              `json:"legal_holds"`             // how holds override retention
	NeverKept        []string            `json:"never_kept"`              // what is never recorded
}

// transfersText is the default statement on third-country transfers.
const transfersText = "The service itself transfers no personal data outside the country where the operator runs it. " +
	"If the SMTP relay, SMS gateway or hosting provider the operator configures is in a third country, " +
	"the operator must name the country and the safeguard (adequacy decision or standard contractual clauses) here."

// legalHoldsText explains legal holds.
const legalHoldsText = "A legal hold, placed by the operator for a specific account and category when required by law or for a legal claim, " +
	"suspends deletion of the data it covers until it is lifted; every retention sweep reports how many records a hold kept. " +
	"Holds are recorded in the staff access log."

// SecurityMeasures returns the technical and organisational measures of
// Art. 32 GDPR that the software implements, in words. Each call returns a
// new slice.
func SecurityMeasures() []string {
	return []string{
		"TLS for every connection to the control server; WireGuard encryption for all VPN traffic",
		"Passwords stored only as argon2id hashes (at least 19 MiB memory, 2 iterations)",
		"Email addresses and mobile numbers encrypted at rest with AES-256-GCM under a per-account key, itself wrapped by a key held outside the database; lookups by keyed blind index (HMAC)",
		"Erasure by crypto-shredding: destroying an account's key makes what is encrypted under it unreadable at once; the key-encryption key is rotated on a schedule and the old one destroyed, so backups taken before an erasure become unreadable too",
		"One-time codes and tokens stored only as hashes, with expiry and attempt limits",
		"Rate limits, CSRF protection and secure, HTTP-only cookies",
		"Staff access to personal data restricted by role and recorded in a tamper-evident, hash-chained log",
		"Data minimisation: no traffic, endpoint or DNS logging; session intervals at minute granularity only",
		"Device private keys generated on the device and never sent to the service",
		"Gateways isolate clients from each other and from private networks",
		"Retention enforced by an automatic sweep per category",
	}
}

// RecordOfProcessing returns the Art. 30 record for inv, kept by the
// controller ctl. Slices are new; categories are copied shallowly.
func (inv Inventory) RecordOfProcessing(ctl controller.Identity) RoP {
	return RoP{
		Controller:       ctl,
		Purposes:         inv.union(func(c Category) []string { return c.Purposes }),
		DataSubjects:     inv.union(func(c Category) []string { return c.Subjects }),
		Categories:       append(Inventory{}, inv...),
		Recipients:       inv.union(func(c Category) []string { return c.Recipients }),
		Transfers:        transfersText,
		SecurityMeasures: SecurityMeasures(),
		LegalHolds:       legalHoldsText,
		NeverKept:        NeverKept(),
	}
}

// Markdown returns r as a Markdown document, with one section per category.
// Text from the inventory and controller is inserted as is (it is trusted
// configuration, not user input), with "|" escaped in table cells. An
// unset controller detail says so and names the flag that sets it.
func (r RoP) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	list := func(items []string) {
		if len(items) == 0 {
			p("- none\n")
		}
		for _, s := range items {
			p("- %s\n", s)
		}
		p("\n")
	}
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

	p("# Record of processing activities\n\n")
	p("Kept under Art. 30(1) GDPR. Generated from the software's data inventory.\n\n")
	p("## Controller\n\n")
	p("| | |\n|---|---|\n")
	for _, row := range r.Controller.Rows() {
		p("| %s | %s |\n", row.Label, cell(row.Text(true)))
	}
	p("\n")
	p("## Purposes of processing\n\n")
	list(r.Purposes)
	p("## Categories of data subjects\n\n")
	list(r.DataSubjects)
	p("## Categories of personal data\n\n")
	p("| Category | Legal basis | Retention | Recipients | Storage |\n|---|---|---|---|---|\n")
	for _, c := range r.Categories {
		p("| %s | %s | %s | %s | %s |\n", cell(c.Name), cell(c.LegalBasis), cell(c.Retention.String()),
			cell(orNone(c.Recipients)), cell(storageText(c)))
	}
	p("\n")
	for _, c := range r.Categories {
		p("### %s (`%s`)\n\n", c.Name, c.ID)
		p("%s\n\n", c.Description)
		p("- **Data subjects:** %s\n", strings.Join(c.Subjects, "; "))
		p("- **Fields:** %s\n", strings.Join(c.Fields, "; "))
		p("- **Purposes:** %s\n", strings.Join(c.Purposes, "; "))
		p("- **Legal basis:** %s\n", c.LegalBasis)
		p("- **Retention:** %s. %s\n", c.Retention.String(), c.Retention.Criteria)
		p("- **Recipients:** %s\n", orNone(c.Recipients))
		p("- **Source:** %s\n", c.Source)
		p("- **Storage:** %s\n", storageText(c))
		if c.Objectable {
			p("- **Objection:** excluded from this processing if you object or ask for restriction\n")
		}
		p("\n")
	}
	p("## Recipients\n\n")
	list(r.Recipients)
	p("## Transfers to third countries\n\n%s\n\n", r.Transfers)
	p("## Retention and legal holds\n\n%s\n\n", r.LegalHolds)
	p("## Technical and organisational security measures\n\n")
	list(r.SecurityMeasures)
	p("## Never recorded\n\n")
	list(r.NeverKept)
	return b.String()
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	return strings.Join(ss, "; ")
}

// Right is one data-subject right.
type Right struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Article     string `json:"article"`
	Description string `json:"description"`
}

// Rights returns the rights of the data subject that Nitronet supports,
// with how to exercise them. Each call returns a new slice.
func Rights() []Right {
	return []Right{
		{"access", "Access", "Art. 15 GDPR", "Get a copy of your personal data and this information, as a machine-readable JSON export and a readable copy."},
		{"rectification", "Rectification", "Art. 16 GDPR", "Have incorrect data corrected and incomplete data completed."},
		{"erasure", "Erasure", "Art. 17 GDPR", "Have your data erased; your account's key is destroyed at once, and copies in backups become unreadable when the key-encryption key they need is destroyed at the next key rotation."},
		{"restriction", "Restriction", "Art. 18 GDPR", "Have processing restricted while accuracy or lawfulness is checked: your data is then only stored and used for the service you use, with the messages it needs and the notices the law requires; no announcements, no statistics."},
		{"objection", "Objection", "Art. 21 GDPR", "Object to processing based on legitimate interests: product announcements and aggregate statistics stop; service messages and legal notices still reach you."},
		{"portability", "Portability", "Art. 20 GDPR", "Receive the data you provided in a structured, machine-readable format (JSON)."},
		{"complaint", "Complaint", "Art. 77 GDPR", "Lodge a complaint with a supervisory authority, in particular in the country where you live or work or where an infringement took place."},
	}
}

// Article15Info is the information the controller must give with a copy of
// personal data under Art. 15(1) and (2) GDPR. It is included in every
// data export.
type Article15Info struct {
	Purposes           []string        `json:"purposes"`                  // Art. 15(1)(a)
	Categories         []Category      `json:"categories"`                // Art. 15(1)(b), per category
	Recipients         []string        `json:"recipients"`                // Art. 15(1)(c)
	Retention          []RetentionInfo `json:"retention"`                 // Art. 15(1)(d)
	Rights             []Right         `json:"rights"`                    // Art. 15(1)(e), (f)
	Sources            []SourceInfo    `json:"sources"`                   // Art. 15(1)(g)
	AutomatedDecisions string          `json:"automated_decision_making"` // Art. 15(1)(h)
	Transfers          string          `json:"third_country_transfers"`   // Art. 15(2)
	NeverKept          []string        `json:"never_kept"`
}

// RetentionInfo states how long one category is kept.
type RetentionInfo struct {
	Category string  `json:"category"` // category ID
	Name     string  `json:"name"`
	Rule     string  `json:"rule"` // e.g. "90 days after the session ended"
	Days     int     `json:"days"`
	Trigger  Trigger `json:"trigger"`
	Criteria string  `json:"criteria"`
}

// SourceInfo lists the categories that come from one source.
type SourceInfo struct {
	Source     Source   `json:"source"`
	Categories []string `json:"categories"` // category IDs
}

// Article15 returns the Art. 15 information for inv. The categories are
// those Nitronet may hold about a user; an export states which of them it
// actually contains.
func (inv Inventory) Article15() Article15Info {
	info := Article15Info{
		Purposes:           inv.union(func(c Category) []string { return c.Purposes }),
		Categories:         append(Inventory{}, inv...),
		Recipients:         inv.union(func(c Category) []string { return c.Recipients }),
		Retention:          []RetentionInfo{},
		Rights:             Rights(),
		Sources:            []SourceInfo{},
		AutomatedDecisions: "None. No decision that produces legal or similarly significant effects is based solely on automated processing.",
		Transfers:          transfersText,
		NeverKept:          NeverKept(),
	}
	for _, c := range inv {
		info.Retention = append(info.Retention, RetentionInfo{
			Category: c.ID, Name: c.Name, Rule: c.Retention.String(),
			Days: c.Retention.Days, Trigger: c.Retention.Trigger, Criteria: c.Retention.Criteria,
		})
		i := -1
		for j, s := range info.Sources {
			if s.Source == c.Source {
				i = j
			}
		}
		if i < 0 {
			info.Sources = append(info.Sources, SourceInfo{Source: c.Source})
			i = len(info.Sources) - 1
		}
		info.Sources[i].Categories = append(info.Sources[i].Categories, c.ID)
	}
	return info
}

// storageText names where c is kept: its tables, and files in the data
// directory.
func storageText(c Category) string {
	parts := slices.Clone(c.Storage)
	for _, f := range c.Files {
		parts = append(parts, "files in DATA/"+f)
	}
	return strings.Join(parts, ", ")
}
