package privacy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/deadline"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// staffView is view with the account id, for staff.
func (s *Service) staffView(r *store.PrivacyRequest) Request {
	v := s.view(r)
	v.AccountID = r.AccountID
	return v
}

// subject is the audit subject of a request: its account, or the request
// itself once the account was erased.
func subject(r *store.PrivacyRequest) string {
	if r.AccountID != "" {
		return r.AccountID
	}
	return r.ID
}

// StaffList returns requests for staff, newest first: all of them, or
// only those overdue now (not answered, due date passed). by must be
// allowed staff.ActPrivacyView; the listing is audited.
func (s *Service) StaffList(ctx context.Context, by staff.Principal, overdue bool) ([]Request, error) {
	if err := staff.Authorize(by, staff.ActPrivacyView); err != nil {
		return nil, err
	}
	f := store.PrivacyFilter{}
	if overdue {
		now := s.cfg.Clock()
		f.OverdueAt = &now
	}
	rs, err := s.cfg.Store.PrivacyRequests(ctx, f)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActPrivacyView, "privacy_requests",
		fmt.Sprintf("listed %d requests (overdue only: %v)", len(rs), overdue)); err != nil {
		return nil, err
	}
	out := make([]Request, 0, len(rs))
	for i := range rs {
		out = append(out, s.staffView(&rs[i]))
	}
	return out, nil
}

// StaffShow returns one request for staff (audited). by must be allowed
// staff.ActPrivacyView.
func (s *Service) StaffShow(ctx context.Context, by staff.Principal, id string) (*Request, error) {
	if err := staff.Authorize(by, staff.ActPrivacyView); err != nil {
		return nil, err
	}
	if err := requestID(id); err != nil {
		return nil, err
	}
	r, err := s.cfg.Store.PrivacyRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActPrivacyView, subject(r), "viewed request "+id); err != nil {
		return nil, err
	}
	v := s.staffView(r)
	return &v, nil
}

// OverdueCount returns how many requests are overdue now (for the
// nitronet_privacy_requests_overdue metric).
func (s *Service) OverdueCount(ctx context.Context) (int, error) {
	return s.cfg.Store.CountOverduePrivacyRequests(ctx, s.cfg.Clock())
}

