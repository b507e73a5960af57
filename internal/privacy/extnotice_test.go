package privacy_test

import (
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// flakyRelay is a real SMTP server (go-smtp) that refuses the first
// refuse messages with a temporary error and accepts the rest.
type flakyRelay struct {
	mu       sync.Mutex
	refuse   int
	attempts int
	accepted []string // the accepted messages' data
	host     string
	port     int
}

func startFlakyRelay(t *testing.T, refuse int) *flakyRelay {
	t.Helper()
	r := &flakyRelay{refuse: refuse}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &flakySession{r: r}, nil }))
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

func (r *flakyRelay) snapshot() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts, append([]string(nil), r.accepted...)
}

type flakySession struct{ r *flakyRelay }

func (s *flakySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *flakySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *flakySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.attempts++
	if s.r.attempts <= s.r.refuse {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.r.accepted = append(s.r.accepted, string(b))
	return nil
}
func (s *flakySession) Reset()        {}
func (s *flakySession) Logout() error { return nil }

// TestExtensionNoticeRetried: an extension notice the relay refuses is
// recorded as not delivered, shown to staff as pending and then failing,
// retried by RetryExtensionNotices once its growing delay has passed, and
// delivered when the relay accepts it.
func TestExtensionNoticeRetried(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			relay := startFlakyRelay(t, 3)
			mailer, err := notify.NewSMTP(notify.SMTPConfig{Host: relay.host, Port: relay.port, From: "Nitronet <no-reply@vpn.test>",
				TLSPolicy: "none", Timeout: 10 * time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, b.Open(t), func(c *privacy.Config) { c.Notifier = mailer })
			ctx := t.Context()
			u := h.signup(t)
			po := principal(staff.RolePrivacyOfficer)
			r := h.request(t, u, store.RequestRectification, "")

			got, err := h.svc.Extend(ctx, po, r.ID, 1, "many systems to search")
			if err != nil {
				t.Fatalf("Extend: %v (a failed notice must not fail the extension)", err)
			}
			want := func(v *privacy.Request, state string, attempts int) {
				t.Helper()
				if v.Extension == nil || v.Extension.Notice == nil {
					t.Fatalf("no extension notice in the staff view: %+v", v.Extension)
				}
				if n := v.Extension.Notice; n.State != state || n.Attempts != attempts {
					t.Fatalf("extension notice: got %+v, want %s after %d attempts", n, state, attempts)
				}
			}
			want(got, privacy.NoticePending, 1)
			if n := got.Extension.Notice; n.Error == "" || n.NextAttempt == nil || n.DeliveredAt != nil {
				t.Fatalf("failed notice: got %+v, want an error code and a next attempt", n)
			}
			if own, err := h.svc.Get(ctx, u.id, r.ID); err != nil || own.Extension == nil || own.Extension.Notice != nil {
				t.Fatalf("the user's view: got %+v, %v; want the extension without its delivery", own, err)
			}

			// Not due yet: nothing is sent.
			if n, err := h.svc.RetryExtensionNotices(ctx, staff.System()); err != nil || n != 0 {
				t.Fatalf("retry before the delay: got %d, %v", n, err)
			}
			if a, _ := relay.snapshot(); a != 1 {
				t.Fatalf("relay attempts before the delay: got %d, want 1", a)
			}
			// The delays grow: 5 minutes, then 10.
			for i, d := range []time.Duration{privacy.RetryFirst, 2 * privacy.RetryFirst} {
				h.clk.Add(d)
				if n, err := h.svc.RetryExtensionNotices(ctx, staff.System()); err != nil || n != 0 {
					t.Fatalf("retry %d: got %d delivered, %v; want a failure", i+1, n, err)
				}
			}
			v, err := h.svc.StaffShow(ctx, po, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			want(v, privacy.NoticeFailing, 3)
			if n, err := h.svc.FailingExtensionNotices(ctx); err != nil || n != 1 {
				t.Fatalf("FailingExtensionNotices: got %d, %v; want 1", n, err)
			}
			if next := v.Extension.Notice.NextAttempt; next == nil || !next.Equal(h.clk.Now().Add(4*privacy.RetryFirst).Truncate(time.Second)) {
				t.Fatalf("next attempt: got %v, want 20 minutes on", next)
			}

			h.clk.Add(4 * privacy.RetryFirst)
			if n, err := h.svc.RetryExtensionNotices(ctx, staff.System()); err != nil || n != 1 {
				t.Fatalf("retry once the relay accepts: got %d, %v; want 1 delivered", n, err)
			}
			attempts, accepted := relay.snapshot()
			if attempts != 4 || len(accepted) != 1 || !strings.Contains(accepted[0], "many systems to search") {
				t.Fatalf("relay: %d attempts, accepted %q; want the notice with its reason on the fourth", attempts, accepted)
			}
			if v, err = h.svc.StaffShow(ctx, po, r.ID); err != nil {
				t.Fatal(err)
			}
			want(v, privacy.NoticeDelivered, 4)
			if n, err := h.svc.FailingExtensionNotices(ctx); err != nil || n != 0 {
				t.Fatalf("FailingExtensionNotices after delivery: got %d, %v; want 0", n, err)
			}
			if n := v.Extension.Notice; n.DeliveredAt == nil || n.NextAttempt != nil || n.Error != "" {
				t.Fatalf("delivered notice: got %+v", n)
			}
			// Delivered: never sent again, and the inbox got it once.
			h.clk.Add(24 * time.Hour)
			if n, err := h.svc.RetryExtensionNotices(ctx, staff.System()); err != nil || n != 0 {
				t.Fatalf("retry after delivery: got %d, %v", n, err)
			}
			if a, _ := relay.snapshot(); a != 4 {
				t.Fatalf("relay attempts after delivery: got %d, want 4", a)
			}
			posts := 0
			for _, k := range h.inbox.about(r.ID) {
				if k == privacy.KindExtended {
					posts++
				}
			}
			if posts != 1 {
				t.Fatalf("inbox extension notices: got %d, want 1", posts)
			}
		})
	}
}
