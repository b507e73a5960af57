package privacy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/processors"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// ErasureReport tells the user what an erasure did and, under a legal
// hold, exactly what is kept, why and until when. It holds no personal
// data.
type ErasureReport struct {
	RequestID       string `json:"request_id"`
	Status          string `json:"status"` // completed, or held while a hold keeps some data
	ServiceClosed   bool   `json:"service_closed"`
	DevicesRemoved  int    `json:"devices_removed"`
	SessionsDeleted int64  `json:"sessions_deleted"`
	// Kept lists what a legal obligation keeps; empty when nothing is kept.
	Kept        []string `json:"kept,omitempty"`
	KeptBecause string   `json:"kept_because,omitempty"`
	// KeptUntil is when the obligation ends; nil (with Kept set) means
	// until it is lifted, at which point the rest is erased too.
	KeptUntil *time.Time `json:"kept_until,omitempty"`
	Message   string     `json:"message"`
}

// ErasureWarning is shown before confirmation.
const ErasureWarning = "Erasure closes your account and ends the VPN service for all your devices at once. " +
	"Your email address, mobile number and account key are destroyed, so what was encrypted under that key is unreadable at once; " +
	"in backups taken before, it becomes unreadable when the key-encryption key they need is destroyed at the next key rotation. It cannot be undone."

