// Package processors keeps the register of processors: the third parties
// that receive personal data on the operator's behalf (the SMTP relay, the
// SMS gateway), with the inventory categories each may receive. Guard
// checks every outbound message against the register before it leaves.
//
// The register lives in the store and is read on every transfer, so a
// change made with `nitronet admin processor` applies at once to every
// running server. The default entries are seeded by the store's migration,
// once, so that an operator's removal of one sticks; Defaults describes
// them.
package processors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// The names of the default processors, which Guard uses for the email and
// SMS channels.
const (
	NameSMTP = "SMTP relay"
	NameSMS  = "SMS gateway"
)

// Defaults returns the register's default entries (without IDs or times),
// as the store's migration seeds them: the SMTP relay may receive email
// addresses and what emails carry (one-time codes, password-reset links and
// copies of inbox notices); the SMS gateway may receive mobile numbers and
// one-time codes, and carries service notices (see Transfer), which hand
// it nothing more. These match the recipients the inventory declares.
func Defaults() []store.Processor {
	return []store.Processor{
		{Name: NameSMTP, Purpose: "email delivery: verification codes, password-reset links and notices",
			Categories: []string{inventory.IDEmail, inventory.IDCodes, inventory.IDResetTokens, inventory.IDInbox}},
		{Name: NameSMS, Purpose: "text-message delivery: verification codes, and notices that the mobile number was changed or the account is being erased",
			Categories: []string{inventory.IDMobile, inventory.IDCodes}},
	}
}

// Auditor records audit entries (package audit's *Log).
type Auditor = staff.Auditor

// Service edits and reads the register. It is safe for concurrent use.
type Service struct {
	store store.ProcessorStore
	audit Auditor
	inv   inventory.Inventory
	clock func() time.Time
	rand  io.Reader
	log   *slog.Logger
}

// Config holds a Service's dependencies; all are required.
type Config struct {
	Store store.ProcessorStore
	Audit Auditor
	// Inventory is the data inventory registered categories are checked
	// against.
	Inventory inventory.Inventory
	Clock     func() time.Time
	Rand      io.Reader
	Logger    *slog.Logger
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil || cfg.Inventory == nil || cfg.Clock == nil || cfg.Rand == nil || cfg.Logger == nil {
		return nil, errors.New("processors: missing dependency")
	}
	return &Service{store: cfg.Store, audit: cfg.Audit, inv: cfg.Inventory, clock: cfg.Clock, rand: cfg.Rand, log: cfg.Logger}, nil
}

// Limits of register entries.
const (
	MaxNameLen    = 100
	MaxPurposeLen = 500
)

// Add registers a processor that may receive categories (inventory IDs,
// at least one). by must be allowed staff.ActProcessorManage. A name
// already registered, in any case, is Conflict. Errors name their field:
// "name", "purpose" or "categories".
func (s *Service) Add(ctx context.Context, by staff.Principal, name, purpose string, categories []string) (*store.Processor, error) {
	if err := staff.Authorize(by, staff.ActProcessorManage); err != nil {
		return nil, err
	}
	name, purpose = strings.TrimSpace(name), strings.TrimSpace(purpose)
	if name == "" || utf8.RuneCountInString(name) > MaxNameLen || hasControl(name) {
		return nil, errs.Field(errs.Invalid, "name", "a processor name of 1 to %d printable characters is required", MaxNameLen)
	}
	if purpose == "" || utf8.RuneCountInString(purpose) > MaxPurposeLen || hasControl(purpose) {
		return nil, errs.Field(errs.Invalid, "purpose", "a purpose of 1 to %d printable characters is required", MaxPurposeLen)
	}
	cats, err := CheckCategories(s.inv, categories)
	if err != nil {
		return nil, err
	}
	if len(cats) == 0 {
		return nil, errs.Field(errs.Invalid, "categories", "at least one data category is required")
	}
	id, err := ident.New(s.rand, "prc")
	if err != nil {
		return nil, err
	}
	p := &store.Processor{ID: id, Name: name, Purpose: purpose, Categories: cats, CreatedAt: s.clock()}
	if err := s.store.CreateProcessor(ctx, p); errs.Is(err, errs.Conflict) {
		return nil, errs.WithField(err, "name")
	} else if err != nil {
		return nil, err
	}
	if err := s.audit.Record(ctx, by.ID, by.Role, staff.ActProcessorManage, id,
		"registered processor with categories "+strings.Join(cats, ",")); err != nil {
		return nil, err
	}
	return p, nil
}

