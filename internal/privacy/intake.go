package privacy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/deadline"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// Requests from outside the app.
//
// A request that arrives by email, phone or post is recorded by staff
// (StaffAdd) with the time it was received, from which its deadline
// counts. The requester names the email address or mobile number of the
// account; the service finds the account through the blind index.
//
// Identity is proven as in the app, by one-time codes sent to every
// verified contact of the account, which the requester either reads back
// to staff, who enter them (StaffVerify: on the phone, or from a reply by
// email or post), or enters in the app or portal with their password (the
// request is listed there like one made in the app). Codes expire after
// accounts.CodeTTL; StaffSendCodes sends fresh ones.
//
// When no account holds the contact, or its account has no verified
// contact, no code can prove anything: the staff member records how they
// checked the requester's identity (one of CheckMethods; never a copy of
// an identity document), and the request is verified at once. Staff
// answer it (complete or deny); for a request that matched no account
// there is no account data to act on.
//
// An erasure received outside the app is carried out by staff completing
// it, once identity is proven: the written or spoken request is the
// requester's instruction.

// MaxIntakeAge is how long before it is recorded a request from outside
// the app may have been received.
const MaxIntakeAge = 365 * 24 * time.Hour

// Identity check methods for a requester whom no verified contact can
// prove, by name.
const (
	CheckCallback = "callback"
	CheckReply    = "reply"
	CheckInPerson = "in-person"
	CheckLetter   = "letter"
)

// checkMethods describes each identity check method, by name.
func checkMethods() map[string]string {
	return map[string]string{
		CheckCallback: "called the requester back on a number obtained independently of the request, and the requester confirmed it",
		CheckReply:    "wrote back to the address the request came from, and the requester confirmed it from there",
		CheckInPerson: "saw an identity document in person; no copy was taken",
		CheckLetter:   "a signed letter whose name and postal address match what the requester gave",
	}
}

