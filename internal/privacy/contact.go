package privacy

import (
	"context"
	"fmt"
	"time"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/processors"
	"github.com/nitronet/nitronet/internal/store"
)

// contactPurpose is the code purpose of a contact change on ch.
func contactPurpose(ch store.Channel) string { return "contact-change-" + string(ch) }

// RequestContactChange starts the rectification of the account's email or
// mobile (channel ch) to value. It needs the current password. The new
// value is sealed under the account's data key and kept pending until the
// code sent to the NEW contact is confirmed with ConfirmContactChange,
// within ContactChangeTTL. Invalid values are Invalid, the account's own
// current value Invalid, a wrong password Unauthenticated; each names its
// field: "channel", "value" or "password".
//
// A value another account holds answers exactly like a free one (OWASP:
// no account enumeration): the change is kept pending, but no code goes
// to that contact and its owner is sent nothing, so the change can never
// be confirmed (accounts.SendCodeToNewContact).
func (s *Service) RequestContactChange(ctx context.Context, accountID string, ch store.Channel, value, password string) error {
	if !ch.Valid() {
		return errs.Field(errs.Invalid, "channel", `channel must be "email" or "mobile"`)
	}
	norm, err := s.cfg.Accounts.NormalizeContact(ch, value)
	if err != nil {
		return err
	}
	if password == "" {
		return errs.Field(errs.Invalid, "password", "password is required")
	}
	if err := s.cfg.Accounts.CheckPassword(ctx, accountID, password); err != nil {
		return err
	}
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return err
	}
	if a.Status != store.StatusActive {
		return errs.E(errs.NotFound, "account not found")
	}
	return s.startContactChange(ctx, a, ch, norm, "this is already your %s")
}

// startContactChange keeps norm (normalised) pending as the new contact
// on channel ch of active account a and sends the code that confirms it
// to norm. same is the error text, with one %s for the channel, when norm
// is the contact already held. It does the same work whether or not
// another account uses norm, and tells nobody which: the owner's contact
// change must not reveal who holds a contact (StaffCorrectContact, for
// trusted and audited staff, checks that itself).
func (s *Service) startContactChange(ctx context.Context, a *store.Account, ch store.Channel, norm, same string) error {
	email, mobile, err := s.cfg.Accounts.Contacts(a)
	if err != nil {
		return err
	}
	if (ch == store.Email && norm == email) || (ch == store.Mobile && norm == mobile) {
		return errs.Field(errs.Invalid, "value", same, ch)
	}
	sealed, index, err := s.cfg.Accounts.SealContact(a, ch, norm)
	if err != nil {
		return err
	}
	now := s.cfg.Clock()
	if err := s.cfg.Store.PutContactChange(ctx, &store.ContactChange{AccountID: a.ID, Channel: ch, Sealed: sealed,
		Index: index, CreatedAt: now, ExpiresAt: now.Add(ContactChangeTTL)}); err != nil {
		return err
	}
	return s.cfg.Accounts.SendCodeToNewContact(ctx, a.ID, ch, contactPurpose(ch), norm, accounts.CodeMessage{
		Kind: "contact-change-code", What: "confirm this " + string(ch) + " as your new Nitronet " + string(ch)})
}

// ConfirmContactChange applies the pending change of channel ch once code
// (sent to the new contact) is right, tells the OLD contact, and completes
// the account's verified rectification requests. Errors are CheckCode's
// (field "code"), Invalid for a bad channel (field "channel"), and
// NotFound if no change is pending.
func (s *Service) ConfirmContactChange(ctx context.Context, accountID string, ch store.Channel, code string) error {
	if !ch.Valid() {
		return errs.Field(errs.Invalid, "channel", `channel must be "email" or "mobile"`)
	}
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return err
	}
	oldEmail, oldMobile, err := s.cfg.Accounts.Contacts(a)
	if err != nil {
		return err
	}
	if err := s.cfg.Accounts.CheckCode(ctx, accountID, ch, contactPurpose(ch), code); err != nil {
		return err
	}
	if err := s.cfg.Store.ApplyContactChange(ctx, accountID, ch, s.cfg.Clock()); err != nil {
		return err
	}
	s.cfg.Logger.Info("contact changed", "account", accountID, "channel", string(ch))

	// Tell the old contact, so a takeover cannot go unnoticed.
	body := fmt.Sprintf("The %s of your Nitronet account was changed on %s. This address or number no longer receives messages about the account.\n"+
		"If you did not make this change, reply to this message or contact the operator at once.\n",
		ch, s.cfg.Clock().UTC().Format("2006-01-02 15:04 UTC"))
	m := notify.Message{Channel: notify.Email, To: oldEmail, Subject: "Your Nitronet " + string(ch) + " was changed", Body: body, Kind: processors.KindContactChanged, Account: accountID}
	if ch == store.Mobile {
		m = notify.Message{Channel: notify.SMS, To: oldMobile, Body: body, Kind: processors.KindContactChanged, Account: accountID}
	}
	if err := s.cfg.Notifier.Send(ctx, m); err != nil {
		s.cfg.Logger.Warn("old contact not told of change", "account", accountID, "err", errs.CodeOf(err))
	}

	rs, err := s.cfg.Store.PrivacyRequests(ctx, store.PrivacyFilter{AccountID: accountID, Type: store.RequestRectification, Status: store.RequestVerified})
	if err != nil {
		return err
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	for _, r := range rs {
		if err := s.snapshotRecipients(ctx, &r); err != nil {
			s.cfg.Logger.Warn("recipients of request not recorded", "request", r.ID, "err", errs.CodeOf(err))
		}
		changed := false
		done, err := s.cfg.Store.UpdatePrivacyRequest(ctx, r.ID, func(r *store.PrivacyRequest) error {
			changed = r.Status == store.RequestVerified
			if changed {
				r.Status, r.CompletedAt = store.RequestCompleted, &now
				r.Outcome = correctedOutcome(ch)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if changed {
			s.postStatus(ctx, done, false)
		}
	}
	return nil
}
