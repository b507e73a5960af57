package policy

import (
	"context"
	"fmt"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// Notice is an unfinished notice to every account, with its progress.
type Notice struct {
	Run      store.NoticeRun
	Progress notices.Progress
}

// Notices returns the notices not finished yet (a material policy change
// or an announcement whose sending was interrupted), newest first, with
// their progress. by must be allowed staff.ActNoticeRun; the listing is
// audited.
func (s *Service) Notices(ctx context.Context, by staff.Principal) ([]Notice, error) {
	if err := staff.Authorize(by, staff.ActNoticeRun); err != nil {
		return nil, err
	}
	runs, err := s.cfg.Notices.Unfinished(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Notice, 0, len(runs))
	for _, r := range runs {
		p, err := s.cfg.Notices.Progress(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, Notice{Run: r, Progress: p})
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActNoticeRun, "notices",
		fmt.Sprintf("listed %d unfinished notice(s)", len(out))); err != nil {
		return nil, err
	}
	return out, nil
}

// RunNotice works through notice run id (created by Publish or Announce)
// for by, who must be allowed staff.ActNoticeRun: every active account
// gets the inbox message and, for an email notice, every pending email is
// attempted (see notices.Sender.Run). report, if not nil, is called after
// each batch. It may be called again after an error or a crash to resume.
// The run is audited with the progress it reached.
func (s *Service) RunNotice(ctx context.Context, by staff.Principal, id string, report func(notices.Progress)) (notices.Progress, error) {
	if err := staff.Authorize(by, staff.ActNoticeRun); err != nil {
		return notices.Progress{}, err
	}
	p, err := s.cfg.Notices.Run(ctx, id, report)
	if errs.Is(err, errs.NotFound) {
		return p, err
	}
	detail := fmt.Sprintf("worked through notice: %d/%d inboxes, emails sent %d, failed %d, pending %d",
		p.Posted, p.Accounts, p.Sent, p.Failed, p.Pending)
	if err != nil {
		detail = "working through the notice stopped at an error; run it again to resume"
	}
	if aerr := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActNoticeRun, id, detail); aerr != nil && err == nil {
		err = aerr
	}
	return p, err
}

// ResumeNotices works through every unfinished notice for by, who must be
// allowed staff.ActNoticeRun, and returns how many it finished. It stops
// at the first error. Each run is audited as RunNotice does; with
// staff.System (the housekeeping of `nitronet serve`) there is nothing to
// record when nothing was unfinished.
func (s *Service) ResumeNotices(ctx context.Context, by staff.Principal, report func(notices.Progress)) (int, error) {
	if err := staff.Authorize(by, staff.ActNoticeRun); err != nil {
		return 0, err
	}
	runs, err := s.cfg.Notices.Unfinished(ctx)
	if err != nil {
		return 0, err
	}
	if len(runs) == 0 && !by.IsSystem() {
		if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActNoticeRun, "notices", "no unfinished notice to resume"); err != nil {
			return 0, err
		}
	}
	n := 0
	for _, r := range runs {
		if _, err := s.RunNotice(ctx, by, r.ID, report); err != nil {
			return n, fmt.Errorf("notice %s: %w", r.ID, err)
		}
		n++
	}
	return n, nil
}
