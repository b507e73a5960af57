package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// staffEnv is a control server on backend b, with the configuration file
// `nitronet admin` commands read (so they reach the same database, data
// directory and mail relay), and a privacy officer they act as.
type staffEnv struct {
	*harness
	srv *server.Server
}

// newStaffEnv starts a server on b with a controller contact and, if
// relay is not nil, email through relay (SMS stays in the outbox).
func newStaffEnv(t *testing.T, b storetest.Backend, relay *mailRelay) *staffEnv {
	t.Helper()
	dataDir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.Controller.Email = "privacy@vpn.example"
	toml := fmt.Sprintf("data = %q\n", dataDir)
	if b.Name == "postgres" {
		cfg.Database = storetest.PostgresURL(t)
		toml += fmt.Sprintf("database = %q\n", cfg.Database)
	}
	if relay != nil {
		host, port, _ := net.SplitHostPort(relay.addr)
		cfg.SMTPHost, cfg.SMTPFrom, cfg.SMTPTLS = host, "vpn@vpn.example", "none"
		fmt.Sscan(port, &cfg.SMTPPort)
		toml += fmt.Sprintf("[smtp]\nhost = %q\nport = %s\nfrom = \"vpn@vpn.example\"\ntls = \"none\"\n", host, port)
	}
	toml += "[controller]\nemail = \"privacy@vpn.example\"\n"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), cfg, server.Deps{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: time.Now, Rand: rand.Reader,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	conf := filepath.Join(t.TempDir(), "nitronet.toml")
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &staffEnv{harness: &harness{t: t, dataDir: dataDir, confDir: t.TempDir(), url: hs.URL, srv: srv,
		env: map[string]string{"NITRONET_CONFIG": conf}}, srv: srv}
	e.must("officer password 1\n", "admin", "staff", "add", "--email", "dpo@vpn.example", "--role", "privacy_officer")
	e.env["NITRONET_STAFF"], e.env["NITRONET_STAFF_PASSWORD"] = "dpo@vpn.example", "officer password 1"
	return e
}

// user signs up an account through the service and verifies both
// contacts with the codes from the outbox (no relay) and returns its id.
func (e *staffEnv) user(email, mobile string) string {
	e.t.Helper()
	ctx := context.Background()
	id, err := e.srv.Accounts.Signup(ctx, email, mobile, "correct horse battery")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.srv.Accounts.Verify(ctx, id, store.Email, e.code("email")); err != nil {
		e.t.Fatal(err)
	}
	if err := e.srv.Accounts.Verify(ctx, id, store.Mobile, e.code("sms")); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// jsonOf decodes out into v or fails.
func jsonOf(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
}

// monthAfter is one calendar month after t, on the same day clamped to
// the month's last day, at the same time of day (the Done-when of
// `admin privacy add`), computed here independently of package deadline.
func monthAfter(t time.Time) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+1, 1, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(y, m+1, min(d, last), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// TestAdminPrivacyAddDueDate is the Done-when of requests from outside
// the app: `admin privacy add` records a request due one calendar month
// after --received-at; a time in the future or more than a year ago, or a
// malformed one, is refused naming --received-at. On both engines.
func TestAdminPrivacyAddDueDate(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newStaffEnv(t, b, nil)
			received := time.Now().UTC().Add(-9*24*time.Hour - 7*time.Minute).Truncate(time.Second)
			out := e.must("", "admin", "privacy", "add", "--type", "access", "--email", "letter@example.org", "--channel", "post",
				"--received-at", received.Format(time.RFC3339), "--identity-check", "letter", "--note", "Letter ref 2025/7", "--json")
			var r struct {
				ID, Status, Channel, Details string
				ReceivedAt                   time.Time                    `json:"received_at"`
				DueAt                        time.Time                    `json:"due_at"`
				AccountID                    string                       `json:"account_id"`
				IdentityCheck                *struct{ Method, By string } `json:"identity_check"`
			}
			jsonOf(t, out, &r)
			if !r.ReceivedAt.Equal(received) || !r.DueAt.Equal(monthAfter(received)) {
				t.Fatalf("received %v due %v, want received %v due %v", r.ReceivedAt, r.DueAt, received, monthAfter(received))
			}
			if r.Status != "verified" || r.Channel != "post" || r.AccountID != "" || r.Details != "Letter ref 2025/7" ||
				r.IdentityCheck == nil || r.IdentityCheck.Method != "letter" || !strings.HasPrefix(r.IdentityCheck.By, "stf_") {
				t.Fatalf("recorded: %s", out)
			}
			// The staff list shows it with its due date.
			if out := e.must("", "admin", "privacy", "list"); !strings.Contains(out, r.ID) || !strings.Contains(out, monthAfter(received).Format(time.DateOnly)) {
				t.Fatalf("privacy list: %s", out)
			}
			for _, tc := range []struct{ at, says string }{
				{time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "in the future"},
				{time.Now().AddDate(-1, 0, -2).UTC().Format(time.RFC3339), "more than 365 days ago"},
				{"yesterday", "RFC 3339"},
			} {
				_, err := e.run("", "admin", "privacy", "add", "--type", "access", "--email", "letter@example.org", "--channel", "post",
					"--received-at", tc.at, "--identity-check", "letter")
				if err == nil || !strings.Contains(err.Error(), "--received-at") || !strings.Contains(err.Error(), tc.says) {
					t.Errorf("--received-at %s: got %v, want an error about --received-at saying %q", tc.at, err, tc.says)
				}
			}
			_, err := e.run("", "admin", "privacy", "add", "--type", "access", "--email", "letter@example.org", "--channel", "post")
			if err == nil || !strings.Contains(err.Error(), "--identity-check") {
				t.Errorf("no account, no check: got %v, want an error about --identity-check", err)
			}
		})
	}
}

