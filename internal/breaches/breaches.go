// Package breaches keeps the breach register (GDPR Art. 33(5)): every
// personal data breach, its facts, its effects and the remedial action
// taken, and the notification of the supervisory authority, which is due
// NotifyWithin (72 hours) after the breach was detected unless the breach
// is unlikely to result in a risk to people (Art. 33(1)). Notify tells the
// people affected (Art. 34) through the inbox and by email, with what
// Art. 34(2) requires, as a resumable notice run (package notices) whose
// email goes through the processor guard and the relay.
//
// The register names no account: approximate numbers of people and
// records only. A notice to listed accounts puts one inbox message in each
// account's inbox, which the account's export shows and its erasure
// removes; the register keeps only the notice run.
//
// Every action takes the acting staff member, is authorised by role
// (package staff: breach.view, breach.manage, breach.notify) and is
// recorded in the audit log, naming the fields changed but not their
// values. A Service is safe for concurrent use.
package breaches

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/processors"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// NotifyWithin is how long after detection the supervisory authority
// must be notified (Art. 33(1)).
const NotifyWithin = 72 * time.Hour

// Risk assessments of a breach.
const (
	// RiskUnlikely: unlikely to result in a risk to people; the
	// authority need not be notified (the reasons belong in the record).
	RiskUnlikely = "unlikely"
	// RiskSome: a risk; the authority must be notified.
	RiskSome = "risk"
	// RiskHigh: a high risk; the people affected must be told too
	// (Art. 34(1)).
	RiskHigh = "high"
)

// Risks returns the risk assessments, from least to most.
func Risks() []string { return []string{RiskUnlikely, RiskSome, RiskHigh} }

// Limits of the register's texts, in characters.
const (
	MaxText      = 4000
	MaxReference = 200
	// MaxAccounts is the most accounts one listed notice names; a larger
	// audience is told as all accounts.
	MaxAccounts = 100_000
)

// NoticeKind is the inbox message kind of a breach notice.
const NoticeKind = "breach-notice"

// Config holds the service's dependencies.
type Config struct {
	Store   store.BreachStore
	Notices *notices.Sender
	Audit   staff.Auditor
	// Inventory names the data categories a breach concerns.
	Inventory inventory.Inventory
	// Controller is the contact point stated in every notice: the DPO if
	// one is designated, otherwise the controller's privacy contact.
	Controller controller.Identity
	Logger     *slog.Logger
	Clock      func() time.Time
	Rand       io.Reader
}

// Service keeps the breach register. It is safe for concurrent use.
type Service struct{ cfg Config }

// New returns a Service. Every Config field but Controller is required.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Notices == nil || cfg.Audit == nil || cfg.Inventory == nil || cfg.Logger == nil ||
		cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("breaches: missing dependency")
	}
	return &Service{cfg: cfg}, nil
}