// ConfirmErasure carries out the account's verified erasure request id:
// it records the confirmation, emails the user (before the key is
// destroyed, after which no address is left), then runs the destructive
// part in one database transaction (store.EraseAccount) and tells the
// gateways. If a legal hold is active, the data it covers is kept and the
// report says what, why and until when; the rest is erased when the hold
// ends (ResumeErasures). A request whose identity is not proven is
// Precondition; one already carried out is Conflict.
func (s *Service) ConfirmErasure(ctx context.Context, accountID, id string) (*ErasureReport, error) {
	r, err := s.owned(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	if r.Type != store.RequestErasure {
		return nil, errs.E(errs.Precondition, "request %s is not an erasure request", id)
	}
	switch r.Status {
	case store.RequestPending:
		return nil, errs.E(errs.Precondition, "prove your identity first (verify the request)")
	case store.RequestVerified:
	default:
		return nil, errs.E(errs.Conflict, "this erasure request is already %s", r.Status)
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	r, err = s.cfg.Store.UpdatePrivacyRequest(ctx, id, func(r *store.PrivacyRequest) error {
		if r.Status != store.RequestVerified {
			return errs.E(errs.Conflict, "this erasure request is already %s", r.Status)
		}
		if r.ConfirmedAt == nil {
			r.ConfirmedAt = &now
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.execute(ctx, r)
}

// execute runs (or re-runs, after a crash or once a hold ended) the
// destructive part of erasure request r.
func (s *Service) execute(ctx context.Context, r *store.PrivacyRequest) (*ErasureReport, error) {
	if r.AccountID == "" {
		// An erasure whose closed account the retention sweeper purged,
		// typically after a hold ended: nobody to tell and no hold to
		// check (an empty account id would select every account's holds).
		return s.finishPurged(ctx, r)
	}
	a, err := s.cfg.Store.Account(ctx, r.AccountID)
	if err != nil {
		return nil, err
	}
	holds, err := s.cfg.Holds.Active(ctx, r.AccountID)
	if err != nil {
		return nil, fmt.Errorf("check legal holds: %w", err)
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	rep := &ErasureReport{RequestID: r.ID, ServiceClosed: true, Status: store.RequestCompleted}
	held := len(holds) > 0
	if held {
		rep.Status = store.RequestHeld
		rep.KeptBecause = "a legal obligation: a legal hold on your account requires us to keep this data; we may not be able to tell you more about it"
		open := false
		var until time.Time
		for _, h := range holds {
			if h.Until == nil {
				open = true
			} else if h.Until.After(until) {
				until = *h.Until
			}
		}
		if !open {
			u := until.UTC()
			rep.KeptUntil = &u
		}
		rep.Kept = []string{
			"your email address and mobile number, encrypted, and the key that decrypts them",
			"your account record (account ID, creation date, status closed)",
			"your session intervals (device ID, gateway region, start and end)",
			"your privacy requests",
		}
	}
	rep.Message = erasureMessage(rep)

	// Tell the user while the address still exists. The notice is about
	// an account that will be gone, so it is filed under none.
	if a.WrappedKey != nil {
		if err := s.sendErasureNotice(ctx, a, r, rep); err != nil {
			s.cfg.Logger.Warn("erasure notice not sent", "request", r.ID, "err", errs.CodeOf(err))
		}
	}
	// The processors that received the account's data, to be told of
	// the erasure (Art. 19): the request keeps the list, the erasure
	// deletes the account's own record of it.
	if err := s.snapshotRecipients(ctx, r); err != nil {
		return nil, fmt.Errorf("record the recipients to tell: %w", err)
	}
	// Before and after the erasure: nothing of the account may be left
	// in recorded messages, even if the server stops in between or a
	// message was being written meanwhile.
	s.forgetMessages(r)
	outcome := "Erased: account closed, sessions and devices ended, data key destroyed."
	if held {
		outcome = "Erased except data kept under a legal obligation " + untilText(rep.KeptUntil) + "; the account is closed."
	}
	res, err := s.cfg.Store.EraseAccount(ctx, store.Erasure{RequestID: r.ID, AccountID: r.AccountID, At: now,
		KeepHeld: held, Outcome: outcome})
	if err != nil {
		return nil, err
	}
	s.cfg.OnPeerChange()
	s.forgetMessages(r)
	rep.DevicesRemoved, rep.SessionsDeleted = res.Devices, res.SessionsDeleted
	s.cfg.Logger.Info("account erased", "request", r.ID, "held", held, "devices", res.Devices,
		"sessions_deleted", res.SessionsDeleted, "sessions_kept", res.SessionsKept)
	return rep, nil
}

// forgetMessages deletes the outbox's copies of messages about r's
// account. A failure is logged: the erasure itself stands.
func (s *Service) forgetMessages(r *store.PrivacyRequest) {
	if s.cfg.Outbox == nil || r.AccountID == "" {
		return
	}
	n, err := s.cfg.Outbox.ForgetAccount(r.AccountID)
	if err != nil {
		s.cfg.Logger.Warn("outbox copies of an erased account's messages not all deleted", "request", r.ID, "deleted", n, "err", err)
		return
	}
	if n > 0 {
		s.cfg.Logger.Info("outbox copies of an erased account's messages deleted", "request", r.ID, "files", n)
	}
}

// finishPurged completes erasure r whose account row is already gone.
func (s *Service) finishPurged(ctx context.Context, r *store.PrivacyRequest) (*ErasureReport, error) {
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	rep := &ErasureReport{RequestID: r.ID, ServiceClosed: true, Status: store.RequestCompleted}
	rep.Message = erasureMessage(rep)
	res, err := s.cfg.Store.EraseAccount(ctx, store.Erasure{RequestID: r.ID, At: now,
		Outcome: "Erased: account closed, sessions and devices ended, data key destroyed."})
	if err != nil {
		return nil, err
	}
	rep.DevicesRemoved, rep.SessionsDeleted = res.Devices, res.SessionsDeleted
	s.cfg.Logger.Info("account erased", "request", r.ID, "held", false, "devices", res.Devices,
		"sessions_deleted", res.SessionsDeleted, "sessions_kept", res.SessionsKept)
	return rep, nil
}

func untilText(u *time.Time) string {
	if u == nil {
		return "until that obligation ends"
	}
	return "until " + u.UTC().Format(time.DateOnly)
}

func erasureMessage(rep *ErasureReport) string {
	if len(rep.Kept) == 0 {
		return "Your account is erased and the service is closed: every session and device ended, your session history is deleted, and the key that encrypted your email address and mobile number is destroyed."
	}
	return "Your account is closed and the service has ended: every session and device ended. Because of " + rep.KeptBecause +
		", we keep " + strings.Join(rep.Kept, "; ") + " " + untilText(rep.KeptUntil) +
		". When that obligation ends, this data is erased too. Everything else is erased now."
}

// sendErasureNotice emails (and texts) the user the erasure report.
func (s *Service) sendErasureNotice(ctx context.Context, a *store.Account, r *store.PrivacyRequest, rep *ErasureReport) error {
	email, mobile, err := s.cfg.Accounts.Contacts(a)
	if err != nil {
		return err
	}
	subject := "Your Nitronet account is being erased"
	if r.Status == store.RequestHeld {
		subject = "The rest of your Nitronet data is being erased"
	}
	body := fmt.Sprintf("Erasure request %s: %s\n\n%s\n\n%s\n", r.ID, rep.Message, ErasureWarning, complaintText)
	err = s.cfg.Notifier.Send(ctx, notify.Message{Channel: notify.Email, To: email, Subject: subject, Body: body, Kind: processors.KindErasure, Account: a.ID})
	if mobile != "" && a.MobileVerified {
		if e := s.cfg.Notifier.Send(ctx, notify.Message{Channel: notify.SMS, To: mobile, Kind: processors.KindErasure, Account: a.ID,
			Body: "Nitronet: your account is being erased and the service closed, as you asked (request " + r.ID + "). Details by email."}); err == nil {
			err = e
		}
	}
	return err
}

// ResumeErasures finishes erasures that were confirmed but not carried
// out (the server stopped midway: the store transaction rolled back) and
// erasures held by legal holds that have ended since, for by, who must be
// allowed staff.ActErasureResume. It returns how many it carried out; it
// stops at the first error. The housekeeping of `nitronet serve` calls it
// as staff.System at start-up and hourly; it is safe to call at any time.
// The call is audited with its count, except a system run that carried
// out nothing.
func (s *Service) ResumeErasures(ctx context.Context, by staff.Principal) (int, error) {
	if err := staff.Authorize(by, staff.ActErasureResume); err != nil {
		return 0, err
	}
	n, err := s.resumeErasures(ctx)
	if n == 0 && by.IsSystem() {
		return n, err
	}
	detail := fmt.Sprintf("resumed %d erasure(s)", n)
	if err != nil {
		detail += "; stopped at an error"
	}
	if aerr := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActErasureResume, "privacy_requests", detail); aerr != nil && err == nil {
		err = aerr
	}
	return n, err
}

func (s *Service) resumeErasures(ctx context.Context) (int, error) {
	n := 0
	pending, err := s.cfg.Store.PrivacyRequests(ctx, store.PrivacyFilter{Type: store.RequestErasure, Status: store.RequestVerified})
	if err != nil {
		return 0, err
	}
	for i := range pending {
		if pending[i].ConfirmedAt == nil {
			continue
		}
		if _, err := s.execute(ctx, &pending[i]); err != nil {
			return n, fmt.Errorf("resume erasure %s: %w", pending[i].ID, err)
		}
		n++
	}
	held, err := s.cfg.Store.PrivacyRequests(ctx, store.PrivacyFilter{Type: store.RequestErasure, Status: store.RequestHeld})
	if err != nil {
		return n, err
	}
	for i := range held {
		if held[i].AccountID != "" {
			hs, err := s.cfg.Holds.Active(ctx, held[i].AccountID)
			if err != nil {
				return n, err
			}
			if len(hs) > 0 {
				continue
			}
		}
		if _, err := s.execute(ctx, &held[i]); err != nil {
			return n, fmt.Errorf("finish held erasure %s: %w", held[i].ID, err)
		}
		n++
	}
	return n, nil
}
