package cli_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// mailRelay is a real SMTP server on loopback that keeps every message it
// accepts.
type mailRelay struct {
	addr string
	mu   sync.Mutex
	msgs []string // "TO\nDATA"
}

func startMailRelay(t *testing.T) *mailRelay {
	t.Helper()
	r := &mailRelay{}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
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
	r.addr = ln.Addr().String()
	return r
}

func (r *mailRelay) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

type relaySession struct {
	r  *mailRelay
	to []string
}

func (s *relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *relaySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.msgs = append(s.r.msgs, strings.Join(s.to, ",")+"\n"+string(b))
	return nil
}
func (s *relaySession) Reset()        { s.to = nil }
func (s *relaySession) Logout() error { return nil }

// outboxFiles returns the names of the files in DATA/outbox.
func outboxFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dataDir, "outbox"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestAdminMailUsesConfiguredRelay: an admin command reads the same
// configuration file as serve, so `admin announce --email` hands its mail
// to the configured SMTP relay, and nothing lands in the outbox.
func TestAdminMailUsesConfiguredRelay(t *testing.T) {
	h, srv := newHarness(t, nil)
	ctx := context.Background()
	if _, err := srv.Accounts.Signup(ctx, "reader@example.com", "+447911100900", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	relay := startMailRelay(t)
	host, port, _ := net.SplitHostPort(relay.addr)
	conf := filepath.Join(t.TempDir(), "nitronet.toml")
	toml := fmt.Sprintf("data = %q\n\n[smtp]\nhost = %q\nport = %s\nfrom = \"vpn@example.net\"\ntls = \"none\"\n", h.dataDir, host, port)
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	h.env["NITRONET_CONFIG"] = conf
	h.must("admin password 1\n", "admin", "staff", "add", "--email", "boss@example.com", "--role", "admin")
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "boss@example.com", "admin password 1"
	before := outboxFiles(t, h.dataDir)

	body := filepath.Join(t.TempDir(), "body.txt")
	if err := os.WriteFile(body, []byte("The eu-west gateway moves on Monday."), 0o600); err != nil {
		t.Fatal(err)
	}
	h.must("", "admin", "announce", "--subject", "Maintenance", "--body-file", body, "--email")
	got := relay.received()
	if len(got) != 1 || !strings.HasPrefix(got[0], "reader@example.com\n") || !strings.Contains(got[0], "Maintenance") {
		t.Fatalf("relay received %q, want the announcement to reader@example.com", got)
	}
	if after := outboxFiles(t, h.dataDir); len(after) != len(before) {
		t.Fatalf("outbox grew from %d to %d files: admin mail went to the outbox", len(before), len(after))
	}
}
