// Package outbound is the durable outbound queue: email, text messages and
// deferred account work (such as a password-reset request) go into a
// database table and a background worker carries them out.
//
// Queueing makes a request's answer independent of what happens next: a
// password-reset request for an address with an account and for one
// without does the same work (seal one job, insert one row) and answers at
// once, and the mail relay's speed or failure never shows in a response
// time. The worker delivers each job, deletes it as soon as it is done,
// retries failures with exponential backoff, and gives up on a job MaxAge
// after it was queued (the retention rule of inventory category
// messages.outbound).
//
// The table holds as little as possible: a job's type, recipient and
// content are sealed together by the vault (AES-256-GCM, bound to the job
// id), so the database sees only an id, a ciphertext, an attempt count and
// two times. Nothing of a job is ever logged but its type and, for a
// message, its kind.
//
// One worker runs in each `nitronet serve` process (Run). Claims are
// leases in the table (store.OutboundStore.ClaimOutbound), so workers of
// several processes, or a Drain beside a Run, never work the same job at
// once, and a job whose worker died runs again once its lease ends.
package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/vault"
)

// TypeMessage is the job type of a message to deliver (Queue.Send).
const TypeMessage = "message"

// TypeOutcome is the job type of an outcome whose report to its owner
// failed (see Receipt); it is retried like any job.
const TypeOutcome = "outcome"

// sealPurpose is the vault purpose jobs are sealed under.
const sealPurpose = "outbound queue"

// Defaults of Config.
const (
	DefaultMaxAge = 24 * time.Hour
	DefaultLease  = 5 * time.Minute
	DefaultPoll   = 5 * time.Second
	// firstRetry and maxRetry bound the backoff between attempts: 30 s,
	// 1 min, 2 min, … up to an hour.
	firstRetry = 30 * time.Second
	maxRetry   = time.Hour
	// batch is how many jobs one claim takes.
	batch = 16
)

// Handler carries out a job of one type, given the data it was queued
// with. A nil error means done (the job is deleted); an error marked with
// Permanent, or an *errs.Error with code Invalid, Forbidden or NotFound,
// means the job can never succeed (it is deleted and the failure logged);
// any other error is retried later.
type Handler func(ctx context.Context, data []byte) error

// Config holds a Queue's dependencies and settings.
type Config struct {
	Store store.OutboundStore
	Vault *vault.Vault
	// Deliver sends messages: the mail relay and SMS webhook (guarded by
	// the processor register), or the file outbox.
	Deliver notify.Notifier
	Logger  *slog.Logger
	Clock   func() time.Time
	Rand    io.Reader
	// MaxAge is how long after queueing a job is given up (default
	// DefaultMaxAge).
	MaxAge time.Duration
	// Lease is how long a claimed job is reserved for its worker (default
	// DefaultLease); a handler's context ends before it does.
	Lease time.Duration
	// Poll is how often Run looks for jobs queued by other processes and
	// retries that have come due (default DefaultPoll). Jobs queued by
	// this process wake the worker at once.
	Poll time.Duration
}

// Queue is the outbound queue. It is a notify.Notifier: Send queues a
// message. It is safe for concurrent use.
type Queue struct {
	cfg  Config
	wake chan struct{}
	seq  atomic.Uint64 // jobs queued by this Queue, for newID
	// draining is held by the Drain in progress: one at a time per Queue.
	draining chan struct{}

	mu        sync.RWMutex
	handlers  map[string]Handler
	reporters map[string]Reporter
}

// Receipt asks for a queued message's final outcome: when the message is
// delivered or given up, the Reporter registered for Owner (Queue.Report)
// is called with Ref. It is sealed with the job.
type Receipt struct {
	Owner string `json:"o"` // a job type–like name: 1 to 32 of a-z, 0-9 and "-"
	Ref   string `json:"r"` // the owner's reference, such as an inbox message id
}

// Outcome is the final outcome of a message queued with a Receipt.
type Outcome struct {
	Ref string `json:"r"`
	// Delivered reports that the deliverer (the mail relay, the SMS
	// webhook) accepted the message; false means it was given up: refused
	// for good, or still failing MaxAge after it was queued.
	Delivered bool `json:"d"`
	// Code is the last failure's error code when not Delivered.
	Code errs.Code `json:"c,omitempty"`
}

// Reporter records outcomes for an owner. An error makes the queue keep
// the outcome (a TypeOutcome job) and report it again later, until MaxAge
// after that; it should therefore be idempotent.
type Reporter func(ctx context.Context, o Outcome) error

