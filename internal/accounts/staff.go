package accounts

import (
	"context"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/processing"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// StaffView is an account as staff with staff.ActAccountView see it: its
// contacts decrypted, unless the account was erased (crypto-shredded),
// when only its id, status and creation time remain.
type StaffView struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"`
	Email          string    `json:"email,omitempty"`
	Mobile         string    `json:"mobile,omitempty"`
	EmailVerified  bool      `json:"email_verified"`
	MobileVerified bool      `json:"mobile_verified"`
	CreatedAt      time.Time `json:"created_at"`
	// Processing is the account's restriction and objection and what
	// they stop (package processing).
	Processing processing.State `json:"processing"`
}

// staffView returns a as staff see it, without its contacts.
func (s *Service) staffView(ctx context.Context, a *store.Account) (*StaffView, error) {
	f, err := s.cfg.Store.AccountFlags(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	return &StaffView{ID: a.ID, Status: a.Status, EmailVerified: a.EmailVerified, MobileVerified: a.MobileVerified,
		CreatedAt: a.CreatedAt.UTC(), Processing: processing.StateOf(f)}, nil
}

// StaffShow returns account id for by, who must be allowed
// staff.ActAccountView (support and the privacy officer, answering a
// user). The read of personal data is audited under the account. An
// unknown id is NotFound.
func (s *Service) StaffShow(ctx context.Context, by staff.Principal, id string) (*StaffView, error) {
	if err := staff.Authorize(by, staff.ActAccountView); err != nil {
		return nil, err
	}
	id = strings.TrimSpace(id)
	if !ident.Valid(id, "acc") {
		return nil, errs.E(errs.NotFound, "no account %q", id)
	}
	a, err := s.cfg.Store.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	v, err := s.staffView(ctx, a)
	if err != nil {
		return nil, err
	}
	detail := "viewed the account's contacts"
	if a.WrappedKey == nil {
		detail = "viewed the erased account"
	} else if v.Email, v.Mobile, err = s.Contacts(a); err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActAccountView, a.ID, detail); err != nil {
		return nil, err
	}
	return v, nil
}

// StaffLookup finds the active account whose email or mobile (channel ch)
// is value, through the blind index, and returns it as StaffShow does,
// for by, who must be allowed staff.ActAccountView. value is normalised
// first; a malformed one is Invalid with field "email" or "mobile". No
// account is NotFound. The lookup is audited, found or not, naming the
// channel but never the value.
func (s *Service) StaffLookup(ctx context.Context, by staff.Principal, ch store.Channel, value string) (*StaffView, error) {
	if err := staff.Authorize(by, staff.ActAccountView); err != nil {
		return nil, err
	}
	norm, err := s.CanonicalContact(ch, value)
	if err != nil {
		return nil, errs.WithField(err, string(ch))
	}
	a, err := s.accountByIndex(ctx, ch, norm)
	if errs.Is(err, errs.NotFound) {
		if aerr := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActAccountView, "accounts",
			"looked up an account by "+string(ch)+": none found"); aerr != nil {
			return nil, aerr
		}
		return nil, errs.Field(errs.NotFound, string(ch), "no account has this %s", ch)
	}
	if err != nil {
		return nil, err
	}
	v, err := s.staffView(ctx, a)
	if err != nil {
		return nil, err
	}
	if v.Email, v.Mobile, err = s.Contacts(a); err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActAccountView, a.ID,
		"looked up the account by "+string(ch)+" and viewed its contacts"); err != nil {
		return nil, err
	}
	return v, nil
}
