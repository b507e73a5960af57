// Package policy keeps the versioned privacy policy and terms, notifies
// every user of material changes (inbox and email, through package
// notices), records each user's acceptance, and sends service
// announcements.
//
// The privacy policy shipped with the binary (privacy-policy.txt, a copy of
// the project's policy) is published as version 1 by "system" the first
// time Seed runs on an empty store.
package policy

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// shipped is the privacy policy shipped with the binary.
//
//go:embed privacy-policy.txt
var shipped string

// Shipped returns the privacy policy text shipped with the binary.
func Shipped() string { return shipped }

// Publishers that are not staff.
const (
	BySystem = "system"
)

// Inbox message kinds (also notify.Message kinds).
const (
	KindPolicyChange = "policy-change"
	KindAnnouncement = "announcement"
)

// MaxBody is the largest document accepted, in bytes.
const MaxBody = 1 << 20

// Document is a published policy version as the API shows it.
type Document struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Version     int       `json:"version"`
	Material    bool      `json:"material"`
	PublishedAt time.Time `json:"published_at"`
	Body        string    `json:"body,omitempty"`
}

// Acceptance is one recorded acceptance, as the API and export show it.
type Acceptance struct {
	DocumentID string    `json:"document_id"`
	Kind       string    `json:"kind"`
	Version    int       `json:"version"`
	AcceptedAt time.Time `json:"accepted_at"`
}

// Store is what the service needs from the store.
type Store interface {
	store.PolicyStore
	store.InboxStore
}

// Config holds the service's dependencies.
type Config struct {
	Store   Store
	Notices *notices.Sender
	Audit   staff.Auditor
	Logger  *slog.Logger
	Clock   func() time.Time
	Rand    io.Reader
	// PortalURL, if set, is the public base URL put into notices.
	PortalURL string
}

// Service manages policy documents and acceptances. It is safe for
// concurrent use.
type Service struct{ cfg Config }

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Notices == nil || cfg.Audit == nil || cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("policy: missing dependency")
	}
	return &Service{cfg: cfg}, nil
}

// Seed publishes the shipped privacy policy as version 1, by "system", not
// material, if no privacy policy is published yet. It is idempotent and
// safe to run from several replicas at once.
func (s *Service) Seed(ctx context.Context) error {
	docs, err := s.cfg.Store.PolicyDocuments(ctx, store.PolicyPrivacy)
	if err != nil {
		return err
	}
	if len(docs) > 0 {
		return nil
	}
	id, err := ident.New(s.cfg.Rand, "pol")
	if err != nil {
		return err
	}
	d := &store.PolicyDocument{ID: id, Kind: store.PolicyPrivacy, Body: shipped, PublishedAt: s.cfg.Clock(), PublishedBy: BySystem}
	if err := s.cfg.Store.PublishPolicy(ctx, d, nil); err != nil && !errs.Is(err, errs.Conflict) {
		return err
	}
	return nil
}

// Published is the result of Publish.
type Published struct {
	Document Document
	// Run is the notice run of a material change, nil otherwise. Pass its
	// ID to notices.Sender.Run to send it.
	Run *store.NoticeRun
}

// Publish publishes body as the next version of kind ("privacy" or
// "terms"). A material version also creates, in the same transaction, a
// notice run to every account by inbox and email, which the caller then
// runs (notices.Sender.Run) so progress can be shown and a crash resumed.
// by must be allowed staff.ActPolicyPublish; the publication is audited.
func (s *Service) Publish(ctx context.Context, by staff.Principal, kind, body string, material bool) (*Published, error) {
	if err := staff.Authorize(by, staff.ActPolicyPublish); err != nil {
		return nil, err
	}
	if kind != store.PolicyPrivacy && kind != store.PolicyTerms {
		return nil, errs.Field(errs.Invalid, "kind", "kind must be privacy or terms")
	}
	body = strings.TrimSpace(body)
	if body == "" || len(body) > MaxBody || !utf8.ValidString(body) {
		return nil, errs.Field(errs.Invalid, "body", "the document must be non-empty UTF-8 text of at most %d bytes", MaxBody)
	}
	if kind == store.PolicyPrivacy {
		// Keep the shipped version as version 1 of the history.
		if err := s.Seed(ctx); err != nil {
			return nil, err
		}
	}
	id, err := ident.New(s.cfg.Rand, "pol")
	if err != nil {
		return nil, err
	}
	d := &store.PolicyDocument{ID: id, Kind: kind, Material: material, Body: body, PublishedAt: s.cfg.Clock(), PublishedBy: by.ID}
	var run *store.NoticeRun
	if material {
		// The version is known only after the insert; the notice names the
		// document, and the subject says which kind changed.
		subject, text := s.noticeText(kind)
		if run, err = s.cfg.Notices.NewRun(KindPolicyChange, subject, text, id, true); err != nil {
			return nil, err
		}
	}
	if err := s.cfg.Store.PublishPolicy(ctx, d, run); err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("published %s version %d (material=%v)", kind, d.Version, material)
	if run != nil {
		detail += ", notice run " + run.ID
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActPolicyPublish, id, detail); err != nil {
		return nil, err
	}
	return &Published{Document: toDoc(*d, false), Run: run}, nil
}

