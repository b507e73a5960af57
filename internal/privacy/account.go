package privacy

import (
	"context"
	"fmt"
	"slices"

	"time"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// The account a request is about, as staff see it.
//
// Staff answering a request need the data it is about: StaffAccount shows
// it for the request in hand (contacts decrypted, devices, a summary of
// the session intervals, the account's requests, its processing flags
// and legal holds), to staff allowed staff.ActAccountView, and records
// every view in the audit log under the account. For a verified
// rectification, staff allowed staff.ActPrivacyComplete may correct the
// email or mobile (StaffCorrectContact) with the semantics of the
// owner's own change: the new contact takes effect once the code sent to
// it is entered.

// MaxAccountSessions is the most session intervals the summary reads.
const MaxAccountSessions = 10_000

// AccountDevice is one device of the account, without its keys or
// tunnel addresses.
type AccountDevice struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when it was last renamed or its key replaced.
	UpdatedAt time.Time `json:"updated_at"`
	// Sessions is how many session intervals of the device are kept;
	// LastUsed is the start of the newest (nil if none).
	Sessions int        `json:"sessions"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	// Connected: a session of the device is open now.
	Connected bool `json:"connected"`
}

// SessionSummary sums up the account's session intervals: never a
// destination, an address or a byte count, which nobody records.
type SessionSummary struct {
	Count   int        `json:"count"`
	Open    int        `json:"open"`
	First   *time.Time `json:"first,omitempty"`
	Last    *time.Time `json:"last,omitempty"`
	Regions []string   `json:"regions"`
	// Capped: the account has more intervals than the summary read
	// (MaxAccountSessions).
	Capped bool `json:"capped,omitempty"`
}

// AccountHolds says whether legal holds are in force on the account; the
// holds themselves only to staff allowed staff.ActHoldView.
type AccountHolds struct {
	Active int          `json:"active"`
	Holds  []store.Hold `json:"holds,omitempty"`
}

// AccountView is the account a request is about, for staff (StaffAccount).
type AccountView struct {
	// Request is the request in hand, with the actions the staff member
	// may take on it.
	Request Request `json:"request"`
	// Account is the account; its contacts are empty once it was erased.
	Account  accounts.StaffView `json:"account"`
	Erased   bool               `json:"erased"`
	Devices  []AccountDevice    `json:"devices"`
	Sessions SessionSummary     `json:"sessions"`
	// Requests are all of the account's requests, newest first.
	Requests []Request    `json:"requests"`
	Flags    store.Flags  `json:"flags"`
	Holds    AccountHolds `json:"holds"`
	// Correct says whether the staff member may correct a contact now,
	// and why not.
	Correct Action `json:"correct"`
}

// ActCorrectContact is the Action name of correcting a contact
// (StaffCorrectContact), which staff.ActPrivacyComplete authorises.
const ActCorrectContact = "correct_contact"

// StaffAccount returns the account request id is about, for by, who must
// be allowed staff.ActAccountView. Every view is audited under the
// account, naming the request. A request without an account (nobody held
// the contact given, or the account was purged) is NotFound.
func (s *Service) StaffAccount(ctx context.Context, by staff.Principal, id string) (*AccountView, error) {
	if err := staff.Authorize(by, staff.ActAccountView); err != nil {
		return nil, err
	}
	if err := requestID(id); err != nil {
		return nil, err
	}
	r, err := s.cfg.Store.PrivacyRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.AccountID == "" {
		return nil, errs.E(errs.NotFound, "request %s is about no account: nobody held the contact given, or the account was erased and purged", id)
	}
	a, err := s.cfg.Store.Account(ctx, r.AccountID)
	if err != nil {
		return nil, err
	}
	req, err := s.staffFull(ctx, by, r)
	if err != nil {
		return nil, err
	}
	v := &AccountView{Request: *req, Erased: a.WrappedKey == nil,
		Account: accounts.StaffView{ID: a.ID, Status: a.Status, EmailVerified: a.EmailVerified,
			MobileVerified: a.MobileVerified, CreatedAt: a.CreatedAt.UTC()}}
	if !v.Erased {
		if v.Account.Email, v.Account.Mobile, err = s.cfg.Accounts.Contacts(a); err != nil {
			return nil, err
		}
	}
	if err := s.accountData(ctx, by, v); err != nil {
		return nil, err
	}
	v.Correct = s.correctAction(by, r, a)
	detail := "viewed the account's contacts, devices, sessions, requests and holds for request " + id
	if v.Erased {
		detail = "viewed the erased account's remaining records for request " + id
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActAccountView, a.ID, detail); err != nil {
		return nil, err
	}
	return v, nil
}

// accountData fills in v's devices, sessions, requests, flags and holds.
func (s *Service) accountData(ctx context.Context, by staff.Principal, v *AccountView) error {
	id := v.Account.ID
	devs, err := s.cfg.Store.Devices(ctx, id)
	if err != nil {
		return err
	}
	ivs, err := s.cfg.Store.Usage(ctx, id, time.Time{}, MaxAccountSessions+1)
	if err != nil {
		return err
	}
	names, err := s.deviceNames(ctx, id, devs)
	if err != nil {
		return err
	}
	v.Sessions, v.Devices = summarise(ivs, devs, names)
	rs, err := s.cfg.Store.PrivacyRequests(ctx, store.PrivacyFilter{AccountID: id})
	if err != nil {
		return err
	}
	v.Requests, err = s.views(ctx, rs, func(r *store.PrivacyRequest, t requestText) Request {
		x := s.view(r, t)
		x.AccountID = id
		return x
	})
	if err != nil {
		return err
	}
	if v.Flags, err = s.cfg.Store.AccountFlags(ctx, id); err != nil {
		return err
	}
	holds, err := s.cfg.Holds.Active(ctx, id)
	if err != nil {
		return err
	}
	v.Holds.Active = len(holds)
	if staff.Authorize(by, staff.ActHoldView) == nil {
		v.Holds.Holds = holds
	}
	return nil
}

// deviceNames returns the names of devs, devices of account id, opened
// with the account's key (names[i] is devs[i]'s). A device written before
// names were sealed has its name in plaintext; an erased account's key is
// gone, and its sealed names are left empty.
func (s *Service) deviceNames(ctx context.Context, id string, devs []store.Device) ([]string, error) {
	ring := s.keyring()
	defer ring.Close()
	key, err := ring.key(ctx, id)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(devs))
	for i, d := range devs {
		switch {
		case len(d.SealedName) == 0:
			names[i] = d.Name
		case key != nil:
			if names[i], err = key.Open(acctkey.DeviceName, d.ID, d.SealedName); err != nil {
				return nil, err
			}
		}
	}
	return names, nil
}

// summarise sums up intervals ivs (newest first) per device of devs,
// whose names are names.
func summarise(ivs []store.Interval, devs []store.Device, names []string) (SessionSummary, []AccountDevice) {
	sum := SessionSummary{Regions: []string{}}
	if len(ivs) > MaxAccountSessions {
		ivs, sum.Capped = ivs[:MaxAccountSessions], true
	}
	type perDevice struct {
		n    int
		last *time.Time
		open bool
	}
	by := map[string]*perDevice{}
	for _, iv := range ivs {
		sum.Count++
		start := iv.Start.UTC()
		if sum.Last == nil || start.After(*sum.Last) {
			sum.Last = &start
		}
		if sum.First == nil || start.Before(*sum.First) {
			sum.First = &start
		}
		if iv.End == nil {
			sum.Open++
		}
		if iv.Region != "" && !slices.Contains(sum.Regions, iv.Region) {
			sum.Regions = append(sum.Regions, iv.Region)
		}
		d := by[iv.DeviceID]
		if d == nil {
			d = &perDevice{}
			by[iv.DeviceID] = d
		}
		d.n++
		if d.last == nil || start.After(*d.last) {
			d.last = &start
		}
		d.open = d.open || iv.End == nil
	}
	slices.Sort(sum.Regions)
	out := make([]AccountDevice, 0, len(devs))
	for i, d := range devs {
		x := AccountDevice{ID: d.ID, Name: names[i], CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
		if p := by[d.ID]; p != nil {
			x.Sessions, x.LastUsed, x.Connected = p.n, p.last, p.open
		}
		out = append(out, x)
	}
	return sum, out
}

// correctable returns Conflict unless a contact of r's account a may be
// corrected as part of r: a rectification whose requester's identity is
// proven, not answered, on an active account.
func correctable(r *store.PrivacyRequest, a *store.Account) error {
	switch {
	case r.Type != store.RequestRectification:
		return errs.E(errs.Conflict, "contacts are corrected as part of a rectification request; this is a %s request", r.Type)
	case r.Status == store.RequestPending:
		return errs.E(errs.Conflict, "the requester's identity is not verified yet")
	case r.Status != store.RequestVerified:
		return errs.E(errs.Conflict, "the request is already %s", r.Status)
	case a == nil || a.Status != store.StatusActive || a.WrappedKey == nil:
		return errs.E(errs.Conflict, "the account is closed")
	}
	return nil
}

// correctAction says whether by may correct a contact of a as part of r.
func (s *Service) correctAction(by staff.Principal, r *store.PrivacyRequest, a *store.Account) Action {
	act := Action{Action: ActCorrectContact}
	if staff.Authorize(by, staff.ActPrivacyComplete) != nil {
		act.Reason = fmt.Sprintf("Your role (%s) may not correct contacts.", staff.RoleName(by.Role))
	} else if err := correctable(r, a); err != nil {
		act.Reason = upperFirst(errs.MessageOf(err)) + "."
	}
	act.Allowed = act.Reason == ""
	return act
}

// StaffCorrectContact corrects the email or mobile (channel ch) of the
// account of rectification request id to value, for by, who must be
// allowed staff.ActPrivacyComplete. As when the owner changes it, the new
// contact is kept pending and a code is sent to it; it takes effect, and
// the request is completed, once that code is entered (the owner does so
// on the account page, ConfirmContactChange). The owner is told in the
// inbox. A request that is not a verified rectification is Conflict; a
// bad channel or value is Invalid (field "channel" or "value"); a value
// already used by another account is Conflict (field "value"). The
// correction is audited under the account, naming the channel but never
// the value.
func (s *Service) StaffCorrectContact(ctx context.Context, by staff.Principal, id string, ch store.Channel, value string) error {
	if err := staff.Authorize(by, staff.ActPrivacyComplete); err != nil {
		return err
	}
	if err := requestID(id); err != nil {
		return err
	}
	if !ch.Valid() {
		return errs.Field(errs.Invalid, "channel", `channel must be "email" or "mobile"`)
	}
	norm, err := s.cfg.Accounts.NormalizeContact(ch, value)
	if err != nil {
		return errs.WithField(err, "value")
	}
	r, err := s.cfg.Store.PrivacyRequest(ctx, id)
	if err != nil {
		return err
	}
	var a *store.Account
	if r.AccountID != "" {
		if a, err = s.cfg.Store.Account(ctx, r.AccountID); err != nil {
			return err
		}
	}
	if err := correctable(r, a); err != nil {
		return err
	}
	// Staff are trusted and audited, and a correction to another
	// account's contact could never be confirmed: unlike the owner's own
	// change (startContactChange), say so.
	if other, err := s.cfg.Accounts.AccountIDByIndex(ctx, ch, norm); err != nil {
		return err
	} else if other != "" && other != a.ID {
		return errs.Field(errs.Conflict, "value", "this %s is already used by another account", ch)
	}
	if err := s.startContactChange(ctx, a, ch, norm, "this is already the account's %s"); err != nil {
		return err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActPrivacyComplete, a.ID, "request "+id+
		": entered a corrected "+string(ch)+"; it takes effect once the code sent to it is entered"); err != nil {
		return err
	}
	if s.cfg.Inbox != nil {
		body := fmt.Sprintf("As part of your rectification request %s, our privacy team entered a corrected %s for your account. "+
			"We sent a code to the new %s: enter it on your account page within %d minutes, and the correction takes effect. "+
			"Until then your %s stays as it was.\n", id, ch, ch, int(ContactChangeTTL/time.Minute), ch)
		if err := s.cfg.Inbox.PostAbout(ctx, a.ID, id, KindCorrection, "Your privacy request: confirm your corrected "+string(ch), body); err != nil {
			s.cfg.Logger.Warn("privacy notice not posted to inbox", "kind", KindCorrection, "err", errs.CodeOf(err))
		}
	}
	s.cfg.Logger.Info("contact correction entered by staff", "request", id, "channel", string(ch))
	return nil
}

// KindCorrection is the inbox message kind of a contact correction
// entered by staff.
const KindCorrection = "privacy-correction"
