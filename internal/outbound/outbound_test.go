package outbound_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/outbound"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/vault"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// relay is the delivery boundary: it records messages and fails while
// fail is set. If gate is set (before any Send), each Send reports on
// entered and then waits for gate to close.
type relay struct {
	mu            sync.Mutex
	sent          []notify.Message
	fail          error
	gate, entered chan struct{}
}

func (r *relay) Send(_ context.Context, m notify.Message) error {
	if r.gate != nil {
		r.entered <- struct{}{}
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.sent = append(r.sent, m)
	return nil
}

func (r *relay) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.sent) }

func (r *relay) setFail(err error) { r.mu.Lock(); defer r.mu.Unlock(); r.fail = err }

type fixture struct {
	q     *outbound.Queue
	st    store.Store
	relay *relay
	clock *clock
	logs  *bytes.Buffer
}

func newFixture(t *testing.T, b storetest.Backend) *fixture {
	t.Helper()
	kek := make([]byte, vault.KEKSize)
	if _, err := io.ReadFull(rand.Reader, kek); err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(kek, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: b.Open(t), relay: &relay{}, clock: &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}, logs: &bytes.Buffer{}}
	f.q, err = outbound.New(outbound.Config{Store: f.st, Vault: v, Deliver: f.relay,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)), Clock: f.clock.Now, Rand: rand.Reader, Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) drain(t *testing.T) int {
	t.Helper()
	n, err := f.q.Drain(t.Context())
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	return n
}

// queued returns how many jobs the table holds, due or not.
func (f *fixture) queued(t *testing.T) int {
	t.Helper()
	n, err := f.st.CountOutbound(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// msg names the account it is about, which the processor guard behind the
// queue needs (notify.Message.Account): it must survive the queue.
var msg = notify.Message{Channel: notify.Email, To: "carol@example.com", Subject: "Your code", Body: "Your code is 424242.", Kind: "verify-code",
	Account: "acc_carol01"}

func TestQueue(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Run("send queues, drain delivers and deletes", func(t *testing.T) { testDeliver(t, newFixture(t, b)) })
			t.Run("nothing readable in the table", func(t *testing.T) { testSealed(t, newFixture(t, b)) })
			t.Run("retries with backoff", func(t *testing.T) { testRetry(t, newFixture(t, b)) })
			t.Run("gives up", func(t *testing.T) { testGiveUp(t, newFixture(t, b)) })
			t.Run("jobs queue jobs", func(t *testing.T) { testChained(t, newFixture(t, b)) })
			t.Run("run wakes on send", func(t *testing.T) { testRun(t, newFixture(t, b)) })
			t.Run("drain waits for the worker", func(t *testing.T) { testDrainWaits(t, newFixture(t, b)) })
			t.Run("in the order queued", func(t *testing.T) { testOrder(t, newFixture(t, b)) })
			t.Run("receipts report final outcomes", func(t *testing.T) { testReceipts(t, newFixture(t, b)) })
			t.Run("a delivery outlives its drain's context", func(t *testing.T) { testCancelledDrain(t, newFixture(t, b)) })
		})
	}
}