// Breach is a register entry as staff see it.
type Breach struct {
	ID         string    `json:"id"`
	DetectedAt time.Time `json:"detected_at"`
	// NotifyBy is when the authority must have been notified:
	// NotifyWithin after detection.
	NotifyBy time.Time `json:"notify_by"`
	// Overdue is true while the breach is open, the authority is not
	// notified, the risk is not assessed as unlikely, and NotifyBy has
	// passed.
	Overdue    bool     `json:"overdue"`
	Nature     string   `json:"nature"`
	Categories []string `json:"categories"`
	// People and Records are approximate numbers; nil while unknown.
	People              *int64     `json:"people"`
	Records             *int64     `json:"records"`
	Consequences        string     `json:"consequences"`
	MeasuresTaken       string     `json:"measures_taken"`
	MeasuresProposed    string     `json:"measures_proposed"`
	Risk                string     `json:"risk"`
	Status              string     `json:"status"`
	AuthorityNotifiedAt *time.Time `json:"authority_notified_at"`
	AuthorityReference  string     `json:"authority_reference"`
	// Contact is the contact point a notice names (Art. 33(3)(b)), from
	// the controller settings; "" if none is configured.
	Contact    string     `json:"contact"`
	RecordedBy string     `json:"recorded_by"`
	RecordedAt time.Time  `json:"recorded_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ClosedAt   *time.Time `json:"closed_at"`
	// Notices are the notices sent to the people affected, newest first.
	Notices []Notice `json:"notices"`
}

// Notice is a notice of the breach to the people affected.
type Notice struct {
	RunID string `json:"run_id"`
	// Audience is "all" (every active account) or "listed".
	Audience  string           `json:"audience"`
	Email     bool             `json:"email"`
	CreatedAt time.Time        `json:"created_at"`
	Progress  notices.Progress `json:"progress"`
}

// NotifyBy returns when the authority must have been notified of a breach
// detected at detected.
func NotifyBy(detected time.Time) time.Time { return detected.Add(NotifyWithin).UTC() }

// overdue reports whether b's authority notification is overdue at now.
func overdue(b *store.Breach, now time.Time) bool {
	return b.Status == store.BreachOpen && b.AuthorityNotifiedAt == nil && b.Risk != RiskUnlikely &&
		now.After(NotifyBy(b.DetectedAt))
}

// contact returns the contact point a notice names: the DPO if one is
// designated, else the controller's privacy contact; "" if neither is
// configured.
func (s *Service) contact() string {
	c := s.cfg.Controller
	if c.DPO.Email != "" {
		name := "our data protection officer"
		if c.DPO.Name != "" {
			name += ", " + c.DPO.Name
		}
		return name + ", " + c.DPO.Email
	}
	var parts []string
	for _, p := range []string{c.Email, c.Phone} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "our privacy contact, " + strings.Join(parts, ", ")
}

// view returns b as staff see it, without its notices.
func (s *Service) view(b *store.Breach) *Breach {
	return &Breach{ID: b.ID, DetectedAt: b.DetectedAt.UTC(), NotifyBy: NotifyBy(b.DetectedAt),
		Overdue: overdue(b, s.cfg.Clock()), Nature: b.Nature, Categories: nonNil(b.Categories), People: b.People,
		Records: b.Records, Consequences: b.Consequences, MeasuresTaken: b.MeasuresTaken, MeasuresProposed: b.MeasuresProposed,
		Risk: b.Risk, Status: b.Status, AuthorityNotifiedAt: utcPtr(b.AuthorityNotifiedAt), AuthorityReference: b.AuthorityReference,
		Contact: s.contact(), RecordedBy: b.RecordedBy, RecordedAt: b.RecordedAt.UTC(), UpdatedAt: b.UpdatedAt.UTC(),
		ClosedAt: utcPtr(b.ClosedAt), Notices: []Notice{}}
}

// withNotices adds v's notices and their progress.
func (s *Service) withNotices(ctx context.Context, v *Breach) error {
	runs, err := s.cfg.Notices.RunsAbout(ctx, v.ID)
	if err != nil {
		return err
	}
	for _, r := range runs {
		p, err := s.cfg.Notices.Progress(ctx, r.ID)
		if err != nil {
			return err
		}
		aud := r.Audience
		if aud == "" {
			aud = store.AudienceAll
		}
		v.Notices = append(v.Notices, Notice{RunID: r.ID, Audience: aud, Email: r.Email, CreatedAt: r.CreatedAt.UTC(), Progress: p})
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// text validates free text for field: valid UTF-8, at most max
// characters, no control characters but newlines and tabs; required
// unless empty is allowed. It returns the text trimmed.
func text(field, s string, max int, required bool) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s):
		return "", errs.Field(errs.Invalid, field, "%s is not valid UTF-8", field)
	case required && s == "":
		return "", errs.Field(errs.Invalid, field, "%s is required", field)
	case utf8.RuneCountInString(s) > max:
		return "", errs.Field(errs.Invalid, field, "%s must be at most %d characters", field, max)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f }):
		return "", errs.Field(errs.Invalid, field, "%s contains control characters", field)
	}
	return s, nil
}

// past checks that t (for field) is set and not after now.
func past(field string, t, now time.Time) (time.Time, error) {
	if t.IsZero() {
		return time.Time{}, errs.Field(errs.Invalid, field, "%s is required", field)
	}
	t = t.UTC().Truncate(time.Second)
	if t.After(now) {
		return time.Time{}, errs.Field(errs.Invalid, field, "%s %s is in the future (now is %s)", field,
			t.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return t, nil
}

// Add opens a breach record detected at detected, of the given nature,
// for by, who must be allowed staff.ActBreachManage; the rest follows
// with Update. A missing or future detection time, or a missing nature, is
// Invalid (field "detected_at" or "nature"). The record is audited.
func (s *Service) Add(ctx context.Context, by staff.Principal, detected time.Time, nature string) (*Breach, error) {
	if err := staff.Authorize(by, staff.ActBreachManage); err != nil {
		return nil, err
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	detected, err := past("detected_at", detected, now)
	if err != nil {
		return nil, err
	}
	if nature, err = text("nature", nature, MaxText, true); err != nil {
		return nil, err
	}
	id, err := ident.New(s.cfg.Rand, "brc")
	if err != nil {
		return nil, err
	}
	b := &store.Breach{ID: id, DetectedAt: detected, Nature: nature, Categories: []string{}, Status: store.BreachOpen,
		RecordedBy: by.ID, RecordedAt: now, UpdatedAt: now}
	if err := s.cfg.Store.CreateBreach(ctx, b); err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActBreachManage, id,
		"opened breach record detected at "+detected.Format(time.RFC3339)); err != nil {
		return nil, err
	}
	s.cfg.Logger.Warn("breach recorded", "breach", id)
	return s.view(b), nil
}

// List returns the register, most recently detected first, for by, who
// must be allowed staff.ActBreachView. The listing is audited.
func (s *Service) List(ctx context.Context, by staff.Principal) ([]Breach, error) {
	if err := staff.Authorize(by, staff.ActBreachView); err != nil {
		return nil, err
	}
	bs, err := s.cfg.Store.Breaches(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActBreachView, "breaches",
		fmt.Sprintf("listed %d breach record(s)", len(bs))); err != nil {
		return nil, err
	}
	out := make([]Breach, 0, len(bs))
	for i := range bs {
		out = append(out, *s.view(&bs[i]))
	}
	return out, nil
}

// Get returns breach id with its notices, for by, who must be allowed
// staff.ActBreachView. A malformed id is Invalid (field "id"), an unknown
// one NotFound. The read is audited.
func (s *Service) Get(ctx context.Context, by staff.Principal, id string) (*Breach, error) {
	if err := staff.Authorize(by, staff.ActBreachView); err != nil {
		return nil, err
	}
	if err := breachID(id); err != nil {
		return nil, err
	}
	b, err := s.cfg.Store.Breach(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActBreachView, id, "viewed breach record"); err != nil {
		return nil, err
	}
	v := s.view(b)
	if err := s.withNotices(ctx, v); err != nil {
		return nil, err
	}
	return v, nil
}

// breachID validates a breach id from the outside.
func breachID(id string) error {
	if !ident.Valid(id, "brc") {
		return errs.Field(errs.Invalid, "id", "malformed breach id: want brc_ followed by 26 characters")
	}
	return nil
}

// OverdueCount returns how many breaches' authority notifications are
// overdue now (for the nitronet_breaches_overdue metric).
func (s *Service) OverdueCount(ctx context.Context) (int, error) {
	return s.cfg.Store.CountUnnotifiedBreaches(ctx, s.cfg.Clock().Add(-NotifyWithin), RiskUnlikely)
}

// checkCategories checks inventory category ids (field "categories").
func (s *Service) checkCategories(ids []string) ([]string, error) {
	return processors.CheckCategories(s.cfg.Inventory, ids)
}

// categoryNames returns the names of the categories ids, in order.
func (s *Service) categoryNames(ids []string) []string {
	var out []string
	for _, id := range ids {
		if c, ok := s.cfg.Inventory.Category(id); ok {
			out = append(out, c.Name)
		}
	}
	return out
}

// validRisk reports whether r is "" or a risk assessment.
func validRisk(r string) bool { return r == "" || slices.Contains(Risks(), r) }
