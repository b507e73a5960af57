// Package vault encrypts personal data at rest.
//
// A Vault holds the key-encryption key (KEK), a 32-byte secret kept outside
// the database, usually in a file read by LoadOrCreate. Every account gets its
// own random AES-256 data key (DataKey); the database stores only the data
// key's wrapped form, encrypted under a wrapping key derived from the KEK.
// Personal data such as email addresses and mobile numbers is sealed with the
// account's data key. Lookups use blind indexes (BlindIndex), keyed HMACs of
// the normalized value, so the database never needs plaintext to find a row.
//
// # Crypto-shredding
//
// Deleting an account's wrapped data key makes everything sealed under that
// key unrecoverable, in the live database and in every backup alike, because
// the data key exists nowhere else: it is never stored unwrapped, and the KEK
// alone cannot reconstruct it. Erasure therefore only has to delete one row.
// Blind indexes are not covered by this: they are derived from the KEK, so
// rows holding them must be deleted too.
//
// # Formats
//
// Wrapped data keys and ciphertexts both start with a version byte so that
// algorithms and keys can be rotated later. Version 1 is:
//
//	wrapped key: 0x01 || nonce (12) || AES-256-GCM(wrapping key, data key (32), AAD = accountID)
//	ciphertext:  0x01 || nonce (12) || AES-256-GCM(data key, plaintext, AAD = caller's aad)
//
// The wrapping key is HKDF-SHA256(KEK, salt = empty, info = "nitronet key-wrap v1").
//
// Nonces are random. With 96-bit random nonces a single data key must not
// seal more than about 2^32 messages; one key per account keeps every real
// workload far below that.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"golang.org/x/crypto/hkdf"
)

// KEKSize is the size in bytes of the key-encryption key, and so the exact
// size of the key file read by LoadOrCreate.
const KEKSize = 32

// DataKeySize is the size in bytes of a data key (AES-256).
const DataKeySize = 32

// version1 is the format version of wrapped keys and ciphertexts.
const version1 byte = 1

const (
	nonceSize = 12
	tagSize   = 16
	// WrappedKeySize is the length of a wrapped data key in version 1.
	WrappedKeySize = 1 + nonceSize + DataKeySize + tagSize
	// Overhead is the number of bytes Seal adds to a plaintext in version 1.
	Overhead = 1 + nonceSize + tagSize
)

// HKDF info labels. Each label starts with a distinct prefix so that no
// caller-chosen kind or purpose can collide with another label.
const (
	infoWrap       = "nitronet key-wrap v1"
	infoBlindIndex = "nitronet blind-index v1 "
	infoDerive     = "nitronet derive v1 "
	infoSecret     = "nitronet secret v1 "
)

// Errors returned by Open and Unwrap. They are deliberately uninformative:
// a caller learns that decryption failed, not why.
var (
	// ErrDecrypt means a ciphertext or wrapped key failed authentication:
	// it was tampered with, truncated, or opened with the wrong key, account
	// or AAD.
	ErrDecrypt = errors.New("vault: decryption failed")
	// ErrVersion means the ciphertext or wrapped key has an unknown version byte.
	ErrVersion = errors.New("vault: unsupported format version")
	// ErrDestroyed means the DataKey was destroyed.
	ErrDestroyed = errors.New("vault: data key destroyed")
)

// Vault derives keys from a key-encryption key. It is safe for concurrent
// use, provided its random source is (crypto/rand.Reader is).
//
// A Vault never prints its key material: String, GoString and LogValue
// return a redacted placeholder.
type Vault struct {
	prk     []byte // HKDF-Extract(salt = empty, KEK)
	wrapKey []byte // HKDF-Expand(prk, infoWrap)
	rand    io.Reader
}

