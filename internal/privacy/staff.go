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

// staffView is view with the account id and what by may do with the
// request now, for staff; t is the request's text.
func (s *Service) staffView(by staff.Principal, r *store.PrivacyRequest, t requestText) Request {
	v := s.view(r, t)
	v.AccountID = r.AccountID
	if v.IdentityCheck != nil {
		v.IdentityCheck.By = r.Check.By
	}
	v.Actions = s.actions(by, r)
	if v.Extension != nil {
		v.Extension.Notice = extensionNotice(r)
	}
	return v
}

// Action is one thing staff can do with a request (enter the identity
// codes a requester from outside the app reads back, extend its
// deadline, complete it, deny it) and whether the staff member may do it
// now. The service decides with the same rules StaffVerify, Extend,
// Complete and Deny apply; front ends show the controls and the reasons.
type Action struct {
	// Action is staff.ActPrivacyRecord (requests from outside the app
	// only), staff.ActPrivacyExtend, staff.ActPrivacyComplete or
	// staff.ActPrivacyDeny.
	Action  string `json:"action"`
	Allowed bool   `json:"allowed"`
	// Reason says why not, when not Allowed: a sentence for people.
	Reason string `json:"reason,omitempty"`
	// Months are the further months the deadline may still be extended
	// by (extend only).
	Months []int `json:"months,omitempty"`
}

// requestActions are the staff actions on request r, in the order front
// ends show them: entering the identity codes only for a request from
// outside the app.
func requestActions(r *store.PrivacyRequest) []string {
	acts := []string{staff.ActPrivacyExtend, staff.ActPrivacyComplete, staff.ActPrivacyDeny}
	if outside(r) {
		acts = append([]string{staff.ActPrivacyRecord}, acts...)
	}
	return acts
}

// actions returns what by may do with r now, and why not.
func (s *Service) actions(by staff.Principal, r *store.PrivacyRequest) []Action {
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	acts := requestActions(r)
	mayAny := false
	for _, act := range acts {
		mayAny = mayAny || staff.Authorize(by, act) == nil
	}
	verbs := map[string]string{staff.ActPrivacyExtend: "extend deadlines", staff.ActPrivacyComplete: "complete requests",
		staff.ActPrivacyDeny: "deny requests", staff.ActPrivacyRecord: "enter identity codes"}
	out := make([]Action, 0, len(acts))
	for _, act := range acts {
		a := Action{Action: act}
		var why error
		switch {
		case staff.Authorize(by, act) != nil && mayAny:
			a.Reason = fmt.Sprintf("Your role (%s) may not %s.", staff.RoleName(by.Role), verbs[act])
		case staff.Authorize(by, act) != nil:
			a.Reason = fmt.Sprintf("Your role (%s) may view requests but not act on them.", staff.RoleName(by.Role))
		case store.Answered(r.Status):
			a.Reason = fmt.Sprintf("The request is already %s.", r.Status)
		case act == staff.ActPrivacyRecord:
			why = codesEnterable(r)
		case act == staff.ActPrivacyExtend:
			a.Months, why = deadline.Extensions(r.ReceivedAt, now, r.DueAt)
		case act == staff.ActPrivacyComplete:
			why = completable(r)
		}
		switch {
		case why != nil && act == staff.ActPrivacyExtend:
			a.Reason = fmt.Sprintf("The deadline can no longer be extended: extensions total at most %d months and "+
				"must be given within the first month, which ended %s for this request.",
				deadline.MaxExtraMonths, deadline.Due(r.ReceivedAt, deadline.Months).UTC().Format("2 Jan 2006"))
		case why != nil:
			a.Reason = upperFirst(errs.MessageOf(why)) + "."
		}
		a.Allowed = a.Reason == ""
		out = append(out, a)
	}
	return out
}

// upperFirst capitalises the first letter of s.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// completable returns Conflict unless staff may complete r: its
// requester's identity is proven and it is not an erasure made in the app
// (which only the user's own confirmation carries out). Completing an
// erasure from outside the app carries it out.
func completable(r *store.PrivacyRequest) error {
	if r.Status != store.RequestVerified {
		return errs.E(errs.Conflict, "the requester's identity is not verified yet")
	}
	if r.Type == store.RequestErasure && !outside(r) {
		return errs.E(errs.Conflict, "an erasure made in the app is carried out by the user's final confirmation, not by staff")
	}
	return nil
}

