package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpCPUProfile: `up --cpuprofile FILE` writes an owner-only profile
// even when up then fails (here: no session), and a file that cannot be
// created stops up before it does anything.
func TestUpCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "client.pprof")
	r := runCLI(offline(t), "up", "--cpuprofile", path)
	if r.status == 0 {
		t.Fatalf("up without a session succeeded: %+v", r)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no profile written: %v", err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("profile mode %v size %d, want 0600 and not empty", fi.Mode().Perm(), fi.Size())
	}

	r = runCLI(offline(t), "up", "--cpuprofile", filepath.Join(t.TempDir(), "missing", "client.pprof"))
	if r.status == 0 || !strings.Contains(r.msg, "cpuprofile") {
		t.Errorf("up with an uncreatable profile: status %d, %q; want a cpuprofile error", r.status, r.msg)
	}
}
