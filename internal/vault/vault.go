// Package vault encrypts personal data at rest.
//
// A Vault holds a keyring of key-encryption keys (KEKs), 32-byte secrets
// kept outside the database, usually in a keyring directory read by Open.
// Each KEK has a number (its id); the newest is the primary, under which
// everything new is wrapped. Every account gets its own random AES-256
// data key (DataKey); the database stores only the data key's wrapped
// form, encrypted under a wrapping key derived from a KEK and tagged with
// that KEK's id. Personal data such as email addresses and mobile numbers
// is sealed with the account's data key. Lookups use blind indexes
// (BlindIndex), keyed HMACs of the normalized value under a key derived
// from the primary KEK, so the database never needs plaintext to find a
// row.
//
// # Crypto-shredding and rotation
//
// Deleting an account's wrapped data key makes everything sealed under that
// key unrecoverable in the live database, because the data key exists
// nowhere else: it is never stored unwrapped, and no KEK can reconstruct
// it. A backup of the database taken before the deletion still holds the
// wrapped key, and stays readable for as long as the KEK that wrapped it
// exists. Rotation (package rekey) closes that gap: it adds a new KEK
// (AddKEK), re-wraps every live data key and staff secret under it
// (Rewrap, Reseal), re-derives every stored blind index, and then destroys
// the old KEK (Destroy). From then on a backup taken before the rotation
// opens with no KEK that exists. Blind indexes are derived from the KEK
// too, so a backup's indexes become useless with it.
//
// DeriveKey is different: its keys (one-time code hashes, CSRF tokens)
// come from a derivation key that is not rotated, because what they
// protect is short-lived and must survive a rotation.
//
// # Formats
//
// Wrapped data keys and sealed secrets start with a version byte. Version
// 2 is:
//
//	wrapped key: 0x02 || kek id (4, big endian) || nonce (12) || AES-256-GCM(wrapping key, data key (32), AAD = header || accountID)
//	secret:      0x02 || kek id (4, big endian) || nonce (12) || AES-256-GCM(secret key, plaintext, AAD = header || caller's aad)
//
// where header is the first five bytes. Version 1, written before
// keyrings, has no id and belongs to KEK 0, the key file of that time
// (Config.LegacyFile):
//
//	wrapped key: 0x01 || nonce (12) || AES-256-GCM(wrapping key, data key (32), AAD = accountID)
//	secret:      0x01 || nonce (12) || AES-256-GCM(secret key, plaintext, AAD = caller's aad)
//
// Ciphertexts under a data key are unchanged by rotation:
//
//	ciphertext:  0x01 || nonce (12) || AES-256-GCM(data key, plaintext, AAD = caller's aad)
//
// For a KEK, the wrapping key is HKDF-SHA256(KEK, salt = empty, info =
// "nitronet key-wrap v1"), a blind-index key HKDF-SHA256(KEK, info =
// "nitronet blind-index v1 " + kind), a secret key HKDF-SHA256(KEK, info =
// "nitronet secret v1 " + purpose). DeriveKey is HKDF-SHA256(derivation
// key, info = "nitronet derive v1 " + purpose); for a Vault made by New the
// derivation key is the KEK itself.
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
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/hkdf"
)

// KEKSize is the size in bytes of a key-encryption key, and so the exact
// size of each KEK file.
const KEKSize = 32

// DataKeySize is the size in bytes of a data key (AES-256).
const DataKeySize = 32

// Format versions of wrapped keys, secrets and ciphertexts.
const (
	version1 byte = 1 // no KEK id: KEK 0 (wrapped keys, secrets); every data-key ciphertext
	version2 byte = 2 // with a KEK id
)

const (
	nonceSize = 12
	tagSize   = 16
	idSize    = 4
	// headerSize is the length of a version 2 header: version and KEK id.
	headerSize = 1 + idSize
	// WrappedKeySize is the length of a wrapped data key (version 2).
	WrappedKeySize = headerSize + nonceSize + DataKeySize + tagSize
	// legacyWrappedKeySize is the length of a version 1 wrapped key.
	legacyWrappedKeySize = 1 + nonceSize + DataKeySize + tagSize
	// Overhead is the number of bytes Seal adds to a plaintext.
	Overhead = 1 + nonceSize + tagSize
)

