package privacy

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/processing"
	"github.com/nitronet/nitronet/internal/secret"
	"github.com/nitronet/nitronet/internal/store"
)

// SchemaVersion is the version of the export document's schema,
// documented in docs/export-schema.md. A change that removes or renames a
// field bumps the major number; adding fields bumps the minor number.
const SchemaVersion = "1.4"

// maxExportIntervals bounds the session intervals in one export; far above
// what 90 days of retention can hold for one account.
const maxExportIntervals = 1_000_000

// Document is the export of one account's personal data (schema
// docs/export-schema.md).
type Document struct {
	SchemaVersion string    `json:"schema_version"`
	Schema        string    `json:"schema"`
	GeneratedAt   time.Time `json:"generated_at"`
	// Controller is who answers for the data (schema 1.1); a field the
	// operator has not configured is left out.
	Controller  controller.Identity `json:"controller"`
	RequestID   string              `json:"request_id"`
	RequestType string              `json:"request_type"`
	// Categories lists the inventory category IDs this document holds data
	// of.
	Categories      []string                `json:"categories_included"`
	Account         ExportAccount           `json:"account"`
	Devices         []ExportDevice          `json:"devices"`
	Sessions        ExportSessions          `json:"sessions"`
	PrivacyRequests []Request               `json:"privacy_requests"`
	Sections        map[string]any          `json:"sections"`
	Article15       inventory.Article15Info `json:"article_15"`
}

// ExportAccount is the account part of an export.
type ExportAccount struct {
	ID             string           `json:"id"`
	Email          string           `json:"email"`
	Mobile         string           `json:"mobile"`
	EmailVerified  bool             `json:"email_verified"`
	MobileVerified bool             `json:"mobile_verified"`
	Status         string           `json:"status"`
	CreatedAt      time.Time        `json:"created_at"`
	Processing     ExportProcessing `json:"processing"`
	Password       string           `json:"password"`
}

// ExportProcessing shows the restriction and objection flags and what
// they stop (processing.StateOf): Stopped and Continues since 1.3.
type ExportProcessing = processing.State

// ExportDevice is one device in an export.
type ExportDevice struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
	IPv4      string `json:"ipv4"`
	IPv6      string `json:"ipv6"`
	// DNSBlocking names the DNS blocking categories chosen (since 1.4).
	DNSBlocking []string  `json:"dns_blocking"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ExportSessions holds the session intervals.
type ExportSessions struct {
	Recording string           `json:"recording"`
	Count     int              `json:"count"`
	Intervals []ExportInterval `json:"intervals"`
}

// ExportInterval is one session interval, at minute granularity.
type ExportInterval struct {
	DeviceID string     `json:"device_id"`
	Region   string     `json:"region"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end"`
}

