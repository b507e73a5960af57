package secret

import (
	"bytes"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	mathrand "math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	tests := []struct{ prefix string }{{"nns"}, {"nn_sess"}, {"GW-enroll"}, {"x"}, {strings.Repeat("p", MaxPrefixLen)}}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			tok, hash, err := NewToken(cryptorand.Reader, tt.prefix)
			if err != nil {
				t.Fatalf("NewToken: %v", err)
			}
			re := regexp.MustCompile(`^` + regexp.QuoteMeta(tt.prefix) + `_[A-Za-z0-9_-]{43}$`)
			if !re.MatchString(tok) {
				t.Errorf("token = %q, want match for %s", tok, re)
			}
			raw, err := base64.RawURLEncoding.DecodeString(tok[len(tt.prefix)+1:])
			if err != nil || len(raw) != TokenBytes {
				t.Errorf("token secret decodes to %d bytes (%v), want %d", len(raw), err, TokenBytes)
			}
			if want := sha256.Sum256([]byte(tok)); !bytes.Equal(hash, want[:]) {
				t.Errorf("hash = %x, want SHA-256(token) %x", hash, want)
			}
			if !Equal(hash, Hash(tok)) {
				t.Errorf("hash != Hash(token)")
			}
		})
	}
}

func TestNewTokenDeterministicRand(t *testing.T) {
	// The secret is exactly the bytes read from rand.
	src := bytes.Repeat([]byte{0xfb}, TokenBytes)
	tok, _, err := NewToken(bytes.NewReader(src), "t")
	if err != nil {
		t.Fatal(err)
	}
	if want := "t_" + base64.RawURLEncoding.EncodeToString(src); tok != want {
		t.Errorf("token = %q, want %q", tok, want)
	}
}

func TestNewTokenUnique(t *testing.T) {
	const n = 2000
	seen := make(map[string]bool, n)
	for range n {
		tok, hash, err := NewToken(cryptorand.Reader, "nns")
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] || seen[string(hash)] {
			t.Fatalf("duplicate token or hash after %d tokens", len(seen)/2)
		}
		seen[tok], seen[string(hash)] = true, true
	}
}

func TestNewTokenRejects(t *testing.T) {
	tests := []struct {
		name   string
		rand   []byte
		prefix string
	}{
		{"empty prefix", make([]byte, 32), ""},
		{"long prefix", make([]byte, 32), strings.Repeat("p", MaxPrefixLen+1)},
		{"space in prefix", make([]byte, 32), "a b"},
		{"dot in prefix", make([]byte, 32), "a.b"},
		{"non-ASCII prefix", make([]byte, 32), "é"},
		{"short rand", make([]byte, 31), "nns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, hash, err := NewToken(bytes.NewReader(tt.rand), tt.prefix)
			if err == nil || tok != "" || hash != nil {
				t.Errorf("NewToken = %q, %x, %v; want \"\", nil, error", tok, hash, err)
			}
		})
	}
}

func TestHash(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(Hash(tt.in)); got != tt.want {
			t.Errorf("Hash(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestHashCode(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	key2 := bytes.Repeat([]byte{2}, 32)
	base := HashCode(key, "acct-1|email|verify", "123456")
	if len(base) != 32 {
		t.Fatalf("len(HashCode) = %d, want 32", len(base))
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("acct-1|email|verify|123456"))
	if want := m.Sum(nil); !bytes.Equal(base, want) {
		t.Errorf("HashCode = %x, want HMAC-SHA256(key, scope|code) = %x", base, want)
	}
	if again := HashCode(key, "acct-1|email|verify", "123456"); !Equal(base, again) {
		t.Errorf("HashCode not deterministic: %x vs %x", base, again)
	}
	if bytes.Equal(base, Hash("acct-1|email|verify|123456")) {
		t.Errorf("HashCode equals the unkeyed hash")
	}

	tests := []struct {
		name  string
		key   []byte
		scope string
		code  string
	}{
		{"other account", key, "acct-2|email|verify", "123456"},
		{"other channel", key, "acct-1|mobile|verify", "123456"},
		{"other purpose", key, "acct-1|email|login", "123456"},
		{"other code", key, "acct-1|email|verify", "123457"},
		{"other key", key2, "acct-1|email|verify", "123456"},
		{"empty scope", key, "", "123456"},
		{"boundary shift", key, "acct-1|email|verify1", "23456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HashCode(tt.key, tt.scope, tt.code); Equal(got, base) {
				t.Errorf("HashCode(%q, %q) = base hash %x, want distinct", tt.scope, tt.code, got)
			}
		})
	}
}