func testDeliver(t *testing.T, f *fixture) {
	if err := f.q.Send(t.Context(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if f.relay.count() != 0 {
		t.Fatal("Send delivered at once; want it queued")
	}
	if n := f.drain(t); n != 1 || f.relay.count() != 1 {
		t.Fatalf("Drain: got %d done and %d delivered, want 1 and 1", n, f.relay.count())
	}
	if got := f.relay.sent[0]; got != msg {
		t.Fatalf("delivered %+v, want %+v", got, msg)
	}
	if n := f.queued(t); n != 0 {
		t.Fatalf("after delivery the table holds %d jobs, want 0", n)
	}
	bad := msg
	bad.Kind = "Not A Kind"
	if err := f.q.Send(t.Context(), bad); !errs.Is(err, errs.Invalid) {
		t.Fatalf("Send of a malformed message: got %v, want Invalid", err)
	}
	if err := f.q.Enqueue(t.Context(), "no spaces allowed", nil); !errs.Is(err, errs.Invalid) {
		t.Fatalf("Enqueue of a malformed type: got %v, want Invalid", err)
	}
}

// testSealed: the row holds neither the recipient nor the content.
func testSealed(t *testing.T, f *fixture) {
	if err := f.q.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	jobs, err := f.st.ClaimOutbound(t.Context(), f.clock.Now(), time.Nanosecond, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ClaimOutbound: got %d jobs, %v", len(jobs), err)
	}
	for _, needle := range []string{"carol", "example.com", "424242", "Your code", "verify-code", "message", "acc_carol01"} {
		if bytes.Contains(jobs[0].Sealed, []byte(needle)) {
			t.Errorf("the queued row holds %q in the clear", needle)
		}
	}
}

func testRetry(t *testing.T, f *fixture) {
	f.relay.setFail(errs.E(errs.Unavailable, "relay down"))
	if err := f.q.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	for attempt, wait := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute} {
		if n := f.drain(t); n != 0 {
			t.Fatalf("attempt %d: got %d jobs done, want 0 (failing)", attempt+1, n)
		}
		// Not due again before its backoff ends.
		f.clock.Add(wait - time.Second)
		f.drain(t)
		if f.queued(t) != 1 {
			t.Fatal("the failing job left the queue")
		}
		f.clock.Add(time.Second)
	}
	f.relay.setFail(nil)
	if n := f.drain(t); n != 1 || f.relay.count() != 1 {
		t.Fatalf("after recovery: got %d done, %d delivered; want 1 and 1", n, f.relay.count())
	}
	if strings.Contains(f.logs.String(), "carol") || strings.Contains(f.logs.String(), "424242") {
		t.Fatalf("the log holds the message: %s", f.logs)
	}
}

func testGiveUp(t *testing.T, f *fixture) {
	// A permanent failure (the processor register refuses it) is dropped
	// at once.
	f.relay.setFail(errs.E(errs.Forbidden, "outside scope"))
	if err := f.q.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if n := f.drain(t); n != 1 || f.queued(t) != 0 {
		t.Fatalf("permanent failure: got %d done and %d queued, want 1 and 0", n, f.queued(t))
	}
	// A failure that persists past MaxAge is given up.
	f.relay.setFail(errors.New("connection refused"))
	if err := f.q.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40 && f.queued(t) > 0; i++ {
		f.drain(t)
		f.clock.Add(time.Hour)
	}
	if f.queued(t) != 0 {
		t.Fatal("a job failing for over a day is still queued")
	}
	if f.clock.Now().Before(time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("given up at %v, before a day had passed", f.clock.Now())
	}
	// A job of a type nobody handles waits, then goes the same way.
	if err := f.q.Enqueue(t.Context(), "future-type", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	if f.queued(t) != 1 {
		t.Fatal("an unhandled job was dropped before its time")
	}
	f.clock.Add(25 * time.Hour)
	f.drain(t)
	if f.queued(t) != 0 {
		t.Fatal("an unhandled job outlived MaxAge")
	}
}

// testChained: a handler's own messages go out in the same Drain.
func testChained(t *testing.T, f *fixture) {
	f.q.Handle("lookup", func(ctx context.Context, data []byte) error {
		if string(data) != "found" {
			return nil // nothing to do: the job leaves the queue all the same
		}
		return f.q.Send(ctx, msg)
	})
	for _, d := range []string{"found", "missing"} {
		if err := f.q.Enqueue(t.Context(), "lookup", []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.drain(t); n != 3 || f.relay.count() != 1 {
		t.Fatalf("got %d done and %d delivered, want 3 (two lookups, one message) and 1", n, f.relay.count())
	}
}

func testRun(t *testing.T, f *fixture) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f.q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := f.q.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for f.relay.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not deliver within 20 s of Send (Poll is an hour: it must wake on Send)")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testDrainWaits: a Drain called while Run's worker delivers a job
// returns only once that job is done, so a caller that drains and then
// reads what was sent (an admin command's Close, a test) sees it.
func testDrainWaits(t *testing.T, f *fixture) {
	gate := make(chan struct{})
	f.relay.gate, f.relay.entered = gate, make(chan struct{}, 1)
	release := sync.OnceFunc(func() { close(gate) })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f.q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	defer release()
	if err := f.q.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.relay.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the worker did not take the job within 20 s")
	}
	drained := make(chan error, 1)
	go func() { _, err := f.q.Drain(t.Context()); drained <- err }()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while the worker still delivered the job", err)
	case <-time.After(200 * time.Millisecond): // Drain is waiting, as it should
	}
	release()
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if f.relay.count() != 1 || f.queued(t) != 0 {
		t.Fatalf("after Drain: %d delivered, %d queued; want 1 and 0", f.relay.count(), f.queued(t))
	}
}

// testOrder: messages queued in one clock tick go out in the order they
// were queued (a code and its replacement must not swap).
func testOrder(t *testing.T, f *fixture) {
	for i := range 40 {
		m := msg
		m.Body = fmt.Sprintf("message %02d", i)
		if err := f.q.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	f.drain(t)
	if f.relay.count() != 40 {
		t.Fatalf("delivered %d, want 40", f.relay.count())
	}
	for i, m := range f.relay.sent {
		if want := fmt.Sprintf("message %02d", i); m.Body != want {
			t.Fatalf("delivery %d: got %q, want %q", i, m.Body, want)
		}
	}
}

// outcomes records the outcomes reported to an owner; while fail is set
// the reporter fails.
type outcomes struct {
	mu   sync.Mutex
	got  []outbound.Outcome
	fail bool
}

func (o *outcomes) report(_ context.Context, oc outbound.Outcome) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail {
		return errs.E(errs.Unavailable, "store down")
	}
	o.got = append(o.got, oc)
	return nil
}

func (o *outcomes) list() []outbound.Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]outbound.Outcome(nil), o.got...)
}

