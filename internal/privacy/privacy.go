// Package privacy implements data-subject requests (GDPR Art. 15 to 21):
// access, portability, rectification, erasure, restriction and objection.
//
// Every request is free, is due one calendar month after receipt (package
// deadline), and needs identity proof before anything happens: the
// account's current password plus a one-time code sent to every verified
// contact (email and mobile), so that nobody who controls only one contact
// can act on an account.
//
// Once identity is proven:
//   - access and portability are fulfilled at once: the owner downloads
//     the export (JSON, schema in docs/export-schema.md, or HTML) with a
//     single-use token;
//   - restriction and objection set the account's processing flags
//     (details "lift" clears them);
//   - rectification of email or mobile goes through RequestContactChange,
//     which re-verifies the new contact before it takes effect;
//   - erasure waits for the user's final confirmation, then crypto-shreds
//     the account in one database transaction (see ConfirmErasure).
//
// Staff list, show, extend, complete and deny requests; each action is
// authorised by role (package staff) and recorded in the audit log.
//
// The free text of a request (the user's details, the staff's extension
// and denial reasons and completion notes) is stored sealed under the
// account's data key (package acctkey), so an erasure leaves none of it
// readable. Nothing personal (contacts, codes, tokens, free text) is ever
// logged. A Service is safe for concurrent use.
package privacy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/deadline"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/processing"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// Defaults.
const (
	// ExportWindow is how long after identity proof an export can be
	// downloaded.
	ExportWindow = 7 * 24 * time.Hour
	// ExportTokenTTL is how long a single-use download token lives.
	ExportTokenTTL = time.Hour
	// ContactChangeTTL is how long a pending contact change waits for
	// its code.
	ContactChangeTTL = accounts.CodeTTL
	// MaxDetails is the longest details text accepted, in characters.
	MaxDetails = 2000
	// MaxReason is the longest staff reason accepted, in characters.
	MaxReason = 1000
	// Lift is the details value that lifts a restriction or objection.
	Lift = "lift"
	// idPrefix prefixes request ids.
	idPrefix = "prq"
)

// Types returns the request types, in a stable order.
func Types() []string {
	return []string{store.RequestAccess, store.RequestPortability, store.RequestRectification,
		store.RequestErasure, store.RequestRestriction, store.RequestObjection}
}

// Inbox posts a message about privacy request requestID to an account's
// inbox (implemented by the inbox package), which front ends link to the
// request.
type Inbox interface {
	PostAbout(ctx context.Context, accountID, requestID, kind, subject, body string) error
}

// ExportSource contributes one named section to every export, such as the
// inbox, policy acceptances or disclosures whose gag has lapsed. data must
// marshal to JSON; it holds only the account's own data.
type ExportSource interface {
	ExportSection(ctx context.Context, accountID string) (name string, data any, err error)
}

// Outbox deletes the recorded copies of the messages about an account
// (*notify.Outbox).
type Outbox interface {
	ForgetAccount(accountID string) (int, error)
}

// HoldChecker reports the legal holds in force on an account
// (*holds.Service).
type HoldChecker interface {
	Active(ctx context.Context, accountID string) ([]store.Hold, error)
}

// Config holds the service's dependencies.
type Config struct {
	Store    store.Store
	Accounts *accounts.Service
	// Keys seals and opens request texts and device names under their
	// account's data key.
	Keys     *acctkey.Keys
	Holds    HoldChecker
	Audit    staff.Auditor
	Notifier notify.Notifier
	// Queue, if set, sends extension notices instead of Notifier and
	// reports each one's final outcome (the outbound queue): a notice is
	// then recorded as delivered only when the relay accepted it
	// (ExtensionOutcome, registered for ExtensionReceiptOwner).
	Queue Receipts
	// Inbox, if not nil, receives a notice of every change of a request's
	// status (see notices.go) and a copy of every email about a request.
	Inbox Inbox
	// Outbox, if not nil, keeps copies of messages sent to users; an
	// erasure deletes the account's.
	Outbox Outbox
	// Sources add sections to exports.
	Sources []ExportSource
	// Inventory is the data inventory in force, which the Art. 15
	// information in every export states.
	Inventory inventory.Inventory
	// Controller is who answers for the data, stated in every export.
	Controller controller.Identity
	// OnPeerChange is called after an erasure removed devices (the peer
	// feed hub's Notify). May be nil.
	OnPeerChange func()
	// UsageRecording is the server's session recording mode, shown in
	// exports ("intervals" or "none").
	UsageRecording string
	Logger         *slog.Logger
	Clock          func() time.Time
	Rand           io.Reader
}