func TestHashCodeShortKeyPanics(t *testing.T) {
	for _, n := range []int{0, 1, MinCodeKeyLen - 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("HashCode with %d-byte key did not panic", n)
				}
			}()
			HashCode(make([]byte, n), "s", "123456")
		}()
	}
}

var codeRE = regexp.MustCompile(`^[0-9]{6}$`)

func TestNewCodeFormat(t *testing.T) {
	r := mathrand.NewChaCha8([32]byte{3})
	leadingZero := false
	for range 20000 {
		c, err := NewCode(r)
		if err != nil {
			t.Fatal(err)
		}
		if !codeRE.MatchString(c) {
			t.Fatalf("NewCode = %q, want 6 decimal digits", c)
		}
		leadingZero = leadingZero || c[0] == '0'
	}
	if !leadingZero {
		t.Errorf("no code with a leading zero in 20000, want about 2000")
	}
}

// seq returns a reader yielding the given big-endian uint32s.
func seq(vs ...uint32) *bytes.Reader {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return bytes.NewReader(b)
}

// repeat returns n copies of v.
func repeat(v uint32, n int) []uint32 {
	s := make([]uint32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func TestNewCodeRejectionSampling(t *testing.T) {
	const limit = 4_294_000_000 // largest multiple of 10^6 below 2^32
	tests := []struct {
		name    string
		rand    *bytes.Reader
		want    string
		wantErr bool
	}{
		{"zero", seq(0), "000000", false},
		{"small", seq(42), "000042", false},
		{"max code", seq(999_999), "999999", false},
		{"wraps", seq(1_000_000), "000000", false},
		{"last accepted", seq(limit - 1), "999999", false},
		{"first rejected then next", seq(limit, 7), "000007", false},
		{"max rejected then next", seq(1<<32-1, 1<<32-1, 123_456), "123456", false},
		{"always rejected", seq(repeat(limit, maxCodeTries+1)...), "", true},
		{"empty rand", seq(), "", true},
		{"short rand", bytes.NewReader([]byte{1, 2}), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewCode(tt.rand)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("NewCode = %q, %v; want %q, error=%v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestNewCodeUniformity is a sanity check: with a fixed-seed source, every
// digit value is about equally common in every position.
func TestNewCodeUniformity(t *testing.T) {
	const n = 100_000
	r := mathrand.NewChaCha8([32]byte{4})
	var counts [CodeDigits][10]int
	for range n {
		c, err := NewCode(r)
		if err != nil {
			t.Fatal(err)
		}
		for i := range CodeDigits {
			counts[i][c[i]-'0']++
		}
	}
	for pos := range counts {
		// Chi-square with 9 degrees of freedom; 27.88 is the p = 0.001 critical value.
		chi := 0.0
		for _, got := range counts[pos] {
			d := float64(got) - n/10
			chi += d * d / (n / 10)
		}
		if chi > 27.88 {
			t.Errorf("digit position %d: chi-square = %.1f over 27.88, counts %v", pos, chi, counts[pos])
		}
	}
}

func TestEqual(t *testing.T) {
	h := Hash("a")
	tests := []struct {
		name string
		a, b []byte
		want bool
	}{
		{"same", h, bytes.Clone(h), true},
		{"different", h, Hash("b"), false},
		{"prefix", h, h[:16], false},
		{"both nil", nil, nil, false},
		{"both empty", []byte{}, []byte{}, false},
		{"one nil", h, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Equal(tt.a, tt.b); got != tt.want {
				t.Errorf("Equal = %v, want %v", got, tt.want)
			}
		})
	}
}