// noticeText returns the subject and body of a material-change notice.
func (s *Service) noticeText(kind string) (string, string) {
	name := "privacy policy"
	if kind == store.PolicyTerms {
		name = "terms of use"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "We have made a material change to our %s.\n\n", name)
	fmt.Fprintf(&b, "Please read the new version and accept it in the app or on the website.")
	if s.cfg.PortalURL != "" {
		fmt.Fprintf(&b, " You can read it at %s/api/v1/policy.", strings.TrimRight(s.cfg.PortalURL, "/"))
	}
	b.WriteString("\n\nThis notice was sent to every user of the service.")
	return "Important: our " + name + " has changed", b.String()
}

// Announce creates a notice run of a service announcement to every
// account's inbox, also by email if email. by must be allowed
// staff.ActAnnounce; the announcement is audited. The caller runs it with
// notices.Sender.Run.
func (s *Service) Announce(ctx context.Context, by staff.Principal, subject, body string, email bool) (*store.NoticeRun, error) {
	if err := staff.Authorize(by, staff.ActAnnounce); err != nil {
		return nil, err
	}
	run, err := s.cfg.Notices.NewRun(KindAnnouncement, subject, body, "", email)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Notices.Create(ctx, run); err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActAnnounce, run.ID,
		fmt.Sprintf("service announcement (email=%v)", email)); err != nil {
		return nil, err
	}
	return run, nil
}

// Current returns the newest version of each kind, privacy first, with
// bodies.
func (s *Service) Current(ctx context.Context) ([]Document, error) {
	docs, err := s.cfg.Store.PolicyDocuments(ctx, "")
	if err != nil {
		return nil, err
	}
	out := []Document{}
	for _, kind := range []string{store.PolicyPrivacy, store.PolicyTerms} {
		if d, ok := latest(docs, kind, false); ok {
			out = append(out, toDoc(d, true))
		}
	}
	return out, nil
}

// History returns every published version, newest first within each kind,
// without bodies unless withBody.
func (s *Service) History(ctx context.Context, withBody bool) ([]Document, error) {
	docs, err := s.cfg.Store.PolicyDocuments(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]Document, 0, len(docs))
	for _, d := range docs {
		out = append(out, toDoc(d, withBody))
	}
	return out, nil
}

// Document returns the version with id, with its body. A malformed or
// unknown id is NotFound (field "id").
func (s *Service) Document(ctx context.Context, id string) (Document, error) {
	if !ident.Valid(id, "pol") {
		return Document{}, errs.Field(errs.NotFound, "id", "policy document not found")
	}
	d, err := s.cfg.Store.PolicyDocument(ctx, id)
	if err != nil {
		return Document{}, err
	}
	return toDoc(*d, true), nil
}

