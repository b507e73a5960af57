package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/secret"
	"github.com/nitronet/nitronet/internal/store"
)

// The job types the service queues (Config.Defer) and carries out
// (Handlers).
const (
	// JobSignup sends a new account its verification codes, or tells the
	// owners of the contacts a refused sign-up used.
	JobSignup = "account-signup"
	// JobResetRequest looks an email address up and, if an account has
	// it, emails the account a reset token.
	JobResetRequest = "password-reset-request"
	// JobContactCode sends the code that confirms a new contact, unless
	// another account holds the contact.
	JobContactCode = "contact-code"
)

type signupJob struct {
	AccountID string `json:"account,omitempty"` // "" when no account was created
	Email     string `json:"email"`
	Mobile    string `json:"mobile"`
}

type resetJob struct {
	Email string `json:"email"`
}

type contactCodeJob struct {
	AccountID string        `json:"account"`
	Channel   store.Channel `json:"channel"`
	Purpose   string        `json:"purpose"`
	To        string        `json:"to"` // normalised new contact
	Kind      string        `json:"kind"`
	What      string        `json:"what"`
}

// Handlers returns the service's job handlers by job type, for the
// outbound queue's worker. Each decodes its job and carries it out; a job
// about an account that no longer exists or is closed (erased) is done.
func (s *Service) Handlers() map[string]func(context.Context, []byte) error {
	return map[string]func(context.Context, []byte) error{
		JobSignup:       s.runSignup,
		JobResetRequest: s.runResetRequest,
		JobContactCode:  s.runContactCode,
	}
}

// deferJob queues job v of type typ, or runs it at once without a Defer.
func (s *Service) deferJob(ctx context.Context, typ string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if s.cfg.Defer == nil {
		return s.Handlers()[typ](ctx, b)
	}
	return s.cfg.Defer.Enqueue(ctx, typ, b)
}

// decode unmarshals a job's data; malformed data can never succeed.
func decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return errs.Wrap(errs.Invalid, err, "malformed job")
	}
	return nil
}

// runSignup carries out JobSignup.
func (s *Service) runSignup(ctx context.Context, data []byte) error {
	var j signupJob
	if err := decode(data, &j); err != nil {
		return err
	}
	if j.AccountID == "" {
		// No account was created: the email address is taken. Tell its
		// owner, and the number's owner if that is someone else.
		owner, err := s.tellOwner(ctx, store.Email, j.Email)
		if err != nil {
			return err
		}
		if m, err := s.ownerOfValue(ctx, store.Mobile, j.Mobile); err != nil {
			return err
		} else if m != nil && (owner == nil || m.ID != owner.ID) {
			_, err := s.tellOwner(ctx, store.Mobile, j.Mobile)
			return err
		}
		return nil
	}
	a, err := s.activeAccount(ctx, j.AccountID)
	if err != nil || a == nil {
		return err
	}
	if err := s.sendCode(ctx, a, store.Email, PurposeVerify); err != nil {
		return err
	}
	if a.MobileIndex == nil {
		return s.sendUnattached(ctx, a, PurposeVerify)
	}
	return s.sendCode(ctx, a, store.Mobile, PurposeVerify)
}

// activeAccount returns account id, or nil if it is gone or closed (its
// contacts erased): a job about it has nothing left to do.
func (s *Service) activeAccount(ctx context.Context, id string) (*store.Account, error) {
	a, err := s.cfg.Store.Account(ctx, id)
	if errs.Is(err, errs.NotFound) || err == nil && a.Status != store.StatusActive {
		return nil, nil
	}
	return a, err
}

// sendUnattached handles a code for the account's mobile number when the
// number is not attached (another account held it at sign-up). If the
// number is free now it is attached and the code sent; otherwise a code
// nobody will see is stored, so that a guess answers "wrong code" as it
// would for a real one, and the number's owner is told.
func (s *Service) sendUnattached(ctx context.Context, a *store.Account, purpose string) error {
	_, mobile, err := s.Contacts(a)
	if err != nil {
		return err
	}
	index := s.cfg.Vault.BlindIndex("mobile", mobile)
	owner, err := s.ownerOf(ctx, store.Mobile, index)
	if err != nil {
		return err
	}
	if owner == nil {
		err := s.cfg.Store.AttachMobile(ctx, a.ID, index)
		if err == nil {
			a.MobileIndex = index
			return s.sendCode(ctx, a, store.Mobile, purpose)
		}
		if !errs.Is(err, errs.Conflict) {
			return err
		}
	}
	if err := s.unsentCode(ctx, a.ID, store.Mobile, purpose); err != nil {
		return err
	}
	_, err = s.tellOwner(ctx, store.Mobile, mobile)
	return err
}

// unsentCode stores a fresh code for purpose on channel ch that is never
// sent: checks of it fail as "wrong code", exactly as for a code sent.
func (s *Service) unsentCode(ctx context.Context, accountID string, ch store.Channel, purpose string) error {
	code, err := secret.NewCode(s.cfg.Rand)
	if err != nil {
		return err
	}
	now := s.cfg.Clock()
	return s.cfg.Store.PutCode(ctx, &store.Code{AccountID: accountID, Channel: ch, Purpose: purpose,
		Hash:      secret.HashCode(s.codeKey, codeScope(accountID, ch, purpose), code),
		ExpiresAt: now.Add(CodeTTL), CreatedAt: now})
}

