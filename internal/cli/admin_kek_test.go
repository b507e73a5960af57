package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAdminKEKRotate: `admin kek rotate` re-wraps every key under a new
// KEK and destroys the old one while a server on the same data directory
// keeps serving (it follows the keyring), and `admin kek status` shows
// the result.
func TestAdminKEKRotate(t *testing.T) {
	h, _ := newHarness(t, nil)
	h.must("correct horse battery\n", "signup", "--email", "kek@example.com", "--mobile", "+447911100700")
	h.must("", "verify", "email", h.code("email"))
	h.must("admin password 1\n", "admin", "--data", h.dataDir, "staff", "add", "--email", "boss@example.com", "--role", "admin")
	h.env["NITRONET_DATA"], h.env["NITRONET_KEK_SETTLE"] = h.dataDir, "1s"
	h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = "boss@example.com", "admin password 1"

	out := h.must("", "admin", "kek", "rotate", "--json")
	var r struct {
		Phase     string   `json:"phase"`
		Target    uint32   `json:"target_kek"`
		Rewrapped int64    `json:"rewrapped_accounts"`
		Destroyed []uint32 `json:"destroyed_keks"`
		Problem   *string  `json:"problem"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("rotate --json: %v in %q", err, out)
	}
	if r.Phase != "finished" || r.Target != 2 || r.Rewrapped != 1 || !slices.Equal(r.Destroyed, []uint32{1}) || r.Problem != nil {
		t.Fatalf("rotate: got %+v, want finished under KEK 2 with KEK 1 destroyed", r)
	}
	if _, err := os.Stat(filepath.Join(h.dataDir, "keyring", "kek-1.key")); !os.IsNotExist(err) {
		t.Fatalf("KEK 1 still exists (stat %v)", err)
	}

	// The running server, which never saw the rotation happen, serves the
	// re-wrapped account: its profile decrypts, and login finds it by its
	// re-derived email index.
	if out := h.must("", "whoami"); !strings.Contains(out, "kek@example.com") {
		t.Fatalf("whoami after rotation: %q", out)
	}
	h.must("", "logout")
	h.must("correct horse battery\n", "login", "--email", "kek@example.com")

	out = h.must("", "admin", "kek", "status", "--json")
	var st struct {
		KEKs []struct {
			ID      uint32 `json:"id"`
			Primary bool   `json:"primary"`
		} `json:"keks"`
		Current *json.RawMessage `json:"current"`
		Recent  []struct {
			Destroyed []uint32 `json:"destroyed_keks"`
		} `json:"recent"`
		Every int64 `json:"rotation_every_seconds"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v in %q", err, out)
	}
	if len(st.KEKs) != 1 || st.KEKs[0].ID != 2 || !st.KEKs[0].Primary || st.Current != nil || len(st.Recent) != 1 ||
		st.Every != 30*24*3600 {
		t.Fatalf("status: got %+v", st)
	}
	if out := h.must("", "admin", "kek", "status"); !strings.Contains(out, "finished") || !strings.Contains(out, "destroyed KEK 1") {
		t.Fatalf("status: got %q", out)
	}
}
