// Package holds manages legal holds. A hold keeps an account's data from
// deletion — by the retention sweeper and by erasure — while it is active.
// Every change to a hold is audited.
package holds

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// Service manages holds. It is safe for concurrent use.
type Service struct {
	store store.HoldStore
	audit staff.Auditor
	clock func() time.Time
	rand  io.Reader
}

// Config holds a Service's dependencies; all are required.
type Config struct {
	Store store.HoldStore
	Audit staff.Auditor
	Clock func() time.Time
	Rand  io.Reader
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, errors.New("holds: missing dependency")
	}
	return &Service{store: cfg.Store, audit: cfg.Audit, clock: cfg.Clock, rand: cfg.Rand}, nil
}

// Add places a hold on the account for reason, until until (nil: until
// released). by must be allowed staff.ActHoldManage. A bad reason or a
// past end is Invalid, an unknown account NotFound; each names its field:
// "reason", "until" or "account".
func (s *Service) Add(ctx context.Context, by staff.Principal, accountID, reason string, until *time.Time) (*store.Hold, error) {
	if err := staff.Authorize(by, staff.ActHoldManage); err != nil {
		return nil, err
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > 500 {
		return nil, errs.Field(errs.Invalid, "reason", "a reason of 1 to 500 characters is required")
	}
	if !ident.Valid(accountID, "acc") {
		return nil, errs.Field(errs.NotFound, "account", "no such account")
	}
	now := s.clock()
	if until != nil && !until.After(now) {
		return nil, errs.Field(errs.Invalid, "until", "the end date must be in the future")
	}
	id, err := ident.New(s.rand, "hold")
	if err != nil {
		return nil, err
	}
	h := &store.Hold{ID: id, AccountID: accountID, Reason: reason, CreatedBy: by.ID, CreatedAt: now, Until: until}
	if err := s.store.CreateHold(ctx, h); errs.Is(err, errs.NotFound) {
		return nil, errs.WithField(err, "account")
	} else if err != nil {
		return nil, err
	}
	detail := "hold " + id + " placed"
	if until != nil {
		detail += " until " + until.UTC().Format(time.DateOnly)
	}
	if err := s.audit.Record(ctx, by.ID, by.Role, staff.ActHoldManage, accountID, detail); err != nil {
		return nil, err
	}
	return h, nil
}

// List returns holds, of one account if accountID is set, only active ones
// if activeOnly. by must be allowed staff.ActHoldView.
func (s *Service) List(ctx context.Context, by staff.Principal, accountID string, activeOnly bool) ([]store.Hold, error) {
	if err := staff.Authorize(by, staff.ActHoldView); err != nil {
		return nil, err
	}
	hs, err := s.store.Holds(ctx, accountID, activeOnly, s.clock())
	if err != nil {
		return nil, err
	}
	subject := accountID
	if subject == "" {
		subject = "legal_holds"
	}
	if err := s.audit.Record(ctx, by.ID, by.Role, staff.ActHoldView, subject, "listed holds"); err != nil {
		return nil, err
	}
	return hs, nil
}

// Release ends a hold. by must be allowed staff.ActHoldManage.
func (s *Service) Release(ctx context.Context, by staff.Principal, id string) error {
	if err := staff.Authorize(by, staff.ActHoldManage); err != nil {
		return err
	}
	account, err := s.store.ReleaseHold(ctx, id, by.ID, s.clock())
	if err != nil {
		return err
	}
	return s.audit.Record(ctx, by.ID, by.Role, staff.ActHoldManage, account, "hold "+id+" released")
}

// Active returns the account's holds in force now (no authorisation: for
// erasure and retention, which must obey them).
func (s *Service) Active(ctx context.Context, accountID string) ([]store.Hold, error) {
	return s.store.Holds(ctx, accountID, true, s.clock())
}