// Service handles privacy requests. It is safe for concurrent use.
type Service struct {
	cfg Config
}

// New returns a Service. Store, Accounts, Keys, Holds, Audit, Notifier,
// Inventory, Logger, Clock and Rand are required.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Accounts == nil || cfg.Keys == nil || cfg.Holds == nil || cfg.Audit == nil || cfg.Notifier == nil ||
		cfg.Inventory == nil || cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("privacy: missing dependency")
	}
	if cfg.OnPeerChange == nil {
		cfg.OnPeerChange = func() {}
	}
	return &Service{cfg: cfg}, nil
}

// Extension is a deadline extension as the user and staff see it.
type Extension struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Notice is the delivery of the notice telling the user (staff views
	// only).
	Notice *ExtensionNotice `json:"notice,omitempty"`
}

// Request is a privacy request as its owner (and staff) see it.
type Request struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id,omitempty"` // staff views only
	Type      string `json:"type"`
	Status    string `json:"status"`
	// Channel is how the request reached us: "app", or "email", "phone"
	// or "post" for one staff recorded.
	Channel string `json:"channel"`
	// Details is the requester's free text, or the note staff recorded
	// with a request from outside the app.
	Details    string    `json:"details,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	DueAt      time.Time `json:"due_at"`
	Overdue    bool      `json:"overdue"`
	// IdentityProof lists what Verify needs: "password" and one code per
	// verified contact ("email_code", "mobile_code").
	IdentityProof []string `json:"identity_proof,omitempty"`
	// IdentityCheck is the staff check that proved the identity of a
	// requester from outside the app whom no account's verified contacts
	// could prove.
	IdentityCheck *IdentityCheck `json:"identity_check,omitempty"`
	// Recipients are, for a rectification or erasure, the processors that
	// received the account's data and whether each was told of the
	// request (Art. 19 GDPR). Listed once identity is proven.
	Recipients   []Recipient `json:"recipients,omitempty"`
	Extension    *Extension  `json:"extension,omitempty"`
	VerifiedAt   *time.Time  `json:"verified_at,omitempty"`
	ConfirmedAt  *time.Time  `json:"confirmed_at,omitempty"`
	CompletedAt  *time.Time  `json:"completed_at,omitempty"`
	DeniedReason string      `json:"denied_reason,omitempty"`
	Outcome      string      `json:"outcome,omitempty"`
	// ExportUntil is when the export stops being downloadable (access and
	// portability, once verified).
	ExportUntil *time.Time `json:"export_until,omitempty"`
	Fee         string     `json:"fee"`
	// Actions are what the staff member who read the request may do with
	// it now, and why not (staff views only).
	Actions []Action `json:"actions,omitempty"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// view converts a stored request, whose text is t, for the owner.
func (s *Service) view(r *store.PrivacyRequest, t requestText) Request {
	v := Request{
		ID: r.ID, Type: r.Type, Status: r.Status, Channel: channel(r), Details: t.Details,
		ReceivedAt: r.ReceivedAt.UTC(), DueAt: r.DueAt.UTC(),
		Overdue:    deadline.Overdue(r.DueAt, s.cfg.Clock(), store.Answered(r.Status)),
		VerifiedAt: utcPtr(r.VerifiedAt), ConfirmedAt: utcPtr(r.ConfirmedAt), CompletedAt: utcPtr(r.CompletedAt),
		DeniedReason: t.DeniedReason, Outcome: t.outcome(r), Fee: "none: privacy requests are free of charge",
	}
	if r.ExtendedAt != nil {
		v.Extension = &Extension{Reason: t.ExtendedReason, At: r.ExtendedAt.UTC()}
	}
	if c := r.Check; c != nil {
		v.IdentityCheck = &IdentityCheck{Method: c.Method, Description: checkMethods()[c.Method], At: c.At.UTC()}
	}
	if (r.Type == store.RequestAccess || r.Type == store.RequestPortability) && r.VerifiedAt != nil && r.Status == store.RequestCompleted {
		u := r.VerifiedAt.Add(ExportWindow).UTC()
		v.ExportUntil = &u
	}
	return v
}

