package acctkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
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
