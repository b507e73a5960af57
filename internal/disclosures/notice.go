package disclosures

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// NoticeKind is the inbox message kind of a disclosure notice.
const NoticeKind = "disclosure-notice"

// noticeBatch is how many due notices NotifyLapsedGags reads at a time.
const noticeBatch = 100

// NotifyLapsedGags posts an inbox notice to every account named in a
// disclosure whose notice is due now (the service's clock): there was no
// gag order, or it ended by now. It returns how many notices it posted. by
// must be allowed staff.ActDisclosureNotify (the legal role, or
// staff.System for the hourly housekeeping of `nitronet serve`). The run is
// audited with its count, except a system run that posted nothing.
//
// Each (disclosure, account) is claimed in the store before its notice is
// posted, so concurrent runs and repeated runs post each notice at most
// once; a notice whose post fails is unclaimed and retried by a later run,
// and the run goes on with the others and returns the first such error
// with its count. A crash between claim and post loses that one notice. An
// account that no longer exists is marked done without a notice. A store
// error stops the run. It is safe to run on a schedule; it does nothing
// when no notice is due.
func (s *Service) NotifyLapsedGags(ctx context.Context, by staff.Principal) (int, error) {
	if err := staff.Authorize(by, staff.ActDisclosureNotify); err != nil {
		return 0, err
	}
	n, err := s.notifyLapsedGags(ctx, s.cfg.Clock())
	if n == 0 && by.IsSystem() {
		return n, err
	}
	if aerr := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActDisclosureNotify, "disclosures",
		fmt.Sprintf("posted %d disclosure notice(s)", n)); aerr != nil && err == nil {
		err = aerr
	}
	return n, err
}

func (s *Service) notifyLapsedGags(ctx context.Context, now time.Time) (int, error) {
	if s.cfg.Inbox == nil {
		return 0, errs.E(errs.Unavailable, "no inbox is configured for disclosure notices")
	}
	posted := 0
	var firstErr error
	failed := map[[2]string]bool{} // posts that failed in this run
	for {
		due, err := s.cfg.Store.DueDisclosureNotices(ctx, now, noticeBatch)
		if err != nil {
			return posted, err
		}
		progress := false
		for _, n := range due {
			key := [2]string{n.Disclosure.ID, n.AccountID}
			if failed[key] {
				continue
			}
			ok, err := s.cfg.Store.ClaimDisclosureNotice(ctx, n.Disclosure.ID, n.AccountID, now)
			if err != nil {
				return posted, err
			}
			if !ok {
				continue // another run took it
			}
			progress = true
			subject, body := noticeText(n.Disclosure)
			err = s.cfg.Inbox.Post(ctx, n.AccountID, NoticeKind, subject, body)
			if errs.Is(err, errs.NotFound) {
				continue // the account is gone; nobody to tell
			}
			if err != nil {
				failed[key] = true
				if uerr := s.cfg.Store.UnclaimDisclosureNotice(ctx, n.Disclosure.ID, n.AccountID); uerr != nil {
					s.cfg.Logger.Error("disclosure notice claim not released", "disclosure", n.Disclosure.ID, "err", uerr)
				}
				if firstErr == nil {
					firstErr = fmt.Errorf("post disclosure notice: %w", err)
				}
				continue
			}
			posted++
		}
		if !progress {
			return posted, firstErr
		}
	}
}

// noticeText is the inbox notice for the account named in d.
func noticeText(d store.Disclosure) (subject, body string) {
	var b strings.Builder
	fmt.Fprintf(&b, "On %s we received a request from a public authority for data about your account.\n\n",
		d.ReceivedAt.UTC().Format(time.DateOnly))
	fmt.Fprintf(&b, "Authority: %s (%s)\n", d.Authority, d.Jurisdiction)
	fmt.Fprintf(&b, "Reference: %s\n", d.Reference)
	fmt.Fprintf(&b, "Legal basis: %s\n", d.LegalBasis)
	fmt.Fprintf(&b, "What was asked for: %s\n", d.ScopeRequested)
	fmt.Fprintf(&b, "Our decision: %s\n", describeDecision(d.Decision))
	if len(d.FieldsDisclosed) > 0 {
		fmt.Fprintf(&b, "Data disclosed: %s (categories: %s)\n", strings.Join(d.FieldsDisclosed, ", "),
			strings.Join(d.CategoriesDisclosed, ", "))
	} else {
		b.WriteString("Data disclosed: none\n")
	}
	if d.GagUntil != nil {
		fmt.Fprintf(&b, "\nA court or authority barred us from telling you until %s. We are telling you now that this has ended.\n",
			d.GagUntil.UTC().Format(time.DateOnly))
	}
	b.WriteString("\nThis record is also part of your data export. You may have the right to challenge the request or " +
		"our response before the courts or to complain to a data-protection authority.\n")
	return "A request from an authority about your account", b.String()
}

func describeDecision(d string) string {
	switch d {
	case "complied":
		return "we complied"
	case "partly":
		return "we disclosed part of what was asked"
	case "refused":
		return "we refused; nothing was disclosed"
	case "contested":
		return "we are contesting it in court; nothing has been disclosed"
	}
	return d
}

// ExportedDisclosure is one disclosure as the data export shows it to the
// account it is about. It never names other accounts or the staff member
// who recorded it.
type ExportedDisclosure struct {
	Reference           string     `json:"reference"`
	Authority           string     `json:"authority"`
	Jurisdiction        string     `json:"jurisdiction"`
	LegalBasis          string     `json:"legal_basis"`
	Type                string     `json:"type"`
	ReceivedAt          time.Time  `json:"received_at"`
	ScopeRequested      string     `json:"scope_requested"`
	Decision            string     `json:"decision"`
	CategoriesDisclosed []string   `json:"categories_disclosed"`
	FieldsDisclosed     []string   `json:"fields_disclosed"`
	GagUntil            *time.Time `json:"gag_until,omitempty"`
}

// ExportSection returns the "disclosures" section of the account's data
// export: a []ExportedDisclosure (never nil) of the disclosures naming the
// account that are not under a gag at the service's clock's now. A
// disclosure still gagged is left out without a trace, as the order
// requires. It needs no staff principal: the export is the user's own.
func (s *Service) ExportSection(ctx context.Context, accountID string) (string, any, error) {
	ds, err := s.cfg.Store.DisclosuresAbout(ctx, accountID)
	if err != nil {
		return "", nil, err
	}
	now := s.cfg.Clock()
	out := []ExportedDisclosure{}
	for _, d := range ds {
		if d.Gagged(now) {
			continue
		}
		out = append(out, ExportedDisclosure{
			Reference: d.Reference, Authority: d.Authority, Jurisdiction: d.Jurisdiction, LegalBasis: d.LegalBasis,
			Type: d.Type, ReceivedAt: d.ReceivedAt, ScopeRequested: d.ScopeRequested, Decision: d.Decision,
			CategoriesDisclosed: d.CategoriesDisclosed, FieldsDisclosed: d.FieldsDisclosed, GagUntil: d.GagUntil,
		})
	}
	return "disclosures", out, nil
}
