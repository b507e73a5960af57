// Package wgkey holds WireGuard Curve25519 key types.
//
// PrivateKey and PublicKey are distinct types so that a private key cannot be
// passed where a public one is expected. A PrivateKey never prints itself:
// String and LogValue return a redacted placeholder, and the only way to get
// its encoding is the explicit Base64 or Hex method.
package wgkey

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/crypto/curve25519"
)

// Len is the length in bytes of a key.
const Len = 32

// PrivateKey is a clamped Curve25519 private key.
type PrivateKey [Len]byte

// PublicKey is a Curve25519 public key.
type PublicKey [Len]byte

// Generate returns a new private key read from rand (crypto/rand.Reader in
// production), clamped as WireGuard requires.
func Generate(rand io.Reader) (PrivateKey, error) {
	var k PrivateKey
	if _, err := io.ReadFull(rand, k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("generate key: %w", err)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k, nil
}

// Public returns the public key for k.
func (k PrivateKey) Public() PublicKey {
	var p PublicKey
	curve25519.ScalarBaseMult((*[32]byte)(&p), (*[32]byte)(&k))
	return p
}

// IsZero reports whether k is all zeros.
func (k PrivateKey) IsZero() bool { return subtle.ConstantTimeCompare(k[:], make([]byte, Len)) == 1 }

// Base64 returns the standard base64 encoding used by wg-quick configs.
func (k PrivateKey) Base64() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex returns the hex encoding used by the wireguard-go UAPI.
func (k PrivateKey) Hex() string { return hex.EncodeToString(k[:]) }

// String returns a redacted placeholder so a private key never lands in logs.
func (k PrivateKey) String() string { return "wgkey.PrivateKey(REDACTED)" }

// LogValue implements slog.LogValuer with a redacted value.
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// ParsePrivate decodes a base64 private key.
func ParsePrivate(s string) (PrivateKey, error) {
	var k PrivateKey
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != Len {
		return k, fmt.Errorf("invalid private key encoding")
	}
	copy(k[:], b)
	return k, nil
}

// String returns the standard base64 encoding of p.
func (p PublicKey) String() string { return base64.StdEncoding.EncodeToString(p[:]) }

// Hex returns the hex encoding used by the wireguard-go UAPI.
func (p PublicKey) Hex() string { return hex.EncodeToString(p[:]) }

// Equal reports whether p and q are the same key, in constant time.
func (p PublicKey) Equal(q PublicKey) bool { return subtle.ConstantTimeCompare(p[:], q[:]) == 1 }

// IsZero reports whether p is all zeros.
func (p PublicKey) IsZero() bool { return p == PublicKey{} }

// ParsePublic decodes a base64 public key. It rejects anything that is not
// exactly 32 bytes of standard base64, and the all-zero key.
func ParsePublic(s string) (PublicKey, error) {
	var p PublicKey
	if len(s) != 44 {
		return p, fmt.Errorf("public key must be 44 characters of base64")
	}
	// Decoded through arrays, without allocating: a snapshot parses a
	// million keys.
	var src [44]byte
	var dst [33]byte // base64.StdEncoding.DecodedLen(44)
	copy(src[:], s)
	n, err := base64.StdEncoding.Decode(dst[:], src[:])
	if err != nil || n != Len {
		return p, fmt.Errorf("public key is not valid base64 of 32 bytes")
	}
	copy(p[:], dst[:Len])
	if p.IsZero() {
		return p, fmt.Errorf("public key must not be zero")
	}
	return p, nil
}
