package store

import (
	"context"
	"time"
)

// Message is one message in an account's inbox. Kind is a short label such
// as "policy-change" or "announcement". NoticeRun is the id of the notice
// run that posted it, or empty for a message posted to one account.
// RequestID is the privacy request the message is about, or empty.
//
// A message posted to one account may hold personal data, so its subject
// and body are stored sealed under the account's data key (Sealed, see
// package acctkey). A notice run's message carries the run's Subject and
// Body, which hold no personal data, in plaintext. A message posted to one
// account before messages were sealed keeps them in plaintext too, until
// the sealing job seals them.
type Message struct {
	ID        string
	AccountID string
	Kind      string
	Sealed    []byte
	Subject   string
	Body      string
	CreatedAt time.Time
	ReadAt    *time.Time
	NoticeRun string
	RequestID string
}

// Notice run audiences.
const (
	// AudienceAll: every active account, posted in batches by
	// PostNoticeBatch (accounts created while the run is unfinished get
	// it too).
	AudienceAll = "all"
	// AudienceListed: the accounts named when the run was created
	// (CreateListedNoticeRun), whose messages were posted at once.
	AudienceListed = "listed"
)

// NoticeRun is a notice posted to every active account's inbox, or to
// the accounts listed when it was created (Audience), and, if Email is
// set, emailed to each, in batches. It holds no personal data: the
// per-account progress lives in the inbox rows the run created.
type NoticeRun struct {
	ID   string
	Kind string // inbox message kind, e.g. "policy-change"
	// DocumentID is the policy document announced, the breach record a
	// breach notice is about, or "".
	DocumentID string
	// Audience is AudienceAll or AudienceListed; empty means AudienceAll.
	Audience   string
	Subject    string
	Body       string
	Email      bool
	CreatedAt  time.Time
	FinishedAt *time.Time
}

// NoticeProgress counts a notice run's inbox messages by email state.
type NoticeProgress struct {
	Accounts int64 // active accounts now that the run may reach (a listed run: the accounts it posted to)
	Posted   int64 // inbox messages posted by the run
	Pending  int64 // emails not yet attempted
	Sent     int64
	Failed   int64
	Claimed  int64 // attempted but not confirmed (a crash mid-send); never retried
	Queued   int64 // handed to the outbound queue; the outcome is not known yet
}

// Recipient is an account whose notice email is due, with its inbox
// message.
type Recipient struct {
	MessageID string
	Account   Account
}

// InboxStore keeps account inboxes and notice runs. It is part of Store.
type InboxStore interface {
	// PostMessage inserts m, a message to one account: sealed, with no
	// plaintext Subject or Body (Invalid otherwise). The account must
	// exist (NotFound otherwise).
	PostMessage(ctx context.Context, m *Message) error
	// Messages returns up to limit of the account's messages, newest first,
	// and the number of its unread messages.
	Messages(ctx context.Context, accountID string, limit int) ([]Message, int, error)
	// MarkRead sets ReadAt of the account's message id to at, unless it is
	// already read. Another account's message is NotFound.
	MarkRead(ctx context.Context, accountID, id string, at time.Time) error
	// DeleteMessage deletes the account's message id at at: its subject
	// and body are blanked and an email of it not yet sent is withdrawn.
	// The row stays, marked deleted, only so that its notice run does not
	// post it again; Messages never returns it. Another account's message,
	// or one already deleted, is NotFound.
	DeleteMessage(ctx context.Context, accountID, id string, at time.Time) error

	// CreateNoticeRun inserts r, whose Audience must be AudienceAll (or
	// empty).
	CreateNoticeRun(ctx context.Context, r *NoticeRun) error
	// CreateListedNoticeRun inserts r with AudienceListed and posts its
	// message to each of accounts at r.CreatedAt, with ids as message ids
	// (one per account), in one transaction. An account that is not
	// active is NotFound, naming it; a repeated account is Invalid.
	CreateListedNoticeRun(ctx context.Context, r *NoticeRun, accounts, ids []string) error
	// NoticeRuns returns notice runs, newest first; only unfinished ones if
	// unfinishedOnly.
	NoticeRuns(ctx context.Context, unfinishedOnly bool) ([]NoticeRun, error)
	// NoticeRun returns the run with id.
	NoticeRun(ctx context.Context, id string) (*NoticeRun, error)
	// PostNoticeBatch posts run's message to up to limit active accounts
	// that do not have it yet and have none of the flags exclude sets
	// (processing.Excluding of the run's purpose), in account id order,
	// in one transaction. ids gives the message ids to use, one per
	// account (len(ids) >= limit). Each message's email state is
	// "pending" if the run emails, else none. It returns how many it
	// posted; 0 means every such account has the message. A listed run
	// posts nothing more (0).
	PostNoticeBatch(ctx context.Context, run *NoticeRun, exclude Flags, ids []string, at time.Time, limit int) (int, error)
	// ClaimNoticeEmails moves up to limit of run's pending emails to
	// "claimed" in one transaction and returns them with their accounts.
	// A claimed email is never returned again, so a crash between claim
	// and send loses at most that batch's unsent emails and never sends
	// one twice.
	ClaimNoticeEmails(ctx context.Context, runID string, limit int) ([]Recipient, error)
	// SetEmailState records the outcome ("sent" or "failed") of claimed
	// or queued emails, marks claimed emails handed to the outbound queue
	// ("queued"), or releases claimed emails known not to have been sent
	// ("pending"). An email in any other state is left as it is, so an
	// outcome recorded before the email was marked queued stands.
	SetEmailState(ctx context.Context, messageIDs []string, state string) error
	// NoticeProgress counts run's messages by email state, and the
	// active accounts without any of the flags exclude sets (for a listed
	// run: the accounts it posted to).
	NoticeProgress(ctx context.Context, runID string, exclude Flags) (NoticeProgress, error)
	// FinishNoticeRun sets the run's FinishedAt.
	FinishNoticeRun(ctx context.Context, runID string, at time.Time) error
}