// requestID validates a request id from the outside.
func requestID(id string) error {
	if !ident.Valid(id, idPrefix) {
		return errs.Field(errs.Invalid, "id", "malformed request id %q: want %s_ followed by 26 characters", clip(id, 40), idPrefix)
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n || !utf8.ValidString(s) {
		if !utf8.ValidString(s) {
			return "(invalid UTF-8)"
		}
		return s
	}
	return s[:n] + "…"
}

// purpose is the one-time code purpose of a request's identity proof.
func purpose(id string) string { return "privacy-" + id }

// checkText validates free text: valid UTF-8, at most max characters,
// no control characters other than newlines and tabs. Its errors name
// field.
func checkText(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", errs.Field(errs.Invalid, field, "%s is not valid UTF-8", field)
	}
	if utf8.RuneCountInString(s) > max {
		return "", errs.Field(errs.Invalid, field, "%s must be at most %d characters", field, max)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f }) {
		return "", errs.Field(errs.Invalid, field, "%s contains control characters", field)
	}
	return s, nil
}

// Create records a new request of typ for the account and sends an
// identity-proof code to every verified contact. It returns the request
// with its due date, one calendar month after receipt. Unknown types and
// bad details are Invalid (field "type" or "details"); an account without any verified contact is
// Precondition (nothing could prove identity).
func (s *Service) Create(ctx context.Context, accountID, typ, details string) (*Request, error) {
	typ = strings.ToLower(strings.TrimSpace(typ))
	if !slices.Contains(Types(), typ) {
		return nil, errs.Field(errs.Invalid, "type", "unknown request type %q: want one of %s", clip(typ, 40), strings.Join(Types(), ", "))
	}
	details, err := checkText("details", details, MaxDetails)
	if err != nil {
		return nil, err
	}
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	if a.Status != store.StatusActive {
		return nil, errs.E(errs.NotFound, "account not found")
	}
	chans := verifiedChannels(a)
	if len(chans) == 0 {
		return nil, errs.E(errs.Precondition, "verify your email or mobile number first, so that your identity can be proven")
	}
	id, err := ident.New(s.cfg.Rand, idPrefix)
	if err != nil {
		return nil, err
	}
	key, err := s.cfg.Keys.OpenAccount(a)
	if err != nil {
		return nil, err
	}
	txt := requestText{Details: details}
	sealed, err := txt.seal(key, id)
	key.Close()
	if err != nil {
		return nil, err
	}
	received := s.cfg.Clock().UTC().Truncate(time.Second)
	r := &store.PrivacyRequest{ID: id, AccountID: accountID, Type: typ, Status: store.RequestPending, Sealed: sealed,
		ReceivedAt: received, DueAt: deadline.Due(received, deadline.Months)}
	if err := s.cfg.Store.CreatePrivacyRequest(ctx, r); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("privacy request received", "request", id, "type", typ)
	s.sendProofCodes(ctx, a, r, chans)
	s.postStatus(ctx, r, true)
	v := s.view(r, txt)
	v.IdentityProof = proofFields(chans)
	return &v, nil
}

// verifiedChannels returns the account's verified contact channels.
func verifiedChannels(a *store.Account) []store.Channel {
	var out []store.Channel
	if a.EmailVerified {
		out = append(out, store.Email)
	}
	if a.MobileVerified {
		out = append(out, store.Mobile)
	}
	return out
}