// New returns a Queue. Store, Vault, Deliver, Logger, Clock and Rand are
// required.
func New(cfg Config) (*Queue, error) {
	if cfg.Store == nil || cfg.Vault == nil || cfg.Deliver == nil || cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, errors.New("outbound: missing dependency")
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	q := &Queue{cfg: cfg, wake: make(chan struct{}, 1), draining: make(chan struct{}, 1), handlers: map[string]Handler{},
		reporters: map[string]Reporter{}}
	q.handlers[TypeMessage] = q.deliver
	q.handlers[TypeOutcome] = q.reportLater
	return q, nil
}

// Report registers r for the outcomes of messages queued with a Receipt
// naming owner, replacing any earlier one. Outcomes for an owner with no
// Reporter wait in the queue (TypeOutcome jobs) until one is registered
// or MaxAge passes.
func (q *Queue) Report(owner string, r Reporter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reporters[owner] = r
}

// Handle registers h for jobs of type typ (1 to 32 characters of a-z, 0-9
// and "-"), replacing any earlier handler. Jobs of a type with no handler
// wait in the queue until one is registered or MaxAge passes.
func (q *Queue) Handle(typ string, h Handler) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.handlers[typ] = h
}

// Permanent marks err as a failure that retrying cannot fix.
func Permanent(err error) error { return permanent{err} }

type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// isPermanent reports whether a handler's err means the job can never
// succeed.
func isPermanent(err error) bool {
	var p permanent
	if errors.As(err, &p) {
		return true
	}
	switch errs.CodeOf(err) {
	case errs.Invalid, errs.Forbidden, errs.NotFound:
		return true
	}
	return false
}

// envelope is what is sealed: the job's type and data, and for a
// message whose outcome is asked for, its receipt.
type envelope struct {
	Type    string   `json:"t"`
	Data    []byte   `json:"d"`
	Receipt *Receipt `json:"r,omitempty"`
}

// outcomeJob is the data of a TypeOutcome job.
type outcomeJob struct {
	Owner   string  `json:"o"`
	Outcome Outcome `json:"c"`
}

// Send queues m for delivery and returns at once. It returns Invalid if m
// could never be sent (see notify.Message.Validate), and an error if the
// queue cannot be written. A nil error means queued, not sent.
func (q *Queue) Send(ctx context.Context, m notify.Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return q.enqueue(ctx, envelope{Type: TypeMessage, Data: b})
}

// SendWithReceipt queues m like Send and, once m is delivered or given
// up, reports the outcome to r.Owner's Reporter with r.Ref. A nil error
// means queued: the outcome comes later, from the worker that delivers
// m (in this process or another).
func (q *Queue) SendWithReceipt(ctx context.Context, m notify.Message, r Receipt) error {
	if !validType(r.Owner) {
		return errs.E(errs.Invalid, "invalid outbound receipt owner")
	}
	if err := m.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return q.enqueue(ctx, envelope{Type: TypeMessage, Data: b, Receipt: &r})
}

// Enqueue queues a job of type typ with data, sealed, due at once, and
// wakes this process's worker.
func (q *Queue) Enqueue(ctx context.Context, typ string, data []byte) error {
	return q.enqueue(ctx, envelope{Type: typ, Data: data})
}