// New returns a Vault for the 32-byte key-encryption key kek. The Vault keeps
// only keys derived from kek, not kek itself; the caller may zero kek after
// New returns. rand supplies data keys and nonces; nil means
// crypto/rand.Reader.
func New(kek []byte, rand io.Reader) (*Vault, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("vault: key-encryption key is %d bytes, want %d", len(kek), KEKSize)
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	v := &Vault{
		prk:  hkdf.Extract(sha256.New, kek, nil),
		rand: rand,
	}
	v.wrapKey = v.expand(infoWrap)
	return v, nil
}

// expand returns 32 bytes of HKDF-Expand(v.prk, info). It is equal to
// HKDF-SHA256(KEK, salt = empty, info).
func (v *Vault) expand(info string) []byte {
	out := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.Expand(sha256.New, v.prk, []byte(info)), out); err != nil {
		// HKDF-SHA256 can produce up to 255*32 bytes; 32 never fails.
		panic("vault: hkdf expand: " + err.Error())
	}
	return out
}

// NewDataKey returns a fresh random data key for the account and its wrapped
// form, which the caller stores. accountID is bound into the wrapped form as
// AES-GCM additional data, so the wrapped key only unwraps for that account.
// It returns an error if accountID is empty or the random source fails.
func (v *Vault) NewDataKey(accountID string) (*DataKey, []byte, error) {
	if accountID == "" {
		return nil, nil, errors.New("vault: new data key: empty account ID")
	}
	k := &DataKey{rand: v.rand}
	if _, err := io.ReadFull(v.rand, k.key[:]); err != nil {
		return nil, nil, fmt.Errorf("vault: new data key: %w", err)
	}
	wrapped, err := seal(v.wrapKey, v.rand, k.key[:], []byte(accountID))
	if err != nil {
		k.Destroy()
		return nil, nil, fmt.Errorf("vault: wrap data key: %w", err)
	}
	return k, wrapped, nil
}

// Unwrap returns the data key whose wrapped form NewDataKey returned for
// accountID. It returns ErrVersion for an unknown format version and
// ErrDecrypt if wrapped was altered, belongs to another account, or was
// wrapped under another key-encryption key. It never panics on malformed
// input.
func (v *Vault) Unwrap(accountID string, wrapped []byte) (*DataKey, error) {
	if len(wrapped) > 0 && wrapped[0] != version1 {
		return nil, ErrVersion
	}
	if len(wrapped) != WrappedKeySize || accountID == "" {
		return nil, ErrDecrypt
	}
	raw, err := open(v.wrapKey, wrapped, []byte(accountID))
	if err != nil {
		return nil, err
	}
	k := &DataKey{rand: v.rand}
	copy(k.key[:], raw)
	clear(raw)
	return k, nil
}

// BlindIndex returns HMAC-SHA256(k_kind, normalized), where k_kind is
// HKDF-SHA256(KEK, salt = empty, info = "nitronet blind-index v1 " + kind).
// kind names the kind of value, such as "email" or "mobile", so equal
// strings of different kinds get unrelated indexes. The result is 32 bytes
// and depends only on the KEK, kind and normalized. The caller must normalize
// the value (e.g. lowercase an email, format a number as E.164) first.
func (v *Vault) BlindIndex(kind, normalized string) []byte {
	key := v.expand(infoBlindIndex + kind)
	defer clear(key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(normalized))
	return m.Sum(nil)
}

// DeriveKey returns a 32-byte subkey of the KEK for purpose:
// HKDF-SHA256(KEK, salt = empty, info = "nitronet derive v1 " + purpose).
// Distinct purposes give independent keys, and no purpose yields a wrapping
// or blind-index key. The caller owns the returned slice.
func (v *Vault) DeriveKey(purpose string) []byte {
	return v.expand(infoDerive + purpose)
}

// SealSecret encrypts a service secret that is not personal data of a
// user (for example a staff member's TOTP seed) with AES-256-GCM under a
// key derived from the KEK for purpose, binding aad. Unlike a user's PII it
// is not crypto-shredded with an account.
func (v *Vault) SealSecret(purpose string, plaintext, aad []byte) ([]byte, error) {
	key := v.expand(infoSecret + purpose)
	defer clear(key)
	return seal(key, v.rand, plaintext, aad)
}

