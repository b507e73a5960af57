// Package disclosures keeps the disclosure ledger: every request from a
// public authority for users' data, its legal basis and scope, what was
// decided, exactly which categories and fields left, about which accounts,
// and any gag order. From the ledger it tells affected users once any gag
// has ended, adds a section to their data export, and builds the signed
// half-yearly transparency report (package transparency).
//
// Every staff read or change of the ledger is authorised (package staff)
// and audited. Nothing here logs ledger contents.
package disclosures

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/transparency"
)

// Inbox posts a message to an account's inbox. The inbox service
// implements it. Post returns an *errs.Error with code NotFound if the
// account does not exist.
type Inbox interface {
	Post(ctx context.Context, accountID, kind, subject, body string) error
}

// Accounts looks accounts up; store.Store implements it.
type Accounts interface {
	Account(ctx context.Context, id string) (*store.Account, error)
}

// Config holds a Service's dependencies. Inbox may be nil, in which case
// NotifyLapsedGags returns Unavailable, and Controller may be empty;
// everything else is required.
type Config struct {
	Store     store.DisclosureStore
	Accounts  Accounts
	Audit     Auditor
	Inbox     Inbox
	Inventory inventory.Inventory
	// Controller is who publishes the transparency reports; it may be
	// empty (not configured).
	Controller controller.Identity
	Logger     *slog.Logger
	Clock      func() time.Time
	Rand       io.Reader
}

// Auditor records audit entries and reports the audit log's head
// (package audit's *Log).
type Auditor interface {
	staff.Auditor
	Checkpoint(ctx context.Context) (auditchain.Checkpoint, error)
}

// Service manages the ledger. It is safe for concurrent use.
type Service struct{ cfg Config }

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Accounts == nil || cfg.Audit == nil || cfg.Inventory == nil || cfg.Logger == nil ||
		cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("disclosures: missing dependency")
	}
	return &Service{cfg: cfg}, nil
}

// Types returns the request types the ledger accepts.
func Types() []string {
	return []string{transparency.TypeSubpoena, transparency.TypeCourtOrder, transparency.TypeEmergency,
		transparency.TypePreservation, "other"}
}

// Decisions returns the decisions the ledger accepts.
func Decisions() []string {
	return []string{transparency.DecisionComplied, transparency.DecisionPartly, transparency.DecisionRefused,
		transparency.DecisionContested}
}

// Limits of a ledger entry.
const (
	MaxTextLen   = transparency.MaxFieldLen // reference, authority, jurisdiction, legal basis
	MaxScopeLen  = 2000                     // scope requested
	MaxFields    = 100                      // fields disclosed
	MaxAccounts  = 1000                     // accounts named
	MaxFieldName = 200                      // one field name
)

// Input is a disclosure to record. See Add for the rules.
type Input struct {
	Reference      string
	Authority      string
	Jurisdiction   string
	LegalBasis     string
	Type           string // one of Types
	ReceivedAt     time.Time
	ScopeRequested string
	Decision       string   // one of Decisions
	Categories     []string // inventory category IDs disclosed
	Fields         []string // the fields disclosed, e.g. "email address"
	Accounts       []string // account IDs the request was about
	GagUntil       *time.Time
}