// LegacyKEK is the id of the KEK that version 1 wrapped keys and secrets
// belong to: the single key file used before keyrings.
const LegacyKEK uint32 = 0

// HKDF info labels. Each label starts with a distinct prefix so that no
// caller-chosen kind or purpose can collide with another label.
const (
	infoWrap       = "nitronet key-wrap v1"
	infoBlindIndex = "nitronet blind-index v1 "
	infoDerive     = "nitronet derive v1 "
	infoSecret     = "nitronet secret v1 "
)

// Errors returned by Open, Unwrap and OpenSecret. They are deliberately
// uninformative: a caller learns that decryption failed, not why.
var (
	// ErrDecrypt means a ciphertext or wrapped key failed authentication:
	// it was tampered with, truncated, or opened with the wrong key, account
	// or AAD.
	ErrDecrypt = errors.New("vault: decryption failed")
	// ErrVersion means the ciphertext or wrapped key has an unknown version byte.
	ErrVersion = errors.New("vault: unsupported format version")
	// ErrDestroyed means the DataKey was destroyed.
	ErrDestroyed = errors.New("vault: data key destroyed")
	// ErrUnknownKEK means a wrapped key or secret names a KEK that is not
	// in the keyring: it was destroyed by a rotation (as for a backup
	// older than the last rotation), or never existed here.
	ErrUnknownKEK = errors.New("vault: the key-encryption key it needs is not in the keyring (destroyed by a rotation, or never here)")
	// ErrNoKEK means the keyring holds no KEK at all.
	ErrNoKEK = errors.New("vault: the keyring holds no key-encryption key")
)

// kek is one key-encryption key of the keyring, as the keys derived from
// it (the KEK itself is not kept).
type kek struct {
	id      uint32
	prk     []byte // HKDF-Extract(salt = empty, KEK)
	wrapKey []byte // HKDF-Expand(prk, infoWrap)
	created time.Time
	path    string // its file; "" for a key given to New
}

func newKEK(id uint32, raw []byte) *kek {
	k := &kek{id: id, prk: hkdf.Extract(sha256.New, raw, nil)}
	k.wrapKey = expand(k.prk, infoWrap)
	return k
}

// wipe zeroes k's key material.
func (k *kek) wipe() {
	clear(k.prk)
	clear(k.wrapKey)
}

// Vault is a keyring of key-encryption keys and what derives from them.
// It is safe for concurrent use, provided its random source is
// (crypto/rand.Reader is).
//
// A Vault opened on a keyring directory (Open) follows the directory: an
// operation that depends on which KEKs exist (wrapping, blind indexes)
// first looks for KEKs added or destroyed by another process, and one
// that meets an unknown KEK id looks again before failing. Several
// servers sharing one database must therefore share one keyring
// directory.
//
// A Vault never prints its key material: String, GoString and LogValue
// return a redacted placeholder.
type Vault struct {
	rand io.Reader
	ring *keyring // nil for a Vault made by New

	mu      sync.RWMutex
	keks    map[uint32]*kek
	primary uint32
	derive  []byte // PRK of the derivation key
}

// New returns a Vault for the single 32-byte key-encryption key key, with
// KEK id 1, kept in memory only: it never rotates. The Vault keeps only
// keys derived from key, not key itself; the caller may zero key after
// New returns. rand supplies data keys and nonces; nil means
// crypto/rand.Reader.
func New(key []byte, rand io.Reader) (*Vault, error) {
	if len(key) != KEKSize {
		return nil, fmt.Errorf("vault: key-encryption key is %d bytes, want %d", len(key), KEKSize)
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	k := newKEK(1, key)
	return &Vault{rand: rand, keks: map[uint32]*kek{1: k}, primary: 1, derive: slices.Clone(k.prk)}, nil
}

// expand returns 32 bytes of HKDF-Expand(prk, info).
func expand(prk []byte, info string) []byte {
	out := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.Expand(sha256.New, prk, []byte(info)), out); err != nil {
		// HKDF-SHA256 can produce up to 255*32 bytes; 32 never fails.
		panic("vault: hkdf expand: " + err.Error())
	}
	return out
}

