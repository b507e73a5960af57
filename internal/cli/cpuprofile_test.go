package cli

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartCPUProfile: the --cpuprofile file (gateway and up) is created owner-only
// and holds a CPU profile (gzipped protobuf naming the sample unit) once
// stopped; a path that cannot be
// created is an error, and no profile is left running.
func TestStartCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	stop, err := startCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("not a gzipped profile: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "nanoseconds") {
		t.Error("the profile names no nanoseconds sample unit: not a CPU profile")
	}

	if _, err := startCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.pprof")); err == nil {
		t.Error("a profile in a missing directory: no error")
	}
	// The failed start left no profile running: a new one starts.
	stop, err = startCPUProfile(filepath.Join(t.TempDir(), "again.pprof"))
	if err != nil {
		t.Fatalf("second profile: %v", err)
	}
	stop()
}