// tellOwner emails the owner of the email address or mobile number value
// (channel ch) that someone tried to sign up with it, at most once per
// contact per NoticeInterval. It returns the owner, or nil if none.
func (s *Service) tellOwner(ctx context.Context, ch store.Channel, value string) (*store.Account, error) {
	owner, err := s.ownerOfValue(ctx, ch, value)
	if err != nil || owner == nil {
		return owner, err
	}
	if !s.notices.Allow("signup-notice:" + string(ch) + ":" + value) {
		return owner, nil
	}
	email, mobile, err := s.Contacts(owner)
	if err != nil {
		return owner, err
	}
	what := "this email address, which your account already uses"
	if ch == store.Mobile {
		what = "the mobile number of your account (" + notify.Mask(mobile) + ")"
	}
	body := fmt.Sprintf("Someone tried to create a Nitronet account with %s, on %s.\n\n"+
		"If it was you: you already have an account. Log in, or if you forgot your password, reset it%s.\n"+
		"If it was not you, you need not do anything: no account was given your %s and nothing about your account changed.\n",
		what, s.cfg.Clock().UTC().Format("2006-01-02 15:04 UTC"), s.link("/forgot"), ch)
	m := notify.Message{Channel: notify.Email, To: email, Subject: "Someone tried to sign up with your " + string(ch),
		Body: body, Kind: "signup-attempt", Account: owner.ID}
	return owner, s.cfg.Notifier.Send(ctx, m)
}

// link returns " at URL" for path on the portal, or "" without one.
func (s *Service) link(path string) string {
	if s.cfg.PortalURL == "" {
		return ""
	}
	return " at " + strings.TrimRight(s.cfg.PortalURL, "/") + path
}

// runResetRequest carries out JobResetRequest.
func (s *Service) runResetRequest(ctx context.Context, data []byte) error {
	var j resetJob
	if err := decode(data, &j); err != nil {
		return err
	}
	a, err := s.ownerOfValue(ctx, store.Email, j.Email)
	if err != nil || a == nil {
		return err
	}
	tok, hash, err := secret.NewToken(s.cfg.Rand, "nnr")
	if err != nil {
		return err
	}
	now := s.cfg.Clock()
	// The new token revokes any earlier one.
	if err := s.cfg.Store.CreateResetToken(ctx, &store.ResetToken{Hash: hash, AccountID: a.ID, CreatedAt: now, ExpiresAt: now.Add(ResetTTL)}); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	addr, _, err := s.Contacts(a)
	if err != nil {
		return err
	}
	body := "Someone asked to reset the password of your Nitronet account.\n" +
		fmt.Sprintf("If it was you, use this single-use token within %d minutes:\n\n  %s\n\n", int(ResetTTL/time.Minute), tok)
	if s.cfg.PortalURL != "" {
		body += "or open " + strings.TrimRight(s.cfg.PortalURL, "/") + "/reset?token=" + tok + "\n\n"
	}
	body += "With the CLI: nitronet password reset --token TOKEN\nIt replaces any token sent before. If it was not you, ignore this message; your password is unchanged.\n"
	return s.cfg.Notifier.Send(ctx, notify.Message{Channel: notify.Email, To: addr, Subject: "Reset your Nitronet password", Body: body, Kind: "password-reset", Account: a.ID})
}

// SendCodeToNewContact queues the code that confirms value (normalised) as
// the account's new contact on channel ch, for purpose, as m describes
// (m.To is ignored). If another account holds value, nothing is sent to
// it (and nothing tells the caller): a code nobody sees is stored instead,
// so checking a guess answers "wrong code" as it would otherwise. Either
// way the call only queues a job, so its answer and its timing are the
// same.
func (s *Service) SendCodeToNewContact(ctx context.Context, accountID string, ch store.Channel, purpose, value string, m CodeMessage) error {
	if !ch.Valid() {
		return errs.Field(errs.Invalid, "channel", `channel must be "email" or "mobile"`)
	}
	return s.deferJob(ctx, JobContactCode, contactCodeJob{AccountID: accountID, Channel: ch, Purpose: purpose,
		To: value, Kind: m.Kind, What: m.What})
}

// runContactCode carries out JobContactCode.
func (s *Service) runContactCode(ctx context.Context, data []byte) error {
	var j contactCodeJob
	if err := decode(data, &j); err != nil {
		return err
	}
	if a, err := s.activeAccount(ctx, j.AccountID); err != nil || a == nil {
		return err
	}
	owner, err := s.ownerOfValue(ctx, j.Channel, j.To)
	if err != nil {
		return err
	}
	if owner != nil && owner.ID != j.AccountID {
		return s.unsentCode(ctx, j.AccountID, j.Channel, j.Purpose)
	}
	err = s.SendCodeTo(ctx, j.AccountID, j.Channel, j.Purpose, CodeMessage{To: j.To, Kind: j.Kind, What: j.What})
	if errs.Is(err, errs.NotFound) {
		return nil // the account is gone
	}
	return err
}
