// Package transparency builds Nitronet's half-yearly transparency report
// and warrant canary from the disclosure ledger, and signs and verifies it
// with Ed25519.
//
// A report holds only aggregate counts: no reference numbers, authority
// names, account identifiers or other personal data leave the ledger. It
// also carries the head of the staff audit log at signing (AuditHead), so
// the published report commits the operator to that log. The
// canary is a statement the operator re-signs every period; its absence or
// a missed NextUpdate is the signal.
//
// All functions are pure except LoadOrCreateKey, which touches one file.
// Clocks and randomness are passed in. Everything is safe for concurrent use.
package transparency

import (
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/errs"
)

// ReportFormat identifies the report schema. It is the "format" member of
// every signed report, so a signature over one schema can never be taken for
// a signature over another document. Format 2 added the controller, format
// 3 the audit head.
const ReportFormat = "nitronet-transparency-report/3"

// ReportFormatV2 is the schema of reports that state the controller but
// not the audit head: the members of format 3 except "audit_head". Verify
// still accepts them.
const ReportFormatV2 = "nitronet-transparency-report/2"

// ReportFormatV1 is the schema of reports made before the controller was
// stated: the members of format 2 except "controller". Verify still
// accepts them.
const ReportFormatV1 = "nitronet-transparency-report/1"

// Disclosure types. Other values are accepted and counted under their own
// (lower-cased) name.
const (
	TypeSubpoena     = "subpoena"
	TypeCourtOrder   = "court-order"
	TypeEmergency    = "emergency"
	TypePreservation = "preservation"
)

// Decisions on a disclosure request.
const (
	DecisionComplied  = "complied"  // all data asked for was disclosed
	DecisionPartly    = "partly"    // some of it was disclosed
	DecisionRefused   = "refused"   // nothing was disclosed
	DecisionContested = "contested" // challenged in court; nothing disclosed yet
)

// Unspecified is the key under which Build counts an empty type,
// jurisdiction or decision.
const Unspecified = "unspecified"

// Disclosure is one request from an authority, as the ledger records it.
// It is the input to Build; it holds no personal data (AccountsAffected is a
// count, CategoriesDisclosed names inventory categories, not values).
type Disclosure struct {
	Reference           string    // the authority's or our case reference
	Authority           string    // e.g. "Amtsgericht Berlin"
	Jurisdiction        string    // e.g. "DE"
	LegalBasis          string    // e.g. "§ 100j StPO"
	ReceivedAt          time.Time // when the request arrived
	Type                string    // one of the Type constants, or another type
	Decision            string    // one of the Decision constants
	CategoriesDisclosed []string  // inventory category IDs that left, e.g. "account.email"
	AccountsAffected    int       // number of accounts whose data was disclosed
}

// MaxFieldLen bounds every string of a Disclosure, in bytes.
const MaxFieldLen = 500

// Validate reports whether d is complete enough to be recorded: Reference,
// Authority, Jurisdiction, LegalBasis and Type are non-empty, ReceivedAt is
// set, Decision is one of the Decision constants, AccountsAffected is not
// negative, and no data was disclosed on a refused or contested request. It
// returns an *errs.Error with code Invalid naming the first problem.
func (d Disclosure) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"reference", d.Reference},
		{"authority", d.Authority},
		{"jurisdiction", d.Jurisdiction},
		{"legal basis", d.LegalBasis},
		{"type", d.Type},
	} {
		if strings.TrimSpace(f.v) == "" {
			return errs.E(errs.Invalid, "disclosure %s is empty", f.name)
		}
		if len(f.v) > MaxFieldLen {
			return errs.E(errs.Invalid, "disclosure %s is longer than %d bytes", f.name, MaxFieldLen)
		}
	}
	if d.ReceivedAt.IsZero() {
		return errs.E(errs.Invalid, "disclosure received time is not set")
	}
	switch d.Decision {
	case DecisionComplied, DecisionPartly:
	case DecisionRefused, DecisionContested:
		if len(d.CategoriesDisclosed) > 0 || d.AccountsAffected > 0 {
			return errs.E(errs.Invalid, "a %s request cannot have disclosed data", d.Decision)
		}
	default:
		return errs.E(errs.Invalid, "disclosure decision %q is not one of complied, partly, refused, contested", truncate(d.Decision, 32))
	}
	if d.AccountsAffected < 0 {
		return errs.E(errs.Invalid, "accounts affected is negative")
	}
	for _, c := range d.CategoriesDisclosed {
		if strings.TrimSpace(c) == "" || len(c) > MaxFieldLen {
			return errs.E(errs.Invalid, "disclosed category names must be non-empty and at most %d bytes", MaxFieldLen)
		}
	}
	return nil
}

