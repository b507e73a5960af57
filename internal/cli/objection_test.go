package cli_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/store"
)

// TestObjectionStopsAnnouncements sends an announcement and then a
// material policy change through a real SMTP relay to an account without
// flags, one that objected and one that restricted processing: the
// announcement reaches only the first (inbox and email), the policy
// notice all three. The server's notifier refuses an announcement to an
// objecting account and passes its service messages.
func TestObjectionStopsAnnouncements(t *testing.T) {
	h, srv := newHarness(t, nil)
	ctx := context.Background()
	ids := map[string]string{}
	for i, who := range []string{"plain", "objected", "restricted"} {
		id, err := srv.Accounts.Signup(ctx, who+"@example.com", fmt.Sprintf("+4479111009%02d", i), "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		ids[who] = id
	}
	if err := srv.Store.SetFlags(ctx, ids["objected"], store.Flags{Objected: true}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.SetFlags(ctx, ids["restricted"], store.Flags{Restricted: true}); err != nil {
		t.Fatal(err)
	}
	// The sign-up codes are queued; deliver them now, to this server's
	// file outbox, or the first admin command's drain would send them
	// through the relay below and they would count as announcements.
	if _, err := srv.Outbound.Drain(ctx); err != nil {
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
	h.must("officer password 1\n", "admin", "staff", "add", "--email", "dpo@example.com", "--role", "privacy_officer")

	// recipients lists the recipients of the relayed messages from the
	// from-th on, failing the test on a message that is not subject.
	recipients := func(from int, subject string) []string {
		t.Helper()
		var out []string
		for _, m := range relay.received()[from:] {
			to, _, _ := strings.Cut(m, "\n")
			if !strings.Contains(m, "\r\nSubject: "+subject+"\r\n") {
				t.Errorf("unexpected message to %s relayed: %.200q", to, m)
			}
			out = append(out, to)
		}
		return out
	}
	body := filepath.Join(t.TempDir(), "body.txt")
	if err := os.WriteFile(body, []byte("Our new gateway in Lisbon is open."), 0o600); err != nil {
		t.Fatal(err)
	}
	out := h.must("", "admin", "announce", "--subject", "New gateway", "--body-file", body, "--email")
	if got := recipients(0, "New gateway"); len(got) != 1 || got[0] != "plain@example.com" {
		t.Fatalf("announcement emailed to %v, want only plain@example.com", got)
	}
	if !strings.Contains(out, "1/1 inboxes") {
		t.Errorf("announce progress: got %q, want 1 of 1 reachable accounts", out)
	}
	inboxHas := func(who, kind string) bool {
		msgs, _, err := srv.Store.Messages(ctx, ids[who], 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Kind == kind {
				return true
			}
		}
		return false
	}
	for who, want := range map[string]bool{"plain": true, "objected": false, "restricted": false} {
		if got := inboxHas(who, "announcement"); got != want {
			t.Errorf("%s: announcement in the inbox = %v, want %v", who, got, want)
		}
	}

	// A legal notice still reaches everyone.
	sent := len(relay.received())
	policyFile := filepath.Join(t.TempDir(), "policy.txt")
	if err := os.WriteFile(policyFile, []byte("Privacy policy, version 2: we now keep less."), 0o600); err != nil {
		t.Fatal(err)
	}
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "dpo@example.com", "officer password 1"
	h.must("", "admin", "policy", "publish", policyFile, "--kind", "privacy", "--material")
	got := recipients(sent, "Important: our privacy policy has changed")
	slices.Sort(got)
	if want := []string{"objected@example.com", "plain@example.com", "restricted@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("policy notice emailed to %v, want each account once: %v", got, want)
	}
	for who := range ids {
		if !inboxHas(who, "policy-change") {
			t.Errorf("%s: no policy-change notice in the inbox", who)
		}
	}

	// The server's own notifier: announcements refused, service messages pass.
	m := notify.Message{Channel: notify.Email, To: "objected@example.com", Subject: "s", Body: "b", Account: ids["objected"]}
	m.Kind = "announcement"
	if err := srv.Notifier.Send(ctx, m); !errs.Is(err, errs.Forbidden) {
		t.Errorf("announcement to an objecting account: got %v, want Forbidden", err)
	}
	m.Kind, m.Account = "password-reset", ids["restricted"]
	if err := srv.Notifier.Send(ctx, m); err != nil {
		t.Errorf("service message to a restricting account: %v", err)
	}
}