func proofFields(chans []store.Channel) []string {
	out := []string{"password"}
	for _, ch := range chans {
		out = append(out, string(ch)+"_code")
	}
	return out
}

// sendProofCodes sends a code for request r to each channel. Failures
// are logged (without data); the user can ask for new codes.
func (s *Service) sendProofCodes(ctx context.Context, a *store.Account, r *store.PrivacyRequest, chans []store.Channel) {
	id := r.ID
	for _, ch := range chans {
		err := s.cfg.Accounts.SendCodeTo(ctx, a.ID, ch, purpose(id), accounts.CodeMessage{
			Kind: "privacy-code", What: "confirm your privacy request " + id, Note: proofNote(r)})
		if err != nil {
			s.cfg.Logger.Warn("privacy proof code not sent", "request", id, "channel", string(ch), "err", errs.CodeOf(err))
		}
	}
}

// owned returns the account's request id; another account's, or a
// malformed id, is NotFound or Invalid (field "id").
func (s *Service) owned(ctx context.Context, accountID, id string) (*store.PrivacyRequest, error) {
	if err := requestID(id); err != nil {
		return nil, err
	}
	r, err := s.cfg.Store.PrivacyRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.AccountID == "" || r.AccountID != accountID {
		return nil, errs.Field(errs.NotFound, "id", "privacy request not found")
	}
	return r, nil
}

// Get returns the account's request id.
func (s *Service) Get(ctx context.Context, accountID, id string) (*Request, error) {
	r, err := s.owned(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	v, err := s.viewOne(ctx, r)
	if err != nil {
		return nil, err
	}
	if r.Status == store.RequestPending {
		if a, err := s.cfg.Store.Account(ctx, accountID); err == nil {
			v.IdentityProof = proofFields(verifiedChannels(a))
		}
	}
	s.addRecipients(ctx, &v, r)
	return &v, nil
}

// Flags returns whether the account's owner has restricted processing or
// objected to it; package processing says what each stops.
func (s *Service) Flags(ctx context.Context, accountID string) (store.Flags, error) {
	return s.cfg.Store.AccountFlags(ctx, accountID)
}

// List returns the account's requests, newest first.
func (s *Service) List(ctx context.Context, accountID string) ([]Request, error) {
	rs, err := s.cfg.Store.PrivacyRequests(ctx, store.PrivacyFilter{AccountID: accountID})
	if err != nil {
		return nil, err
	}
	return s.views(ctx, rs, func(r *store.PrivacyRequest, t requestText) Request {
		v := s.view(r, t)
		s.addRecipients(ctx, &v, r)
		return v
	})
}

// views converts rs with view, opening each account's key once.
func (s *Service) views(ctx context.Context, rs []store.PrivacyRequest,
	view func(*store.PrivacyRequest, requestText) Request) ([]Request, error) {
	ring := s.keyring()
	defer ring.Close()
	out := make([]Request, 0, len(rs))
	for i := range rs {
		t, err := ring.text(ctx, &rs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, view(&rs[i], t))
	}
	return out, nil
}

// viewOne converts r for its owner.
func (s *Service) viewOne(ctx context.Context, r *store.PrivacyRequest) (Request, error) {
	vs, err := s.views(ctx, []store.PrivacyRequest{*r}, s.view)
	if err != nil {
		return Request{}, err
	}
	return vs[0], nil
}

// ResendCodes sends fresh identity-proof codes for a request still
// waiting for proof; Conflict otherwise.
func (s *Service) ResendCodes(ctx context.Context, accountID, id string) error {
	r, err := s.owned(ctx, accountID, id)
	if err != nil {
		return err
	}
	if r.Status != store.RequestPending {
		return errs.E(errs.Conflict, "identity is already verified for this request")
	}
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return err
	}
	s.sendProofCodes(ctx, a, r, verifiedChannels(a))
	return nil
}

