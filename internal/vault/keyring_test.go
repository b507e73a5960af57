package vault

import (
	"bytes"
	cryptorand "crypto/rand"
	"errors"
	"io/fs"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func openTest(t *testing.T, dir, legacy string) *Vault {
	t.Helper()
	v, err := Open(Config{Dir: dir, LegacyFile: legacy})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return v
}

func TestOpenCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keyring")
	v1, err := Open(Config{Dir: dir, Rand: mathrand.NewChaCha8([32]byte{1})})
	if err != nil {
		t.Fatalf("Open (create): %v", err)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("keyring mode = %#o, want 0700", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || fi.Size() != KEKSize {
			t.Errorf("%s: mode %#o size %d, want 0600 and %d", e.Name(), fi.Mode().Perm(), fi.Size(), KEKSize)
		}
	}
	if want := []string{"derive.key", "kek-1.key"}; !slices.Equal(names, want) {
		t.Errorf("keyring holds %v, want %v (temporary file left behind?)", names, want)
	}
	if ks := v1.KEKs(); len(ks) != 1 || ks[0].ID != 1 || !ks[0].Primary || ks[0].Path != filepath.Join(dir, "kek-1.key") {
		t.Errorf("KEKs = %+v, want only KEK 1, primary", ks)
	}

	// Opening again gives the same keys, whatever the random source.
	v2, err := Open(Config{Dir: dir, Rand: mathrand.NewChaCha8([32]byte{2})})
	if err != nil {
		t.Fatalf("Open (load): %v", err)
	}
	if a, b := v1.BlindIndex("email", "x"), v2.BlindIndex("email", "x"); !bytes.Equal(a, b) {
		t.Errorf("reopened keyring derives different blind indexes")
	}
	if a, b := v1.DeriveKey("csrf"), v2.DeriveKey("csrf"); !bytes.Equal(a, b) {
		t.Errorf("reopened keyring derives different keys")
	}
	_, wrapped, err := v1.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v2.Unwrap("acct-1", wrapped); err != nil {
		t.Errorf("reopened keyring cannot unwrap: %v", err)
	}
}

func TestOpenConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keyring")
	const n = 8
	idx := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, err := Open(Config{Dir: dir})
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			idx[i] = append(v.BlindIndex("email", "x"), v.DeriveKey("x")...)
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(idx[i], idx[0]) {
			t.Errorf("concurrent Open %d got different keys than 0", i)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path the error names
		wantMsg string
	}{
		{"KEK mode 0644", func(t *testing.T, dir string) string {
			return writeKey(t, filepath.Join(dir, "kek-1.key"), KEKSize, 0o644)
		}, "chmod 600"},
		{"KEK mode 0620", func(t *testing.T, dir string) string {
			return writeKey(t, filepath.Join(dir, "kek-1.key"), KEKSize, 0o620)
		}, "group or others"},
		{"KEK too short", func(t *testing.T, dir string) string {
			return writeKey(t, filepath.Join(dir, "kek-1.key"), KEKSize-1, 0o600)
		}, "31 bytes, want exactly 32"},
		{"KEK too long", func(t *testing.T, dir string) string {
			return writeKey(t, filepath.Join(dir, "kek-2.key"), KEKSize+1, 0o600)
		}, "33 bytes, want exactly 32"},
		{"derivation key empty", func(t *testing.T, dir string) string {
			return writeKey(t, filepath.Join(dir, "derive.key"), 0, 0o600)
		}, "0 bytes, want exactly 32"},
		{"KEK is a directory", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "kek-1.key")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file"},
		{"keyring mode 0755", func(t *testing.T, dir string) string {
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "chmod 700"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keyring")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := tt.setup(t, dir)
			before, _ := os.ReadFile(path)
			v, err := Open(Config{Dir: dir})
			if err == nil {
				t.Fatalf("Open: got vault %v, want error", v)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open error = %q, want it to contain %q and %s", err, tt.wantMsg, path)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Errorf("Open modified the refused file")
			}
		})
	}
}

func TestOpenRandFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keyring")
	if _, err := Open(Config{Dir: dir, Rand: bytes.NewReader(make([]byte, 5))}); err == nil {
		t.Fatalf("Open with short rand: got nil error, want error")
	}
	if _, err := os.Stat(filepath.Join(dir, "kek-1.key")); !os.IsNotExist(err) {
		t.Errorf("key file exists after failed creation (stat error %v), want none", err)
	}
}

