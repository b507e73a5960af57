package breaches

import (
	"context"
	"fmt"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/staff"
)

// Audience is who a breach notice goes to: every active account (All), or
// the accounts listed by ID, at most MaxAccounts.
type Audience struct {
	All      bool
	Accounts []string
}

// complaintText is the notice of the right to lodge a complaint.
const complaintText = "You have the right to lodge a complaint with a supervisory authority (Art. 77 GDPR), in particular in the EU member state where you live or work or where you think an infringement took place."

// NoticeText returns the subject and body of the notice of breach b to
// the people affected, with what Art. 34(2) requires: the nature of the
// breach, the contact point, the likely consequences and the measures
// taken or proposed. Missing content is Precondition, naming the field
// to fill in ("consequences", "measures_taken", or "contact" for the
// controller settings).
func (s *Service) NoticeText(b *Breach) (subject, body string, err error) {
	switch {
	case b.Consequences == "":
		return "", "", errs.Field(errs.Precondition, "consequences", "record the likely consequences first (Art. 34(2) GDPR): they are part of the notice")
	case b.MeasuresTaken == "":
		return "", "", errs.Field(errs.Precondition, "measures_taken", "record the measures taken first (Art. 34(2) GDPR): they are part of the notice")
	case b.Contact == "":
		return "", "", errs.Field(errs.Precondition, "contact", "the notice must name a contact point: set --controller-dpo-email (with --controller-dpo-name) or --controller-email")
	}
	who := "Nitronet"
	if n := s.cfg.Controller.Name; n != "" {
		who = n
	}
	var w strings.Builder
	fmt.Fprintf(&w, "We are writing to tell you about a personal data breach at %s that may affect you. "+
		"We became aware of it on %s.\n\n", who, b.DetectedAt.UTC().Format("2 January 2006"))
	fmt.Fprintf(&w, "What happened:\n%s\n\n", b.Nature)
	if names := s.categoryNames(b.Categories); len(names) > 0 {
		fmt.Fprintf(&w, "The data concerned: %s.\n\n", strings.Join(names, ", "))
	}
	fmt.Fprintf(&w, "The likely consequences:\n%s\n\n", b.Consequences)
	fmt.Fprintf(&w, "What we have done:\n%s\n\n", b.MeasuresTaken)
	if b.MeasuresProposed != "" {
		fmt.Fprintf(&w, "What we will do, and what you can do:\n%s\n\n", b.MeasuresProposed)
	}
	fmt.Fprintf(&w, "For questions, contact %s, quoting reference %s.\n\n%s\n", b.Contact, b.ID, complaintText)
	return "Important: a personal data breach that may affect you", w.String(), nil
}

// Notify tells the people affected by breach id (aud) through their inbox
// and, if email, by email, for by, who must be allowed
// staff.ActBreachNotify. The notice (NoticeText) is a notice run: it is
// created, then worked through at once; report, if not nil, is called
// after each batch. If the run stops (an error, a crash), ResumeNotices,
// `nitronet admin notices resume` or the server's housekeeping finish it
// without sending anything twice. Missing content is NoticeText's
// Precondition; an audience that is neither all nor a list, a malformed
// or repeated account ID, or an account that is not active, is Invalid or
// NotFound with field "accounts". The notice is audited with its audience
// size, never the account IDs.
func (s *Service) Notify(ctx context.Context, by staff.Principal, id string, aud Audience, email bool, report func(notices.Progress)) (*Breach, error) {
	if err := staff.Authorize(by, staff.ActBreachNotify); err != nil {
		return nil, err
	}
	if err := breachID(id); err != nil {
		return nil, err
	}
	accounts, err := checkAudience(aud)
	if err != nil {
		return nil, err
	}
	b, err := s.cfg.Store.Breach(ctx, id)
	if err != nil {
		return nil, err
	}
	subject, body, err := s.NoticeText(s.view(b))
	if err != nil {
		return nil, err
	}
	run, err := s.cfg.Notices.NewRun(NoticeKind, subject, body, id, email)
	if err != nil {
		return nil, err
	}
	who := "every active account"
	if aud.All {
		err = s.cfg.Notices.Create(ctx, run)
	} else {
		err = s.cfg.Notices.CreateListed(ctx, run, accounts)
		who = fmt.Sprintf("%d listed account(s)", len(accounts))
	}
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActBreachNotify, id,
		fmt.Sprintf("notice %s of the breach to %s (email=%v)", run.ID, who, email)); err != nil {
		return nil, err
	}
	if err := s.runNotice(ctx, by, id, run.ID, report); err != nil {
		return nil, err
	}
	return s.current(ctx, id)
}