// TestAdminPrivacyAddProvenByCodes: a rectification received by phone
// for an account is proven by the codes read back to staff; the relay
// received the account's email (codes, notices) and the requester sees
// it listed on the request (Art. 19), in `privacy show`. Staff look the
// account up by mobile; the audit log never holds the number.
func TestAdminPrivacyAddProvenByCodes(t *testing.T) {
	relay := startMailRelay(t)
	e := newStaffEnv(t, storetest.Backends()[0], relay)
	ctx := context.Background()
	const email, mobile = "caller@example.com", "+447911100321"
	id, err := e.srv.Accounts.Signup(ctx, email, mobile, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	relayCode := func() string {
		t.Helper()
		e.drain()
		got := relay.received()
		m := regexp.MustCompile(`\b\d{6}\b`).FindString(got[len(got)-1])
		if m == "" {
			t.Fatalf("no code in the last relayed email:\n%s", got[len(got)-1])
		}
		return m
	}
	if err := e.srv.Accounts.Verify(ctx, id, store.Email, relayCode()); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Accounts.Verify(ctx, id, store.Mobile, e.code("sms")); err != nil {
		t.Fatal(err)
	}

	out := e.must("", "admin", "account", "lookup", "--mobile", "+44 7911 100321")
	if !strings.Contains(out, id) || !strings.Contains(out, email) {
		t.Fatalf("account lookup: %s", out)
	}
	out = e.must("", "admin", "privacy", "add", "--type", "rectification", "--mobile", mobile, "--channel", "phone",
		"--note", "Caller says the mobile number on file has a typo.")
	reqID := regexp.MustCompile(`prq_[a-z2-7]+`).FindString(out)
	if reqID == "" || !strings.Contains(out, "admin privacy verify "+reqID) || !strings.Contains(out, "Channel   phone") {
		t.Fatalf("privacy add: %s", out)
	}
	emailCode, smsCode := relayCode(), e.code("sms")
	if _, err := e.run("", "admin", "privacy", "verify", reqID, "--email-code", emailCode, "--mobile-code", "000000"); err == nil ||
		!strings.Contains(err.Error(), "--mobile-code") {
		t.Fatalf("wrong code: got %v, want an error naming --mobile-code", err)
	}
	// The email code was used up by that attempt: send fresh ones.
	if out := e.must("", "admin", "privacy", "codes", reqID); !strings.Contains(out, "email_code, mobile_code") {
		t.Fatalf("privacy codes: %s", out)
	}
	emailCode, smsCode = relayCode(), e.code("sms")
	out = e.must("", "admin", "privacy", "verify", reqID, "--email-code", emailCode, "--mobile-code", smsCode)
	if !strings.Contains(out, "Status    verified") || !strings.Contains(out, "SMTP relay received account.email, auth.codes") {
		t.Fatalf("privacy verify: %s", out)
	}
	out = e.must("", "admin", "privacy", "recipient", reqID, "--processor", "SMTP relay", "--status", "told", "--note", "ticket 981")
	if !strings.Contains(out, "told on") || !strings.Contains(out, "ticket 981") {
		t.Fatalf("privacy recipient: %s", out)
	}

	// The requester logs in and sees the request, its channel and who
	// received the data.
	e.must("correct horse battery\n", "login", "--email", email)
	out = e.must("", "privacy", "show", reqID, "--json")
	var r struct {
		Channel    string
		Recipients []struct {
			Processor  string
			Categories []string
			Status     string
		}
	}
	jsonOf(t, out, &r)
	if r.Channel != "phone" || len(r.Recipients) != 1 || r.Recipients[0].Processor != "SMTP relay" || r.Recipients[0].Status != "told" {
		t.Fatalf("privacy show --json: %s", out)
	}
	if out := e.must("", "privacy", "show", reqID); !strings.Contains(out, "Recipients of the data") {
		t.Fatalf("privacy show: %s", out)
	}

	out = e.must("", "admin", "audit", "list")
	for _, secret := range []string{mobile, "7911100321", email} {
		if strings.Contains(out, secret) {
			t.Errorf("the audit log holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "looked up the account by mobile") {
		t.Errorf("the lookup is not audited:\n%s", out)
	}
}

// TestAdminBreach is the Done-when of the breach register: `admin breach
// add` shows a notify-by time 72 hours after detection; `list` flags an
// overdue one and prints notify_by in --json; `update` completes the
// record; `notify` tells the listed accounts through their inbox and,
// through a real SMTP listener, by email. On both engines.
func TestAdminBreach(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			relay := startMailRelay(t)
			e := newStaffEnv(t, b, relay)
			ctx := context.Background()
			var accounts []string
			for i := range 3 {
				id, err := e.srv.Accounts.Signup(ctx, fmt.Sprintf("affected%d@example.com", i), fmt.Sprintf("+44791110050%d", i), "correct horse battery")
				if err != nil {
					t.Fatal(err)
				}
				accounts = append(accounts, id)
			}
			e.drain() // the sign-up codes go out before the count
			signupMails := len(relay.received())

			detected := time.Now().UTC().Add(-73 * time.Hour).Truncate(time.Second)
			out := e.must("", "admin", "breach", "add", "--detected-at", detected.Format(time.RFC3339), "--nature", "A backup disk was lost.")
			brc := regexp.MustCompile(`brc_[a-z2-7]+`).FindString(out)
			notifyBy := detected.Add(72 * time.Hour).Format(time.RFC3339)
			if brc == "" || !strings.Contains(out, "by "+notifyBy) {
				t.Fatalf("breach add: %s\nwant the notify-by time %s", out, notifyBy)
			}
			out = e.must("", "admin", "breach", "add", "--detected-at", time.Now().UTC().Add(-time.Hour).Format(time.RFC3339),
				"--nature", "A laptop was stolen.", "--json")
			var fresh struct {
				DetectedAt time.Time `json:"detected_at"`
				NotifyBy   time.Time `json:"notify_by"`
				Overdue    bool
			}
			jsonOf(t, out, &fresh)
			if fresh.NotifyBy.Sub(fresh.DetectedAt) != 72*time.Hour || fresh.Overdue {
				t.Fatalf("breach add --json: %s", out)
			}
			out = e.must("", "admin", "breach", "list", "--json")
			var list struct {
				Breaches []struct {
					ID       string
					NotifyBy string `json:"notify_by"`
					Overdue  bool
				}
			}
			jsonOf(t, out, &list)
			if len(list.Breaches) != 2 || list.Breaches[1].ID != brc || list.Breaches[1].NotifyBy != notifyBy ||
				!list.Breaches[1].Overdue || list.Breaches[0].Overdue {
				t.Fatalf("breach list --json: %s", out)
			}
			overdueRows := regexp.MustCompile(`(?m)^brc_\S+\s+\S+\s+\S+\s+OVERDUE\s`)
			if out := e.must("", "admin", "breach", "list"); len(overdueRows.FindAllString(out, -1)) != 1 {
				t.Fatalf("breach list: %s\nwant one overdue", out)
			}
			if _, err := e.run("", "admin", "breach", "notify", brc, "--accounts", accounts[0]); err == nil ||
				!strings.Contains(err.Error(), "consequences") {
				t.Fatalf("notify an incomplete record: got %v", err)
			}
			if _, err := e.run("", "admin", "breach", "update", brc, "--categories", "account.email,account.shoe_size"); err == nil ||
				!strings.Contains(err.Error(), "--categories") {
				t.Fatalf("unknown category: got %v, want an error naming --categories", err)
			}
			e.must("", "admin", "breach", "update", brc, "--categories", "account.email,devices", "--people", "3",
				"--consequences", "Someone may learn your email address.", "--measures-taken", "The disk was encrypted; we rotated its key.",
				"--risk", "high", "--authority-notified-at", time.Now().UTC().Format(time.RFC3339), "--authority-reference", "DPA-77")
			if out := e.must("", "admin", "breach", "list"); overdueRows.MatchString(out) {
				t.Fatalf("notified breach still overdue: %s", out)
			}

			file := filepath.Join(t.TempDir(), "affected.txt")
			if err := os.WriteFile(file, []byte("# affected\n"+accounts[2]+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out = e.must("", "admin", "breach", "notify", brc, "--accounts", accounts[0], "--accounts-file", file)
			if !strings.Contains(out, "2/2 inboxes, emails sent 2, failed 0") {
				t.Fatalf("breach notify: %s", out)
			}
			mails := relay.received()[signupMails:]
			if len(mails) != 2 {
				t.Fatalf("relay got %d breach emails, want 2", len(mails))
			}
			for i, m := range mails {
				if !strings.HasPrefix(m, "affected0@example.com\n") && !strings.HasPrefix(m, "affected2@example.com\n") {
					t.Errorf("breach email %d went to %s", i, strings.SplitN(m, "\n", 2)[0])
				}
				for _, want := range []string{"A backup disk was lost.", "Someone may learn your email address.",
					"The disk was encrypted; we rotated its key.", "privacy@vpn.example", brc} {
					if !strings.Contains(unfold(m), want) {
						t.Errorf("breach email lacks %q:\n%s", want, m)
					}
				}
			}
			for i, acc := range accounts {
				msgs, _, err := e.srv.Store.Messages(ctx, acc, 10)
				if err != nil {
					t.Fatal(err)
				}
				got := 0
				for _, m := range msgs {
					if m.Kind == "breach-notice" {
						got++
					}
				}
				if want := map[int]int{0: 1, 1: 0, 2: 1}[i]; got != want {
					t.Errorf("inbox of account %d: %d breach notices, want %d", i, got, want)
				}
			}
			out = e.must("", "admin", "breach", "show", brc, "--json")
			var shown struct {
				Notices []struct {
					Audience   string
					EmailsSent int64 `json:"emails_sent"`
					Done       bool
				}
				AuthorityReference string `json:"authority_reference"`
			}
			jsonOf(t, out, &shown)
			if len(shown.Notices) != 1 || shown.Notices[0].Audience != "listed" || shown.Notices[0].EmailsSent != 2 ||
				!shown.Notices[0].Done || shown.AuthorityReference != "DPA-77" {
				t.Fatalf("breach show --json: %s", out)
			}
			// Resuming a finished notice sends nothing again.
			e.must("", "admin", "breach", "notify", brc, "--resume")
			if n := len(relay.received()); n != signupMails+2 {
				t.Fatalf("after --resume the relay has %d emails, want %d", n, signupMails+2)
			}
		})
	}
}

// unfold undoes quoted-printable soft line breaks and SMTP line endings,
// so that a long line can be searched for.
func unfold(s string) string {
	return strings.NewReplacer("=\r\n", "", "\r\n", "\n", "=\n", "").Replace(s)
}