// current returns the primary KEK after looking for keyring changes.
func (v *Vault) current() (*kek, error) {
	v.follow()
	v.mu.RLock()
	defer v.mu.RUnlock()
	k := v.keks[v.primary]
	if k == nil {
		return nil, ErrNoKEK
	}
	return k, nil
}

// byID returns KEK id, looking for keyring changes once if it is unknown.
func (v *Vault) byID(id uint32) (*kek, error) {
	v.mu.RLock()
	k := v.keks[id]
	v.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	v.follow()
	v.mu.RLock()
	defer v.mu.RUnlock()
	if k = v.keks[id]; k == nil {
		return nil, ErrUnknownKEK
	}
	return k, nil
}

// header returns the version 2 header naming KEK id.
func header(id uint32) []byte {
	h := make([]byte, headerSize)
	h[0] = version2
	binary.BigEndian.PutUint32(h[1:], id)
	return h
}

// parse splits a wrapped key or secret into its KEK, the header its AAD
// starts with, and the body version1's open understands (version byte,
// nonce, ciphertext). It returns ErrVersion for an unknown version and
// ErrDecrypt for input too short to hold a header.
func parse(b []byte) (id uint32, hdr, body []byte, err error) {
	if len(b) == 0 {
		return 0, nil, nil, ErrDecrypt
	}
	switch b[0] {
	case version1:
		return LegacyKEK, nil, b, nil
	case version2:
		if len(b) < headerSize {
			return 0, nil, nil, ErrDecrypt
		}
		body = make([]byte, len(b)-idSize)
		body[0] = version1
		copy(body[1:], b[headerSize:])
		return binary.BigEndian.Uint32(b[1:headerSize]), b[:headerSize], body, nil
	}
	return 0, nil, nil, ErrVersion
}

// KEKOf returns the id of the KEK that wrapped key or sealed secret b
// (LegacyKEK for version 1). It does not check b's authenticity.
func KEKOf(b []byte) (uint32, error) {
	id, _, _, err := parse(b)
	return id, err
}

// wrapUnder seals plaintext under key derived from k as a version 2
// value, binding aad after the header.
func (v *Vault) wrapUnder(k *kek, key, plaintext, aad []byte) ([]byte, error) {
	hdr := header(k.id)
	body, err := seal(key, v.rand, plaintext, append(slices.Clone(hdr), aad...))
	if err != nil {
		return nil, err
	}
	// body is version1 || nonce || ct: replace the version byte with the
	// header.
	return append(hdr, body[1:]...), nil
}

// unwrapWith opens a value parse split, with key derived from its KEK.
func unwrapWith(key, hdr, body, aad []byte) ([]byte, error) {
	return open(key, body, append(slices.Clone(hdr), aad...))
}

// NewDataKey returns a fresh random data key for the account and its wrapped
// form under the primary KEK, which the caller stores. accountID is bound
// into the wrapped form as AES-GCM additional data, so the wrapped key only
// unwraps for that account. It returns an error if accountID is empty, the
// keyring holds no KEK or the random source fails.
func (v *Vault) NewDataKey(accountID string) (*DataKey, []byte, error) {
	if accountID == "" {
		return nil, nil, errors.New("vault: new data key: empty account ID")
	}
	kk, err := v.current()
	if err != nil {
		return nil, nil, err
	}
	k := &DataKey{rand: v.rand}
	if _, err := io.ReadFull(v.rand, k.key[:]); err != nil {
		return nil, nil, fmt.Errorf("vault: new data key: %w", err)
	}
	wrapped, err := v.wrapUnder(kk, kk.wrapKey, k.key[:], []byte(accountID))
	if err != nil {
		k.Destroy()
		return nil, nil, fmt.Errorf("vault: wrap data key: %w", err)
	}
	return k, wrapped, nil
}