// codesEnterable returns Conflict unless staff may enter the identity
// codes of r: it came from outside the app, has an account and waits for
// proof.
func codesEnterable(r *store.PrivacyRequest) error {
	switch {
	case r.Status != store.RequestPending:
		return errs.E(errs.Conflict, "the requester's identity is already verified")
	case r.AccountID == "":
		return errs.E(errs.Conflict, "no account holds the contact given: the identity check was recorded with the request")
	}
	return nil
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
	return s.views(ctx, rs, func(r *store.PrivacyRequest, t requestText) Request {
		return s.staffView(by, r, t)
	})
}

// staffFull is staffView with the request's text, opened with its
// account's key, and its recipients.
func (s *Service) staffFull(ctx context.Context, by staff.Principal, r *store.PrivacyRequest) (*Request, error) {
	t, err := s.text(ctx, r)
	if err != nil {
		return nil, err
	}
	v := s.staffView(by, r, t)
	s.addRecipients(ctx, &v, r)
	return &v, nil
}

// StaffShow returns one request for staff (audited), with the actions by
// may take on it now (Request.Actions). by must be allowed
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
	return s.staffFull(ctx, by, r)
}

// OverdueCount returns how many requests are overdue now (for the
// nitronet_privacy_requests_overdue metric).
func (s *Service) OverdueCount(ctx context.Context) (int, error) {
	return s.cfg.Store.CountOverduePrivacyRequests(ctx, s.cfg.Clock())
}

// staffAct loads request id for a staff action, applies fn to it and its
// text in one transaction (updateText), audits it and returns the updated
// request, its text and its account (nil once erased).
func (s *Service) staffAct(ctx context.Context, by staff.Principal, action, id, detail string,
	fn func(r *store.PrivacyRequest, t *requestText, now time.Time) error) (*store.PrivacyRequest, requestText, *store.Account, error) {
	if err := staff.Authorize(by, action); err != nil {
		return nil, requestText{}, nil, err
	}
	if err := requestID(id); err != nil {
		return nil, requestText{}, nil, err
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	r, txt, err := s.updateText(ctx, id, func(r *store.PrivacyRequest, t *requestText) error { return fn(r, t, now) })
	if err != nil {
		return nil, requestText{}, nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, action, subject(r), "request "+id+": "+detail); err != nil {
		return nil, requestText{}, nil, err
	}
	var a *store.Account
	if r.AccountID != "" {
		if a, err = s.cfg.Store.Account(ctx, r.AccountID); err != nil {
			return nil, requestText{}, nil, err
		}
	}
	return r, txt, a, nil
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
	r, txt, a, err := s.staffAct(ctx, by, staff.ActPrivacyExtend, id, fmt.Sprintf("deadline extended by %d months", months),
		func(r *store.PrivacyRequest, t *requestText, now time.Time) error {
			if err := unanswered(r); err != nil {
				return err
			}
			due, err := deadline.Extend(r.ReceivedAt, now, r.DueAt, months, reason)
			if err != nil {
				return err
			}
			r.DueAt, r.ExtendedAt = due, &now
			if t.ExtendedReason != "" {
				t.ExtendedReason += "\n"
			}
			t.ExtendedReason += reason
			// The new notice is due now; it is recorded first so that
			// RetryExtensionNotices sends it if this call stops short.
			r.ExtensionNotice = store.NoticeDelivery{RetryAt: &now}
			return nil
		})
	if err != nil {
		return nil, err
	}
	if a != nil {
		// A failed notice is recorded and retried; the extension stands.
		_, _ = s.sendExtension(ctx, a, r, reason, true)
		if r, err = s.cfg.Store.PrivacyRequest(ctx, r.ID); err != nil {
			return nil, err
		}
	} else if r, err = s.cfg.Store.UpdatePrivacyRequest(ctx, r.ID, func(r *store.PrivacyRequest) error {
		r.ExtensionNotice.RetryAt = nil
		return nil
	}); err != nil {
		return nil, err
	}
	v := s.staffView(by, r, txt)
	return &v, nil
}

// Complete marks a verified request completed, with a note saying what
// was done (required, sent to the user; a missing or bad note is Invalid,
// field "note"). Requests whose identity is not proven, and erasures made
// in the app (which only the user's confirmation carries out), are
// Conflict. Completing an erasure that came from outside the app, with an
// account, carries it out as the user's confirmation does
// (ConfirmErasure); the note is added to the request's outcome. by must
// be allowed staff.ActPrivacyComplete.
func (s *Service) Complete(ctx context.Context, by staff.Principal, id, note string) (*Request, error) {
	if err := staff.Authorize(by, staff.ActPrivacyComplete); err != nil {
		return nil, err
	}
	note, err := CheckNote("note", note)
	if err != nil {
		return nil, err
	}
	erase := false
	r, txt, a, err := s.staffAct(ctx, by, staff.ActPrivacyComplete, id, "completed",
		func(r *store.PrivacyRequest, t *requestText, now time.Time) error {
			if err := unanswered(r); err != nil {
				return err
			}
			if err := completable(r); err != nil {
				return err
			}
			if r.Type == store.RequestErasure && r.AccountID != "" {
				// Carried out below, as the requester's instruction.
				erase = true
				if r.ConfirmedAt == nil {
					r.ConfirmedAt = &now
				}
				return nil
			}
			r.Status, r.CompletedAt = store.RequestCompleted, &now
			t.Note = note
			return nil
		})
	if err != nil {
		return nil, err
	}
	if erase {
		if _, err := s.execute(ctx, r); err != nil {
			return nil, fmt.Errorf("carry out erasure %s: %w", r.ID, err)
		}
		if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActPrivacyComplete, r.AccountID,
			"request "+r.ID+": erasure carried out on the instruction received by "+channel(r)); err != nil {
			return nil, err
		}
		if r, err = s.cfg.Store.UpdatePrivacyRequest(ctx, r.ID, func(r *store.PrivacyRequest) error {
			r.Outcome += "\n\n" + note
			return nil
		}); err != nil {
			return nil, err
		}
		return s.staffFull(ctx, by, r)
	}
	if err := s.snapshotRecipients(ctx, r); err != nil {
		s.cfg.Logger.Warn("recipients of request not recorded", "request", r.ID, "err", errs.CodeOf(err))
	}
	if a != nil {
		body := fmt.Sprintf("Your %s request %s is completed.\n\n%s\n\n%s\n", r.Type, r.ID, note, complaintText)
		_ = s.notifyUser(ctx, a, r, KindCompleted, "Your privacy request is completed", body)
	}
	v := s.staffView(by, r, txt)
	s.addRecipients(ctx, &v, r)
	return &v, nil
}