// Add validates in and records it, and returns the record. by must be
// allowed staff.ActDisclosureManage.
//
// Invalid input is Invalid, naming its field: "reference", "authority",
// "jurisdiction", "legal_basis", "scope_requested", "type", "decision",
// "received_at", "categories", "fields", "accounts" or "gag_until" (the
// snake_case names of Input's fields).
//
// Reference, authority, jurisdiction, legal basis and scope are required
// (trimmed; printable; bounded); Type and Decision must be known values;
// ReceivedAt must be set and not in the future; every account named is an
// existing account ID. A complied or partly decision must name the
// categories (inventory IDs) and fields that left and the accounts they
// were about; a refused or contested one names no categories or fields,
// and may name no accounts (a request about an IP address, say, that
// matches no one, since none are logged). GagUntil, if set, is after ReceivedAt.
// Invalid input is Invalid, an unknown account NotFound, a duplicate
// authority and reference Conflict.
//
// Add audits one entry for the disclosure and one per named account, so an
// account's audit history shows it.
func (s *Service) Add(ctx context.Context, by staff.Principal, in Input) (*store.Disclosure, error) {
	if err := staff.Authorize(by, staff.ActDisclosureManage); err != nil {
		return nil, err
	}
	d, err := s.validate(in)
	if err != nil {
		return nil, err
	}
	for _, a := range d.AccountIDs {
		if _, err := s.cfg.Accounts.Account(ctx, a); err != nil {
			if errs.Is(err, errs.NotFound) {
				return nil, errs.Field(errs.NotFound, "accounts", "account %s not found", a)
			}
			return nil, err
		}
	}
	id, err := ident.New(s.cfg.Rand, "dis")
	if err != nil {
		return nil, err
	}
	d.ID, d.RecordedBy, d.RecordedAt = id, by.ID, s.cfg.Clock().UTC().Truncate(time.Second)
	if err := s.cfg.Store.CreateDisclosure(ctx, d); err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("recorded disclosure: %s, decision %s, %d account(s)", d.Type, d.Decision, len(d.AccountIDs))
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActDisclosureManage, id, detail); err != nil {
		return nil, err
	}
	for _, a := range d.AccountIDs {
		if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActDisclosureManage, a, "named in disclosure "+id); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// validate checks in and returns the disclosure to record, without ID and
// recorder. Each error is Invalid and names the input it is about.
func (s *Service) validate(in Input) (*store.Disclosure, error) {
	d := &store.Disclosure{}
	var err error
	for _, f := range []struct {
		field, name string
		in          string
		out         *string
		max         int
	}{
		{"reference", "reference", in.Reference, &d.Reference, MaxTextLen},
		{"authority", "authority", in.Authority, &d.Authority, MaxTextLen},
		{"jurisdiction", "jurisdiction", in.Jurisdiction, &d.Jurisdiction, MaxTextLen},
		{"legal_basis", "legal basis", in.LegalBasis, &d.LegalBasis, MaxTextLen},
		{"scope_requested", "scope requested", in.ScopeRequested, &d.ScopeRequested, MaxScopeLen},
	} {
		if *f.out, err = checkText(f.field, f.name, f.in, f.max); err != nil {
			return nil, err
		}
	}
	d.Type = strings.ToLower(strings.TrimSpace(in.Type))
	if !slices.Contains(Types(), d.Type) {
		return nil, errs.Field(errs.Invalid, "type", "type must be one of %s", strings.Join(Types(), ", "))
	}
	d.Decision = strings.ToLower(strings.TrimSpace(in.Decision))
	if !slices.Contains(Decisions(), d.Decision) {
		return nil, errs.Field(errs.Invalid, "decision", "decision must be one of %s", strings.Join(Decisions(), ", "))
	}
	now := s.cfg.Clock()
	if in.ReceivedAt.IsZero() {
		return nil, errs.Field(errs.Invalid, "received_at", "the date the request was received is required")
	}
	if in.ReceivedAt.After(now) {
		return nil, errs.Field(errs.Invalid, "received_at", "the date received is in the future")
	}
	d.ReceivedAt = in.ReceivedAt.UTC().Truncate(time.Second)
	if d.CategoriesDisclosed, d.FieldsDisclosed, err = s.disclosed(d.Decision, in.Categories, in.Fields); err != nil {
		return nil, err
	}
	if d.AccountIDs, err = affectedAccounts(d.Decision, in.Accounts, len(d.CategoriesDisclosed) > 0); err != nil {
		return nil, err
	}
	if in.GagUntil != nil {
		g := in.GagUntil.UTC().Truncate(time.Second)
		if !g.After(d.ReceivedAt) {
			return nil, errs.Field(errs.Invalid, "gag_until", "the gag must end after the request was received")
		}
		d.GagUntil = &g
	}
	if err := toReport(*d).Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// checkText checks free text v for field, called name in messages, and
// returns it trimmed.
func checkText(field, name, v string, max int) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", errs.Field(errs.Invalid, field, "%s is required", name)
	}
	if utf8.RuneCountInString(v) > max || !utf8.ValidString(v) {
		return "", errs.Field(errs.Invalid, field, "%s is longer than %d characters", name, max)
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f }) {
		return "", errs.Field(errs.Invalid, field, "%s contains a control character", name)
	}
	return v, nil
}