// CheckMethods returns the identity check methods, sorted.
func CheckMethods() []string {
	out := make([]string, 0, 4)
	for m := range checkMethods() {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// Channels returns the channels a request from outside the app can come
// by, in a stable order.
func Channels() []string {
	return []string{store.ChannelEmail, store.ChannelPhone, store.ChannelPost}
}

// IdentityCheck is how staff checked the identity of a requester from
// outside the app.
type IdentityCheck struct {
	Method      string    `json:"method"`
	Description string    `json:"description"`
	At          time.Time `json:"at"`
	// By is the staff member who checked (staff views only).
	By string `json:"by,omitempty"`
}

// channel returns r's channel, store.ChannelApp if none is stored.
func channel(r *store.PrivacyRequest) string {
	if r.Channel == "" {
		return store.ChannelApp
	}
	return r.Channel
}

// outside reports whether r came from outside the app.
func outside(r *store.PrivacyRequest) bool { return channel(r) != store.ChannelApp }

// Intake is a request received by email, phone or post, as staff record
// it.
type Intake struct {
	// Type is the request type (Types).
	Type string
	// Email or Mobile is the contact the requester gave, which finds the
	// account: exactly one of them.
	Email, Mobile string
	// Channel is how the request arrived (Channels).
	Channel string
	// ReceivedAt is when it arrived; zero means now. The deadline counts
	// from it.
	ReceivedAt time.Time
	// Note is what the request says, in the staff member's words (kept as
	// the request's details, up to MaxDetails characters).
	Note string
	// Check is how staff checked the requester's identity (CheckMethods).
	// It is required when no account's verified contact can prove the
	// identity, and refused otherwise.
	Check string
}

// contact returns the channel and normalised value of the contact in. Errors
// name the field "email" or "mobile".
func (s *Service) intakeContact(in Intake) (store.Channel, string, error) {
	email, mobile := strings.TrimSpace(in.Email), strings.TrimSpace(in.Mobile)
	switch {
	case email != "" && mobile != "":
		return "", "", errs.Field(errs.Invalid, "email", "give the email address or the mobile number the requester named, not both")
	case email == "" && mobile == "":
		return "", "", errs.Field(errs.Invalid, "email", "the email address or mobile number the requester named is required: it finds the account")
	}
	ch, value := store.Email, email
	if mobile != "" {
		ch, value = store.Mobile, mobile
	}
	norm, err := s.cfg.Accounts.CanonicalContact(ch, value)
	if err != nil {
		return "", "", errs.WithField(err, string(ch))
	}
	return ch, norm, nil
}

// receivedAt checks when a request from outside the app was received:
// not after now and not more than MaxIntakeAge before it (Invalid, field
// "received_at"). Zero means now.
func receivedAt(t, now time.Time) (time.Time, error) {
	if t.IsZero() {
		return now, nil
	}
	t = t.UTC().Truncate(time.Second)
	if t.After(now) {
		return time.Time{}, errs.Field(errs.Invalid, "received_at", "received_at %s is in the future (now is %s)",
			t.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	if now.Sub(t) > MaxIntakeAge {
		return time.Time{}, errs.Field(errs.Invalid, "received_at",
			"received_at %s is more than %d days ago: record requests when they arrive", t.Format(time.RFC3339),
			int(MaxIntakeAge/(24*time.Hour)))
	}
	return t, nil
}

// StaffAdd records a request that arrived by email, phone or post, for
// by, who must be allowed staff.ActPrivacyRecord. It is due one calendar
// month after in.ReceivedAt. If an active account holds the contact
// given and has a verified contact, the request waits for identity proof
// and codes go to every verified contact (see the comment on requests from
// outside the app); otherwise in.Check is required and the request is
// verified by it. Bad input is Invalid, naming the field: "type",
// "channel", "email", "mobile", "received_at", "note" or
// "identity_check". The recording is audited under the account (or the
// request), naming the channel of the contact but never its value.
func (s *Service) StaffAdd(ctx context.Context, by staff.Principal, in Intake) (*Request, error) {
	if err := staff.Authorize(by, staff.ActPrivacyRecord); err != nil {
		return nil, err
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	x, err := s.checkIntake(ctx, in, now)
	if err != nil {
		return nil, err
	}
	r, err := s.recordIntake(ctx, by, x, now)
	if err != nil {
		return nil, err
	}
	if x.account != nil {
		s.postStatus(ctx, r, len(x.chans) > 0)
	}
	switch {
	case len(x.chans) > 0:
		s.sendProofCodes(ctx, x.account, r, x.chans)
	case x.account != nil:
		if r, err = s.proven(ctx, r); err != nil {
			return nil, err
		}
	}
	v, err := s.staffFull(ctx, by, r)
	if err != nil {
		return nil, err
	}
	if r.Status == store.RequestPending {
		v.IdentityProof = codeFields(x.chans)
	}
	return v, nil
}

// intake is an Intake checked: normalised values, the account the
// contact found (nil if none) and its verified channels.
type intake struct {
	typ, channel, note string
	received           time.Time
	contact            store.Channel // which contact the requester named
	method             string        // the staff identity check, or ""
	account            *store.Account
	chans              []store.Channel
}

// checkIntake validates in at now and finds its account (see StaffAdd
// for the errors).
func (s *Service) checkIntake(ctx context.Context, in Intake, now time.Time) (*intake, error) {
	x := &intake{typ: strings.ToLower(strings.TrimSpace(in.Type)), channel: strings.ToLower(strings.TrimSpace(in.Channel)),
		method: strings.ToLower(strings.TrimSpace(in.Check))}
	if !slices.Contains(Types(), x.typ) {
		return nil, errs.Field(errs.Invalid, "type", "unknown request type %q: want one of %s", clip(x.typ, 40), strings.Join(Types(), ", "))
	}
	if !slices.Contains(Channels(), x.channel) {
		return nil, errs.Field(errs.Invalid, "channel", "unknown channel %q: a request from outside the app comes by %s",
			clip(x.channel, 40), strings.Join(Channels(), ", "))
	}
	var err error
	if x.note, err = checkText("note", in.Note, MaxDetails); err != nil {
		return nil, err
	}
	if x.received, err = receivedAt(in.ReceivedAt, now); err != nil {
		return nil, err
	}
	var value string
	if x.contact, value, err = s.intakeContact(in); err != nil {
		return nil, err
	}
	if _, ok := checkMethods()[x.method]; x.method != "" && !ok {
		return nil, errs.Field(errs.Invalid, "identity_check", "unknown identity check %q: want one of %s",
			clip(x.method, 40), strings.Join(CheckMethods(), ", "))
	}
	if id, err := s.cfg.Accounts.AccountIDByIndex(ctx, x.contact, value); err != nil {
		return nil, err
	} else if id != "" {
		if x.account, err = s.cfg.Store.Account(ctx, id); err != nil {
			return nil, err
		}
		x.chans = verifiedChannels(x.account)
	}
	return x, x.proof()
}

// proof checks that exactly one kind of identity proof applies: codes to
// the account's verified contacts, or else a staff check (Invalid, field
// "identity_check").
func (x *intake) proof() error {
	switch {
	case len(x.chans) > 0 && x.method != "":
		return errs.Field(errs.Invalid, "identity_check", "an account holds this %s: the requester's identity is proven by "+
			"the codes sent to its verified contacts, not by a staff check", x.contact)
	case len(x.chans) == 0 && x.method == "" && x.account == nil:
		return errs.Field(errs.Invalid, "identity_check", "no account holds this %s, so no code can prove the requester's "+
			"identity: record how you checked it (one of %s)", x.contact, strings.Join(CheckMethods(), ", "))
	case len(x.chans) == 0 && x.method == "":
		return errs.Field(errs.Invalid, "identity_check", "the account has no verified contact, so no code can prove the "+
			"requester's identity: record how you checked it (one of %s)", strings.Join(CheckMethods(), ", "))
	}
	return nil
}

// recordIntake stores the request x describes, recorded by by at now,
// and audits it, naming the channel of the contact but never its value.
// A request that matched no account is verified by the staff check.
func (s *Service) recordIntake(ctx context.Context, by staff.Principal, x *intake, now time.Time) (*store.PrivacyRequest, error) {
	id, err := ident.New(s.cfg.Rand, idPrefix)
	if err != nil {
		return nil, err
	}
	r := &store.PrivacyRequest{ID: id, Type: x.typ, Status: store.RequestPending, Channel: x.channel, Details: x.note,
		ReceivedAt: x.received, DueAt: deadline.Due(x.received, deadline.Months)}
	matched, subj := "no account holds the "+string(x.contact)+" given", r.ID
	if x.account != nil {
		r.AccountID = x.account.ID
		matched, subj = "account found by "+string(x.contact), x.account.ID
		// The note is sealed under the account's key, as a request made
		// in the app is; without an account there is no key, and the
		// note stays as staff wrote it.
		key, err := s.cfg.Keys.OpenAccount(x.account)
		if err != nil {
			return nil, err
		}
		r.Sealed, err = requestText{Details: x.note}.seal(key, id)
		key.Close()
		if err != nil {
			return nil, err
		}
		r.Details = ""
	}
	proof := "identity to be proven by codes"
	if x.method != "" {
		proof = "identity checked by staff (" + x.method + ")"
		r.Check = &store.IdentityCheck{By: by.ID, Method: x.method, At: now}
		if x.account == nil {
			r.Status, r.VerifiedAt = store.RequestVerified, &now
			r.Outcome = "Identity checked by our staff. No account holds the " + string(x.contact) +
				" given, so we hold no account data about it; our privacy team answers the request."
		}
	}
	if err := s.cfg.Store.CreatePrivacyRequest(ctx, r); err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActPrivacyRecord, subj, fmt.Sprintf(
		"recorded %s request %s received by %s at %s; %s; %s", x.typ, r.ID, x.channel, x.received.Format(time.RFC3339), matched, proof)); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("privacy request recorded", "request", r.ID, "type", x.typ, "channel", x.channel)
	return r, nil
}

// codeFields names the codes that prove identity on chans.
func codeFields(chans []store.Channel) []string {
	var out []string
	for _, ch := range chans {
		out = append(out, string(ch)+"_code")
	}
	return out
}

// outsidePending returns request id if it came from outside the app, has
// an account and waits for identity proof; Conflict otherwise.
func (s *Service) outsidePending(ctx context.Context, id string) (*store.PrivacyRequest, *store.Account, error) {
	if err := requestID(id); err != nil {
		return nil, nil, err
	}
	r, err := s.cfg.Store.PrivacyRequest(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case !outside(r):
		return nil, nil, errs.E(errs.Conflict, "request %s was made in the app: its requester proves their identity there, with their password and the codes", id)
	case r.Status != store.RequestPending:
		return nil, nil, errs.E(errs.Conflict, "request %s does not wait for identity proof (status %s)", id, r.Status)
	case r.AccountID == "":
		return nil, nil, errs.E(errs.Conflict, "request %s has no account: its identity check was recorded with it", id)
	}
	a, err := s.cfg.Store.Account(ctx, r.AccountID)
	if err != nil {
		return nil, nil, err
	}
	return r, a, nil
}

// StaffVerify proves the identity of the requester of request id, which
// came from outside the app, with the codes sent to every verified
// contact of its account, which the requester read back to by (who must
// be allowed staff.ActPrivacyRecord); then it fulfils what can be
// fulfilled at once, as Verify does. Code errors are Verify's and name
// "email_code" or "mobile_code"; a request made in the app, or not
// waiting for proof, is Conflict. It is audited without the codes.
func (s *Service) StaffVerify(ctx context.Context, by staff.Principal, id, emailCode, mobileCode string) (*Request, error) {
	if err := staff.Authorize(by, staff.ActPrivacyRecord); err != nil {
		return nil, err
	}
	r, a, err := s.outsidePending(ctx, id)
	if err != nil {
		return nil, err
	}
	chans := verifiedChannels(a)
	if len(chans) == 0 {
		return nil, errs.E(errs.Precondition, "the account has no verified contact left: no code can prove the requester's identity; deny the request and record it again with an identity check")
	}
	if err := requireCodes(chans, emailCode, mobileCode); err != nil {
		return nil, err
	}
	if err := s.checkCodes(ctx, a.ID, id, chans, emailCode, mobileCode); err != nil {
		return nil, err
	}
	if r, err = s.proven(ctx, r); err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActPrivacyRecord, a.ID,
		"request "+id+": identity proven by the codes sent to the account's verified contacts, read back by the requester"); err != nil {
		return nil, err
	}
	return s.staffFull(ctx, by, r)
}

// StaffSendCodes sends fresh identity-proof codes for request id, which
// came from outside the app and waits for proof, to every verified
// contact of its account, for by (who must be allowed
// staff.ActPrivacyRecord). It returns the fields the codes go in, and is
// audited.
func (s *Service) StaffSendCodes(ctx context.Context, by staff.Principal, id string) ([]string, error) {
	if err := staff.Authorize(by, staff.ActPrivacyRecord); err != nil {
		return nil, err
	}
	r, a, err := s.outsidePending(ctx, id)
	if err != nil {
		return nil, err
	}
	chans := verifiedChannels(a)
	if len(chans) == 0 {
		return nil, errs.E(errs.Precondition, "the account has no verified contact left to send codes to")
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActPrivacyRecord, a.ID,
		"request "+r.ID+": sent new identity-proof codes to the account's verified contacts"); err != nil {
		return nil, err
	}
	s.sendProofCodes(ctx, a, r, chans)
	return codeFields(chans), nil
}

// proofNote is the paragraph under an identity-proof code for a request
// from outside the app.
func proofNote(r *store.PrivacyRequest) string {
	if !outside(r) {
		return ""
	}
	return fmt.Sprintf("You sent us this privacy request by %s. To prove it is yours, read this code to our privacy team "+
		"when they ask for it, or enter it with your password in the Nitronet app or portal, where the request is listed. "+
		"Codes expire after %d minutes; ask us for new ones.", r.Channel, int(accounts.CodeTTL/time.Minute))
}
