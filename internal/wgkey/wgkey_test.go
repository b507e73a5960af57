package wgkey

import (
	"bytes"
	"encoding/base64"
	"testing"
)

func TestParsePublic(t *testing.T) {
	var k PublicKey
	for i := range k {
		k[i] = byte(i + 1)
	}
	got, err := ParsePublic(k.String())
	if err != nil || got != k {
		t.Fatalf("ParsePublic(%q) = %v, %v; want the key back", k.String(), got, err)
	}
	for name, s := range map[string]string{
		"empty":        "",
		"short":        k.String()[:43],
		"long":         k.String() + "=",
		"not base64":   "!" + k.String()[1:],
		"33 bytes":     base64.StdEncoding.EncodeToString(append(k[:], 0))[:44],
		"31 bytes":     base64.StdEncoding.EncodeToString(k[:31]) + "====",
		"newline":      k.String()[:20] + "\n" + k.String()[21:],
		"all-zero key": PublicKey{}.String(),
	} {
		if _, err := ParsePublic(s); err == nil {
			t.Errorf("%s: ParsePublic(%q) accepted it", name, s)
		}
	}
}

// FuzzParsePublic checks that ParsePublic never panics and accepts exactly
// the standard base64 encodings of non-zero 32-byte keys.
func FuzzParsePublic(f *testing.F) {
	f.Add("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublic(s)
		b, derr := base64.StdEncoding.DecodeString(s)
		want := len(s) == 44 && derr == nil && len(b) == Len && !bytes.Equal(b, make([]byte, Len))
		if (err == nil) != want {
			t.Fatalf("ParsePublic(%q): error %v, want accepted %v", s, err, want)
		}
		if err == nil && !bytes.Equal(k[:], b) {
			t.Fatalf("ParsePublic(%q) = %x, want %x", s, k[:], b)
		}
	})
}
