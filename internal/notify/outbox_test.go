package notify

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
)

func TestOutboxSend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	now := time.Unix(1700000000, 123456789)
	rnd := bytes.NewReader([]byte{
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
	})
	o, err := NewOutbox(OutboxConfig{Dir: dir, Clock: func() time.Time { return now }, Rand: rnd})
	if err != nil {
		t.Fatalf("NewOutbox: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Fatalf("dir mode: got %#o, want 0700", got)
	}

	email := testEmail()
	sms := testSMS()
	sms.Kind = "login-code"
	for _, m := range []Message{email, sms} {
		if err := o.Send(t.Context(), m); err != nil {
			t.Fatalf("Send(%s): %v", m.Kind, err)
		}
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	wantNames := []string{
		"1700000000123456789-login-code-a1a2a3a4a5a6a7a8.txt",
		"1700000000123456789-verify-code-0102030405060708.txt",
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("files: got %q, want %q (one per message, no temporaries)", names, wantNames)
	}

	tests := []struct {
		file string
		want string
	}{
		{wantNames[1], "Channel: email\nTo: alice@example.com\nSubject: " + email.Subject + "\n\n" + email.Body},
		{wantNames[0], "Channel: sms\nTo: +447911123456\nSubject: \n\nNitronet code: 483920"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join(dir, tc.file)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("content: got %q, want %q", b, tc.want)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Fatalf("mode: got %#o, want 0600", got)
			}
		})
	}
}

