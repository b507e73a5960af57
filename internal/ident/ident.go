// Package ident generates opaque record identifiers.
package ident

import (
	"encoding/base32"
	"fmt"
	"io"
	"strings"
)

// New returns "<prefix>_<26 base32 chars>" built from 16 bytes of rand.
// The identifier carries no information about what it names.
func New(rand io.Reader, prefix string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	return prefix + "_" + strings.ToLower(enc.EncodeToString(b[:])), nil
}

// Valid reports whether s is syntactically an identifier with prefix.
// It lets handlers reject garbage before it reaches storage.
func Valid(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(rest) != 26 {
		return false
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
