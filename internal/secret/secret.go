// Package secret makes and hashes bearer tokens and one-time codes.
//
// The database stores only hashes. A bearer token carries 256 bits of
// randomness, so a plain SHA-256 (Hash) is enough to make a leaked database
// useless. A 6-digit code has only about 20 bits, which anyone holding a
// plain hash could brute-force at once, so codes are stored as a keyed HMAC
// (HashCode) under a key kept outside the database, such as one from
// vault.Vault.DeriveKey.
//
// Compare hashes with Equal, never with bytes.Equal or ==.
package secret

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// TokenBytes is the number of random bytes in a token.
const TokenBytes = 32

// MaxPrefixLen is the longest prefix NewToken accepts.
const MaxPrefixLen = 32

// CodeDigits is the number of decimal digits in a one-time code.
const CodeDigits = 6

// MinCodeKeyLen is the shortest key HashCode accepts.
const MinCodeKeyLen = 16

// NewToken returns a new bearer token "<prefix>_<secret>", where secret is
// the unpadded base64url encoding of TokenBytes bytes from rand
// (crypto/rand.Reader in production), and hash, the SHA-256 of the whole
// token (Hash(token)), which is what the caller stores.
//
// The prefix names the token's kind (e.g. "nns" for a session) so that
// humans and secret scanners can recognise it; it must be 1 to MaxPrefixLen
// ASCII letters, digits, '-' or '_'. NewToken returns an error for any other
// prefix or if rand fails.
func NewToken(rand io.Reader, prefix string) (token string, hash []byte, err error) {
	if err := checkPrefix(prefix); err != nil {
		return "", nil, err
	}
	var b [TokenBytes]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", nil, fmt.Errorf("secret: new token: %w", err)
	}
	token = prefix + "_" + base64.RawURLEncoding.EncodeToString(b[:])
	clear(b[:])
	return token, Hash(token), nil
}

func checkPrefix(prefix string) error {
	if prefix == "" || len(prefix) > MaxPrefixLen {
		return fmt.Errorf("secret: token prefix must be 1 to %d characters, got %d", MaxPrefixLen, len(prefix))
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return errors.New("secret: token prefix may contain only ASCII letters, digits, '-' and '_'")
		}
	}
	return nil
}

// Hash returns the 32-byte SHA-256 of s. Use it to store a token, and to
// look up a presented one.
func Hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// HashCode returns the 32-byte HMAC-SHA256(key, scope+"|"+code) of a short
// one-time code. scope binds the code to its use, e.g. accountID, channel and
// purpose, so a code issued for one scope never matches in another. Because
// codes are decimal digits and contain no '|', distinct (scope, code) pairs
// never give the same HMAC input.
//
// key must be secret, kept outside the database, and at least MinCodeKeyLen
// bytes long; HashCode panics on a shorter key, since that is a programming
// error that would make stored codes trivially recoverable.
func HashCode(key []byte, scope, code string) []byte {
	if len(key) < MinCodeKeyLen {
		panic(fmt.Sprintf("secret: HashCode key is %d bytes, want at least %d", len(key), MinCodeKeyLen))
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(scope))
	m.Write([]byte{'|'})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// maxCodeTries bounds NewCode's rejection sampling. An honest random source
// rejects a draw with probability under 2^-12, so 64 straight rejections
// mean the source is broken.
const maxCodeTries = 64

// NewCode returns a uniformly random CodeDigits-digit decimal code, with
// leading zeros (e.g. "004217"), read from rand (crypto/rand.Reader in
// production). It draws 32-bit values and rejects those at or above the
// largest multiple of 10^6, so every code is equally likely. It returns an
// error if rand fails or keeps yielding rejected values.
func NewCode(rand io.Reader) (string, error) {
	const n = 1_000_000 // 10^CodeDigits
	const limit = (1 << 32) / n * n
	var b [4]byte
	for range maxCodeTries {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return "", fmt.Errorf("secret: new code: %w", err)
		}
		v := uint64(binary.BigEndian.Uint32(b[:]))
		if v < limit {
			return fmt.Sprintf("%06d", v%n), nil
		}
	}
	return "", errors.New("secret: new code: random source keeps yielding out-of-range values")
}

// Equal reports whether hashes a and b are equal, in time that depends only
// on their lengths. It returns false if either is empty, so a missing stored
// hash never matches.
func Equal(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && subtle.ConstantTimeCompare(a, b) == 1
}
