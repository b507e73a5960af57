// Package notices sends one message to every active account: into each
// inbox and, optionally, by email. Policy-change notices and service
// announcements use it.
//
// A notice is a run (store.NoticeRun) worked through in batches. Progress
// lives in the inbox rows the run creates, so Run can be called again after
// a crash and continues where the last call stopped:
//
//   - inbox messages are posted at most once per account (a unique index);
//   - an email is claimed in the database before it is sent and never
//     claimed twice, so no user gets the same notice email twice. A crash
//     between claim and send loses at most the claimed chunk's unsent
//     emails; Progress counts them as Claimed, and the inbox message still
//     reaches the user.
//
// With Config.Queue (the outbound queue), a claimed email is handed to the
// queue and counted Queued; it becomes Sent only when the queue reports
// that the relay accepted it, and Failed when the queue gives up (Outcome).
//
// Recipients' addresses are decrypted only to hand a message to the
// notifier and are never logged.
package notices

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/inbox"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/outbound"
	"github.com/nitronet/nitronet/internal/processing"
	"github.com/nitronet/nitronet/internal/store"
)

// Default batch sizes.
const (
	DefaultBatch      = 500 // accounts posted per transaction
	DefaultEmailChunk = 50  // emails claimed per transaction
)

// Config holds a Sender's dependencies.
type Config struct {
	Store    store.InboxStore
	Notifier notify.Notifier
	// Contacts decrypts an account's email and mobile (accounts.Service.Contacts).
	Contacts func(a *store.Account) (email, mobile string, err error)
	Logger   *slog.Logger
	Clock    func() time.Time
	Rand     io.Reader
	// Batch is the number of accounts posted per transaction (default
	// DefaultBatch); EmailChunk the number of emails claimed per
	// transaction (default DefaultEmailChunk).
	Batch      int
	EmailChunk int
	// Flags, if set, reads accounts' restriction and objection for
	// CreateListed (runs to every account leave them out in the store).
	Flags processing.FlagReader
	// Queue, if set, sends the emails instead of Notifier and reports
	// each one's final outcome (the outbound queue): an email is then
	// recorded as queued when handed over, and as sent or failed only
	// when the queue reports it (Outcome, registered for ReceiptOwner).
	Queue Receipts
}

// Receipts queues a message and reports its final outcome later
// (outbound.Queue).
type Receipts interface {
	SendWithReceipt(ctx context.Context, m notify.Message, r outbound.Receipt) error
}

// ReceiptOwner is the owner name of notice emails' outcomes in the
// outbound queue: register Sender.Outcome for it.
const ReceiptOwner = "notice-email"

// Sender creates and works through notice runs. It is safe for concurrent
// use; two Run calls on one run share the work without double sending.
type Sender struct{ cfg Config }

// New returns a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.Store == nil || cfg.Notifier == nil || cfg.Contacts == nil || cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("notices: missing dependency")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.EmailChunk <= 0 {
		cfg.EmailChunk = DefaultEmailChunk
	}
	return &Sender{cfg: cfg}, nil
}

// Progress reports a run's state.
type Progress struct {
	RunID    string `json:"run_id"`
	Accounts int64  `json:"accounts"`    // active accounts
	Posted   int64  `json:"posted"`      // inbox messages posted
	Sent     int64  `json:"emails_sent"` // accepted by the mail relay
	Failed   int64  `json:"emails_failed"`
	Pending  int64  `json:"emails_pending"`
	Claimed  int64  `json:"emails_unconfirmed"` // claimed before a crash; not retried
	// Queued counts emails in the outbound queue whose outcome is not
	// known yet: the relay has not accepted them (or not yet said so).
	Queued int64 `json:"emails_queued"`
	Done   bool  `json:"done"`
}

// NewRun returns a new, unsaved run of kind (an inbox message kind) with
// subject and body (validated as inbox content), emailed if email.
func (s *Sender) NewRun(kind, subject, body, documentID string, email bool) (*store.NoticeRun, error) {
	subject, body, err := inbox.ValidateContent(kind, subject, body)
	if err != nil {
		return nil, err
	}
	id, err := ident.New(s.cfg.Rand, "ntc")
	if err != nil {
		return nil, err
	}
	return &store.NoticeRun{ID: id, Kind: kind, DocumentID: documentID, Subject: subject, Body: body,
		Email: email, CreatedAt: s.cfg.Clock()}, nil
}