func TestOutboxConcurrent(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	o, err := NewOutbox(OutboxConfig{Dir: dir, Rand: crand.Reader})
	if err != nil {
		t.Fatalf("NewOutbox: %v", err)
	}
	const n = 32
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := testSMS()
			m.Body = fmt.Sprintf("message %d", i)
			errc <- o.Send(t.Context(), m)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^[0-9]+-verify-code-[0-9a-f]{16}\.txt$`)
	bodies := map[string]bool{}
	for _, e := range entries {
		if !name.MatchString(e.Name()) {
			t.Fatalf("file name %q does not match %v", e.Name(), name)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		_, body, _ := strings.Cut(string(b), "\n\n")
		bodies[body] = true
	}
	if len(entries) != n || len(bodies) != n {
		t.Fatalf("files: got %d with %d distinct bodies, want %d of each", len(entries), len(bodies), n)
	}
}

func TestNewOutboxErrors(t *testing.T) {
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
	}{
		{"empty dir", ""},
		{"group and world readable dir", open},
		{"not a directory", file},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if o, err := NewOutbox(OutboxConfig{Dir: tc.dir, Rand: crand.Reader}); err == nil {
				t.Fatalf("NewOutbox(%q): got %+v, nil error; want an error", tc.dir, o)
			}
		})
	}
	t.Run("nil rand", func(t *testing.T) {
		if _, err := NewOutbox(OutboxConfig{Dir: t.TempDir()}); err == nil {
			t.Fatalf("NewOutbox with nil rand: got nil error, want one")
		}
	})
}

func TestOutboxRejects(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	o, err := NewOutbox(OutboxConfig{Dir: dir, Rand: crand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		ctx      context.Context
		edit     func(*Message)
		wantCode errs.Code
	}{
		{"path in kind", t.Context(), func(m *Message) { m.Kind = "../../etc/passwd" }, errs.Invalid},
		{"slash in kind", t.Context(), func(m *Message) { m.Kind = "a/b" }, errs.Invalid},
		{"long kind", t.Context(), func(m *Message) { m.Kind = strings.Repeat("a", 33) }, errs.Invalid},
		{"unknown channel", t.Context(), func(m *Message) { m.Channel = "pigeon" }, errs.Invalid},
		{"header injection", t.Context(), func(m *Message) { m.Subject = "x\nTo: eve@example.com" }, errs.Invalid},
		{"path in account", t.Context(), func(m *Message) { m.Account = "../acc_x" }, errs.Invalid},
		{"long account", t.Context(), func(m *Message) { m.Account = strings.Repeat("a", 65) }, errs.Invalid},
		{"cancelled", cancelled(t), func(*Message) {}, errs.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testEmail()
			tc.edit(&m)
			if c := errs.CodeOf(o.Send(tc.ctx, m)); c != tc.wantCode {
				t.Fatalf("Send: got code %q, want %q", c, tc.wantCode)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files: got %d, want 0", len(entries))
	}
}

func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// recorder is a Notifier that records what it is given, to test routing.
type recorder struct {
	mu   sync.Mutex
	msgs []Message
}

func (r *recorder) Send(_ context.Context, m Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return nil
}

func TestRouter(t *testing.T) {
	email, sms := &recorder{}, &recorder{}
	r := Router{Email: email, SMS: sms}
	tests := []struct {
		name      string
		router    Router
		m         Message
		wantCode  errs.Code
		wantEmail int
		wantSMS   int
	}{
		{"email", r, testEmail(), "", 1, 0},
		{"sms", r, testSMS(), "", 1, 1},
		{"unknown channel", r, Message{Channel: "fax", To: "x", Kind: "k"}, errs.Invalid, 1, 1},
		{"no sms notifier", Router{Email: email}, testSMS(), errs.Unavailable, 1, 1},
		{"no email notifier", Router{SMS: sms}, testEmail(), errs.Unavailable, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.router.Send(t.Context(), tc.m)
			if c := errs.CodeOf(err); c != tc.wantCode {
				t.Fatalf("Send: got code %q (%v), want %q", c, err, tc.wantCode)
			}
			if got := len(email.msgs); got != tc.wantEmail {
				t.Fatalf("email messages: got %d, want %d", got, tc.wantEmail)
			}
			if got := len(sms.msgs); got != tc.wantSMS {
				t.Fatalf("sms messages: got %d, want %d", got, tc.wantSMS)
			}
		})
	}
}

func TestRouterWithRealNotifiers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	o, err := NewOutbox(OutboxConfig{Dir: dir, Rand: crand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	h := startHook(t, 200)
	w, err := NewWebhook(WebhookConfig{URL: h.srv.URL, Client: h.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	r := Router{Email: o, SMS: w}
	if err := r.Send(t.Context(), testEmail()); err != nil {
		t.Fatalf("Send email: %v", err)
	}
	if err := r.Send(t.Context(), testSMS()); err != nil {
		t.Fatalf("Send sms: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || len(h.requests()) != 1 {
		t.Fatalf("got %d outbox files and %d webhook requests, want 1 and 1", len(entries), len(h.requests()))
	}
}

func TestSendFailedRedacts(t *testing.T) {
	cause := errors.New(`550 5.1.1 <Alice@Example.com>: recipient rejected; also bob@example.org and 447911123456`)
	tests := []struct {
		name string
		m    Message
		bad  []string
	}{
		{"email", Message{To: "alice@example.com", Kind: "verify-code"}, []string{"lice@", "bob@example.org"}},
		{"sms", Message{To: "+447911123456", Kind: "verify-code"}, []string{"447911123456"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := sendFailed("smtp send", tc.m, cause)
			if c := errs.CodeOf(err); c != errs.Unavailable {
				t.Fatalf("code: got %q, want %q", c, errs.Unavailable)
			}
			if !errors.Is(err, cause) {
				t.Fatalf("errors.Is(err, cause): got false, want true")
			}
			text := err.Error()
			for _, b := range tc.bad {
				if strings.Contains(text, b) {
					t.Fatalf("error %q contains %q", text, b)
				}
			}
			if !strings.Contains(text, "verify-code") || !strings.Contains(text, "550 5.1.1") {
				t.Fatalf("error %q: want it to keep the kind and the SMTP status", text)
			}
		})
	}
}

// TestPruneOutbox: messages written before the cutoff go, newer ones and
// files the outbox did not write stay.
func TestPruneOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := now.Add(-48 * time.Hour)
	o, err := NewOutbox(OutboxConfig{Dir: dir, Clock: func() time.Time { return clock }, Rand: crand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	msg := Message{Channel: Email, To: "a@example.com", Subject: "s", Body: "b", Kind: "verify-code"}
	if err := o.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(-time.Hour)
	if err := o.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a message"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".abc.tmp")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(stale, now.Add(-48*time.Hour), now.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := PruneOutbox(dir, now.Add(-24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("PruneOutbox: %d, %v; want the old message and the stale temporary file", n, err)
	}
	es, _ := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[1] != "README" || !strings.Contains(names[0], "-verify-code-") {
		t.Fatalf("left %v, want the newer message and README", names)
	}
	if n, err := PruneOutbox(filepath.Join(dir, "missing"), now); err != nil || n != 0 {
		t.Fatalf("PruneOutbox of a missing directory: %d, %v", n, err)
	}
}

// TestOutboxForgetAccount: messages about an account are filed under it and
// ForgetAccount deletes exactly those, finished or being written, through
// the recipient masking too; messages about no account or another stay.
func TestOutboxForgetAccount(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	o, err := NewOutbox(OutboxConfig{Dir: dir, Rand: crand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	n := MaskRecipients(o)
	send := func(account, kind string) {
		t.Helper()
		m := testEmail()
		m.Account, m.Kind = account, kind
		if err := n.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	send("acc_gone", "verify-code")
	send("acc_gone", "privacy-denied")
	send("acc_stays", "verify-code")
	send("", "privacy-erasure")
	// A message about the account half written when it is forgotten.
	if err := os.WriteFile(filepath.Join(dir, ".acc_gone.123.tmp"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	for _, name := range names() {
		if strings.Contains(name, "verify-code") && !strings.HasSuffix(name, ".acc_gone.txt") && !strings.HasSuffix(name, ".acc_stays.txt") {
			t.Fatalf("file %s: want it named after its account", name)
		}
	}
	got, err := o.ForgetAccount("acc_gone")
	if err != nil || got != 3 {
		t.Fatalf("ForgetAccount: got %d, %v; want 3 files deleted", got, err)
	}
	left := names()
	if len(left) != 2 || !slices.ContainsFunc(left, func(n string) bool { return strings.HasSuffix(n, ".acc_stays.txt") }) ||
		!slices.ContainsFunc(left, func(n string) bool { return strings.Contains(n, "-privacy-erasure-") }) {
		t.Fatalf("after ForgetAccount: got %v, want the other account's message and the one about none", left)
	}
	if got, err := o.ForgetAccount("acc_gone"); err != nil || got != 0 {
		t.Fatalf("ForgetAccount again: got %d, %v; want 0, nil", got, err)
	}
	for _, bad := range []string{"", "../x", "ACC"} {
		if _, err := o.ForgetAccount(bad); !errs.Is(err, errs.Invalid) {
			t.Errorf("ForgetAccount(%q): got %v, want Invalid", bad, err)
		}
	}
}