// Unwrap returns the data key whose wrapped form NewDataKey (or Rewrap)
// returned for accountID. It returns ErrVersion for an unknown format
// version, ErrUnknownKEK if the KEK that wrapped it is not in the keyring
// (destroyed by a rotation), and ErrDecrypt if wrapped was altered or
// belongs to another account. It never panics on malformed input.
func (v *Vault) Unwrap(accountID string, wrapped []byte) (*DataKey, error) {
	id, hdr, body, err := parse(wrapped)
	if err != nil {
		return nil, err
	}
	if len(body) != legacyWrappedKeySize || accountID == "" {
		return nil, ErrDecrypt
	}
	kk, err := v.byID(id)
	if err != nil {
		return nil, err
	}
	raw, err := unwrapWith(kk.wrapKey, hdr, body, []byte(accountID))
	if err != nil {
		return nil, err
	}
	k := &DataKey{rand: v.rand}
	copy(k.key[:], raw)
	clear(raw)
	return k, nil
}

// Rewrap returns the account's wrapped data key wrapped under the primary
// KEK instead, and true, or wrapped itself and false if the primary KEK
// already wrapped it. The data key is unchanged, so everything sealed
// under it stays readable. Errors are Unwrap's.
func (v *Vault) Rewrap(accountID string, wrapped []byte) ([]byte, bool, error) {
	kk, err := v.current()
	if err != nil {
		return nil, false, err
	}
	if id, err := KEKOf(wrapped); err == nil && id == kk.id && wrapped[0] == version2 {
		return wrapped, false, nil
	}
	dk, err := v.Unwrap(accountID, wrapped)
	if err != nil {
		return nil, false, err
	}
	defer dk.Destroy()
	raw, _ := dk.snapshot()
	defer clear(raw[:])
	out, err := v.wrapUnder(kk, kk.wrapKey, raw[:], []byte(accountID))
	if err != nil {
		return nil, false, fmt.Errorf("vault: rewrap data key: %w", err)
	}
	return out, true, nil
}

// BlindIndex returns HMAC-SHA256(k_kind, normalized), where k_kind is
// HKDF-SHA256(primary KEK, salt = empty, info = "nitronet blind-index v1 "
// + kind). kind names the kind of value, such as "email" or "mobile", so
// equal strings of different kinds get unrelated indexes. The result is
// 32 bytes and depends only on the primary KEK, kind and normalized. The
// caller must normalize the value (e.g. lowercase an email, format a
// number as E.164) first. With no KEK in the keyring it returns nil.
func (v *Vault) BlindIndex(kind, normalized string) []byte {
	k, err := v.current()
	if err != nil {
		return nil
	}
	return blindIndex(k, kind, normalized)
}

// BlindIndexes returns the blind index of normalized under every KEK of
// the keyring, the primary's first. A lookup that must find rows written
// before or during a rotation, whose indexes may still be under an older
// KEK, looks for any of them.
func (v *Vault) BlindIndexes(kind, normalized string) [][]byte {
	v.follow()
	v.mu.RLock()
	ks := make([]*kek, 0, len(v.keks))
	for _, k := range v.keks {
		ks = append(ks, k)
	}
	primary := v.primary
	v.mu.RUnlock()
	slices.SortFunc(ks, func(a, b *kek) int {
		switch {
		case a.id == primary:
			return -1
		case b.id == primary:
			return 1
		}
		return int(int64(b.id) - int64(a.id))
	})
	out := make([][]byte, 0, len(ks))
	for _, k := range ks {
		out = append(out, blindIndex(k, kind, normalized))
	}
	return out
}

func blindIndex(k *kek, kind, normalized string) []byte {
	key := expand(k.prk, infoBlindIndex+kind)
	defer clear(key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(normalized))
	return m.Sum(nil)
}

// DeriveKey returns a 32-byte key for purpose:
// HKDF-SHA256(derivation key, salt = empty, info = "nitronet derive v1 " +
// purpose). The derivation key is not rotated with the KEKs (for New, it is
// the KEK), so a derived key stays the same across rotations. Distinct
// purposes give independent keys, and no purpose yields a wrapping or
// blind-index key. The caller owns the returned slice.
func (v *Vault) DeriveKey(purpose string) []byte {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return expand(v.derive, infoDerive+purpose)
}