// OpenSecret reverses SealSecret; the wrong purpose or aad, or tampering,
// returns ErrDecrypt.
func (v *Vault) OpenSecret(purpose string, ciphertext, aad []byte) ([]byte, error) {
	key := v.expand(infoSecret + purpose)
	defer clear(key)
	return open(key, ciphertext, aad)
}

// String returns a redacted placeholder.
func (v *Vault) String() string { return "vault.Vault(REDACTED)" }

// GoString returns a redacted placeholder.
func (v *Vault) GoString() string { return v.String() }

// LogValue implements slog.LogValuer with a redacted value.
func (v *Vault) LogValue() slog.Value { return slog.StringValue(v.String()) }

// DataKey is one account's AES-256-GCM data key. Seal and Open are safe for
// concurrent use with each other and with Destroy.
//
// A DataKey never prints its key material: String, GoString and LogValue
// return a redacted placeholder.
type DataKey struct {
	mu        sync.RWMutex
	key       [DataKeySize]byte
	destroyed bool
	rand      io.Reader
}

// Seal encrypts plaintext with AES-256-GCM under k with a random nonce and
// returns version || nonce || ciphertext || tag, len(plaintext)+Overhead
// bytes. aad is authenticated but not encrypted; it binds the ciphertext to
// its context, e.g. accountID+"|email", and Open must be given the same aad.
// Seal returns ErrDestroyed after Destroy.
func (k *DataKey) Seal(plaintext, aad []byte) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.destroyed {
		return nil, ErrDestroyed
	}
	return seal(k.key[:], k.rand, plaintext, aad)
}

// Open decrypts and authenticates a ciphertext produced by Seal with the same
// aad. It returns ErrVersion for an unknown format version, ErrDecrypt if
// ciphertext was altered or aad differs, and ErrDestroyed after Destroy. It
// never panics on malformed input.
func (k *DataKey) Open(ciphertext, aad []byte) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.destroyed {
		return nil, ErrDestroyed
	}
	return open(k.key[:], ciphertext, aad)
}

// Destroy zeroes the key material. Later calls to Seal and Open return
// ErrDestroyed. Destroy is idempotent. It is best effort: copies the Go
// runtime or the AES implementation made of the key are beyond its reach.
func (k *DataKey) Destroy() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.key[:])
	k.destroyed = true
}

// Equal reports, in constant time, whether k and o hold the same key. A nil
// or destroyed key equals nothing. It is meant for tests.
func (k *DataKey) Equal(o *DataKey) bool {
	if k == nil || o == nil {
		return false
	}
	a, aok := k.snapshot()
	b, bok := o.snapshot()
	defer clear(a[:])
	defer clear(b[:])
	return aok && bok && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// snapshot returns a copy of the key and whether k is not destroyed.
func (k *DataKey) snapshot() ([DataKeySize]byte, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.key, !k.destroyed
}

// String returns a redacted placeholder.
func (k *DataKey) String() string { return "vault.DataKey(REDACTED)" }

// GoString returns a redacted placeholder.
func (k *DataKey) GoString() string { return k.String() }

// LogValue implements slog.LogValuer with a redacted value.
func (k *DataKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// newGCM returns AES-256-GCM for key.
func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal returns version1 || nonce || AES-GCM(key, plaintext, aad).
func seal(key []byte, rand io.Reader, plaintext, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = version1
	if _, err := io.ReadFull(rand, out[1:]); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plaintext, aad), nil
}

// open reverses seal.
func open(key, ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) > 0 && ciphertext[0] != version1 {
		return nil, ErrVersion
	}
	if len(ciphertext) < Overhead {
		return nil, ErrDecrypt
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce, body := ciphertext[1:1+nonceSize], ciphertext[1+nonceSize:]
	pt, err := aead.Open(nil, nonce, body, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
