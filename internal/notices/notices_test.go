package notices_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// contacts stands in for accounts.Service.Contacts: every account's
// address is derived from its id.
func contacts(a *store.Account) (string, string, error) {
	return a.ID + "@example.org", "+447700900123", nil
}

// crashAfter is a notifier that hands messages to next and cancels the
// run's context after n of them, as a crash would stop the process.
type crashAfter struct {
	next   notify.Notifier
	n      int64
	sent   atomic.Int64
	cancel context.CancelFunc
}

func (c *crashAfter) Send(ctx context.Context, m notify.Message) error {
	if err := c.next.Send(ctx, m); err != nil {
		return err
	}
	if c.sent.Add(1) == c.n {
		c.cancel()
	}
	return nil
}

// outboxRecipients returns how many outbox files each recipient got.
func outboxRecipients(t *testing.T, dir string) map[string]int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if to, ok := strings.CutPrefix(line, "To: "); ok {
				out[to]++
				break
			}
		}
	}
	return out
}

// TestRunResumesWithoutDoubleSending sends a notice to 1,234 accounts in
// batches of 100 through a real file outbox, interrupts it mid-way, resumes
// it with a new Sender, and checks that every account got exactly one
// inbox message and one email, with progress reported per batch.
func TestRunResumesWithoutDoubleSending(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := t.Context()
			const accounts = 1234
			for i := range accounts {
				a := &store.Account{ID: fmt.Sprintf("acc_%05d", i), EmailIndex: fmt.Appendf(nil, "e%d", i),
					MobileIndex: fmt.Appendf(nil, "m%d", i), PasswordHash: "x", CreatedAt: time.Unix(0, 0)}
				if err := st.CreateAccount(ctx, a); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(t.TempDir(), "outbox")
			outbox, err := notify.NewOutbox(notify.OutboxConfig{Dir: dir, Rand: rand.Reader})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			crash := &crashAfter{next: outbox, n: 437, cancel: cancel}
			mk := func(n notify.Notifier) *notices.Sender {
				s, err := notices.New(notices.Config{Store: st, Notifier: n, Contacts: contacts, Logger: storetest.Logger(t),
					Clock: time.Now, Rand: rand.Reader, Batch: 100, EmailChunk: 25})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			s1 := mk(crash)
			run, err := s1.NewRun("announcement", "Maintenance", "The service is down on Sunday.", "", true)
			if err != nil {
				t.Fatal(err)
			}
			if err := s1.Create(ctx, run); err != nil {
				t.Fatal(err)
			}
			var reports []notices.Progress
			_, err = s1.Run(runCtx, run.ID, func(p notices.Progress) { reports = append(reports, p) })
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted Run: got %v, want context.Canceled", err)
			}
			mid, err := s1.Progress(ctx, run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if mid.Sent != 437 || mid.Claimed != 0 || mid.Done {
				t.Fatalf("after interruption: got %+v, want 437 sent, none unconfirmed, not done", mid)
			}
			if runs, _ := s1.Unfinished(ctx); len(runs) != 1 {
				t.Fatalf("unfinished runs: got %d, want 1", len(runs))
			}

			s2 := mk(outbox)
			p, err := s2.Run(ctx, run.ID, func(p notices.Progress) { reports = append(reports, p) })
			if err != nil {
				t.Fatalf("resumed Run: %v", err)
			}
			want := notices.Progress{RunID: run.ID, Accounts: accounts, Posted: accounts, Sent: accounts, Done: true}
			if p != want {
				t.Fatalf("final progress: got %+v, want %+v", p, want)
			}
			got := outboxRecipients(t, dir)
			if len(got) != accounts {
				t.Fatalf("outbox: got mail for %d recipients, want %d", len(got), accounts)
			}
			for to, n := range got {
				if n != 1 {
					t.Fatalf("recipient %s got %d emails, want 1", to, n)
				}
			}
			for i, r := range reports {
				if i > 0 && r.Posted < reports[i-1].Posted {
					t.Fatalf("progress went backwards: %+v after %+v", r, reports[i-1])
				}
			}
			if len(reports) < accounts/100 {
				t.Fatalf("progress reports: got %d, want at least %d (one per batch)", len(reports), accounts/100)
			}
			// Each account has the message once in its inbox.
			msgs, unread, err := st.Messages(ctx, "acc_00042", 10)
			if err != nil || len(msgs) != 1 || unread != 1 || msgs[0].Subject != "Maintenance" {
				t.Fatalf("inbox of acc_00042: got %+v, %d unread, %v; want the one notice", msgs, unread, err)
			}
			// Running a finished run again sends nothing more.
			if _, err := s2.Run(ctx, run.ID, nil); err != nil {
				t.Fatal(err)
			}
			if got := outboxRecipients(t, dir); len(got) != accounts {
				t.Fatalf("after rerun: got %d recipients, want %d", len(got), accounts)
			}
		})
	}
}