// List returns the register. by must be allowed staff.ActProcessorManage;
// like every staff action, the listing is audited.
func (s *Service) List(ctx context.Context, by staff.Principal) ([]store.Processor, error) {
	if err := staff.Authorize(by, staff.ActProcessorManage); err != nil {
		return nil, err
	}
	ps, err := s.store.Processors(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.audit.Record(ctx, by.ID, by.Role, staff.ActProcessorManage, "processors",
		fmt.Sprintf("listed %d processor(s)", len(ps))); err != nil {
		return nil, err
	}
	return ps, nil
}

// Remove deletes the processor with id or name idOrName and returns it.
// Transfers to it are refused from then on. by must be allowed
// staff.ActProcessorManage.
func (s *Service) Remove(ctx context.Context, by staff.Principal, idOrName string) (*store.Processor, error) {
	if err := staff.Authorize(by, staff.ActProcessorManage); err != nil {
		return nil, err
	}
	idOrName = strings.TrimSpace(idOrName)
	if idOrName == "" {
		return nil, errs.Field(errs.Invalid, "name", "a processor id or name is required")
	}
	p, err := s.store.DeleteProcessor(ctx, idOrName)
	if errs.Is(err, errs.NotFound) {
		return nil, errs.WithField(err, "name")
	} else if err != nil {
		return nil, err
	}
	if err := s.audit.Record(ctx, by.ID, by.Role, staff.ActProcessorManage, p.ID, "removed processor"); err != nil {
		return nil, err
	}
	return p, nil
}

// Scope returns the categories the processor named name may receive. An
// unregistered processor is NotFound. It implements Register.
func (s *Service) Scope(ctx context.Context, name string) ([]string, error) {
	p, err := s.store.ProcessorByName(ctx, name)
	if err != nil {
		return nil, err
	}
	return p.Categories, nil
}

// Received records that the processor named name is handed categories of
// account accountID's data now. It implements Register.
func (s *Service) Received(ctx context.Context, accountID, name string, categories []string) error {
	return s.store.RecordTransfer(ctx, accountID, name, categories, s.clock())
}

// Receipt is a processor that received an account's data, as the
// account's export shows it: which categories (inventory IDs), first and
// last when. Never the content.
type Receipt struct {
	Processor  string    `json:"processor"`
	Categories []string  `json:"categories"`
	FirstAt    time.Time `json:"first_at"`
	LastAt     time.Time `json:"last_at"`
}

// ExportSection returns the "recipients" section of the account's data
// export: every processor that received the account's data, with the
// categories and times, by processor name.
func (s *Service) ExportSection(ctx context.Context, accountID string) (string, any, error) {
	ts, err := s.store.ProcessorTransfers(ctx, accountID)
	if err != nil {
		return "", nil, err
	}
	out := []Receipt{}
	for _, t := range ts {
		if n := len(out); n > 0 && out[n-1].Processor == t.Processor {
			x := &out[n-1]
			x.Categories = append(x.Categories, t.Category)
			x.FirstAt, x.LastAt = minTime(x.FirstAt, t.FirstAt), maxTime(x.LastAt, t.LastAt)
			continue
		}
		out = append(out, Receipt{Processor: t.Processor, Categories: []string{t.Category},
			FirstAt: t.FirstAt.UTC(), LastAt: t.LastAt.UTC()})
	}
	return "recipients", out, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b.UTC()
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b.UTC()
	}
	return a
}

// CheckCategories trims, de-duplicates and checks ids against inv. It
// returns them in inventory order, or an *errs.Error with code Invalid
// and field "categories" naming the first unknown one.
func CheckCategories(inv inventory.Inventory, ids []string) ([]string, error) {
	want := map[string]bool{}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if _, ok := inv.Category(id); !ok {
			return nil, errs.Field(errs.Invalid, "categories", "unknown data category %q; category IDs look like %q", truncate(id, 40), inventory.IDEmail)
		}
		want[id] = true
	}
	out := []string{}
	for _, c := range inv {
		if want[c.ID] {
			out = append(out, c.ID)
		}
	}
	return out, nil
}

// Outside returns the members of need that are not in allowed, in order.
func Outside(need, allowed []string) []string {
	var out []string
	for _, n := range need {
		if !slices.Contains(allowed, n) {
			out = append(out, n)
		}
	}
	return out
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…", s[:n])
}