// Create saves a run made by NewRun.
func (s *Sender) Create(ctx context.Context, r *store.NoticeRun) error {
	return s.cfg.Store.CreateNoticeRun(ctx, r)
}

// CreateListed saves a run made by NewRun for the listed accounts only
// and posts its inbox message to each of them at once, in one
// transaction (store.InboxStore.CreateListedNoticeRun): Run then only
// sends the emails. An account that is not active is NotFound and a
// repeated one Invalid, both naming the field "accounts"; then nothing is
// saved. With Config.Flags, an account whose restriction or objection
// stops the purpose of the run's kind is Forbidden, naming the field
// "accounts", and nothing is saved.
func (s *Sender) CreateListed(ctx context.Context, r *store.NoticeRun, accounts []string) error {
	if s.cfg.Flags != nil {
		p := processing.ForMessage(r.Kind)
		for _, a := range accounts {
			f, err := s.cfg.Flags.AccountFlags(ctx, a)
			if err != nil {
				return errs.WithField(err, "accounts")
			}
			if !processing.Allowed(f, p) {
				return errs.Field(errs.Forbidden, "accounts", "account %s restricted or objected to %s", a, p)
			}
		}
	}
	ids := make([]string, len(accounts))
	for i := range ids {
		var err error
		if ids[i], err = ident.New(s.cfg.Rand, "msg"); err != nil {
			return err
		}
	}
	return s.cfg.Store.CreateListedNoticeRun(ctx, r, accounts, ids)
}

// RunsAbout returns the runs whose DocumentID is documentID (the policy
// document or the breach record they announce), newest first.
func (s *Sender) RunsAbout(ctx context.Context, documentID string) ([]store.NoticeRun, error) {
	all, err := s.cfg.Store.NoticeRuns(ctx, false)
	if err != nil {
		return nil, err
	}
	var out []store.NoticeRun
	for _, r := range all {
		if r.DocumentID == documentID {
			out = append(out, r)
		}
	}
	return out, nil
}

// Unfinished returns the runs not finished yet, newest first.
func (s *Sender) Unfinished(ctx context.Context) ([]store.NoticeRun, error) {
	return s.cfg.Store.NoticeRuns(ctx, true)
}

// exclude returns the processing flags that keep an account from run r:
// those whose restriction or objection stops the purpose of r's kind
// (package processing).
func exclude(r *store.NoticeRun) store.Flags {
	return processing.Excluding(processing.ForMessage(r.Kind))
}

// Progress returns the run's current progress.
func (s *Sender) Progress(ctx context.Context, runID string) (Progress, error) {
	r, err := s.cfg.Store.NoticeRun(ctx, runID)
	if err != nil {
		return Progress{}, err
	}
	return s.progress(ctx, r)
}

func (s *Sender) progress(ctx context.Context, r *store.NoticeRun) (Progress, error) {
	p, err := s.cfg.Store.NoticeProgress(ctx, r.ID, exclude(r))
	if err != nil {
		return Progress{}, err
	}
	return Progress{RunID: r.ID, Accounts: p.Accounts, Posted: p.Posted, Sent: p.Sent, Failed: p.Failed,
		Pending: p.Pending, Claimed: p.Claimed, Queued: p.Queued, Done: r.FinishedAt != nil}, nil
}

