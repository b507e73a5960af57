package privacy

import (
	"context"
	"fmt"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// Status notices.
//
// Every change of a request's status reaches its account's inbox as a
// message about the request (Inbox.PostAbout), so that front ends can
// link it to the request: received, identity verified, extended,
// completed, denied. Extensions and the answers of staff (completed,
// denied) are also emailed (notifyUser). A request without an account, or
// whose account was erased, has no inbox to post to.

// The inbox message kinds of status notices.
const (
	KindReceived  = "privacy-received"
	KindVerified  = "privacy-verified"
	KindExtended  = "privacy-extended"
	KindCompleted = "privacy-completed"
	KindDenied    = "privacy-denied"
)

// postStatus posts the notice of r's current status (pending: received;
// verified; completed) to its account's inbox; for a received request,
// codes says whether identity-proof codes were sent. Failures are logged
// without data: the request stands, and its page shows the status.
func (s *Service) postStatus(ctx context.Context, r *store.PrivacyRequest, codes bool) {
	if s.cfg.Inbox == nil || r.AccountID == "" {
		return
	}
	var kind, subject, body string
	switch r.Status {
	case store.RequestPending:
		kind, subject = KindReceived, fmt.Sprintf("We received your %s request", r.Type)
		body = fmt.Sprintf("We received your %s request %s on %s. It is free of charge, and we answer it by %s.\n",
			r.Type, r.ID, day(r.ReceivedAt), day(r.DueAt))
		if outside(r) {
			body += "\nYou sent it by " + r.Channel + "; our privacy team recorded it.\n"
		}
		switch {
		case codes && outside(r):
			body += "\nTo prove it is yours, read the codes we sent to your verified contacts to our privacy team, or enter them with your password on the request's page.\n"
		case codes:
			body += "\nTo prove it is yours, enter the codes we sent to your verified contacts, with your password, on the request's page.\n"
		}
	case store.RequestVerified:
		kind, subject = KindVerified, fmt.Sprintf("Your %s request: identity verified", r.Type)
		body = fmt.Sprintf("Your identity is verified for your %s request %s.\n", r.Type, r.ID)
		if r.Outcome != "" {
			body += "\n" + r.Outcome + "\n"
		}
	case store.RequestCompleted:
		kind, subject = KindCompleted, fmt.Sprintf("Your %s request is completed", r.Type)
		body = fmt.Sprintf("Your %s request %s is completed.\n", r.Type, r.ID)
		if r.Outcome != "" {
			body += "\n" + r.Outcome + "\n"
		}
		body += "\n" + complaintText + "\n"
	default:
		return
	}
	if err := s.cfg.Inbox.PostAbout(ctx, r.AccountID, r.ID, kind, subject, body); err != nil {
		s.cfg.Logger.Warn("privacy notice not posted to inbox", "kind", kind, "err", errs.CodeOf(err))
	}
}

// day formats t as a date for notices.
func day(t time.Time) string { return t.UTC().Format("2 January 2006") }
