package cli_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
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
	h.drain() // the sign-up's codes go out through the test server's outbox

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

// TestAdminStaffBootstrapAndRecovery is the Done-when: on a fresh
// data directory, after a first `admin staff add --role privacy_officer`
// (the old README's first command), `admin staff add --role admin` still
// works without --staff. Then admins manage roles, disable and enable
// staff by email or ID, and the last enabled admin stays.
func TestAdminStaffBootstrapAndRecovery(t *testing.T) {
	h, srv := newHarness(t, nil)
	d := []string{"--data", h.dataDir}
	admin := func(args ...string) []string { return append(append([]string{"admin"}, args...), d...) }
	as := func(email, pw string) { h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = email, pw }
	nobody := func() { delete(h.env, "NITRONET_STAFF"); delete(h.env, "NITRONET_STAFF_PASSWORD") }

	h.must("officer password 1\n", admin("staff", "add", "--email", "dpo@example.com", "--role", "privacy_officer")...)
	h.must("second officer pw 1\n", admin("staff", "add", "--email", "dpo2@example.com", "--role", "privacy_officer")...)
	out := h.must("admin password 1\n", admin("staff", "add", "--email", "ops@example.com", "--role", "admin")...)
	opsID := regexp.MustCompile(`stf_[a-z2-7]+`).FindString(out)
	if opsID == "" {
		t.Fatalf("staff add: got %q", out)
	}
	// Now an enabled admin exists: the data directory alone adds nobody.
	_, err := h.run("other password 1\n", admin("staff", "add", "--email", "x@example.com", "--role", "admin")...)
	if err == nil || !strings.Contains(err.Error(), "--staff") {
		t.Fatalf("bootstrap with an admin: got %v, want an error pointing to --staff", err)
	}
	// The bootstraps are audited as such, by the operator.
	as("ops@example.com", "admin password 1")
	out = h.must("", admin("audit", "list")...)
	if n := strings.Count(out, staff.ActStaffBootstrap); n != 3 {
		t.Fatalf("audit list: %d bootstrap entries, want 3:\n%s", n, out)
	}

	// An officer may not manage staff; the admin may, by email or ID.
	as("dpo@example.com", "officer password 1")
	if _, err := h.run("", admin("staff", "role", "--email", "dpo@example.com", "--role", "admin")...); err == nil || !strings.Contains(err.Error(), "may not") {
		t.Fatalf("officer promotes self: got %v", err)
	}
	as("ops@example.com", "admin password 1")
	for _, args := range [][]string{
		{"staff", "disable", "--email", "ops@example.com"},                     // self
		{"staff", "role", opsID, "--role", "legal"},                            // the last admin
		{"staff", "role", "--email", "dpo@example.com", "--role", "superuser"}, // no such role
		{"staff", "disable"}, // nobody named
		{"staff", "disable", "--email", "nobody@example.com"}, // unknown
	} {
		if _, err := h.run("", admin(args...)...); err == nil {
			t.Fatalf("%v succeeded", args)
		}
	}
	h.must("", admin("staff", "role", "--email", "dpo@example.com", "--role", "admin")...)
	// Disabling ends the member's sessions at once.
	tok, _, _, err := srv.Staff.Login(context.Background(), staff.Credentials{Email: "dpo2@example.com", Password: "second officer pw 1"})
	if err != nil {
		t.Fatal(err)
	}
	h.must("", admin("staff", "disable", "--email", "dpo2@example.com")...)
	if _, err := srv.Staff.Authenticate(context.Background(), tok); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("disabled member's session: got %v, want Unauthenticated", err)
	}
	as("dpo2@example.com", "second officer pw 1")
	if _, err := h.run("", admin("records")...); err == nil {
		t.Fatal("a disabled member acted")
	}
	as("ops@example.com", "admin password 1")
	h.must("", admin("staff", "enable", "--email", "dpo2@example.com")...)
	// With two admins, one may be demoted; then the other is the last.
	h.must("", admin("staff", "role", opsID, "--role", "legal")...)
	as("dpo@example.com", "officer password 1")
	if _, err := h.run("", admin("staff", "disable", "--email", "dpo@example.com")...); err == nil {
		t.Fatal("the last admin disabled themself")
	}
	out = h.must("", admin("staff", "list")...)
	for _, want := range []string{"dpo@example.com  admin", "ops@example.com  legal", "dpo2@example.com"} {
		if !strings.Contains(strings.Join(strings.Fields(out), "  "), strings.Join(strings.Fields(want), "  ")) {
			t.Errorf("staff list lacks %q:\n%s", want, out)
		}
	}
	nobody()
	if _, err := h.run("", admin("staff", "list")...); err == nil {
		t.Fatal("staff list without a staff login succeeded")
	}
}

// TestAdminGatewayIsAStaffAction: adding, listing and removing gateways
// need a staff login with the right role and are audited.
func TestAdminGatewayIsAStaffAction(t *testing.T) {
	h, srv := newHarness(t, nil)
	d := []string{"--data", h.dataDir}
	admin := func(args ...string) []string { return append(append([]string{"admin"}, args...), d...) }
	h.must("admin password 1\n", admin("staff", "add", "--email", "ops@example.com", "--role", "admin")...)
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "ops@example.com", "admin password 1"
	h.must("support password 1\n", admin("staff", "add", "--email", "help@example.com", "--role", "support")...)

	h.must("", admin("gateway", "add", "--region", "eu-west", "--endpoint", "198.18.0.1:51820")...)
	out := h.must("", admin("gateway", "list")...)
	id := regexp.MustCompile(`gw_[a-z2-7]+`).FindString(out)
	if id == "" || !strings.Contains(out, "eu-west") {
		t.Fatalf("gateway list: got %q", out)
	}
	// Support may see gateways but not change them.
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "help@example.com", "support password 1"
	h.must("", admin("gateway", "list")...)
	for _, args := range [][]string{{"gateway", "remove", id}, {"gateway", "add", "--region", "us", "--endpoint", "198.18.0.2:51820"}} {
		if _, err := h.run("", admin(args...)...); err == nil || !strings.Contains(err.Error(), "may not") {
			t.Fatalf("support %v: got %v", args, err)
		}
	}
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "ops@example.com", "admin password 1"
	if out := h.must("", admin("gateway", "remove", id)...); !strings.Contains(out, "removed") {
		t.Fatalf("gateway remove: got %q", out)
	}
	if gs, _ := srv.Store.Gateways(context.Background()); len(gs) != 0 {
		t.Fatalf("gateways after removal: %+v", gs)
	}
	es, err := srv.Store.AuditEntriesFor(context.Background(), id, 10)
	if err != nil || len(es) != 2 {
		t.Fatalf("audit of the gateway: got %+v, %v; want its addition and removal", es, err)
	}
}
