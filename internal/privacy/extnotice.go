package privacy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/outbound"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// Extension notices.
//
// The user must be told of an extension and its reasons (Art. 12(3)), so
// the notice's delivery is recorded with the request
// (store.PrivacyRequest.ExtensionNotice) and a notice not delivered is
// retried by RetryExtensionNotices with a growing delay until it is. The
// notice counts as delivered when it reached the account's email address,
// or, for an account without one, its inbox. Staff views show the state
// (ExtensionNotice).

// Receipts queues a message and reports its final outcome later
// (outbound.Queue).
type Receipts interface {
	SendWithReceipt(ctx context.Context, m notify.Message, r outbound.Receipt) error
}

// ExtensionReceiptOwner is the owner name of extension notices' outcomes
// in the outbound queue: register Service.ExtensionOutcome for it.
const ExtensionReceiptOwner = "extension-notice"

// queuedRetry is how long after queueing a notice RetryExtensionNotices
// sends it again if the queue never reported its outcome: longer than the
// queue keeps a job.
const queuedRetry = outbound.DefaultMaxAge + time.Hour

// Extension notice states, as staff see them.
const (
	NoticeDelivered = "delivered" // the user was told
	NoticePending   = "pending"   // not delivered yet; the next attempt is due
	NoticeQueued    = "queued"    // in the outbound queue: the relay has not accepted it yet
	NoticeFailing   = "failing"   // FailingAfter attempts or more have failed; still retried
	NoticeNoAccount = "no-account"
)

// Retry delays of extension notices: the first retry waits RetryFirst, each
// further one twice as long, at most RetryMax. After FailingAfter failed
// attempts the notice is shown as failing.
const (
	RetryFirst   = 5 * time.Minute
	RetryMax     = 6 * time.Hour
	FailingAfter = 3
)

// ExtensionNotice is the delivery of an extension's notice, for staff.
type ExtensionNotice struct {
	State       string     `json:"state"` // one of Notice*
	Attempts    int        `json:"attempts"`
	Error       string     `json:"error,omitempty"` // the last failure's error code
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
}

// retryDelay returns how long to wait after the failed attempt number n
// (1 for the first).
func retryDelay(n int) time.Duration {
	d := RetryFirst
	for i := 1; i < n && d < RetryMax; i++ {
		d *= 2
	}
	return min(d, RetryMax)
}

// extensionNotice returns the staff view of r's extension notice, nil if
// the deadline was never extended.
func extensionNotice(r *store.PrivacyRequest) *ExtensionNotice {
	if r.ExtendedAt == nil {
		return nil
	}
	d := r.ExtensionNotice
	n := &ExtensionNotice{Attempts: d.Attempts, Error: d.Error, DeliveredAt: utcPtr(d.DeliveredAt), NextAttempt: utcPtr(d.RetryAt)}
	switch {
	case d.DeliveredAt != nil:
		n.State = NoticeDelivered
	case d.RetryAt == nil:
		n.State = NoticeNoAccount
	case d.Attempts > 0 && d.Error == "":
		// Only a queued attempt leaves no error behind.
		n.State = NoticeQueued
	case d.Attempts >= FailingAfter:
		n.State = NoticeFailing
	default:
		n.State = NoticePending
	}
	return n
}

// extensionBody is the notice of r's latest extension, for reason.
func extensionBody(r *store.PrivacyRequest, reason string) string {
	return fmt.Sprintf("We need more time to answer your %s request %s, received on %s.\n\nReason: %s\n\nThe new deadline is %s. Your request stays free of charge.\n\n%s\n",
		r.Type, r.ID, day(r.ReceivedAt), reason, day(r.DueAt), complaintText)
}

const extensionSubject = "Your privacy request: more time needed"