// CheckNote validates and trims what staff tell the requester when they
// answer a request: the note of a completion (field "note") or the reason
// of a denial (field "reason"). It is required, at most MaxReason
// characters, without control characters; errors are Invalid and name
// field. Complete and Deny apply it; front ends may call it to check a
// note before they ask for confirmation.
func CheckNote(field, text string) (string, error) {
	text, err := checkText(field, text, MaxReason)
	if err != nil {
		return "", err
	}
	if text == "" {
		if field == "reason" {
			return "", errs.Field(errs.Invalid, field, "a denial needs a reason: the requester is told it")
		}
		return "", errs.Field(errs.Invalid, field, "a completion needs a note saying what was done: the requester is told it")
	}
	return text, nil
}

// Deny refuses a request that is not answered yet, for reason (required;
// Invalid with field "reason"),
// and tells the user the reason and their right to complain to a
// supervisory authority. by must be allowed staff.ActPrivacyDeny.
func (s *Service) Deny(ctx context.Context, by staff.Principal, id, reason string) (*Request, error) {
	reason, err := CheckNote("reason", reason)
	if err != nil {
		return nil, err
	}
	r, txt, a, err := s.staffAct(ctx, by, staff.ActPrivacyDeny, id, "denied",
		func(r *store.PrivacyRequest, t *requestText, now time.Time) error {
			if err := unanswered(r); err != nil {
				return err
			}
			r.Status, r.CompletedAt, r.Outcome = store.RequestDenied, &now, deniedOutcome
			t.DeniedReason = reason
			return nil
		})
	if err != nil {
		return nil, err
	}
	if a != nil {
		body := fmt.Sprintf("We cannot grant your %s request %s, received on %s.\n\nReason: %s\n\n%s\n",
			r.Type, r.ID, day(r.ReceivedAt), reason, complaintText)
		_ = s.notifyUser(ctx, a, r, KindDenied, "Your privacy request was denied", body)
	}
	v := s.staffView(by, r, txt)
	return &v, nil
}
