package server_test

import (
	"context"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// switchRelay is a real SMTP server (go-smtp) that refuses every message
// with a temporary error while refusing is set, and accepts them
// otherwise.
type switchRelay struct {
	mu       sync.Mutex
	refusing bool
	refused  int
	accepted []string // recipients of the accepted messages
	host     string
	port     int
}

func startSwitchRelay(t *testing.T) *switchRelay {
	t.Helper()
	r := &switchRelay{}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &switchSession{r: r}, nil }))
	s.Domain = "relay.test"
	s.ErrorLog = log.New(io.Discard, "", 0)
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); ln.Close(); <-done })
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	r.host = host
	r.port, _ = strconv.Atoi(port)
	return r
}

func (r *switchRelay) refuse(v bool) { r.mu.Lock(); defer r.mu.Unlock(); r.refusing = v }

func (r *switchRelay) counts() (refused, accepted int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused, len(r.accepted)
}

type switchSession struct {
	r  *switchRelay
	to string
}

func (s *switchSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *switchSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}
func (s *switchSession) Data(rd io.Reader) error {
	if _, err := io.ReadAll(rd); err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.refusing {
		s.r.refused++
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.r.accepted = append(s.r.accepted, s.to)
	return nil
}
func (s *switchSession) Reset()        {}
func (s *switchSession) Logout() error { return nil }

// settableClock is a server clock tests move forward.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// TestNoticeEmailOutcome: a notice run records an email as sent only once
// the relay accepted it (issue 8), though the email goes through the
// outbound queue. A real SMTP relay refuses the announcement, then accepts
// it on the queue's retry: the run counts it queued, still queued after
// the refusal, and sent after the acceptance. A second announcement the
// relay refuses for over a day is counted failed when the queue gives up.
func TestNoticeEmailOutcome(t *testing.T) {
	relay := startSwitchRelay(t)
	clock := &settableClock{t: time.Now().UTC()}
	e := newEnvFull(t, storetest.Backends()[0], nil, func(c *config.Settings) {
		c.SMTPHost, c.SMTPPort, c.SMTPFrom, c.SMTPTLS = relay.host, relay.port, "vpn@example.net", "none"
	}, clock.Now, nil)
	ctx := context.Background()
	if _, err := e.srv.Accounts.Signup(ctx, "told@example.com", "+447911100941", strongPW); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Staff.Bootstrap(ctx, "boss@staff.example", staff.RoleAdmin, strongPW); err != nil {
		t.Fatal(err)
	}
	boss, err := e.srv.Staff.Check(ctx, staff.Credentials{Email: "boss@staff.example", Password: strongPW})
	if err != nil {
		t.Fatal(err)
	}
	e.drain() // the sign-up's code
	_, before := relay.counts()

	progress := func(id string) notices.Progress {
		t.Helper()
		p, err := e.srv.Notices.Progress(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	announce := func(subject string) string {
		t.Helper()
		run, err := e.srv.Policy.Announce(ctx, boss, subject, "A new gateway is open.", true)
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.srv.Policy.RunNotice(ctx, boss, run.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Sent != 0 || p.Queued != 1 || p.Failed != 0 {
			t.Fatalf("%s run: got sent %d, queued %d, failed %d; want queued 1 (nothing handed to the relay yet)",
				subject, p.Sent, p.Queued, p.Failed)
		}
		return run.ID
	}

	relay.refuse(true)
	id := announce("Lisbon")
	e.drain()
	if refused, _ := relay.counts(); refused != 1 {
		t.Fatalf("relay refused %d messages, want 1", refused)
	}
	if p := progress(id); p.Sent != 0 || p.Queued != 1 || p.Failed != 0 {
		t.Fatalf("after the relay refused: got sent %d, queued %d, failed %d; want still queued", p.Sent, p.Queued, p.Failed)
	}
	relay.refuse(false)
	clock.Add(time.Minute) // the queue's first retry is due after 30 s
	e.drain()
	if _, accepted := relay.counts(); accepted != before+1 {
		t.Fatalf("relay accepted %d messages, want 1", accepted-before)
	}
	if p := progress(id); p.Sent != 1 || p.Queued != 0 || p.Failed != 0 {
		t.Fatalf("after the relay accepted: got sent %d, queued %d, failed %d; want sent 1", p.Sent, p.Queued, p.Failed)
	}

	relay.refuse(true)
	id = announce("Porto")
	for i := 0; i < 30 && e.queued() > 0; i++ {
		if p := progress(id); p.Failed != 0 {
			t.Fatalf("counted failed after %d hours, while the queue still retries", i)
		}
		e.drain()
		clock.Add(time.Hour)
	}
	if p := progress(id); p.Sent != 0 || p.Queued != 0 || p.Failed != 1 {
		t.Fatalf("after a day of refusals: got sent %d, queued %d, failed %d; want failed 1", p.Sent, p.Queued, p.Failed)
	}
	if refused, _ := relay.counts(); refused < 10 {
		t.Fatalf("the relay saw %d attempts; want the queue's retries over a day", refused)
	}
	if strings.Contains(e.logs.String(), "told@example.com") {
		t.Fatal("the log names the recipient")
	}
}

// TestExtensionNoticeOutcome: an extension notice (issue 8) goes through
// the outbound queue and counts as delivered only once a real SMTP relay
// accepted it: queued while the relay refuses, delivered after the
// queue's retry succeeds. A notice the relay refuses for over a day is
// given up by the queue, shown pending with the failure, and sent again
// by RetryExtensionNotices.
func TestExtensionNoticeOutcome(t *testing.T) {
	relay := startSwitchRelay(t)
	clock := &settableClock{t: time.Now().UTC()}
	e := newEnvFull(t, storetest.Backends()[0], nil, func(c *config.Settings) {
		c.SMTPHost, c.SMTPPort, c.SMTPFrom, c.SMTPTLS = relay.host, relay.port, "vpn@example.net", "none"
	}, clock.Now, nil)
	ctx := context.Background()
	id, err := e.srv.Accounts.Signup(ctx, "slow@example.com", "+447911100951", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	e.drain() // the sign-up's code
	if err := e.srv.Store.SetVerified(ctx, id, store.Email); err != nil {
		t.Fatal(err)
	}
	officer := staff.Principal{ID: "stf_po", Role: staff.RolePrivacyOfficer}
	notice := func(req string) *privacy.ExtensionNotice {
		t.Helper()
		r, err := e.srv.Privacy.StaffShow(ctx, officer, req)
		if err != nil {
			t.Fatal(err)
		}
		if r.Extension == nil || r.Extension.Notice == nil {
			t.Fatalf("no extension notice in the staff view of %s", req)
		}
		return r.Extension.Notice
	}
	// extend creates a request, delivers its messages, sets the relay
	// refusing or not, and extends the request.
	extend := func(refuse bool) string {
		t.Helper()
		r, err := e.srv.Privacy.Create(ctx, id, store.RequestRectification, "")
		if err != nil {
			t.Fatal(err)
		}
		e.drain()
		relay.refuse(refuse)
		if _, err := e.srv.Privacy.Extend(ctx, officer, r.ID, 1, "many systems to search"); err != nil {
			t.Fatal(err)
		}
		if n := notice(r.ID); n.State != privacy.NoticeQueued || n.Attempts != 1 {
			t.Fatalf("after Extend: got %+v, want queued, one attempt", n)
		}
		return r.ID
	}

	req := extend(true)
	e.drain()
	if refused, _ := relay.counts(); refused != 1 {
		t.Fatalf("relay refused %d messages, want 1", refused)
	}
	if n := notice(req); n.State != privacy.NoticeQueued {
		t.Fatalf("after the relay refused: got %+v, want still queued (the queue retries)", n)
	}
	relay.refuse(false)
	clock.Add(time.Minute)
	e.drain()
	if n := notice(req); n.State != privacy.NoticeDelivered || n.DeliveredAt == nil {
		t.Fatalf("after the relay accepted: got %+v, want delivered", n)
	}

	req = extend(true)
	for i := 0; i < 30 && e.queued() > 0; i++ {
		e.drain()
		clock.Add(time.Hour)
	}
	n := notice(req)
	if n.State != privacy.NoticePending || n.Error == "" || n.NextAttempt == nil || n.Attempts != 1 {
		t.Fatalf("after a day of refusals: got %+v, want pending with the failure and a next attempt", n)
	}
	relay.refuse(false)
	clock.Add(privacy.RetryFirst)
	if k, err := e.srv.Privacy.RetryExtensionNotices(ctx, staff.System()); err != nil || k != 1 {
		t.Fatalf("RetryExtensionNotices: got %d, %v; want the notice queued again", k, err)
	}
	if n := notice(req); n.State != privacy.NoticeQueued || n.Attempts != 2 {
		t.Fatalf("retried: got %+v, want queued, two attempts", n)
	}
	e.drain()
	if n := notice(req); n.State != privacy.NoticeDelivered {
		t.Fatalf("retried and accepted: got %+v, want delivered", n)
	}
}