// Run works through run runID until every active account (a listed run:
// every listed account) has the inbox message and, for an email run,
// every pending email was attempted; then it marks the run finished. It calls report (if not nil) after each
// batch. Calling Run on a finished run posts to accounts created since and
// returns. A failed email is recorded and not retried; an error from the
// store or ctx stops Run, which may be called again to resume.
func (s *Sender) Run(ctx context.Context, runID string, report func(Progress)) (Progress, error) {
	r, err := s.cfg.Store.NoticeRun(ctx, runID)
	if err != nil {
		return Progress{}, err
	}
	ids := make([]string, s.cfg.Batch)
	for {
		for i := range ids {
			if ids[i], err = ident.New(s.cfg.Rand, "msg"); err != nil {
				return Progress{}, err
			}
		}
		n, err := s.cfg.Store.PostNoticeBatch(ctx, r, exclude(r), ids, s.cfg.Clock(), s.cfg.Batch)
		if err != nil {
			return Progress{}, fmt.Errorf("notice %s: %w", r.ID, err)
		}
		if r.Email {
			if err := s.sendPending(ctx, r); err != nil {
				return Progress{}, err
			}
		}
		p, err := s.progress(ctx, r)
		if err != nil {
			return Progress{}, err
		}
		if report != nil {
			report(p)
		}
		if n < s.cfg.Batch {
			break
		}
	}
	if r.FinishedAt == nil {
		if err := s.cfg.Store.FinishNoticeRun(ctx, r.ID, s.cfg.Clock()); err != nil {
			return Progress{}, err
		}
		now := s.cfg.Clock()
		r.FinishedAt = &now
	}
	p, err := s.progress(ctx, r)
	if err != nil {
		return Progress{}, err
	}
	s.cfg.Logger.Info("notice run finished", "run", r.ID, "kind", r.Kind, "posted", p.Posted,
		"emails_sent", p.Sent, "emails_failed", p.Failed, "emails_queued", p.Queued, "emails_unconfirmed", p.Claimed)
	return p, nil
}

// sendPending claims and sends r's pending emails, a chunk at a time,
// until none is pending.
func (s *Sender) sendPending(ctx context.Context, r *store.NoticeRun) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := s.cfg.Store.ClaimNoticeEmails(ctx, r.ID, s.cfg.EmailChunk)
		if err != nil {
			return fmt.Errorf("notice %s: %w", r.ID, err)
		}
		if len(batch) == 0 {
			return nil
		}
		var sent, failed, unsent, queued []string
		var stop error
		for _, rc := range batch {
			if stop == nil {
				stop = ctx.Err()
			}
			if stop != nil {
				unsent = append(unsent, rc.MessageID) // known not sent: released
				continue
			}
			if err := s.send(ctx, r, rc); err != nil {
				failed = append(failed, rc.MessageID)
				s.cfg.Logger.Warn("notice email not sent", "run", r.ID, "kind", r.Kind, "err", errs.CodeOf(err))
				continue
			}
			if s.cfg.Queue != nil {
				queued = append(queued, rc.MessageID)
				continue
			}
			sent = append(sent, rc.MessageID)
		}
		// Record outcomes even if ctx ended, so they are not reported as
		// unconfirmed.
		wctx := context.WithoutCancel(ctx)
		if err := s.cfg.Store.SetEmailState(wctx, sent, "sent"); err != nil {
			return err
		}
		if err := s.cfg.Store.SetEmailState(wctx, failed, "failed"); err != nil {
			return err
		}
		if err := s.cfg.Store.SetEmailState(wctx, unsent, "pending"); err != nil {
			return err
		}
		// An email whose outcome the queue reported already keeps it.
		if err := s.cfg.Store.SetEmailState(wctx, queued, "queued"); err != nil {
			return err
		}
		if stop != nil {
			return stop
		}
		if len(batch) < s.cfg.EmailChunk {
			return nil
		}
	}
}

// send emails r to recipient rc: through the queue, with a receipt
// naming rc's inbox message, if there is one.
func (s *Sender) send(ctx context.Context, r *store.NoticeRun, rc store.Recipient) error {
	email, _, err := s.cfg.Contacts(&rc.Account)
	if err != nil {
		return err
	}
	if email == "" {
		return errs.E(errs.Precondition, "account has no email address")
	}
	m := notify.Message{Channel: notify.Email, To: email, Subject: r.Subject, Body: r.Body, Kind: r.Kind, Account: rc.Account.ID}
	if s.cfg.Queue != nil {
		return s.cfg.Queue.SendWithReceipt(ctx, m, outbound.Receipt{Owner: ReceiptOwner, Ref: rc.MessageID})
	}
	return s.cfg.Notifier.Send(ctx, m)
}

// Outcome records the final outcome of a notice email sent through
// Config.Queue (the outbound.Reporter of ReceiptOwner): sent when the
// relay accepted it, failed when the queue gave up. The outcome of an
// email no longer claimed or queued (its account erased, or already
// recorded) changes nothing.
func (s *Sender) Outcome(ctx context.Context, o outbound.Outcome) error {
	state := "sent"
	if !o.Delivered {
		state = "failed"
		s.cfg.Logger.Warn("notice email given up", "code", string(o.Code))
	}
	return s.cfg.Store.SetEmailState(ctx, []string{o.Ref}, state)
}