// sendExtension tells a's user of r's latest extension, for reason, and records the
// delivery with r. first says whether this is the extension's first
// attempt: only then is the notice posted to the inbox when it is also
// emailed. It returns the delivery's error. With Config.Queue an email
// is queued (queued is true): the attempt is recorded as pending until
// the queue reports its outcome (ExtensionOutcome).
func (s *Service) sendExtension(ctx context.Context, a *store.Account, r *store.PrivacyRequest, reason string, first bool) (queued bool, _ error) {
	body := extensionBody(r, reason)
	var err error
	if a.WrappedKey == nil {
		err = errs.E(errs.Unavailable, "no inbox")
		if s.cfg.Inbox != nil {
			err = s.cfg.Inbox.PostAbout(ctx, a.ID, r.ID, KindExtended, extensionSubject, body)
		}
	} else {
		if first && s.cfg.Inbox != nil {
			if ierr := s.cfg.Inbox.PostAbout(ctx, a.ID, r.ID, KindExtended, extensionSubject, body); ierr != nil {
				s.cfg.Logger.Warn("privacy notice not posted to inbox", "kind", KindExtended, "err", errs.CodeOf(ierr))
			}
		}
		var email string
		if email, _, err = s.cfg.Accounts.Contacts(a); err == nil {
			m := notify.Message{Channel: notify.Email, To: email, Subject: extensionSubject, Body: body, Kind: KindExtended, Account: a.ID}
			if s.cfg.Queue != nil {
				return s.queueExtension(ctx, r.ID, m)
			}
			err = s.cfg.Notifier.Send(ctx, m)
		}
	}
	if err != nil {
		s.cfg.Logger.Warn("extension notice not delivered", "err", errs.CodeOf(err))
	}
	if rerr := s.recordExtension(ctx, r.ID, err, true); rerr != nil {
		return false, rerr
	}
	return false, err
}

// queueExtension queues m, the extension notice of request id, with a
// receipt. The attempt is recorded first, as pending with a next attempt
// far enough away that only a lost outcome leads to it, so that the
// outcome, which a worker may report at once, always comes after it.
func (s *Service) queueExtension(ctx context.Context, id string, m notify.Message) (bool, error) {
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	if _, err := s.cfg.Store.UpdatePrivacyRequest(ctx, id, func(r *store.PrivacyRequest) error {
		d := &r.ExtensionNotice
		next := now.Add(queuedRetry)
		d.Attempts++
		d.RetryAt, d.Error = &next, ""
		return nil
	}); err != nil {
		return false, err
	}
	err := s.cfg.Queue.SendWithReceipt(ctx, m, outbound.Receipt{Owner: ExtensionReceiptOwner, Ref: id})
	if err == nil {
		return true, nil
	}
	s.cfg.Logger.Warn("extension notice not queued", "err", errs.CodeOf(err))
	if rerr := s.recordExtension(ctx, id, err, false); rerr != nil {
		return false, rerr
	}
	return false, err
}

// ExtensionOutcome records the final outcome of an extension notice sent
// through Config.Queue (the outbound.Reporter of ExtensionReceiptOwner):
// delivered when the relay accepted it; otherwise the notice is retried
// by RetryExtensionNotices after the delay its attempts earned. The
// outcome of a notice already delivered, or of a request gone, changes
// nothing.
func (s *Service) ExtensionOutcome(ctx context.Context, o outbound.Outcome) error {
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	_, err := s.cfg.Store.UpdatePrivacyRequest(ctx, o.Ref, func(r *store.PrivacyRequest) error {
		d := &r.ExtensionNotice
		if d.DeliveredAt != nil || d.RetryAt == nil {
			return nil
		}
		if o.Delivered {
			d.DeliveredAt, d.RetryAt, d.Error = &now, nil, ""
			return nil
		}
		next := now.Add(retryDelay(max(d.Attempts, 1)))
		d.RetryAt, d.Error = &next, string(o.Code)
		if d.Error == "" {
			d.Error = string(errs.Unavailable)
		}
		return nil
	})
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	return err
}