// SealSecret encrypts a service secret that is not personal data of a
// user (for example a staff member's TOTP seed), or personal data that
// belongs to no account key and lives a short time (a queued message, kept
// at most a day), with AES-256-GCM under a key derived from the primary KEK
// for purpose, binding aad. Unlike a user's PII sealed under a data key it
// is not crypto-shredded with an account; a rotation re-seals staff
// secrets (Reseal).
func (v *Vault) SealSecret(purpose string, plaintext, aad []byte) ([]byte, error) {
	k, err := v.current()
	if err != nil {
		return nil, err
	}
	key := expand(k.prk, infoSecret+purpose)
	defer clear(key)
	return v.wrapUnder(k, key, plaintext, aad)
}

// OpenSecret reverses SealSecret; the wrong purpose or aad, or tampering,
// returns ErrDecrypt, a secret sealed under a KEK no longer in the keyring
// ErrUnknownKEK.
func (v *Vault) OpenSecret(purpose string, ciphertext, aad []byte) ([]byte, error) {
	id, hdr, body, err := parse(ciphertext)
	if err != nil {
		return nil, err
	}
	k, err := v.byID(id)
	if err != nil {
		return nil, err
	}
	key := expand(k.prk, infoSecret+purpose)
	defer clear(key)
	return unwrapWith(key, hdr, body, aad)
}

// Reseal returns a secret sealed by SealSecret sealed under the primary
// KEK instead, and true, or ciphertext itself and false if the primary
// KEK already sealed it. Errors are OpenSecret's.
func (v *Vault) Reseal(purpose string, ciphertext, aad []byte) ([]byte, bool, error) {
	k, err := v.current()
	if err != nil {
		return nil, false, err
	}
	if id, err := KEKOf(ciphertext); err == nil && id == k.id && ciphertext[0] == version2 {
		return ciphertext, false, nil
	}
	pt, err := v.OpenSecret(purpose, ciphertext, aad)
	if err != nil {
		return nil, false, err
	}
	defer clear(pt)
	out, err := v.SealSecret(purpose, pt, aad)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// KEK describes one key-encryption key of the keyring, never its
// material.
type KEK struct {
	ID      uint32
	Primary bool
	// Created is when its file was written (its modification time); zero
	// for a key given to New.
	Created time.Time
	// Path is its file; empty for a key given to New.
	Path string
}

// KEKs returns the keyring's KEKs by id, after looking for changes.
func (v *Vault) KEKs() []KEK {
	v.follow()
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]KEK, 0, len(v.keks))
	for _, k := range v.keks {
		out = append(out, KEK{ID: k.id, Primary: k.id == v.primary, Created: k.created, Path: k.path})
	}
	slices.SortFunc(out, func(a, b KEK) int { return int(int64(a.ID) - int64(b.ID)) })
	return out
}

// Primary returns the id of the primary KEK, after looking for changes.
func (v *Vault) Primary() (uint32, error) {
	k, err := v.current()
	if err != nil {
		return 0, err
	}
	return k.id, nil
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

// MAC returns HMAC-SHA256 of msg under a key derived from k for purpose
// (HKDF-SHA256 with info "nitronet/mac/"+purpose), 32 bytes. It is a
// keyed, deterministic index of msg: equal for equal messages under the
// same key and purpose, and, without the key, unlinkable to msg. Since an
// account's data key is only re-wrapped when the KEK rotates, never
// replaced, a MAC stays valid across rotations; destroying the key (an
// erasure) leaves it unlinkable for good. MAC returns ErrDestroyed after
// Destroy.
func (k *DataKey) MAC(purpose string, msg []byte) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.destroyed {
		return nil, ErrDestroyed
	}
	var mk [32]byte
	defer clear(mk[:])
	if _, err := io.ReadFull(hkdf.New(sha256.New, k.key[:], nil, []byte("nitronet/mac/"+purpose)), mk[:]); err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, mk[:])
	m.Write(msg)
	return m.Sum(nil), nil
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