// disclosed checks the data categories and field names a decision
// disclosed (without blanks and repeats): a complied or partly decision
// lists both, the others neither.
func (s *Service) disclosed(decision string, categories, fieldNames []string) (cats, fields []string, err error) {
	cats = []string{}
	seen := map[string]bool{}
	for _, c := range categories {
		c = strings.TrimSpace(c)
		if c == "" || seen[c] {
			continue
		}
		if _, ok := s.cfg.Inventory.Category(c); !ok {
			return nil, nil, errs.Field(errs.Invalid, "categories", "unknown data category %q; category IDs look like %q", trunc(c, 40), inventory.IDEmail)
		}
		seen[c] = true
		cats = append(cats, c)
	}
	fields = []string{}
	for _, f := range fieldNames {
		f = strings.TrimSpace(f)
		if f == "" || slices.Contains(fields, f) {
			continue
		}
		if _, err := checkText("fields", "field name", f, MaxFieldName); err != nil {
			return nil, nil, err
		}
		fields = append(fields, f)
	}
	if len(fields) > MaxFields {
		return nil, nil, errs.Field(errs.Invalid, "fields", "at most %d fields may be listed", MaxFields)
	}
	switch decision {
	case transparency.DecisionComplied, transparency.DecisionPartly:
		if len(cats) == 0 || len(fields) == 0 {
			return nil, nil, errs.Field(errs.Invalid, "categories", "a %s decision must list the categories and fields disclosed", decision)
		}
	default:
		if len(cats) > 0 || len(fields) > 0 {
			return nil, nil, errs.Field(errs.Invalid, "categories", "a %s decision discloses nothing: list no categories or fields", decision)
		}
	}
	return cats, fields, nil
}

// affectedAccounts checks the IDs of the accounts a request was about
// (without blanks and repeats); a decision that disclosed data (anyDisclosed)
// must name at least one.
func affectedAccounts(decision string, ids []string, anyDisclosed bool) ([]string, error) {
	accounts := []string{}
	for _, a := range ids {
		a = strings.TrimSpace(a)
		if a == "" || slices.Contains(accounts, a) {
			continue
		}
		if !ident.Valid(a, "acc") {
			return nil, errs.Field(errs.Invalid, "accounts", "%q is not an account ID", trunc(a, 40))
		}
		accounts = append(accounts, a)
	}
	if len(accounts) == 0 && anyDisclosed {
		return nil, errs.Field(errs.Invalid, "accounts", "a %s decision must name the accounts whose data was disclosed", decision)
	}
	if len(accounts) > MaxAccounts {
		return nil, errs.Field(errs.Invalid, "accounts", "at most %d accounts may be named", MaxAccounts)
	}
	return accounts, nil
}

// List returns the disclosures received in [from, to) (zero times leave a
// side open), oldest first. by must be allowed staff.ActDisclosureView;
// the read is audited.
func (s *Service) List(ctx context.Context, by staff.Principal, from, to time.Time) ([]store.Disclosure, error) {
	if err := staff.Authorize(by, staff.ActDisclosureView); err != nil {
		return nil, err
	}
	ds, err := s.cfg.Store.Disclosures(ctx, from, to)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActDisclosureView, "disclosures",
		fmt.Sprintf("listed %d disclosure(s)", len(ds))); err != nil {
		return nil, err
	}
	return ds, nil
}