// recordExtension records the outcome err of an attempt to deliver
// request id's extension notice, counting the attempt if count (it was
// not counted when it was queued).
func (s *Service) recordExtension(ctx context.Context, id string, err error, count bool) error {
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	_, uerr := s.cfg.Store.UpdatePrivacyRequest(ctx, id, func(r *store.PrivacyRequest) error {
		d := &r.ExtensionNotice
		if count {
			d.Attempts++
		}
		if err == nil {
			d.DeliveredAt, d.RetryAt, d.Error = &now, nil, ""
			return nil
		}
		next := now.Add(retryDelay(d.Attempts))
		d.RetryAt, d.Error = &next, string(errs.CodeOf(err))
		return nil
	})
	return uerr
}

// RetryExtensionNotices retries the extension notices not delivered whose
// next attempt is due, for by, who must be allowed staff.ActErasureResume
// (resuming privacy work left unfinished). It returns how many it
// delivered or, with Config.Queue, queued; a notice that fails again is rescheduled and does not stop
// the others. A request whose account was erased has no one to tell: its
// notice is no longer retried. The housekeeping of `nitronet serve` calls
// it as staff.System at start-up and every RetryEvery. A call that
// delivered or gave up on something is audited with its counts.
func (s *Service) RetryExtensionNotices(ctx context.Context, by staff.Principal) (int, error) {
	if err := staff.Authorize(by, staff.ActErasureResume); err != nil {
		return 0, err
	}
	now := s.cfg.Clock().UTC()
	due, err := s.cfg.Store.PrivacyRequests(ctx, store.PrivacyFilter{ExtensionNoticeDueAt: &now})
	if err != nil {
		return 0, err
	}
	kr := s.keyring()
	defer kr.Close()
	delivered, queued, failed, dropped := 0, 0, 0, 0
	for i := range due {
		r := &due[i]
		if r.AccountID == "" {
			_, err := s.cfg.Store.UpdatePrivacyRequest(ctx, r.ID, func(r *store.PrivacyRequest) error {
				r.ExtensionNotice.RetryAt = nil
				return nil
			})
			if err != nil {
				return delivered + queued, err
			}
			dropped++
			continue
		}
		a, err := s.cfg.Store.Account(ctx, r.AccountID)
		if err != nil {
			return delivered + queued, err
		}
		t, err := kr.text(ctx, r)
		if err != nil {
			return delivered + queued, err
		}
		reasons := strings.Split(t.ExtendedReason, "\n")
		q, err := s.sendExtension(ctx, a, r, reasons[len(reasons)-1], false)
		switch {
		case err != nil && ctx.Err() != nil:
			return delivered + queued, ctx.Err()
		case err != nil:
			failed++
		case q:
			queued++
		default:
			delivered++
		}
	}
	if delivered+queued+dropped > 0 || !by.IsSystem() {
		detail := fmt.Sprintf("extension notices: %d delivered, %d queued, %d failed again, %d without an account", delivered, queued, failed, dropped)
		if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActErasureResume, "privacy_requests", detail); err != nil {
			return delivered + queued, err
		}
	}
	return delivered + queued, nil
}

// RetryEvery is how often `nitronet serve` runs RetryExtensionNotices.
const RetryEvery = 5 * time.Minute

// FailingExtensionNotices returns how many extension notices are not
// delivered after FailingAfter attempts or more (for the
// nitronet_privacy_extension_notices_failing metric).
func (s *Service) FailingExtensionNotices(ctx context.Context) (int, error) {
	all := s.cfg.Clock().UTC().AddDate(100, 0, 0)
	rs, err := s.cfg.Store.PrivacyRequests(ctx, store.PrivacyFilter{ExtensionNoticeDueAt: &all})
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range rs {
		if rs[i].ExtensionNotice.Attempts >= FailingAfter {
			n++
		}
	}
	return n, nil
}