// enqueue seals env into a new job, due at once, and wakes this process's
// worker.
func (q *Queue) enqueue(ctx context.Context, env envelope) error {
	if !validType(env.Type) {
		return errs.E(errs.Invalid, "invalid outbound job type")
	}
	now := q.cfg.Clock()
	id, err := q.newID(now)
	if err != nil {
		return err
	}
	plain, err := json.Marshal(env)
	if err != nil {
		return err
	}
	sealed, err := q.cfg.Vault.SealSecret(sealPurpose, plain, []byte(id))
	clear(plain)
	if err != nil {
		return fmt.Errorf("outbound: seal: %w", err)
	}
	if err := q.cfg.Store.EnqueueOutbound(ctx, &store.OutboundJob{ID: id, Sealed: sealed, DueAt: now, CreatedAt: now}); err != nil {
		return fmt.Errorf("outbound: enqueue: %w", err)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// newID returns a job id that sorts by queueing time: "obq_", the time in
// nanoseconds and this queue's count of jobs (so that two jobs queued in
// one tick keep their order), in hex, and 8 random bytes. The store hands
// due jobs out in id order, so messages go out in the order they were
// queued: an old code never arrives after its replacement.
func (q *Queue) newID(now time.Time) (string, error) {
	var r [8]byte
	if _, err := io.ReadFull(q.cfg.Rand, r[:]); err != nil {
		return "", fmt.Errorf("outbound: id: %w", err)
	}
	return fmt.Sprintf("obq_%016x%016x%x", uint64(now.UnixNano()), q.seq.Add(1), r), nil
}

// validType reports whether typ is a well-formed job type.
func validType(typ string) bool {
	if typ == "" || len(typ) > 32 {
		return false
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Run works the queue until ctx ends: at once, whenever this process
// queues a job, and every Poll. Errors are logged (without contents) and
// retried on the next round.
func (q *Queue) Run(ctx context.Context) {
	t := time.NewTicker(q.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := q.Drain(ctx); err != nil && ctx.Err() == nil {
			q.cfg.Logger.Error("outbound queue", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-t.C:
		}
	}
}

// Drain carries out every job due now, including those the jobs it runs
// queue (such as the message a reset request sends), and returns how many
// it finished (done or given up). A job that fails is rescheduled and not
// retried by this call. It returns early with ctx's error, or with an
// error if the queue cannot be read.
//
// Drains of one Queue run one at a time: a Drain called while Run's worker
// is at work waits for it, so when it returns the jobs the worker held are
// done too (or rescheduled). Jobs leased by another process are not
// waited for.
func (q *Queue) Drain(ctx context.Context) (int, error) {
	select {
	case q.draining <- struct{}{}:
		defer func() { <-q.draining }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		jobs, err := q.cfg.Store.ClaimOutbound(ctx, q.cfg.Clock(), q.cfg.Lease, batch)
		if err != nil {
			return n, err
		}
		if len(jobs) == 0 {
			return n, nil
		}
		for _, j := range jobs {
			done, err := q.run(ctx, j)
			if err != nil {
				return n, err
			}
			if done {
				n++
			}
		}
	}
}

// run carries out one claimed job and then deletes or reschedules it. It
// reports whether the job left the queue; the error is only a failure to
// update the queue.
func (q *Queue) run(ctx context.Context, j store.OutboundJob) (bool, error) {
	log := q.cfg.Logger
	plain, err := q.cfg.Vault.OpenSecret(sealPurpose, j.Sealed, []byte(j.ID))
	if err != nil {
		log.Error("outbound job unreadable; dropped", "job", j.ID)
		return true, q.cfg.Store.DeleteOutbound(ctx, j.ID)
	}
	var env envelope
	err = json.Unmarshal(plain, &env)
	clear(plain)
	if err != nil {
		log.Error("outbound job malformed; dropped", "job", j.ID)
		return true, q.cfg.Store.DeleteOutbound(ctx, j.ID)
	}
	now := q.cfg.Clock()
	expired := !now.Before(j.CreatedAt.Add(q.cfg.MaxAge))
	q.mu.RLock()
	h := q.handlers[env.Type]
	q.mu.RUnlock()
	if h == nil {
		if expired {
			log.Warn("outbound job has no handler; given up", "type", safe(env.Type))
			return true, q.cfg.Store.DeleteOutbound(ctx, j.ID)
		}
		return false, q.cfg.Store.RescheduleOutbound(ctx, j.ID, now.Add(backoff(j.Attempts)))
	}
	hctx, cancel := context.WithTimeout(ctx, q.cfg.Lease/2)
	err = h(hctx, env.Data)
	cancel()
	clear(env.Data)
	// What the handler did is recorded even if ctx ended meanwhile (a
	// Drain's time ran out): a delivered message left in the queue would
	// go out again, and its outcome would be lost.
	ctx = context.WithoutCancel(ctx)
	switch {
	case err == nil:
		q.outcome(ctx, env.Receipt, Outcome{Delivered: true})
		return true, q.cfg.Store.DeleteOutbound(ctx, j.ID)
	case isPermanent(err):
		log.Warn("outbound job failed for good; dropped", "type", safe(env.Type), "code", string(errs.CodeOf(err)))
		q.outcome(ctx, env.Receipt, Outcome{Code: errs.CodeOf(err)})
		return true, q.cfg.Store.DeleteOutbound(ctx, j.ID)
	case expired:
		log.Warn("outbound job still failing after its retention period; given up", "type", safe(env.Type),
			"attempts", j.Attempts, "code", string(errs.CodeOf(err)))
		q.outcome(ctx, env.Receipt, Outcome{Code: errs.CodeOf(err)})
		return true, q.cfg.Store.DeleteOutbound(ctx, j.ID)
	}
	retry := backoff(j.Attempts)
	log.Info("outbound job failed; will retry", "type", safe(env.Type), "attempts", j.Attempts, "retry_in", retry.String(),
		"code", string(errs.CodeOf(err)))
	return false, q.cfg.Store.RescheduleOutbound(ctx, j.ID, now.Add(retry))
}

// backoff returns the wait after the attempts-th failed attempt: 30 s
// doubling up to an hour.
func backoff(attempts int) time.Duration {
	d := firstRetry
	for i := 1; i < attempts && d < maxRetry; i++ {
		d *= 2
	}
	return min(d, maxRetry)
}

// safe returns typ for a log if it is a well-formed type.
func safe(typ string) string {
	if validType(typ) {
		return typ
	}
	return "invalid"
}

// deliver is the handler of TypeMessage jobs.
func (q *Queue) deliver(ctx context.Context, data []byte) error {
	var m notify.Message
	if err := json.Unmarshal(data, &m); err != nil {
		return Permanent(err)
	}
	err := q.cfg.Deliver.Send(ctx, m)
	if err != nil {
		// The error text is redacted by notify; the kind names the
		// message.
		q.cfg.Logger.Warn("message not delivered", "kind", notify.SafeKind(m.Kind), "code", string(errs.CodeOf(err)))
	}
	return err
}

// outcome reports o of a job with receipt rc (none if nil) to the
// receipt's owner. If that fails (no Reporter yet, or its error), the
// outcome is queued as a TypeOutcome job and reported again later; if
// even that fails, it is logged (without the reference) and lost: the
// owner's record then still says the message is on its way.
func (q *Queue) outcome(ctx context.Context, rc *Receipt, o Outcome) {
	if rc == nil {
		return
	}
	o.Ref = rc.Ref
	err := q.reportTo(ctx, rc.Owner, o)
	if err == nil {
		return
	}
	b, merr := json.Marshal(outcomeJob{Owner: rc.Owner, Outcome: o})
	if merr == nil {
		merr = q.Enqueue(ctx, TypeOutcome, b)
	}
	if merr != nil {
		q.cfg.Logger.Error("outbound outcome lost", "owner", safe(rc.Owner), "delivered", o.Delivered, "err", merr)
	}
}

// reportTo calls owner's Reporter with o.
func (q *Queue) reportTo(ctx context.Context, owner string, o Outcome) error {
	q.mu.RLock()
	r := q.reporters[owner]
	q.mu.RUnlock()
	if r == nil {
		return errs.E(errs.Unavailable, "no reporter for outbound outcomes of %s", safe(owner))
	}
	return r(ctx, o)
}

// reportLater is the handler of TypeOutcome jobs.
func (q *Queue) reportLater(ctx context.Context, data []byte) error {
	var j outcomeJob
	if err := json.Unmarshal(data, &j); err != nil {
		return Permanent(err)
	}
	return q.reportTo(ctx, j.Owner, j.Outcome)
}

// resealBatch is how many jobs Reseal reads at a time.
const resealBatch = 200

// Reseal re-seals every queued job under the vault's primary KEK, so that
// a KEK rotation can destroy the old KEK without losing what is queued
// (package rekey calls it in each of its passes). It returns how many jobs
// it re-sealed and how many it could not open (sealed under a KEK no
// longer in the keyring, or damaged: the worker drops those). A job
// claimed, rescheduled or deleted meanwhile is left to its worker; one
// sealed under the old KEK after this pass is caught by the next.
func (q *Queue) Reseal(ctx context.Context) (resealed, unreadable int64, err error) {
	after := ""
	for {
		jobs, err := q.cfg.Store.OutboundSealed(ctx, after, resealBatch)
		if err != nil {
			return resealed, unreadable, err
		}
		for _, j := range jobs {
			sealed, changed, err := q.cfg.Vault.Reseal(sealPurpose, j.Sealed, []byte(j.ID))
			if err != nil {
				unreadable++
				continue
			}
			if !changed {
				continue
			}
			ok, err := q.cfg.Store.ResealOutbound(ctx, j.ID, j.Sealed, sealed)
			if err != nil {
				return resealed, unreadable, err
			}
			if ok {
				resealed++
			}
		}
		if len(jobs) < resealBatch {
			return resealed, unreadable, nil
		}
		after = jobs[len(jobs)-1].ID
	}
}