func (o *outcomes) setFail(v bool) { o.mu.Lock(); defer o.mu.Unlock(); o.fail = v }

// testReceipts: a message queued with a receipt reports its final outcome
// (delivered, or given up with the failure's code) to its owner, once and
// only then; retries report nothing; an outcome the owner could not take
// is reported again later.
func testReceipts(t *testing.T, f *fixture) {
	rec := &outcomes{}
	f.q.Report("notice-email", rec.report)
	if err := f.q.SendWithReceipt(t.Context(), msg, outbound.Receipt{Owner: "Bad Owner", Ref: "x"}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("malformed owner: got %v, want Invalid", err)
	}

	// Refused twice, then accepted: one outcome, delivered, after the third attempt.
	f.relay.setFail(errs.E(errs.Unavailable, "relay down"))
	if err := f.q.SendWithReceipt(t.Context(), msg, outbound.Receipt{Owner: "notice-email", Ref: "msg_1"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		f.drain(t)
		if got := rec.list(); len(got) != 0 {
			t.Fatalf("attempt %d failed and will be retried, but reported %v", i+1, got)
		}
		f.clock.Add(time.Hour)
	}
	f.relay.setFail(nil)
	f.drain(t)
	if got := rec.list(); len(got) != 1 || got[0] != (outbound.Outcome{Ref: "msg_1", Delivered: true}) {
		t.Fatalf("after delivery: got %v, want msg_1 delivered once", got)
	}

	// Refused for good: given up, with the code.
	f.relay.setFail(errs.E(errs.Forbidden, "outside scope"))
	if err := f.q.SendWithReceipt(t.Context(), msg, outbound.Receipt{Owner: "notice-email", Ref: "msg_2"}); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	if got := rec.list(); len(got) != 2 || got[1] != (outbound.Outcome{Ref: "msg_2", Code: errs.Forbidden}) {
		t.Fatalf("after a refusal: got %v, want msg_2 given up (forbidden)", got)
	}

	// Still failing a day later: given up.
	f.relay.setFail(errors.New("connection refused"))
	if err := f.q.SendWithReceipt(t.Context(), msg, outbound.Receipt{Owner: "notice-email", Ref: "msg_3"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40 && f.queued(t) > 0; i++ {
		f.drain(t)
		f.clock.Add(time.Hour)
	}
	if got := rec.list(); len(got) != 3 || got[2].Ref != "msg_3" || got[2].Delivered {
		t.Fatalf("after a day of failures: got %v, want msg_3 given up", got)
	}

	// The owner cannot take the outcome now: it is kept and reported
	// later, and the message is not sent again.
	f.relay.setFail(nil)
	rec.setFail(true)
	sent := f.relay.count()
	if err := f.q.SendWithReceipt(t.Context(), msg, outbound.Receipt{Owner: "notice-email", Ref: "msg_4"}); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	if f.queued(t) != 1 || f.relay.count() != sent+1 {
		t.Fatalf("outcome not taken: %d queued (want the outcome kept), %d sent (want one more)", f.queued(t), f.relay.count()-sent)
	}
	rec.setFail(false)
	f.clock.Add(time.Hour)
	f.drain(t)
	if got := rec.list(); len(got) != 4 || got[3] != (outbound.Outcome{Ref: "msg_4", Delivered: true}) || f.relay.count() != sent+1 || f.queued(t) != 0 {
		t.Fatalf("outcome reported later: got %v, %d sent, %d queued; want msg_4 delivered, sent once, nothing queued",
			got, f.relay.count()-sent, f.queued(t))
	}
}

// testCancelledDrain: a Drain whose context ends while the relay takes a
// message still records the delivery — the job leaves the queue and its
// outcome is reported — so the message is not sent a second time when
// its lease ends.
func testCancelledDrain(t *testing.T, f *fixture) {
	rec := &outcomes{}
	f.q.Report("notice-email", rec.report)
	f.relay.gate, f.relay.entered = make(chan struct{}), make(chan struct{}, 1)
	if err := f.q.SendWithReceipt(t.Context(), msg, outbound.Receipt{Owner: "notice-email", Ref: "msg_1"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	drained := make(chan struct{})
	go func() { _, _ = f.q.Drain(ctx); close(drained) }()
	<-f.relay.entered
	cancel()
	close(f.relay.gate)
	<-drained
	f.clock.Add(time.Hour) // past the lease
	f.drain(t)
	if f.relay.count() != 1 || f.queued(t) != 0 {
		t.Fatalf("after a cancelled drain: %d sent, %d queued; want sent once, nothing queued", f.relay.count(), f.queued(t))
	}
	if got := rec.list(); len(got) != 1 || !got[0].Delivered {
		t.Fatalf("outcomes: got %v, want one, delivered", got)
	}
}