func TestKEKNames(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   uint32
		ok   bool
	}{
		{"kek-1.key", 1, true}, {"kek-42.key", 42, true}, {"kek-4294967295.key", 4294967295, true},
		{"kek-0.key", 0, false}, {"kek-01.key", 0, false}, {"kek-4294967296.key", 0, false},
		{"kek-.key", 0, false}, {"kek-1.key.tmp", 0, false}, {".kek-123.tmp", 0, false},
		{"derive.key", 0, false}, {"kek-+1.key", 0, false}, {"kek-1a.key", 0, false},
	} {
		id, ok := parseKEKName(tt.name)
		if id != tt.id || ok != tt.ok {
			t.Errorf("parseKEKName(%q) = %d, %v; want %d, %v", tt.name, id, ok, tt.id, tt.ok)
		}
		if tt.ok && kekName(tt.id) != tt.name {
			t.Errorf("kekName(%d) = %q, want %q", tt.id, kekName(tt.id), tt.name)
		}
	}
}

// legacyWrap wraps key for account as the version before keyrings did.
func legacyWrap(t *testing.T, legacyKEK, key []byte, account string) []byte {
	t.Helper()
	w, err := seal(newKEK(0, legacyKEK).wrapKey, cryptorand.Reader, key, []byte(account))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestRotation walks a keyring through the life a rotation gives it: a
// legacy KEK from before keyrings, a new KEK, re-wrapping, and the
// destruction of the old KEK, after which what it wrapped is unreadable.
func TestRotation(t *testing.T) {
	base := t.TempDir()
	dir, legacyPath := filepath.Join(base, "keyring"), filepath.Join(base, "kek")
	legacy := testKEK(9)
	if err := os.WriteFile(legacyPath, legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	v := openTest(t, dir, legacyPath)
	if p, err := v.Primary(); err != nil || p != LegacyKEK {
		t.Fatalf("Primary with only a legacy file = %d, %v; want 0", p, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kek-1.key")); !os.IsNotExist(err) {
		t.Fatalf("Open created a KEK beside the legacy one (stat %v)", err)
	}

	// A data key wrapped before keyrings opens with the legacy KEK.
	raw := bytes.Repeat([]byte{0x5a}, DataKeySize)
	old := legacyWrap(t, legacy, raw, "acct-1")
	dk, err := v.Unwrap("acct-1", old)
	if err != nil {
		t.Fatalf("Unwrap legacy: %v", err)
	}
	ct, err := dk.Seal([]byte("alice@example.com"), []byte("acct-1|email"))
	if err != nil {
		t.Fatal(err)
	}
	oldIndex := v.BlindIndex("email", "alice@example.com")
	secret, err := v.SealSecret("staff totp", []byte("seed"), []byte("stf_1"))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := KEKOf(secret); id != LegacyKEK {
		t.Fatalf("secret sealed under KEK %d, want the primary 0", id)
	}

	// Another process (a second Vault on the same directory) adds a KEK;
	// this one follows.
	other := openTest(t, dir, legacyPath)
	id, err := other.AddKEK()
	if err != nil || id != 1 {
		t.Fatalf("AddKEK = %d, %v; want 1", id, err)
	}
	if err := v.Refresh(); err != nil {
		t.Fatal(err)
	}
	if p, _ := v.Primary(); p != 1 {
		t.Fatalf("primary after AddKEK elsewhere = %d, want 1", p)
	}
	idx := v.BlindIndexes("email", "alice@example.com")
	if len(idx) != 2 || !bytes.Equal(idx[1], oldIndex) || !bytes.Equal(idx[0], v.BlindIndex("email", "alice@example.com")) {
		t.Fatalf("BlindIndexes = %x, want the primary's then the legacy KEK's", idx)
	}
	if bytes.Equal(idx[0], idx[1]) {
		t.Fatalf("blind indexes of two KEKs agree")
	}

	// Re-wrap: same data key, new KEK, and a second Rewrap is a no-op.
	rewrapped, changed, err := v.Rewrap("acct-1", old)
	if err != nil || !changed {
		t.Fatalf("Rewrap = %v, %v; want changed", changed, err)
	}
	if id, _ := KEKOf(rewrapped); id != 1 {
		t.Fatalf("rewrapped under KEK %d, want 1", id)
	}
	if again, changed, err := v.Rewrap("acct-1", rewrapped); err != nil || changed || !bytes.Equal(again, rewrapped) {
		t.Fatalf("second Rewrap = %v, %v; want unchanged", changed, err)
	}
	resealed, changed, err := v.Reseal("staff totp", secret, []byte("stf_1"))
	if err != nil || !changed {
		t.Fatalf("Reseal = %v, %v", changed, err)
	}
	// The other process never saw these; it unwraps them by looking again.
	dk2, err := other.Unwrap("acct-1", rewrapped)
	if err != nil {
		t.Fatalf("Unwrap of a key wrapped elsewhere: %v", err)
	}
	if pt, err := dk2.Open(ct, []byte("acct-1|email")); err != nil || string(pt) != "alice@example.com" {
		t.Fatalf("data under the rewrapped key: %q, %v", pt, err)
	}
	if pt, err := other.OpenSecret("staff totp", resealed, []byte("stf_1")); err != nil || string(pt) != "seed" {
		t.Fatalf("OpenSecret resealed: %q, %v", pt, err)
	}

	if err := v.Destroy(1); err == nil {
		t.Fatalf("Destroy(primary): got nil error")
	}
	// Destroy the legacy KEK through a hard link kept aside, to see that
	// its blocks are overwritten, not just unlinked.
	keep := filepath.Join(base, "kept-link")
	if err := os.Link(legacyPath, keep); err != nil {
		t.Fatal(err)
	}
	if err := other.Destroy(LegacyKEK); err != nil {
		t.Fatalf("Destroy(0): %v", err)
	}
	if _, err := os.Stat(legacyPath); !os.IsNotExist(err) {
		t.Fatalf("legacy key file still there (stat %v)", err)
	}
	if got, _ := os.ReadFile(keep); bytes.Equal(got, legacy) || len(got) != KEKSize {
		t.Fatalf("the destroyed key file's content survives: %x", got)
	}
	if err := other.Destroy(LegacyKEK); err != nil {
		t.Fatalf("Destroy of a destroyed KEK: %v", err)
	}

	// What the destroyed KEK wrapped cannot be opened, by either process
	// (v learns of the destruction by looking at the keyring).
	if err := v.Refresh(); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]*Vault{"v": v, "other": other, "reopened": openTest(t, dir, legacyPath)} {
		if _, err := w.Unwrap("acct-1", old); !errors.Is(err, ErrUnknownKEK) {
			t.Errorf("%s: Unwrap under the destroyed KEK: got %v, want ErrUnknownKEK", name, err)
		}
		if _, err := w.OpenSecret("staff totp", secret, []byte("stf_1")); !errors.Is(err, ErrUnknownKEK) {
			t.Errorf("%s: OpenSecret under the destroyed KEK: got %v, want ErrUnknownKEK", name, err)
		}
		if got := w.BlindIndexes("email", "alice@example.com"); len(got) != 1 || bytes.Equal(got[0], oldIndex) {
			t.Errorf("%s: BlindIndexes after destruction = %x, want only KEK 1's", name, got)
		}
		if _, err := w.Unwrap("acct-1", rewrapped); err != nil {
			t.Errorf("%s: Unwrap of the rewrapped key: %v", name, err)
		}
	}
	// The reopened keyring did not bring the legacy KEK back.
	if _, err := os.Stat(legacyPath); !os.IsNotExist(err) {
		t.Fatalf("reopening recreated the legacy file")
	}
}

func TestDeriveKeyStableAcrossRotation(t *testing.T) {
	v := openTest(t, filepath.Join(t.TempDir(), "keyring"), "")
	before := v.DeriveKey("one-time codes")
	if _, err := v.AddKEK(); err != nil {
		t.Fatal(err)
	}
	if err := v.Destroy(1); err != nil {
		t.Fatal(err)
	}
	if after := v.DeriveKey("one-time codes"); !bytes.Equal(before, after) {
		t.Errorf("DeriveKey changed with the KEKs")
	}
}

func TestNewHasNoKeyring(t *testing.T) {
	v := newTestVault(t, 1)
	if _, err := v.AddKEK(); err == nil {
		t.Errorf("AddKEK on a New vault: got nil error")
	}
	if err := v.Destroy(1); err == nil {
		t.Errorf("Destroy on a New vault: got nil error")
	}
	if err := v.Refresh(); err != nil {
		t.Errorf("Refresh on a New vault: %v", err)
	}
}

// TestOpenExisting: with Existing, Open creates nothing, and says so with
// fs.ErrNotExist, when the directory, every KEK or the derivation key is
// missing; a complete keyring opens.
func TestOpenExisting(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "none")
	if _, err := Open(Config{Dir: missing, Existing: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: got %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open created %s", missing)
	}
	dir := filepath.Join(base, "keyring")
	v := openTest(t, dir, "")
	_, wrapped, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(Config{Dir: dir, Existing: true})
	if err != nil {
		t.Fatalf("complete keyring: %v", err)
	}
	if _, err := got.Unwrap("acct-1", wrapped); err != nil {
		t.Errorf("Unwrap: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "kek-1.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir, Existing: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no KEK: got %v, want fs.ErrNotExist", err)
	}
	if err := os.Remove(filepath.Join(dir, "derive.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir, Existing: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no derivation key: got %v, want fs.ErrNotExist", err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("Open created %v", names)
	}
}