// Pending returns, for each kind, the document the account must accept:
// the newest version, if the account has accepted neither it nor any
// version since the newest material one. Non-material versions alone
// never require acceptance. The slice is never nil.
func (s *Service) Pending(ctx context.Context, accountID string) ([]Document, error) {
	docs, err := s.cfg.Store.PolicyDocuments(ctx, "")
	if err != nil {
		return nil, err
	}
	acc, err := s.cfg.Store.Acceptances(ctx, accountID)
	if err != nil {
		return nil, err
	}
	out := []Document{}
	for _, kind := range []string{store.PolicyPrivacy, store.PolicyTerms} {
		m, ok := latest(docs, kind, true)
		if !ok {
			continue
		}
		accepted := false
		for _, a := range acc {
			if a.Kind == kind && a.Version >= m.Version {
				accepted = true
			}
		}
		if !accepted {
			cur, _ := latest(docs, kind, false)
			out = append(out, toDoc(cur, false))
		}
	}
	return out, nil
}

// Accept records that the account accepts document id, which must be the
// newest version of its kind (Precondition otherwise: the user must read
// the newer one). Accepting twice keeps the first time. It returns the
// recorded acceptance. Errors about the document name the field
// "document_id".
func (s *Service) Accept(ctx context.Context, accountID, id string) (Acceptance, error) {
	if !ident.Valid(id, "pol") {
		return Acceptance{}, errs.Field(errs.NotFound, "document_id", "policy document not found")
	}
	d, err := s.cfg.Store.PolicyDocument(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return Acceptance{}, errs.WithField(err, "document_id")
	} else if err != nil {
		return Acceptance{}, err
	}
	docs, err := s.cfg.Store.PolicyDocuments(ctx, d.Kind)
	if err != nil {
		return Acceptance{}, err
	}
	if cur, ok := latest(docs, d.Kind, false); ok && cur.ID != d.ID {
		return Acceptance{}, errs.Field(errs.Precondition, "document_id", "a newer version (%d) of this document exists; accept that one", cur.Version)
	}
	if err := s.cfg.Store.AcceptPolicy(ctx, accountID, id, s.cfg.Clock()); err != nil {
		return Acceptance{}, err
	}
	acc, err := s.Acceptances(ctx, accountID)
	if err != nil {
		return Acceptance{}, err
	}
	for _, a := range acc {
		if a.DocumentID == id {
			return a, nil
		}
	}
	return Acceptance{}, errs.E(errs.Internal, "acceptance not recorded")
}

// AcceptCurrent records that the account accepts the newest version of
// each policy document there is (at sign-up, whose form links them).
// Accepting twice keeps the first time.
func (s *Service) AcceptCurrent(ctx context.Context, accountID string) error {
	docs, err := s.cfg.Store.PolicyDocuments(ctx, "")
	if err != nil {
		return err
	}
	now := s.cfg.Clock()
	for _, kind := range []string{store.PolicyPrivacy, store.PolicyTerms} {
		if d, ok := latest(docs, kind, false); ok {
			if err := s.cfg.Store.AcceptPolicy(ctx, accountID, d.ID, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// Acceptances returns the account's acceptances, newest first.
func (s *Service) Acceptances(ctx context.Context, accountID string) ([]Acceptance, error) {
	acc, err := s.cfg.Store.Acceptances(ctx, accountID)
	if err != nil {
		return nil, err
	}
	out := make([]Acceptance, 0, len(acc))
	for _, a := range acc {
		out = append(out, Acceptance{DocumentID: a.DocumentID, Kind: a.Kind, Version: a.Version, AcceptedAt: a.AcceptedAt})
	}
	return out, nil
}

// ExportSection returns the account's policy acceptances for the data
// export, under the name "policy_acceptances".
func (s *Service) ExportSection(ctx context.Context, accountID string) (string, any, error) {
	acc, err := s.Acceptances(ctx, accountID)
	if err != nil {
		return "", nil, err
	}
	return "policy_acceptances", acc, nil
}

// latest returns the newest document of kind in docs (only material ones
// if materialOnly).
func latest(docs []store.PolicyDocument, kind string, materialOnly bool) (store.PolicyDocument, bool) {
	var best store.PolicyDocument
	found := false
	for _, d := range docs {
		if d.Kind != kind || (materialOnly && !d.Material) {
			continue
		}
		if !found || d.Version > best.Version {
			best, found = d, true
		}
	}
	return best, found
}

func toDoc(d store.PolicyDocument, withBody bool) Document {
	out := Document{ID: d.ID, Kind: d.Kind, Version: d.Version, Material: d.Material, PublishedAt: d.PublishedAt}
	if withBody {
		out.Body = d.Body
	}
	return out
}