// Totals are the headline numbers of a report.
type Totals struct {
	Requests          int `json:"requests"`            // disclosure requests received in the period
	WithDataDisclosed int `json:"with_data_disclosed"` // requests after which any data left
	NoDataDisclosed   int `json:"no_data_disclosed"`   // requests after which nothing left
}

// Report is a transparency report for one period. Every map is non-nil
// after Build; keys are normalised (trimmed; type, decision and category
// lower-cased; empty values counted as Unspecified).
type Report struct {
	Format      string    `json:"format"` // ReportFormat
	Period      string    `json:"period"` // e.g. "2026H1"
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"` // exclusive
	GeneratedAt time.Time `json:"generated_at"`
	// Controller is who publishes the report: the operator's identity as
	// configured (format 2 and later). Build leaves it empty for the caller to set;
	// it is absent from format 1 reports and when nothing is configured.
	Controller controller.Identity `json:"controller,omitzero"`
	// AuditHead is the head of the operator's staff audit log when the
	// report was signed, in its text form SEQ:HEX (the decimal sequence
	// number and the SHA-256 hash of the newest entry; "0:" for an empty
	// log; see auditchain.Checkpoint). It commits the operator, in signed
	// and published form, to the log as it then was: the operator can
	// later be asked to prove the log against it (nitronet admin audit
	// verify --head), which fails if staff access recorded up to then was
	// changed, removed or rolled back. Build leaves it empty for the
	// caller to set; format 3 requires it, formats 1 and 2 lack it.
	AuditHead string `json:"audit_head,omitempty"`
	// Interim is true for a report made before its period ended: it
	// covers disclosures received until CoversUntil, and the final report
	// follows at PeriodEnd.
	Interim          bool           `json:"interim,omitempty"`
	CoversUntil      *time.Time     `json:"covers_until,omitempty"`
	Totals           Totals         `json:"totals"`
	ByType           map[string]int `json:"by_type"`
	ByJurisdiction   map[string]int `json:"by_jurisdiction"`
	ByOutcome        map[string]int `json:"by_outcome"`
	ByCategory       map[string]int `json:"by_category_disclosed"` // requests that disclosed each category
	AccountsAffected int            `json:"accounts_affected"`     // summed over requests
	Canary           Canary         `json:"canary"`
}

// Canary is the warrant canary published with a report. An empty Statement
// means the operator no longer makes the statement, which readers should
// treat as the canary having died. Readers should also treat a canary not
// replaced by NextUpdate as dead.
type Canary struct {
	Statement  string    `json:"statement"`
	NextUpdate time.Time `json:"next_update"`
}

// Build returns the report for period p over ds, generated at now, with the
// canary statement canary (trimmed; "" for none). Only disclosures whose
// ReceivedAt lies in [p.Start(), p.End()) are counted; ds may hold any
// others. AccountsAffected is summed over requests, so an account named in
// two requests counts twice; negative counts are ignored. The canary's
// NextUpdate is the end of the period after p, by which the next report is
// due. Build does not validate ds; see Disclosure.Validate.
func Build(p Period, ds []Disclosure, now time.Time, canary string) Report {
	r := Report{
		Format:         ReportFormat,
		Period:         p.String(),
		PeriodStart:    p.Start(),
		PeriodEnd:      p.End(),
		GeneratedAt:    now.UTC().Truncate(time.Second),
		ByType:         map[string]int{},
		ByJurisdiction: map[string]int{},
		ByOutcome:      map[string]int{},
		ByCategory:     map[string]int{},
		Canary: Canary{
			Statement:  strings.TrimSpace(canary),
			NextUpdate: p.Next().End(),
		},
	}
	if now.Before(p.End()) {
		until := r.GeneratedAt
		r.Interim, r.CoversUntil = true, &until
		r.Canary.NextUpdate = p.End()
	}
	for _, d := range ds {
		if !p.Contains(d.ReceivedAt) {
			continue
		}
		r.Totals.Requests++
		r.ByType[key(d.Type, true)]++
		r.ByJurisdiction[key(d.Jurisdiction, false)]++
		r.ByOutcome[key(d.Decision, true)]++
		seen := map[string]bool{}
		for _, c := range d.CategoriesDisclosed {
			k := key(c, true)
			if !seen[k] {
				seen[k] = true
				r.ByCategory[k]++
			}
		}
		if len(seen) > 0 || d.AccountsAffected > 0 {
			r.Totals.WithDataDisclosed++
		} else {
			r.Totals.NoDataDisclosed++
		}
		if d.AccountsAffected > 0 {
			r.AccountsAffected += d.AccountsAffected
		}
	}
	return r
}

func key(s string, lower bool) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return Unspecified
	}
	if lower {
		s = strings.ToLower(s)
	}
	return s
}
