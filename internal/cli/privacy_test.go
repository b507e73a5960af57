package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// codeOf returns the code in the newest outbox message of kind on channel.
func (h *harness) codeOf(kind, channel string) string {
	h.t.Helper()
	h.drain()
	entries, err := os.ReadDir(filepath.Join(h.dataDir, "outbox"))
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.Contains(e.Name(), "-"+kind+"-") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for i := len(names) - 1; i >= 0; i-- {
		b, _ := os.ReadFile(filepath.Join(h.dataDir, "outbox", names[i]))
		if strings.Contains(string(b), "Channel: "+channel+"\n") {
			return regexp.MustCompile(`\b\d{6}\b`).FindString(string(b))
		}
	}
	h.t.Fatalf("no %s code on %s in the outbox", kind, channel)
	return ""
}

// TestPrivacyJourneyCLI runs the privacy commands as a user and as staff:
// an access request proved and downloaded, extended and completed by a
// privacy officer, then an erasure that closes the account.
func TestPrivacyJourneyCLI(t *testing.T) {
	h, _ := newHarness(t, nil)
	dataDir := h.dataDir

	h.must("correct horse battery\n", "signup", "--email", "subject@example.com", "--mobile", "+447911100900")
	h.must("", "verify", "email", h.code("email"))
	h.must("", "verify", "mobile", h.code("sms"))
	h.must("", "device", "add", "laptop")

	if _, err := h.run("", "privacy", "request", "gossip"); err == nil {
		t.Fatal("unknown request type accepted")
	}
	out := h.must("", "privacy", "request", "access")
	reqID := regexp.MustCompile(`prq_[a-z2-7]{26}`).FindString(out)
	if reqID == "" || !strings.Contains(out, "Due ") {
		t.Fatalf("privacy request: got %q, want an id and a due date", out)
	}
	// The export is not available before identity is proved.
	if _, err := h.run("", "privacy", "download", reqID); err == nil {
		t.Fatal("download before verification succeeded")
	}
	h.env["NITRONET_PASSWORD"] = "correct horse battery"
	emailCode, mobileCode := h.codeOf("privacy-code", "email"), h.codeOf("privacy-code", "sms")
	if _, err := h.run("", "privacy", "verify", reqID, "--email-code", emailCode, "--mobile-code", "000000"); err == nil && mobileCode != "000000" {
		t.Fatal("verification with a wrong mobile code succeeded")
	}
	h.must("", "privacy", "verify", reqID, "--resend")
	emailCode, mobileCode = h.codeOf("privacy-code", "email"), h.codeOf("privacy-code", "sms")
	h.must("", "privacy", "verify", reqID, "--email-code", emailCode, "--mobile-code", mobileCode)
	exportFile := filepath.Join(t.TempDir(), "export.json")
	h.must("", "privacy", "download", reqID, "-o", exportFile)
	b, err := os.ReadFile(exportFile)
	if err != nil {
		t.Fatal(err)
	}
	var export map[string]any
	if err := json.Unmarshal(b, &export); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	for _, want := range []string{"subject@example.com", "+447911100900", "laptop", "schema_version"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("export lacks %q", want)
		}
	}
	if fi, _ := os.Stat(exportFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode: got %v, want 0600", fi.Mode().Perm())
	}

	if out := h.must("", "privacy", "show", reqID); !strings.Contains(out, "completed") {
		t.Fatalf("access request after download: got %q, want it completed automatically", out)
	}

	// A request staff must answer: rectification of something the user
	// cannot change themselves.
	out = h.must("", "privacy", "request", "rectification", "--details", "my device name is misspelt in your records")
	rectID := regexp.MustCompile(`prq_[a-z2-7]{26}`).FindString(out)
	h.must("", "privacy", "verify", rectID, "--email-code", h.codeOf("privacy-code", "email"), "--mobile-code", h.codeOf("privacy-code", "sms"))
	reqID = rectID

	// Staff: a privacy officer extends and completes; support may not.
	d := []string{"--data", dataDir}
	admin := func(args ...string) []string { return append(append([]string{"admin"}, args...), d...) }
	h.must("admin password 1\n", admin("staff", "add", "--email", "boss@example.com", "--role", "admin")...)
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "boss@example.com", "admin password 1"
	h.must("officer password 1\n", admin("staff", "add", "--email", "dpo@example.com", "--role", "privacy_officer")...)
	h.must("support password 1\n", admin("staff", "add", "--email", "help@example.com", "--role", "support")...)
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "help@example.com", "support password 1"
	if out := h.must("", admin("privacy", "list")...); !strings.Contains(out, reqID) {
		t.Fatalf("support's privacy list lacks the request: %q", out)
	}
	if out := h.must("", admin("privacy", "account", reqID)...); !strings.Contains(out, "subject@example.com") ||
		!strings.Contains(out, "laptop") || !strings.Contains(out, "Correct    no: Your role (support) may not correct contacts.") {
		t.Fatalf("support's view of the request's account: %q", out)
	}
	if _, err := h.run("", admin("privacy", "correct", reqID, "--email", "fixed@example.com")...); err == nil {
		t.Fatal("support corrected a contact")
	}
	if _, err := h.run("", admin("privacy", "extend", reqID, "--reason", "complex")...); err == nil {
		t.Fatal("support extended a request")
	}
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "dpo@example.com", "officer password 1"
	if _, err := h.run("", admin("privacy", "extend", reqID, "--reason", "")...); err == nil {
		t.Fatal("extension without a reason accepted")
	}
	if _, err := h.run("", admin("privacy", "extend", reqID, "--reason", "x", "--months", "3")...); err == nil {
		t.Fatal("extension of three months accepted")
	}
	h.must("", admin("privacy", "extend", reqID, "--reason", "many systems to search", "--months", "2")...)
	// Staff see that the user was told of the extension.
	if out := h.must("", admin("privacy", "show", reqID)...); !regexp.MustCompile(`(?m)^Notified  delivered `).MatchString(out) {
		t.Fatalf("admin privacy show after extend: no delivered notice in %q", out)
	}
	if out := h.must("", admin("privacy", "show", reqID, "--json")...); !strings.Contains(out, `"state": "delivered"`) {
		t.Fatalf("admin privacy show --json after extend: no delivered notice in %s", out)
	}
	if _, err := h.run("", admin("privacy", "complete", reqID)...); err == nil {
		t.Fatal("completion without --note accepted")
	}
	if _, err := h.run("", admin("privacy", "correct", reqID, "--email", "a@example.com", "--mobile", "+447911100901")...); err == nil {
		t.Fatal("correct with both --email and --mobile accepted")
	}
	if out := h.must("", admin("privacy", "correct", reqID, "--email", "fixed@example.com")...); !strings.Contains(out, "code was sent") {
		t.Fatalf("correct: got %q", out)
	}
	h.must("", admin("privacy", "complete", reqID, "--note", "export delivered")...)
	if out := h.must("", admin("privacy", "show", reqID)...); !strings.Contains(out, "completed") {
		t.Fatalf("after complete: got %q", out)
	}
	if out := h.must("", admin("privacy", "list", "--overdue")...); strings.Contains(out, reqID) {
		t.Fatalf("a completed request is listed as overdue: %q", out)
	}

	// Erasure: request, prove, confirm; then the account is gone.
	out = h.must("", "privacy", "request", "erasure")
	eraseID := regexp.MustCompile(`prq_[a-z2-7]{26}`).FindString(out)
	h.must("", "privacy", "verify", eraseID, "--email-code", h.codeOf("privacy-code", "email"), "--mobile-code", h.codeOf("privacy-code", "sms"))
	if _, err := h.run("", "privacy", "erase", eraseID); err == nil {
		t.Fatal("erase without --yes went ahead")
	}
	h.must("", "privacy", "erase", eraseID, "--yes")
	if _, err := h.run("correct horse battery\n", "login", "--email", "subject@example.com"); err == nil {
		t.Fatal("login after erasure succeeded")
	}
}

