package vault

import (
	"bytes"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// testKEK returns a deterministic KEK for seed.
func testKEK(seed byte) []byte {
	k := make([]byte, KEKSize)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

func newTestVault(t testing.TB, seed byte) *Vault {
	t.Helper()
	v, err := New(testKEK(seed), cryptorand.Reader)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func TestNewKEKSize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if _, err := New(make([]byte, n), nil); err == nil {
				t.Errorf("New(%d-byte KEK): got nil error, want error", n)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	v := newTestVault(t, 1)
	k, _, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatalf("NewDataKey: %v", err)
	}
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"email", []byte("alice@example.com"), []byte("acct-1|email")},
		{"mobile", []byte("+41791234567"), []byte("acct-1|mobile")},
		{"empty plaintext", nil, []byte("acct-1|x")},
		{"empty aad", []byte("data"), nil},
		{"binary", []byte{0, 1, 2, 255, 0}, []byte{0}},
		{"large", bytes.Repeat([]byte("x"), 1<<16), []byte("acct-1|blob")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, err := k.Seal(tt.plaintext, tt.aad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if got, want := len(ct), len(tt.plaintext)+Overhead; got != want {
				t.Errorf("len(ciphertext) = %d, want %d", got, want)
			}
			if ct[0] != version1 {
				t.Errorf("version byte = %d, want %d", ct[0], version1)
			}
			got, err := k.Open(ct, tt.aad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open = %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestSealRandomNonce(t *testing.T) {
	v := newTestVault(t, 1)
	k, _, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := k.Seal([]byte("same"), []byte("aad"))
	b, _ := k.Seal([]byte("same"), []byte("aad"))
	if bytes.Equal(a, b) {
		t.Errorf("two Seals of the same plaintext are equal, want distinct ciphertexts")
	}
}

func TestOpenRejects(t *testing.T) {
	v := newTestVault(t, 1)
	k, _, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("acct-1|email")
	ct, err := k.Seal([]byte("alice@example.com"), aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name string
		key  *DataKey
		ct   []byte
		aad  []byte
		want error
	}{
		{"wrong aad", k, ct, []byte("acct-1|mobile"), ErrDecrypt},
		{"nil aad", k, ct, nil, ErrDecrypt},
		{"other key", other, ct, aad, ErrDecrypt},
		{"tampered nonce", k, flip(1), aad, ErrDecrypt},
		{"tampered body", k, flip(1 + nonceSize), aad, ErrDecrypt},
		{"tampered tag", k, flip(len(ct) - 1), aad, ErrDecrypt},
		{"truncated", k, ct[:len(ct)-1], aad, ErrDecrypt},
		{"too short", k, ct[:Overhead-1], aad, ErrDecrypt},
		{"empty", k, nil, aad, ErrDecrypt},
		{"appended", k, append(bytes.Clone(ct), 0), aad, ErrDecrypt},
		{"unknown version", k, flip(0), aad, ErrVersion},
		{"version zero", k, append([]byte{0}, ct[1:]...), aad, ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.key.Open(tt.ct, tt.aad)
			if !errors.Is(err, tt.want) {
				t.Errorf("Open error = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Errorf("Open plaintext = %q, want nil", got)
			}
		})
	}
}

func TestCiphertextHidesPlaintext(t *testing.T) {
	v := newTestVault(t, 1)
	k, wrapped, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range []string{
		"alice.wonderland@example.com",
		"+41791234567",
		strings.Repeat("A", 4096), // long runs must not leak either
	} {
		ct, err := k.Seal([]byte(pt), []byte("acct-1|email"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(ct, []byte(pt)) {
			t.Errorf("ciphertext contains plaintext %.20q", pt)
		}
		// No 8-byte window of the plaintext may appear either.
		for i := 0; i+8 <= len(pt) && i < 64; i++ {
			if bytes.Contains(ct, []byte(pt[i:i+8])) {
				t.Errorf("ciphertext contains plaintext fragment %q", pt[i:i+8])
			}
		}
	}
	if bytes.Contains(wrapped, k.key[:]) {
		t.Errorf("wrapped key contains the raw data key")
	}
}

func TestUnwrap(t *testing.T) {
	v := newTestVault(t, 1)
	k, wrapped, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := KEKOf(wrapped); err != nil || id != 1 || wrapped[0] != version2 {
		t.Fatalf("KEKOf(wrapped) = %d, %v; want KEK 1 in version 2", id, err)
	}
	if got, want := len(wrapped), WrappedKeySize; got != want {
		t.Fatalf("len(wrapped) = %d, want %d", got, want)
	}
	ct, err := k.Seal([]byte("alice@example.com"), []byte("acct-1|email"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("round trip", func(t *testing.T) {
		u, err := v.Unwrap("acct-1", wrapped)
		if err != nil {
			t.Fatalf("Unwrap: %v", err)
		}
		if !u.Equal(k) {
			t.Errorf("unwrapped key differs from the original")
		}
		pt, err := u.Open(ct, []byte("acct-1|email"))
		if err != nil || string(pt) != "alice@example.com" {
			t.Errorf("Open with unwrapped key = %q, %v; want %q, nil", pt, err, "alice@example.com")
		}
	})
	t.Run("same KEK, new Vault", func(t *testing.T) {
		u, err := newTestVault(t, 1).Unwrap("acct-1", wrapped)
		if err != nil {
			t.Fatalf("Unwrap: %v", err)
		}
		if !u.Equal(k) {
			t.Errorf("unwrapped key differs from the original")
		}
	})

	flip := func(i int) []byte {
		w := bytes.Clone(wrapped)
		w[i] ^= 0x80
		return w
	}
	tests := []struct {
		name    string
		vault   *Vault
		account string
		wrapped []byte
		want    error
	}{
		{"wrong account", v, "acct-2", wrapped, ErrDecrypt},
		{"account prefix", v, "acct-", wrapped, ErrDecrypt},
		{"empty account", v, "", wrapped, ErrDecrypt},
		{"other KEK", newTestVault(t, 2), "acct-1", wrapped, ErrDecrypt},
		{"tampered KEK id", v, "acct-1", flip(4), ErrUnknownKEK},
		{"tampered nonce", v, "acct-1", flip(headerSize), ErrDecrypt},
		{"tampered key", v, "acct-1", flip(headerSize + nonceSize), ErrDecrypt},
		{"tampered tag", v, "acct-1", flip(len(wrapped) - 1), ErrDecrypt},
		{"truncated", v, "acct-1", wrapped[:len(wrapped)-1], ErrDecrypt},
		{"appended", v, "acct-1", append(bytes.Clone(wrapped), 0), ErrDecrypt},
		{"empty", v, "acct-1", nil, ErrDecrypt},
		{"unknown version", v, "acct-1", flip(0), ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.vault.Unwrap(tt.account, tt.wrapped)
			if !errors.Is(err, tt.want) {
				t.Errorf("Unwrap error = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Errorf("Unwrap key = %v, want nil", got)
			}
		})
	}
}

func TestNewDataKeyEmptyAccount(t *testing.T) {
	if _, _, err := newTestVault(t, 1).NewDataKey(""); err == nil {
		t.Errorf("NewDataKey(\"\"): got nil error, want error")
	}
}

func TestNewDataKeyFresh(t *testing.T) {
	v := newTestVault(t, 1)
	a, wa, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	b, wb, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Equal(b) || bytes.Equal(wa, wb) {
		t.Errorf("two NewDataKey calls returned the same key")
	}
}

func TestRandFailure(t *testing.T) {
	v, err := New(testKEK(1), bytes.NewReader(make([]byte, 10)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.NewDataKey("acct-1"); err == nil {
		t.Errorf("NewDataKey with exhausted rand: got nil error, want error")
	}
}

func TestDestroy(t *testing.T) {
	v := newTestVault(t, 1)
	k, _, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	ct, err := k.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	k.Destroy()
	if k.key != [DataKeySize]byte{} {
		t.Errorf("key material not zeroed after Destroy")
	}
	if _, err := k.Seal([]byte("x"), nil); !errors.Is(err, ErrDestroyed) {
		t.Errorf("Seal after Destroy: error = %v, want %v", err, ErrDestroyed)
	}
	if _, err := k.Open(ct, nil); !errors.Is(err, ErrDestroyed) {
		t.Errorf("Open after Destroy: error = %v, want %v", err, ErrDestroyed)
	}
	k.Destroy() // idempotent
}

func TestConcurrentUse(t *testing.T) {
	v := newTestVault(t, 1)
	k, wrapped, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			aad := []byte(fmt.Sprint(i))
			ct, err := k.Seal([]byte("data"), aad)
			if err != nil {
				t.Errorf("Seal: %v", err)
				return
			}
			if _, err := k.Open(ct, aad); err != nil {
				t.Errorf("Open: %v", err)
			}
			if _, err := v.Unwrap("acct-1", wrapped); err != nil {
				t.Errorf("Unwrap: %v", err)
			}
			v.BlindIndex("email", "a@example.com")
		})
	}
	wg.Wait()
	k.Destroy()
}

func TestBlindIndex(t *testing.T) {
	v := newTestVault(t, 1)
	v2 := newTestVault(t, 1)
	other := newTestVault(t, 2)

	if got := len(v.BlindIndex("email", "a@example.com")); got != 32 {
		t.Errorf("len(BlindIndex) = %d, want 32", got)
	}
	t.Run("deterministic", func(t *testing.T) {
		a := v.BlindIndex("email", "alice@example.com")
		b := v.BlindIndex("email", "alice@example.com")
		c := v2.BlindIndex("email", "alice@example.com")
		if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
			t.Errorf("BlindIndex not deterministic: got %x, %x, %x", a, b, c)
		}
	})
	tests := []struct {
		name       string
		v1, v2     *Vault
		k1, k2     string
		val1, val2 string
	}{
		{"distinct kinds", v, v, "email", "mobile", "+41791234567", "+41791234567"},
		{"distinct values", v, v, "email", "email", "alice@example.com", "bob@example.com"},
		{"distinct KEKs", v, other, "email", "email", "alice@example.com", "alice@example.com"},
		{"kind/value boundary", v, v, "email", "emai", "x", "lx"},
		{"case", v, v, "email", "email", "alice@example.com", "Alice@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.v1.BlindIndex(tt.k1, tt.val1)
			b := tt.v2.BlindIndex(tt.k2, tt.val2)
			if bytes.Equal(a, b) {
				t.Errorf("BlindIndex(%q, %q) == BlindIndex(%q, %q) = %x, want distinct", tt.k1, tt.val1, tt.k2, tt.val2, a)
			}
		})
	}
	t.Run("not a plain hash of the value", func(t *testing.T) {
		if bytes.Contains(v.BlindIndex("email", "alice@example.com"), []byte("alice")) {
			t.Errorf("blind index contains the value")
		}
	})
}

func TestDeriveKey(t *testing.T) {
	v := newTestVault(t, 1)
	a := v.DeriveKey("ratelimit")
	if len(a) != 32 {
		t.Fatalf("len(DeriveKey) = %d, want 32", len(a))
	}
	if b := newTestVault(t, 1).DeriveKey("ratelimit"); !bytes.Equal(a, b) {
		t.Errorf("DeriveKey not deterministic: got %x and %x", a, b)
	}
	seen := map[string]string{string(a): "derive ratelimit"}
	for name, k := range map[string][]byte{
		"derive signing":       v.DeriveKey("signing"),
		"derive empty":         v.DeriveKey(""),
		"other KEK":            newTestVault(t, 2).DeriveKey("ratelimit"),
		"wrap key":             v.keks[1].wrapKey,
		"blind-index email":    expand(v.keks[1].prk, infoBlindIndex+"email"),
		"blind-index empty":    expand(v.keks[1].prk, infoBlindIndex),
		"derive 'email'":       v.DeriveKey("email"),
		"derive blind-index..": v.DeriveKey("blind-index v1 email"),
	} {
		if prev, ok := seen[string(k)]; ok {
			t.Errorf("key %q equals key %q, want distinct", name, prev)
		}
		seen[string(k)] = name
	}
	// The caller owns the result: changing it must not affect the Vault.
	a[0] ^= 0xff
	if b := v.DeriveKey("ratelimit"); bytes.Equal(a, b) {
		t.Errorf("DeriveKey returned shared memory")
	}
}

func TestRedacted(t *testing.T) {
	v := newTestVault(t, 1)
	k, _, err := v.NewDataKey("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("keys", "vault", v, "key", k)
	for _, s := range []string{
		fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s", v, v, v, v),
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k),
		buf.String(),
	} {
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("formatted key = %q, want REDACTED", s)
		}
		if strings.Contains(s, fmt.Sprint(k.key[:4])) || strings.Contains(s, fmt.Sprintf("%x", k.key[:4])) {
			t.Errorf("formatted key %q leaks key material", s)
		}
	}
}

func writeKey(t *testing.T, path string, size int, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{7}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // not subject to umask
		t.Fatal(err)
	}
	return path
}

func TestSealSecret(t *testing.T) {
	v, err := New(bytes.Repeat([]byte{7}, KEKSize), nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := v.SealSecret("staff totp", []byte("seed"), []byte("stf_1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("seed")) {
		t.Fatal("ciphertext holds the plaintext")
	}
	if pt, err := v.OpenSecret("staff totp", ct, []byte("stf_1")); err != nil || string(pt) != "seed" {
		t.Fatalf("got %q, %v; want seed", pt, err)
	}
	for _, tc := range []struct{ purpose, aad string }{{"other", "stf_1"}, {"staff totp", "stf_2"}} {
		if _, err := v.OpenSecret(tc.purpose, ct, []byte(tc.aad)); err == nil {
			t.Errorf("opened with purpose %q aad %q, want an error", tc.purpose, tc.aad)
		}
	}
}
