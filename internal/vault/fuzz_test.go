package vault

import (
	"bytes"
	"errors"
	mathrand "math/rand/v2"
	"testing"
)

// fuzzFixture returns a deterministic vault, data key, wrapped key and
// ciphertext to seed the corpora.
func fuzzFixture(f *testing.F) (v *Vault, k *DataKey, wrapped, ct []byte) {
	f.Helper()
	v, err := New(testKEK(1), mathrand.NewChaCha8([32]byte{9}))
	if err != nil {
		f.Fatal(err)
	}
	k, wrapped, err = v.NewDataKey("acct-1")
	if err != nil {
		f.Fatal(err)
	}
	ct, err = k.Seal([]byte("alice@example.com"), []byte("acct-1|email"))
	if err != nil {
		f.Fatal(err)
	}
	return v, k, wrapped, ct
}

// FuzzOpen checks that Open never panics and never accepts anything but the
// one genuine ciphertext and aad.
func FuzzOpen(f *testing.F) {
	_, k, _, ct := fuzzFixture(f)
	aad := []byte("acct-1|email")
	f.Add(ct, aad)
	f.Add(ct, []byte("acct-1|mobile"))
	f.Add(ct[:Overhead], aad)
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte{})
	f.Add([]byte{2, 0, 0}, aad)
	f.Fuzz(func(t *testing.T, c, a []byte) {
		pt, err := k.Open(c, a)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrVersion) {
				t.Errorf("Open error = %v, want ErrDecrypt or ErrVersion", err)
			}
			return
		}
		if !bytes.Equal(c, ct) || !bytes.Equal(a, aad) {
			t.Errorf("Open accepted a forged ciphertext %x with aad %q (plaintext %q)", c, a, pt)
		}
	})
}

// FuzzUnwrap checks that Unwrap never panics and never accepts anything but
// the one genuine wrapped key and account.
func FuzzUnwrap(f *testing.F) {
	v, k, wrapped, _ := fuzzFixture(f)
	f.Add("acct-1", wrapped)
	f.Add("acct-2", wrapped)
	f.Add("", wrapped)
	f.Add("acct-1", wrapped[:len(wrapped)-1])
	f.Add("acct-1", []byte{})
	f.Add("acct-1", []byte{1})
	f.Add("acct-1", []byte{0xff})
	f.Add("acct-1", []byte{2, 0, 0, 0, 1})
	f.Add("acct-1", []byte{2, 0, 0, 0})
	f.Add("acct-1", append([]byte{1}, wrapped[headerSize:]...))
	f.Fuzz(func(t *testing.T, account string, w []byte) {
		got, err := v.Unwrap(account, w)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrUnknownKEK) {
				t.Errorf("Unwrap error = %v, want ErrDecrypt, ErrVersion or ErrUnknownKEK", err)
			}
			return
		}
		if account != "acct-1" || !bytes.Equal(w, wrapped) {
			t.Errorf("Unwrap accepted forged input account %q wrapped %x", account, w)
		}
		if !got.Equal(k) {
			t.Errorf("Unwrap returned a different key")
		}
	})
}

// FuzzOpenSecret checks that OpenSecret never panics and never accepts
// anything but the one genuine sealed secret and aad.
func FuzzOpenSecret(f *testing.F) {
	v, _, _, _ := fuzzFixture(f)
	sealed, err := v.SealSecret("staff totp", []byte("seed"), []byte("stf_1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, []byte("stf_1"))
	f.Add(sealed, []byte("stf_2"))
	f.Add(sealed[:headerSize], []byte("stf_1"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte{})
	f.Add(append([]byte{1}, sealed[headerSize:]...), []byte("stf_1"))
	f.Fuzz(func(t *testing.T, c, aad []byte) {
		pt, err := v.OpenSecret("staff totp", c, aad)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrUnknownKEK) {
				t.Errorf("OpenSecret error = %v", err)
			}
			return
		}
		if !bytes.Equal(c, sealed) || !bytes.Equal(aad, []byte("stf_1")) || string(pt) != "seed" {
			t.Errorf("OpenSecret accepted a forged secret %x with aad %q", c, aad)
		}
	})
}