// Verify proves the requester's identity with the current password and
// the codes sent to every verified contact, then fulfils what can be
// fulfilled at once (see the package comment). A wrong password or code
// is Unauthenticated, a missing code Invalid, an expired or used code
// Gone, a request not waiting for proof Conflict. Errors about the proof
// name their field: "password", "email_code" or "mobile_code".
func (s *Service) Verify(ctx context.Context, accountID, id, password, emailCode, mobileCode string) (*Request, error) {
	r, err := s.owned(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	if r.Status != store.RequestPending {
		return nil, errs.E(errs.Conflict, "identity is already verified for this request (status %s)", r.Status)
	}
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	if password == "" {
		return nil, errs.Field(errs.Invalid, "password", "password is required")
	}
	chans := verifiedChannels(a)
	if err := requireCodes(chans, emailCode, mobileCode); err != nil {
		return nil, err
	}
	if err := s.cfg.Accounts.CheckPassword(ctx, accountID, password); err != nil {
		return nil, err
	}
	if err := s.checkCodes(ctx, accountID, id, chans, emailCode, mobileCode); err != nil {
		return nil, err
	}
	if r, err = s.proven(ctx, r); err != nil {
		return nil, err
	}
	v, err := s.viewOne(ctx, r)
	if err != nil {
		return nil, err
	}
	s.addRecipients(ctx, &v, r)
	return &v, nil
}

// requireCodes returns Invalid, naming the field, unless a code is given
// for each of chans.
func requireCodes(chans []store.Channel, emailCode, mobileCode string) error {
	codes := map[store.Channel]string{store.Email: strings.TrimSpace(emailCode), store.Mobile: strings.TrimSpace(mobileCode)}
	for _, ch := range chans {
		if codes[ch] == "" {
			return errs.Field(errs.Invalid, string(ch)+"_code", "%s_code is required: a code was sent to the %s", ch, ch)
		}
	}
	return nil
}

// checkCodes consumes the identity-proof codes of request id on each of
// chans. Errors name the field: "email_code" or "mobile_code".
func (s *Service) checkCodes(ctx context.Context, accountID, id string, chans []store.Channel, emailCode, mobileCode string) error {
	codes := map[store.Channel]string{store.Email: strings.TrimSpace(emailCode), store.Mobile: strings.TrimSpace(mobileCode)}
	for _, ch := range chans {
		if err := s.cfg.Accounts.CheckCode(ctx, accountID, ch, purpose(id), codes[ch]); err != nil {
			return errs.WithField(err, string(ch)+"_code")
		}
	}
	return nil
}

// proven records that the identity of request r's requester (an account
// holder) is proven and fulfils what can be fulfilled at once (see the
// package comment). A request no longer waiting for proof is Conflict.
func (s *Service) proven(ctx context.Context, r *store.PrivacyRequest) (*store.PrivacyRequest, error) {
	now := s.cfg.Clock().UTC()
	txt, err := s.text(ctx, r)
	if err != nil {
		return nil, err
	}
	lift := strings.EqualFold(txt.Details, Lift)
	r, err = s.cfg.Store.UpdatePrivacyRequest(ctx, r.ID, func(r *store.PrivacyRequest) error {
		if r.Status != store.RequestPending {
			return errs.E(errs.Conflict, "identity is already verified for this request")
		}
		r.Status, r.VerifiedAt = store.RequestVerified, &now
		switch r.Type {
		case store.RequestAccess, store.RequestPortability:
			r.Status, r.CompletedAt = store.RequestCompleted, &now
			r.Outcome = "Your data export is ready to download until " + htmlTime(now.Add(ExportWindow)) + "."
		case store.RequestRestriction, store.RequestObjection:
			r.Status, r.CompletedAt = store.RequestCompleted, &now
			r.Outcome = flagOutcome(r.Type, lift)
		case store.RequestRectification:
			r.Outcome = rectificationVerified
		case store.RequestErasure:
			r.Outcome = "Identity verified. Erasure needs your final confirmation: it closes your account and ends the service."
			if outside(r) {
				r.Outcome = "Identity verified. Our privacy team carries out the erasure you asked for: it closes your account and ends the service. You may also confirm it yourself in the app or portal."
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.Type == store.RequestRestriction || r.Type == store.RequestObjection {
		if err := s.setFlag(ctx, r.AccountID, r.Type, !lift); err != nil {
			return nil, err
		}
	}
	if err := s.snapshotRecipients(ctx, r); err != nil {
		// Completion and erasure take the list again.
		s.cfg.Logger.Warn("recipients of request not recorded", "request", r.ID, "err", errs.CodeOf(err))
	}
	s.cfg.Logger.Info("privacy request verified", "request", r.ID, "type", r.Type)
	s.postStatus(ctx, r, false)
	return r, nil
}

// text returns r's text, opened with its account's key.
func (s *Service) text(ctx context.Context, r *store.PrivacyRequest) (requestText, error) {
	ring := s.keyring()
	defer ring.Close()
	return ring.text(ctx, r)
}

// Outcomes the service words itself.
const (
	rectificationVerified = "Identity verified. You can now change your email address or mobile number on your account page; the new one takes effect once you enter the code we send to it. Our privacy team handles other corrections."
	// rectificationVerifiedBefore is how earlier versions worded
	// rectificationVerified; legacyOutcome recognises it.
	rectificationVerifiedBefore = "Identity verified. Change your email or mobile number with `nitronet privacy contact` or in the portal; the new contact is verified before it takes effect. Other corrections are handled by our privacy team."
	deniedOutcome               = "Denied."
)

// correctedOutcome is the outcome of a rectification completed by a change
// of the contact ch.
func correctedOutcome(ch store.Channel) string {
	return "Your " + string(ch) + " was corrected after the new one was verified."
}

// isCorrectedOutcome reports whether o is a correctedOutcome.
func isCorrectedOutcome(o string) bool {
	return o == correctedOutcome(store.Email) || o == correctedOutcome(store.Mobile)
}

func flagOutcome(typ string, lift bool) string {
	if lift {
		if typ == store.RequestObjection {
			return "Your objection is withdrawn: announcements and aggregate statistics may again include you, unless processing is restricted."
		}
		return "The restriction is lifted: your data is again processed for the purposes in our data inventory, unless you objected."
	}
	f := store.Flags{Restricted: typ == store.RequestRestriction, Objected: typ == store.RequestObjection}
	return processing.StateOf(f).Effect + " Send a request of the same type with details \"lift\" to undo this."
}

// setFlag sets or clears the restriction or objection flag.
func (s *Service) setFlag(ctx context.Context, accountID, typ string, on bool) error {
	f, err := s.cfg.Store.AccountFlags(ctx, accountID)
	if err != nil {
		return err
	}
	if typ == store.RequestRestriction {
		f.Restricted = on
	} else {
		f.Objected = on
	}
	return s.cfg.Store.SetFlags(ctx, accountID, f)
}

// notifyUser tells the account holder something about request r, in the
// inbox (if configured) and by email. Failures are logged without data
// and the first is returned.
func (s *Service) notifyUser(ctx context.Context, a *store.Account, r *store.PrivacyRequest, kind, subject, body string) error {
	var firstErr error
	if s.cfg.Inbox != nil {
		if err := s.cfg.Inbox.PostAbout(ctx, a.ID, r.ID, kind, subject, body); err != nil {
			s.cfg.Logger.Warn("privacy notice not posted to inbox", "kind", kind, "err", errs.CodeOf(err))
			firstErr = err
		}
	}
	if a.WrappedKey == nil {
		return firstErr
	}
	email, _, err := s.cfg.Accounts.Contacts(a)
	if err == nil {
		err = s.cfg.Notifier.Send(ctx, notify.Message{Channel: notify.Email, To: email, Subject: subject, Body: body, Kind: kind, Account: a.ID})
	}
	if err != nil {
		s.cfg.Logger.Warn("privacy notice not emailed", "kind", kind, "err", errs.CodeOf(err))
		if firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// complaintText is the notice of the right to lodge a complaint.
const complaintText = "You have the right to lodge a complaint with a supervisory authority (Art. 77 GDPR), in particular in the EU member state where you live or work or where you think an infringement took place, and to seek a judicial remedy (Art. 79 GDPR)."