// staffAct loads request id for a staff action, applies fn to it in one
// transaction, audits it and returns the updated request and its account
// (nil once erased).
func (s *Service) staffAct(ctx context.Context, by staff.Principal, action, id, detail string,
	fn func(r *store.PrivacyRequest, now time.Time) error) (*store.PrivacyRequest, *store.Account, error) {
	if err := staff.Authorize(by, action); err != nil {
		return nil, nil, err
	}
	if err := requestID(id); err != nil {
		return nil, nil, err
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	r, err := s.cfg.Store.UpdatePrivacyRequest(ctx, id, func(r *store.PrivacyRequest) error { return fn(r, now) })
	if err != nil {
		return nil, nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, action, subject(r), "request "+id+": "+detail); err != nil {
		return nil, nil, err
	}
	var a *store.Account
	if r.AccountID != "" {
		if a, err = s.cfg.Store.Account(ctx, r.AccountID); err != nil {
			return nil, nil, err
		}
	}
	return r, a, nil
}

// unanswered returns Conflict if r was already answered. Every staff
// action refused because of the request's state is Conflict: the state
// conflicts with the action, which the role may take.
func unanswered(r *store.PrivacyRequest) error {
	if store.Answered(r.Status) {
		return errs.E(errs.Conflict, "request %s is already %s", r.ID, r.Status)
	}
	return nil
}

// Extend extends the deadline of request id by months (1 or 2) further
// calendar months, for reason, and tells the user the reason in the inbox
// and by email. The rules are deadline.Extend's: a reason is required,
// the total extension is at most two months (Invalid, field "months" or
// "reason"), and it must happen within the first month (Conflict). by must
// be allowed staff.ActPrivacyExtend.
func (s *Service) Extend(ctx context.Context, by staff.Principal, id string, months int, reason string) (*Request, error) {
	reason, err := checkText("reason", reason, MaxReason)
	if err != nil {
		return nil, err
	}
	r, a, err := s.staffAct(ctx, by, staff.ActPrivacyExtend, id, fmt.Sprintf("deadline extended by %d months", months),
		func(r *store.PrivacyRequest, now time.Time) error {
			if err := unanswered(r); err != nil {
				return err
			}
			due, err := deadline.Extend(r.ReceivedAt, now, r.DueAt, months, reason)
			if err != nil {
				return err
			}
			r.DueAt, r.ExtendedAt = due, &now
			if r.ExtendedReason != "" {
				r.ExtendedReason += "\n"
			}
			r.ExtendedReason += reason
			return nil
		})
	if err != nil {
		return nil, err
	}
	if a != nil {
		body := fmt.Sprintf("We need more time to answer your %s request %s, received on %s.\n\nReason: %s\n\nThe new deadline is %s. Your request stays free of charge.\n\n%s\n",
			r.Type, r.ID, r.ReceivedAt.UTC().Format(time.DateOnly), reason, r.DueAt.UTC().Format(time.DateOnly), complaintText)
		_ = s.notifyUser(ctx, a, "privacy-extended", "Your privacy request: more time needed", body)
	}
	v := s.staffView(r)
	return &v, nil
}

// Complete marks a verified request completed, with an optional note to
// the user (a bad note is Invalid, field "note"). Requests whose identity
// is not proven, and erasures (which only the user's confirmation carries
// out), are Conflict. by must be allowed staff.ActPrivacyComplete.
func (s *Service) Complete(ctx context.Context, by staff.Principal, id, note string) (*Request, error) {
	note, err := checkText("note", note, MaxReason)
	if err != nil {
		return nil, err
	}
	r, a, err := s.staffAct(ctx, by, staff.ActPrivacyComplete, id, "completed",
		func(r *store.PrivacyRequest, now time.Time) error {
			if err := unanswered(r); err != nil {
				return err
			}
			if r.Status != store.RequestVerified {
				return errs.E(errs.Conflict, "the requester's identity is not verified yet")
			}
			if r.Type == store.RequestErasure {
				return errs.E(errs.Conflict, "an erasure is carried out by the user's final confirmation, not by staff")
			}
			r.Status, r.CompletedAt = store.RequestCompleted, &now
			if note != "" {
				r.Outcome = note
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	if a != nil {
		body := fmt.Sprintf("Your %s request %s is completed.\n", r.Type, r.ID)
		if note != "" {
			body += "\n" + note + "\n"
		}
		body += "\n" + complaintText + "\n"
		_ = s.notifyUser(ctx, a, "privacy-completed", "Your privacy request is completed", body)
	}
	v := s.staffView(r)
	return &v, nil
}

// Deny refuses a request that is not answered yet, for reason (required;
// Invalid with field "reason"),
// and tells the user the reason and their right to complain to a
// supervisory authority. by must be allowed staff.ActPrivacyDeny.
func (s *Service) Deny(ctx context.Context, by staff.Principal, id, reason string) (*Request, error) {
	reason, err := checkText("reason", reason, MaxReason)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(reason) == "" {
		return nil, errs.Field(errs.Invalid, "reason", "a denial needs a reason")
	}
	r, a, err := s.staffAct(ctx, by, staff.ActPrivacyDeny, id, "denied",
		func(r *store.PrivacyRequest, now time.Time) error {
			if err := unanswered(r); err != nil {
				return err
			}
			r.Status, r.CompletedAt, r.DeniedReason = store.RequestDenied, &now, reason
			r.Outcome = "Denied: " + reason
			return nil
		})
	if err != nil {
		return nil, err
	}
	if a != nil {
		body := fmt.Sprintf("We cannot grant your %s request %s, received on %s.\n\nReason: %s\n\n%s\n",
			r.Type, r.ID, r.ReceivedAt.UTC().Format(time.DateOnly), reason, complaintText)
		_ = s.notifyUser(ctx, a, "privacy-denied", "Your privacy request was denied", body)
	}
	v := s.staffView(r)
	return &v, nil
}