// TestInboxAndPolicyCLI: a material policy change reaches the user's inbox,
// and the user reads it and accepts the new version from the CLI.
func TestInboxAndPolicyCLI(t *testing.T) {
	h, _ := newHarness(t, nil)
	dataDir := h.dataDir
	h.must("correct horse battery\n", "signup", "--email", "reader@example.com", "--mobile", "+447911100950")
	if out := h.must("", "policy"); !strings.Contains(out, "Nothing waits") {
		t.Fatalf("policy before any change: got %q", out)
	}

	d := []string{"--data", dataDir}
	h.must("admin password 1\n", append([]string{"admin", "staff", "add", "--email", "boss@example.com", "--role", "admin"}, d...)...)
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "boss@example.com", "admin password 1"
	h.must("officer password 1\n", append([]string{"admin", "staff", "add", "--email", "dpo@example.com", "--role", "privacy_officer"}, d...)...)
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "dpo@example.com", "officer password 1"
	text := filepath.Join(t.TempDir(), "policy.txt")
	if err := os.WriteFile(text, []byte("Nitronet Privacy Policy, version 2.\nWe now keep less.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.must("", append([]string{"admin", "policy", "publish", text, "--kind", "privacy", "--material"}, d...)...)

	// The same, as JSON.
	var pj struct {
		Pending []json.RawMessage `json:"pending"`
	}
	if err := json.Unmarshal([]byte(h.must("", "policy", "--json")), &pj); err != nil || len(pj.Pending) != 1 {
		t.Fatalf("policy --json: got %v, %v", pj, err)
	}
	wantKeys(t, "pending policy", pj.Pending[0], "id", "kind", "version", "material", "published_at", "body")
	var ij struct {
		Unread   int               `json:"unread"`
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal([]byte(h.must("", "inbox", "--json")), &ij); err != nil || ij.Unread != 1 || len(ij.Messages) != 1 {
		t.Fatalf("inbox --json: got %+v, %v", ij, err)
	}
	wantKeys(t, "inbox message", ij.Messages[0], "id", "kind", "subject", "body", "created_at", "read_at")

	out := h.must("", "policy")
	docID := regexp.MustCompile(`policy accept (\S+)`).FindStringSubmatch(out)
	if docID == nil || !strings.Contains(out, "We now keep less.") {
		t.Fatalf("policy after a material change: got %q, want the new text and how to accept", out)
	}
	out = h.must("", "inbox")
	msgID := regexp.MustCompile(`msg_[a-z2-7]{26}|[a-z]+_[a-z2-7]{26}`).FindString(out)
	if !strings.Contains(out, "1 unread") || msgID == "" {
		t.Fatalf("inbox: got %q, want one unread notice", out)
	}
	h.must("", "inbox", "read", msgID)
	if out := h.must("", "inbox"); !strings.Contains(out, "0 unread") {
		t.Fatalf("inbox after reading: got %q", out)
	}
	h.must("", "policy", "accept", docID[1])
	if out := h.must("", "policy"); !strings.Contains(out, "Nothing waits") || !strings.Contains(out, "Accepted privacy version 2") {
		t.Fatalf("policy after accepting: got %q", out)
	}
	var aj struct {
		Accepted []json.RawMessage `json:"accepted"`
	}
	if err := json.Unmarshal([]byte(h.must("", "policy", "--json")), &aj); err != nil || len(aj.Accepted) == 0 {
		t.Fatalf("policy --json after accepting: got %+v, %v", aj, err)
	}
	wantKeys(t, "accepted policy", aj.Accepted[len(aj.Accepted)-1], "document_id", "kind", "version", "accepted_at")
}