// ResumeNotices finishes the unfinished notices of breach id, for by, who
// must be allowed staff.ActBreachNotify, and returns the breach. Each run
// is audited with its progress.
func (s *Service) ResumeNotices(ctx context.Context, by staff.Principal, id string, report func(notices.Progress)) (*Breach, error) {
	if err := staff.Authorize(by, staff.ActBreachNotify); err != nil {
		return nil, err
	}
	if err := breachID(id); err != nil {
		return nil, err
	}
	if _, err := s.cfg.Store.Breach(ctx, id); err != nil {
		return nil, err
	}
	runs, err := s.cfg.Notices.RunsAbout(ctx, id)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, r := range runs {
		if r.FinishedAt != nil {
			continue
		}
		n++
		if err := s.runNotice(ctx, by, id, r.ID, report); err != nil {
			return nil, err
		}
	}
	if n == 0 {
		if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActBreachNotify, id, "no unfinished notice of the breach"); err != nil {
			return nil, err
		}
	}
	return s.current(ctx, id)
}

// runNotice works through notice run runID of breach id and audits how
// far it got.
func (s *Service) runNotice(ctx context.Context, by staff.Principal, id, runID string, report func(notices.Progress)) error {
	p, err := s.cfg.Notices.Run(ctx, runID, report)
	detail := fmt.Sprintf("notice %s: %d/%d inboxes, emails sent %d, failed %d, pending %d",
		runID, p.Posted, p.Accounts, p.Sent, p.Failed, p.Pending)
	if err != nil {
		detail = "notice " + runID + " stopped at an error; resume it to finish"
	}
	if aerr := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActBreachNotify, id, detail); aerr != nil && err == nil {
		err = aerr
	}
	return err
}

// current returns breach id with its notices, unaudited (the caller's
// action was audited).
func (s *Service) current(ctx context.Context, id string) (*Breach, error) {
	b, err := s.cfg.Store.Breach(ctx, id)
	if err != nil {
		return nil, err
	}
	v := s.view(b)
	if err := s.withNotices(ctx, v); err != nil {
		return nil, err
	}
	return v, nil
}

// checkAudience validates aud and returns its accounts, trimmed.
func checkAudience(aud Audience) ([]string, error) {
	switch {
	case aud.All && len(aud.Accounts) > 0:
		return nil, errs.Field(errs.Invalid, "accounts", "tell either all accounts or the listed ones, not both")
	case !aud.All && len(aud.Accounts) == 0:
		return nil, errs.Field(errs.Invalid, "accounts", "say who is affected: all accounts, or the account IDs")
	case len(aud.Accounts) > MaxAccounts:
		return nil, errs.Field(errs.Invalid, "accounts", "at most %d accounts can be listed; tell all accounts instead", MaxAccounts)
	}
	out := make([]string, 0, len(aud.Accounts))
	for _, a := range aud.Accounts {
		a = strings.TrimSpace(a)
		if !ident.Valid(a, "acc") {
			return nil, errs.Field(errs.Invalid, "accounts", "malformed account ID %q: want acc_ followed by 26 characters", clip(a))
		}
		out = append(out, a)
	}
	return out, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
