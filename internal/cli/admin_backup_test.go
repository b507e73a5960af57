package cli_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/vault"
)

// TestBackupRoundTrip: `admin backup` copies the database while the server
// runs and keeps writing; `admin restore` puts the copy into a new data
// directory once it has the right keyring; a server started on
// it serves the data back over the API: the account (its email decrypts),
// its device, and every message written before the backup began.
func TestBackupRoundTrip(t *testing.T) {
	h, srv := newHarness(t, nil)
	ctx := context.Background()
	src := h.dataDir

	// Data written through the API, as a user would.
	h.must("correct horse battery\n", "signup", "--email", "keep@example.com", "--mobile", "+447911100800")
	h.must("", "verify", "email", h.code("email"))
	h.must("", "verify", "mobile", h.code("sms"))
	h.must("", "device", "add", "laptop")
	accID := regexp.MustCompile(`acc_[a-z2-7]+`).FindString(h.must("", "whoami"))
	if accID == "" {
		t.Fatal("whoami shows no account ID")
	}

	// The server keeps writing during the backup.
	var posted atomic.Int64
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := srv.Inbox.Post(ctx, accID, "announcement", fmt.Sprintf("Notice %d", i), "Body."); err != nil {
				done <- err
				return
			}
			posted.Add(1)
		}
	}()
	for deadline := time.Now().Add(time.Minute); posted.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the writer posted nothing for a minute")
		}
	}
	before := posted.Load()
	file := filepath.Join(t.TempDir(), "nitronet-backup.db")
	out := h.must("", "admin", "backup", "--data", src, "--output", file)
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if !strings.Contains(out, "integrity check passed") || !strings.Contains(out, "1 accounts") {
		t.Fatalf("backup said %q", out)
	}
	if _, err := h.run("", "admin", "backup", "--data", src, "--output", file); err == nil {
		t.Fatal("a second backup onto the same file succeeded, want an error")
	}

	// Restore into a new data directory: not without the right key.
	dst := t.TempDir()
	restore := []string{"admin", "restore", "--data", dst, "--input", file}
	if _, err := h.run("", restore...); err == nil || !strings.Contains(err.Error(), "--keyring") {
		t.Fatalf("restore without a keyring: got %v, want an error about --keyring", err)
	}
	if entries, _ := os.ReadDir(dst); len(entries) != 0 {
		t.Fatalf("a refused restore left %d entries in the data directory", len(entries))
	}
	_, err := vault.Open(vault.Config{Dir: filepath.Join(dst, "keyring")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.run("", restore...); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("restore with another keyring: got %v, want an error that the keyring does not open the backup", err)
	}
	for _, name := range []string{"kek-1.key", "derive.key"} {
		copyFile(t, filepath.Join(src, "keyring", name), filepath.Join(dst, "keyring", name))
	}
	if out := h.must("", restore...); !strings.Contains(out, "Restored") {
		t.Fatalf("restore said %q", out)
	}
	// A second restore needs --force, and keeps the database it replaces.
	if _, err := h.run("", restore...); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over a database: got %v, want an error naming --force", err)
	}
	if out := h.must("", append(restore, "--force")...); !strings.Contains(out, "nitronet.db.replaced-") {
		t.Fatalf("forced restore said %q, want where the old database is kept", out)
	}
	// Never over a database a running server has open.
	if _, err := h.run("", "admin", "restore", "--data", src, "--input", file, "--force"); err == nil ||
		!strings.Contains(err.Error(), "running") {
		t.Fatalf("restore over the running server's database: got %v, want a refusal", err)
	}

	// A server on the restored directory serves the data back.
	cfg := config.Default()
	cfg.DataDir = dst
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv2, err := server.New(ctx, cfg, server.Deps{Logger: slog.New(slog.DiscardHandler), Clock: time.Now, Rand: rand.Reader, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv2.Handler)
	t.Cleanup(func() { hs.Close(); srv2.Close() })
	h.env["NITRONET_SERVER"] = hs.URL
	h.must("correct horse battery\n", "login", "--email", "keep@example.com")
	if out := h.must("", "whoami"); !strings.Contains(out, "keep@example.com") || !strings.Contains(out, "+447911100800") {
		t.Fatalf("whoami on the restored server: got %q", out)
	}
	if out := h.must("", "device", "list"); !strings.Contains(out, "laptop") {
		t.Fatalf("device list on the restored server: got %q", out)
	}
	// Every message is unread, so the unread count is the number kept.
	n, err := srv2.Inbox.Unread(ctx, accID)
	if err != nil {
		t.Fatal(err)
	}
	if int64(n) < before || int64(n) > posted.Load() {
		t.Fatalf("restored inbox: got %d messages, want between %d (posted before the backup) and %d", n, before, posted.Load())
	}
	t.Logf("restored %d messages: %d were posted before the backup began, %d by the time it ended", n, before, posted.Load())
}

// TestBackupPostgresRefused: with PostgreSQL, backup and restore point to
// pg_dump instead of touching anything.
func TestBackupPostgresRefused(t *testing.T) {
	h := &harness{t: t, confDir: t.TempDir(), env: map[string]string{}}
	for _, args := range [][]string{
		{"admin", "backup", "--data", t.TempDir(), "--database", "postgres://localhost/nitronet", "--output", filepath.Join(t.TempDir(), "b.db")},
		{"admin", "restore", "--data", t.TempDir(), "--database", "postgres://localhost/nitronet", "--input", "b.db"},
	} {
		if _, err := h.run("", args...); err == nil || !strings.Contains(err.Error(), "pg_dump") {
			t.Errorf("%s: got %v, want an error pointing to pg_dump", strings.Join(args[:2], " "), err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
