package accounts

import (
	"context"
	"fmt"
	"time"

	"github.com/nitronet/nitronet/internal/contact"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/secret"
	"github.com/nitronet/nitronet/internal/store"
)

// CodeMessage describes how a one-time code is sent by SendCodeTo.
type CodeMessage struct {
	// To is the recipient: an email address for store.Email, an E.164
	// number for store.Mobile. Empty means the account's current contact
	// on that channel.
	To string
	// Kind is the notifier's message kind ([a-z0-9-]{1,32}).
	Kind string
	// What ends the sentence "Your Nitronet code to ... is NNNNNN.", e.g.
	// "confirm your privacy request".
	What string
	// Note, if not empty, is a paragraph after the code: what to do with
	// it.
	Note string
}

// SendCodeTo issues a new one-time code for purpose on channel ch of the
// account, replacing any earlier unused one for the same purpose, and
// sends it as m describes. CheckCode with the same channel and purpose
// checks it. It returns Invalid for an unknown channel and Unavailable if
// the message could not be handed on.
func (s *Service) SendCodeTo(ctx context.Context, accountID string, ch store.Channel, purpose string, m CodeMessage) error {
	if !ch.Valid() {
		return errs.Field(errs.Invalid, "channel", `channel must be "email" or "mobile"`)
	}
	to := m.To
	if to == "" {
		a, err := s.cfg.Store.Account(ctx, accountID)
		if err != nil {
			return err
		}
		email, mobile, err := s.Contacts(a)
		if err != nil {
			return err
		}
		to = email
		if ch == store.Mobile {
			to = mobile
		}
	}
	code, err := secret.NewCode(s.cfg.Rand)
	if err != nil {
		return err
	}
	now := s.cfg.Clock()
	if err := s.cfg.Store.PutCode(ctx, &store.Code{
		AccountID: accountID, Channel: ch, Purpose: purpose,
		Hash:      secret.HashCode(s.codeKey, codeScope(accountID, ch, purpose), code),
		ExpiresAt: now.Add(CodeTTL), CreatedAt: now,
	}); err != nil {
		return fmt.Errorf("store code: %w", err)
	}
	body := fmt.Sprintf("Your Nitronet code to %s is %s.\nIt expires in %d minutes. If you did not ask for it, ignore this message and consider changing your password.\n",
		m.What, code, int(CodeTTL/time.Minute))
	if m.Note != "" {
		body += "\n" + m.Note + "\n"
	}
	msg := notify.Message{Channel: notify.Email, To: to, Subject: "Your Nitronet code", Body: body, Kind: m.Kind, Account: accountID}
	if ch == store.Mobile {
		msg = notify.Message{Channel: notify.SMS, To: to, Body: body, Kind: m.Kind, Account: accountID}
	}
	if err := s.cfg.Notifier.Send(ctx, msg); err != nil {
		return errs.Wrap(errs.Unavailable, err, "could not send the code; try again later")
	}
	return nil
}

// Vault-sealed contact helpers for rectification.

// SealContact seals value for channel ch of the account under its data
// key, exactly as Signup stores it, and returns the sealed value and its
// blind index. value must already be normalised.
func (s *Service) SealContact(a *store.Account, ch store.Channel, value string) (sealed, index []byte, err error) {
	if !ch.Valid() {
		return nil, nil, errs.Field(errs.Invalid, "channel", `channel must be "email" or "mobile"`)
	}
	dk, err := s.cfg.Vault.Unwrap(a.ID, a.WrappedKey)
	if err != nil {
		return nil, nil, fmt.Errorf("unwrap data key: %w", err)
	}
	defer dk.Destroy()
	sealed, err = dk.Seal([]byte(value), aad(a.ID, string(ch)))
	if err != nil {
		return nil, nil, err
	}
	return sealed, s.cfg.Vault.BlindIndex(string(ch), value), nil
}

// AccountIDByIndex returns the id of the active account whose blind index
// on channel ch is that of value (normalised), or "" if there is none.
func (s *Service) AccountIDByIndex(ctx context.Context, ch store.Channel, value string) (string, error) {
	a, err := s.accountByIndex(ctx, ch, value)
	if errs.Is(err, errs.NotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return a.ID, nil
}

// accountByIndex returns the active account whose blind index on channel
// ch is that of value (normalised); NotFound if there is none.
func (s *Service) accountByIndex(ctx context.Context, ch store.Channel, value string) (*store.Account, error) {
	var lookup func(context.Context, []byte) (*store.Account, error)
	switch ch {
	case store.Email:
		lookup = s.cfg.Store.AccountByEmailIndex
	case store.Mobile:
		lookup = s.cfg.Store.AccountByMobileIndex
	default:
		return nil, errs.Field(errs.Invalid, "channel", `channel must be "email" or "mobile"`)
	}
	// During a key-encryption-key rotation some rows are still indexed
	// under an older KEK: try the index under each, primary first.
	for _, index := range s.cfg.Vault.BlindIndexes(string(ch), value) {
		a, err := lookup(ctx, index)
		if !errs.Is(err, errs.NotFound) {
			return a, err
		}
	}
	return nil, errs.E(errs.NotFound, "account not found")
}

// NormalizeContact validates and normalises a new value for channel ch:
// an email address (which must pass contact.CheckNewEmail), or a mobile
// number (E.164, using the service's default region). Invalid input is
// Invalid, with field "value" (the API's name for the new contact) or
// "channel".
func (s *Service) NormalizeContact(ch store.Channel, value string) (string, error) {
	norm, err := s.CanonicalContact(ch, value)
	if err == nil && ch == store.Email {
		err = errs.WithField(contact.CheckNewEmail(norm), "value")
	}
	if err != nil {
		return "", err
	}
	return norm, nil
}

// CanonicalContact returns the canonical form of value on channel ch, to
// look a contact up: NormalizeContact without the rules only new contacts
// must pass (contact.CheckNewEmail), so that an address accepted before
// such a rule is still found. Errors are NormalizeContact's.
func (s *Service) CanonicalContact(ch store.Channel, value string) (string, error) {
	var norm string
	var err error
	switch ch {
	case store.Email:
		norm, err = contact.NormalizeEmail(value)
	case store.Mobile:
		norm, err = contact.NormalizeMobile(value, s.cfg.MobileRegion)
	default:
		return "", errs.Field(errs.Invalid, "channel", `channel must be "email" or "mobile"`)
	}
	if err != nil {
		return "", errs.WithField(err, "value")
	}
	return norm, nil
}
