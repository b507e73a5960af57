package acctkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/vault"
)

// accounts serves account records from a map.
type accounts map[string]*store.Account

func (m accounts) Account(_ context.Context, id string) (*store.Account, error) {
	a, ok := m[id]
	if !ok {
		return nil, errs.E(errs.NotFound, "account not found")
	}
	return a, nil
}

func newKeys(t *testing.T) (*acctkey.Keys, accounts) {
	t.Helper()
	kek := make([]byte, vault.KEKSize)
	rand.Read(kek)
	v, err := vault.New(kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := accounts{}
	for _, id := range []string{"acc_a", "acc_b"} {
		dk, wrapped, err := v.NewDataKey(id)
		if err != nil {
			t.Fatal(err)
		}
		dk.Destroy()
		m[id] = &store.Account{ID: id, WrappedKey: wrapped}
	}
	m["acc_erased"] = &store.Account{ID: "acc_erased"}
	return acctkey.New(v, m), m
}

func TestSealOpen(t *testing.T) {
	keys, _ := newKeys(t)
	ctx := t.Context()
	ka, err := keys.Open(ctx, "acc_a")
	if err != nil {
		t.Fatal(err)
	}
	defer ka.Close()
	const text = "Work laptop of Alice Example"
	sealed, err := ka.Seal(acctkey.DeviceName, "dev_1", text)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("Alice")) || len(sealed) != len(text)+vault.Overhead {
		t.Fatalf("sealed value: %d bytes %q, want %d bytes of ciphertext", len(sealed), sealed, len(text)+vault.Overhead)
	}
	got, err := ka.Open(acctkey.DeviceName, "dev_1", sealed)
	if err != nil || got != text {
		t.Fatalf("Open: got %q, %v, want %q", got, err, text)
	}
	kb, err := keys.Open(ctx, "acc_b")
	if err != nil {
		t.Fatal(err)
	}
	defer kb.Close()
	for _, c := range []struct {
		name   string
		key    *acctkey.Key
		field  acctkey.Field
		record string
	}{
		{"another record", ka, acctkey.DeviceName, "dev_2"},
		{"another field", ka, acctkey.InboxMessage, "dev_1"},
		{"another account", kb, acctkey.DeviceName, "dev_1"},
	} {
		if _, err := c.key.Open(c.field, c.record, sealed); !errors.Is(err, vault.ErrDecrypt) {
			t.Errorf("%s: got %v, want vault.ErrDecrypt", c.name, err)
		}
	}
	if _, err := ka.Seal(acctkey.DeviceName, "", text); err == nil {
		t.Error("Seal with an empty record ID: got nil error")
	}
	ka.Close()
	if _, err := ka.Open(acctkey.DeviceName, "dev_1", sealed); !errors.Is(err, vault.ErrDestroyed) {
		t.Errorf("Open after Close: got %v, want vault.ErrDestroyed", err)
	}
}

func TestOpenErrors(t *testing.T) {
	keys, _ := newKeys(t)
	if _, err := keys.Open(t.Context(), "acc_erased"); !errs.Is(err, errs.Gone) {
		t.Errorf("erased account: got %v, want Gone", err)
	}
	if _, err := keys.Open(t.Context(), "acc_nobody"); !errs.Is(err, errs.NotFound) {
		t.Errorf("unknown account: got %v, want NotFound", err)
	}
}

// TestIndex: an index is the same for the same text, account and field,
// differs for another text, field or account, does not contain the text,
// and is unchanged after a KEK rotation re-wraps the account's key.
func TestIndex(t *testing.T) {
	v, err := vault.Open(vault.Config{Dir: filepath.Join(t.TempDir(), "keyring")})
	if err != nil {
		t.Fatal(err)
	}
	m := accounts{}
	for _, id := range []string{"acc_a", "acc_b"} {
		dk, wrapped, err := v.NewDataKey(id)
		if err != nil {
			t.Fatal(err)
		}
		dk.Destroy()
		m[id] = &store.Account{ID: id, WrappedKey: wrapped}
	}
	keys := acctkey.New(v, m)
	index := func(account string, f acctkey.Field, text string) []byte {
		t.Helper()
		k, err := keys.Open(t.Context(), account)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		ix, err := k.Index(f, text)
		if err != nil {
			t.Fatal(err)
		}
		return ix
	}
	a := index("acc_a", acctkey.DeviceName, "laptop")
	if len(a) != 32 || bytes.Contains(a, []byte("laptop")) {
		t.Fatalf("index: %x, want 32 bytes without the text", a)
	}
	if again := index("acc_a", acctkey.DeviceName, "laptop"); !bytes.Equal(a, again) {
		t.Fatalf("same text, account and field: %x then %x", a, again)
	}
	for name, other := range map[string][]byte{
		"another text":    index("acc_a", acctkey.DeviceName, "Laptop"),
		"another field":   index("acc_a", acctkey.InboxMessage, "laptop"),
		"another account": index("acc_b", acctkey.DeviceName, "laptop"),
	} {
		if bytes.Equal(a, other) {
			t.Errorf("%s: the same index %x", name, a)
		}
	}
	if _, err := v.AddKEK(); err != nil {
		t.Fatal(err)
	}
	rewrapped, changed, err := v.Rewrap("acc_a", m["acc_a"].WrappedKey)
	if err != nil || !changed {
		t.Fatalf("Rewrap: changed %v, %v", changed, err)
	}
	m["acc_a"] = &store.Account{ID: "acc_a", WrappedKey: rewrapped}
	if after := index("acc_a", acctkey.DeviceName, "laptop"); !bytes.Equal(a, after) {
		t.Fatalf("after a KEK rotation: %x, want %x", after, a)
	}
	k, err := keys.Open(t.Context(), "acc_a")
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	if _, err := k.Index(acctkey.DeviceName, "laptop"); !errors.Is(err, vault.ErrDestroyed) {
		t.Errorf("Index after Close: got %v, want vault.ErrDestroyed", err)
	}
}