// Get returns one disclosure. by must be allowed staff.ActDisclosureView;
// the read is audited. An unknown id is NotFound.
func (s *Service) Get(ctx context.Context, by staff.Principal, id string) (*store.Disclosure, error) {
	if err := staff.Authorize(by, staff.ActDisclosureView); err != nil {
		return nil, err
	}
	if !ident.Valid(id, "dis") {
		return nil, errs.Field(errs.NotFound, "id", "no such disclosure")
	}
	d, err := s.cfg.Store.Disclosure(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActDisclosureView, id, "viewed disclosure"); err != nil {
		return nil, err
	}
	return d, nil
}

// toReport converts a ledger entry to the transparency package's input.
// AccountsAffected counts accounts only when data was disclosed.
func toReport(d store.Disclosure) transparency.Disclosure {
	r := transparency.Disclosure{
		Reference: d.Reference, Authority: d.Authority, Jurisdiction: d.Jurisdiction, LegalBasis: d.LegalBasis,
		ReceivedAt: d.ReceivedAt, Type: d.Type, Decision: d.Decision, CategoriesDisclosed: d.CategoriesDisclosed,
	}
	if len(d.CategoriesDisclosed) > 0 {
		r.AccountsAffected = len(d.AccountIDs)
	}
	return r
}

// Transparency builds the transparency report for period p from the
// ledger, with the canary statement canary, signs it with key and returns
// the signed file (see transparency.Sign) and the report, which names the
// configured controller as its publisher. A period still
// running gives an interim report (Report.Interim) covering the ledger up
// to now; a period that has not started is Invalid (field "period"), as is
// a canary statement that is too long (field "canary"). The report carries
// the audit log's head taken just before signing (the signing's own audit
// entry follows it). by must be allowed staff.ActTransparency; the signing
// is audited.
func (s *Service) Transparency(ctx context.Context, by staff.Principal, p transparency.Period, canary string, key ed25519.PrivateKey) ([]byte, transparency.Report, error) {
	if err := staff.Authorize(by, staff.ActTransparency); err != nil {
		return nil, transparency.Report{}, err
	}
	if !p.Valid() {
		return nil, transparency.Report{}, errs.Field(errs.Invalid, "period", "invalid period")
	}
	now := s.cfg.Clock()
	if now.Before(p.Start()) {
		return nil, transparency.Report{}, errs.Field(errs.Invalid, "period", "period %s has not started yet", p)
	}
	if utf8.RuneCountInString(canary) > MaxScopeLen {
		return nil, transparency.Report{}, errs.Field(errs.Invalid, "canary", "the canary statement is longer than %d characters", MaxScopeLen)
	}
	ds, err := s.cfg.Store.Disclosures(ctx, p.Start(), p.End())
	if err != nil {
		return nil, transparency.Report{}, err
	}
	in := make([]transparency.Disclosure, 0, len(ds))
	for _, d := range ds {
		in = append(in, toReport(d))
	}
	head, err := s.cfg.Audit.Checkpoint(ctx)
	if err != nil {
		return nil, transparency.Report{}, fmt.Errorf("audit head: %w", err)
	}
	r := transparency.Build(p, in, now, canary)
	r.Controller = s.cfg.Controller
	r.AuditHead = head.String()
	file, err := transparency.Sign(r, key)
	if err != nil {
		return nil, transparency.Report{}, err
	}
	r.Format = transparency.ReportFormat
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActTransparency, "transparency:"+p.String(),
		fmt.Sprintf("signed transparency report with key %s over %d disclosure(s) at audit head %d",
			transparency.EncodePublicKey(key.Public().(ed25519.PublicKey)), r.Totals.Requests, head.Seq)); err != nil {
		return nil, transparency.Report{}, err
	}
	return file, r, nil
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