// exportable returns the owner's access or portability request that may be
// exported now: completed, within the export window.
func (s *Service) exportable(ctx context.Context, accountID, id string) (*store.PrivacyRequest, error) {
	r, err := s.owned(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	if r.Type != store.RequestAccess && r.Type != store.RequestPortability {
		return nil, errs.E(errs.Precondition, "only access and portability requests have an export")
	}
	if r.Status != store.RequestCompleted || r.VerifiedAt == nil {
		return nil, errs.E(errs.Precondition, "prove your identity first (verify the request)")
	}
	if !s.cfg.Clock().Before(r.VerifiedAt.Add(ExportWindow)) {
		return nil, errs.E(errs.Gone, "this export expired on %s; make a new access request",
			r.VerifiedAt.Add(ExportWindow).UTC().Format(time.DateOnly))
	}
	return r, nil
}

// ExportToken issues a single-use download token for the export of the
// account's request id. It expires after ExportTokenTTL or at the end of
// the export window, whichever is first, and only works together with the
// owner's login (see Export).
func (s *Service) ExportToken(ctx context.Context, accountID, id string) (string, time.Time, error) {
	r, err := s.exportable(ctx, accountID, id)
	if err != nil {
		return "", time.Time{}, err
	}
	tok, hash, err := secret.NewToken(s.cfg.Rand, "nnx")
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.cfg.Clock().UTC()
	exp := now.Add(ExportTokenTTL)
	if end := r.VerifiedAt.Add(ExportWindow); end.Before(exp) {
		exp = end
	}
	exp = exp.Truncate(time.Second)
	if err := s.cfg.Store.CreateExportToken(ctx, &store.ExportToken{Hash: hash, RequestID: id, AccountID: accountID,
		CreatedAt: now, ExpiresAt: exp}); err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

// Export consumes the single-use token and returns the export of the
// account's request id. The token must have been issued to the same
// account for the same request; a used, expired or foreign token is Gone.
func (s *Service) Export(ctx context.Context, accountID, id, token string) (*Document, error) {
	r, err := s.exportable(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	if token == "" || len(token) > 256 {
		return nil, errs.Field(errs.Invalid, "token", "a download token is required: POST .../export-token first")
	}
	if err := s.cfg.Store.ConsumeExportToken(ctx, secret.Hash(token), id, accountID, s.cfg.Clock()); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("privacy export downloaded", "request", id)
	return s.BuildExport(ctx, accountID, r)
}

// BuildExport assembles the export document of the account for request r.
// It does no access control; callers check ownership and tokens.
func (s *Service) BuildExport(ctx context.Context, accountID string, r *store.PrivacyRequest) (*Document, error) {
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	email, mobile, err := s.cfg.Accounts.Contacts(a)
	if err != nil {
		return nil, err
	}
	flags, err := s.cfg.Store.AccountFlags(ctx, accountID)
	if err != nil {
		return nil, err
	}
	doc := &Document{
		SchemaVersion: SchemaVersion,
		Schema:        "https://github.com/nitronet/nitronet/blob/main/docs/export-schema.md",
		GeneratedAt:   s.cfg.Clock().UTC(),
		Controller:    s.cfg.Controller,
		RequestID:     r.ID,
		RequestType:   r.Type,
		Account: ExportAccount{
			ID: a.ID, Email: email, Mobile: mobile, EmailVerified: a.EmailVerified, MobileVerified: a.MobileVerified,
			Status: a.Status, CreatedAt: a.CreatedAt.UTC(),
			Processing: processing.StateOf(flags),
			Password:   "stored only as an argon2id hash, which is not exported: it reveals nothing about your password",
		},
		Devices:  []ExportDevice{},
		Sections: map[string]any{},
		Sessions: ExportSessions{Recording: s.cfg.UsageRecording, Intervals: []ExportInterval{}},
		Categories: []string{inventory.IDAccount, inventory.IDEmail, inventory.IDMobile, inventory.IDPassword,
			inventory.IDDevices, inventory.IDSessions, inventory.IDPrivacyRequests},
		Article15: s.cfg.Inventory.Article15(),
	}
	ds, err := s.cfg.Store.Devices(ctx, accountID)
	if err != nil {
		return nil, err
	}
	key, err := s.cfg.Keys.OpenAccount(a)
	if err != nil {
		return nil, err
	}
	defer key.Close()
	for _, d := range ds {
		name, err := key.OpenOr(acctkey.DeviceName, d.ID, d.SealedName, d.Name)
		if err != nil {
			return nil, err
		}
		doc.Devices = append(doc.Devices, ExportDevice{ID: d.ID, Name: name, PublicKey: d.PublicKey,
			IPv4: d.IPv4.String(), IPv6: d.IPv6.String(), DNSBlocking: d.DNSBlocking.Names(), CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()})
	}
	ivs, err := s.cfg.Store.Usage(ctx, accountID, time.Unix(0, 0), maxExportIntervals)
	if err != nil {
		return nil, err
	}
	doc.Sessions.Intervals = make([]ExportInterval, 0, len(ivs))
	for _, iv := range ivs {
		doc.Sessions.Intervals = append(doc.Sessions.Intervals, ExportInterval{DeviceID: iv.DeviceID, Region: iv.Region,
			Start: iv.Start.UTC(), End: utcPtr(iv.End)})
	}
	doc.Sessions.Count = len(ivs)
	reqs, err := s.List(ctx, accountID)
	if err != nil {
		return nil, err
	}
	doc.PrivacyRequests = reqs
	for _, src := range s.cfg.Sources {
		name, data, err := src.ExportSection(ctx, accountID)
		if err != nil {
			return nil, fmt.Errorf("export section: %w", err)
		}
		if name == "" {
			continue
		}
		if _, dup := doc.Sections[name]; dup {
			return nil, fmt.Errorf("export section %q contributed twice", name)
		}
		doc.Sections[name] = data
		if id, ok := sectionCategories()[name]; ok {
			doc.Categories = append(doc.Categories, id)
		}
	}
	return doc, nil
}

//go:embed export.html.tmpl
var templates embed.FS

// RenderHTML writes doc as a human-readable, self-contained HTML page:
// headings a person understands, no JSON keys, and every time in one
// format. Every value is escaped by html/template.
func RenderHTML(w io.Writer, doc *Document) error {
	sections, err := readableSections(doc.Sections)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, d := range doc.Devices {
		names[d.ID] = d.Name
	}
	t, err := template.New("export.html.tmpl").Funcs(template.FuncMap{
		"date": htmlTime,
		"datep": func(t *time.Time) string {
			if t == nil {
				return "still connected"
			}
			return htmlTime(*t)
		},
		"device": func(id string) string {
			if n, ok := names[id]; ok {
				return n
			}
			return "a removed device"
		},
		"kind":     humanize,
		"status":   StatusText,
		"answered": store.Answered,
		"lower":    strings.ToLower,
		"join":     strings.Join,
	}).ParseFS(templates, "export.html.tmpl")
	if err != nil {
		return fmt.Errorf("export template: %w", err)
	}
	return t.Execute(w, struct {
		*Document
		Readable []readableSection
	}{doc, sections})
}

// StatusText describes a request status for people, in the words every
// front end and the export use.
func StatusText(s string) string {
	switch s {
	case store.RequestPending:
		return "Waiting for proof of your identity"
	case store.RequestVerified:
		return "Identity verified, in progress"
	case store.RequestHeld:
		return "Erased, except data under a legal hold"
	case store.RequestCompleted:
		return "Completed"
	case store.RequestDenied:
		return "Denied"
	}
	return humanize(s)
}

// sectionCategories maps known export section names to inventory
// categories.
func sectionCategories() map[string]string {
	return map[string]string{
		"inbox":              inventory.IDInbox,
		"policy_acceptances": inventory.IDPolicyAcceptance,
		"disclosures":        inventory.IDDisclosures,
		"recipients":         inventory.IDTransfers,
	}
}
