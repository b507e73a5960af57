package password

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
)

func newTestHasher(t testing.TB, p Params, maxConcurrent int) *Hasher {
	t.Helper()
	h, err := NewHasher(p, maxConcurrent, mathrand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	return h
}

func TestDefaultParams(t *testing.T) {
	got := DefaultParams()
	want := Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	if got != want {
		t.Errorf("DefaultParams() = %+v, want %+v", got, want)
	}
}

func TestNewHasherRejects(t *testing.T) {
	with := func(f func(*Params)) Params {
		p := DefaultParams()
		f(&p)
		return p
	}
	tests := []struct {
		name string
		p    Params
		n    int
	}{
		{"memory below OWASP", with(func(p *Params) { p.Memory = 19455 }), 1},
		{"memory over limit", with(func(p *Params) { p.Memory = MaxMemory + 1 }), 1},
		{"time below OWASP", with(func(p *Params) { p.Time = 1 }), 1},
		{"time over limit", with(func(p *Params) { p.Time = MaxTime + 1 }), 1},
		{"zero threads", with(func(p *Params) { p.Threads = 0 }), 1},
		{"threads over limit", with(func(p *Params) { p.Threads = MaxThreads + 1 }), 1},
		{"short salt", with(func(p *Params) { p.SaltLen = 15 }), 1},
		{"long salt", with(func(p *Params) { p.SaltLen = MaxSaltLen + 1 }), 1},
		{"short key", with(func(p *Params) { p.KeyLen = 31 }), 1},
		{"long key", with(func(p *Params) { p.KeyLen = MaxKeyLen + 1 }), 1},
		{"zero params", Params{}, 1},
		{"zero concurrency", DefaultParams(), 0},
		{"negative concurrency", DefaultParams(), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if h, err := NewHasher(tt.p, tt.n, nil); err == nil {
				t.Errorf("NewHasher(%+v, %d) = %v, nil; want error", tt.p, tt.n, h)
			}
		})
	}
	t.Run("stronger accepted", func(t *testing.T) {
		p := Params{Memory: 65536, Time: 3, Threads: 4, SaltLen: 32, KeyLen: 64}
		if _, err := NewHasher(p, 1, nil); err != nil {
			t.Errorf("NewHasher(%+v): %v, want nil", p, err)
		}
	})
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, DefaultParams(), 2)
	const pw = "correct horse battery staple"
	phc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if !phcRE.MatchString(phc) {
		t.Errorf("Hash = %q, want match for %s", phc, phcRE)
	}
	p, salt, key, err := ParsePHC(phc)
	if err != nil {
		t.Fatalf("ParsePHC(Hash()): %v", err)
	}
	if p != DefaultParams() || len(salt) != 16 || len(key) != 32 {
		t.Errorf("ParsePHC(Hash()) = %+v, %d-byte salt, %d-byte key; want %+v, 16, 32", p, len(salt), len(key), DefaultParams())
	}
	if strings.Contains(phc, pw) {
		t.Errorf("PHC string contains the password")
	}

	tests := []struct {
		name     string
		password string
		wantOK   bool
	}{
		{"right password", pw, true},
		{"wrong password", "correct horse battery stapl", false},
		{"case differs", "Correct horse battery staple", false},
		{"empty", "", false},
		{"trailing NUL", pw + "\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, tt.password, phc)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ok != tt.wantOK || rehash {
				t.Errorf("Verify = %v, %v; want %v, false", ok, rehash, tt.wantOK)
			}
		})
	}

	t.Run("fresh salt", func(t *testing.T) {
		phc2, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatal(err)
		}
		if phc2 == phc {
			t.Errorf("two Hashes of the same password are equal, want distinct salts")
		}
	})
}

// TestVerifyReferenceVector checks interoperability with the argon2
// reference implementation (vector from its test suite: password
// "password", salt "somesalt", t=2, m=64, p=1, 24-byte key).
func TestVerifyReferenceVector(t *testing.T) {
	const phc = "$argon2id$v=19$m=64,t=2,p=1$c29tZXNhbHQ$Bo1ismRVk2qm6+YAYLCmWHDb+j3fjUH3"
	h := newTestHasher(t, DefaultParams(), 1)
	ok, rehash, err := h.Verify(context.Background(), "password", phc)
	if err != nil || !ok || !rehash {
		t.Errorf("Verify(reference vector) = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	ok, rehash, err = h.Verify(context.Background(), "passwore", phc)
	if err != nil || ok || rehash {
		t.Errorf("Verify(wrong password, reference vector) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	ctx := context.Background()
	def := newTestHasher(t, DefaultParams(), 1)
	stronger := newTestHasher(t, Params{Memory: 19456, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}, 1)
	const pw = "0123456789abc"
	defPHC, err := def.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	strongPHC, err := stronger.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		h          *Hasher
		phc        string
		wantRehash bool
	}{
		{"same params", def, defPHC, false},
		{"stored stronger", def, strongPHC, false},
		{"stored weaker", stronger, defPHC, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := tt.h.Verify(ctx, pw, tt.phc)
			if err != nil || !ok || rehash != tt.wantRehash {
				t.Errorf("Verify = %v, %v, %v; want true, %v, nil", ok, rehash, err, tt.wantRehash)
			}
		})
	}
}

func TestVerifyRefusesHostile(t *testing.T) {
	h := newTestHasher(t, DefaultParams(), 1)
	const salt, key = "c29tZXNhbHQ", "Bo1ismRVk2qm6+YAYLCmWHDb+j3fjUH3"
	tests := []struct {
		name string
		phc  string
	}{
		{"memory over 1 GiB", "$argon2id$v=19$m=1048577,t=2,p=1$" + salt + "$" + key},
		{"memory max uint32", "$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + key},
		{"huge time", "$argon2id$v=19$m=64,t=4294967295,p=1$" + salt + "$" + key},
		{"time over limit", fmt.Sprintf("$argon2id$v=19$m=64,t=%d,p=1$%s$%s", MaxTime+1, salt, key)},
		{"threads over limit", "$argon2id$v=19$m=2048,t=2,p=255$" + salt + "$" + key},
		{"zero threads", "$argon2id$v=19$m=64,t=2,p=0$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"key too short", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$AAAAAAAAAAAAAAAAAAAA"},
		{"key too long", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + strings.Repeat("A", 88)},
		{"salt too long", "$argon2id$v=19$m=64,t=2,p=1$" + strings.Repeat("A", 88) + "$" + key},
		{"overlong string", "$argon2id$v=19$m=64,t=2,p=1$" + strings.Repeat("A", 300) + "$" + key},
		{"malformed", "not a hash"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(context.Background(), "password", tt.phc)
			if err == nil || ok || rehash {
				t.Errorf("Verify(%q) = %v, %v, %v; want false, false, error", tt.phc, ok, rehash, err)
			}
		})
	}
}

func TestConcurrencyLimit(t *testing.T) {
	h := newTestHasher(t, DefaultParams(), 1)
	phc, err := h.Hash(context.Background(), "0123456789")
	if err != nil {
		t.Fatal(err)
	}
	// Hold the only slot, as a running computation would.
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	deadline, cancel2 := context.WithTimeout(context.Background(), 1) // expires at once
	defer cancel2()
	<-deadline.Done()

	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"canceled", canceled, context.Canceled},
		{"deadline", deadline, context.DeadlineExceeded},
	} {
		t.Run(c.name+"/Hash", func(t *testing.T) {
			got, err := h.Hash(c.ctx, "0123456789")
			checkUnavailable(t, err, c.want)
			if got != "" {
				t.Errorf("Hash = %q, want empty", got)
			}
		})
		t.Run(c.name+"/Verify", func(t *testing.T) {
			ok, _, err := h.Verify(c.ctx, "0123456789", phc)
			checkUnavailable(t, err, c.want)
			if ok {
				t.Errorf("Verify ok = true, want false")
			}
		})
		t.Run(c.name+"/Dummy", func(t *testing.T) {
			h.Dummy(c.ctx) // must return, not block
		})
	}

	// A waiting Verify proceeds once the slot is released.
	done := make(chan error, 1)
	go func() {
		ok, _, err := h.Verify(context.Background(), "0123456789", phc)
		if err == nil && !ok {
			err = errors.New("Verify ok = false, want true")
		}
		done <- err
	}()
	h.release()
	if err := <-done; err != nil {
		t.Errorf("queued Verify: %v", err)
	}
	if n := len(h.sem); n != 0 {
		t.Errorf("%d slots held after all calls returned, want 0", n)
	}
}

func checkUnavailable(t *testing.T, err, cause error) {
	t.Helper()
	if got := errs.CodeOf(err); got != errs.Unavailable {
		t.Errorf("error code = %q (%v), want %q", got, err, errs.Unavailable)
	}
	if !errors.Is(err, cause) {
		t.Errorf("error = %v, want it to wrap %v", err, cause)
	}
}

func TestConcurrentHashes(t *testing.T) {
	h, err := NewHasher(DefaultParams(), 2, nil) // crypto/rand: safe for concurrent use
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			pw := fmt.Sprintf("password-%d-xyz", i)
			phc, err := h.Hash(context.Background(), pw)
			if err != nil {
				t.Errorf("Hash: %v", err)
				return
			}
			if ok, _, err := h.Verify(context.Background(), pw, phc); !ok || err != nil {
				t.Errorf("Verify = %v, %v; want true, nil", ok, err)
			}
		})
	}
	wg.Wait()
	if n := len(h.sem); n != 0 {
		t.Errorf("%d slots held after all calls returned, want 0", n)
	}
}

func TestDummy(t *testing.T) {
	h := newTestHasher(t, DefaultParams(), 1)
	h.Dummy(context.Background())
	if n := len(h.sem); n != 0 {
		t.Errorf("%d slots held after Dummy, want 0", n)
	}
}

func TestHashRandFailure(t *testing.T) {
	h, err := NewHasher(DefaultParams(), 1, bytes.NewReader(make([]byte, 3)))
	if err != nil {
		t.Fatal(err)
	}
	if phc, err := h.Hash(context.Background(), "0123456789"); err == nil {
		t.Errorf("Hash with exhausted rand = %q, nil; want error", phc)
	}
}

func TestValidate(t *testing.T) {
	strong64 := "mauve kettle jumps quickly over seven brass lanterns at dawn, ok"
	tests := []struct {
		name    string
		pw      string
		wantMsg string // "" means valid
	}{
		{"10 ASCII, random", "Kq7#mZ2vR!", ""},
		{"9 ASCII", "Kq7#mZ2vR", "at least 10"},
		{"empty", "", "at least 10"},
		{"256 ASCII", strong64 + strings.Repeat("x", 256-64), ""},
		{"257 ASCII", strong64 + strings.Repeat("x", 257-64), "at most 256"},
		{"10 two-byte runes", "ßüöäéèàçñø", ""},
		{"9 four-byte runes (36 bytes)", strings.Repeat("🔑", 9), "at least 10"},
		{"256 four-byte runes", strings.Repeat("🔑🐢🌵🎻🚲🍋🧭🪁", 32), ""},
		{"257 two-byte runes", strings.Repeat("é", 257), "at most 256"},
		{"spaces allowed", "sturdy walrus paints at dawn", ""},
		{"invalid UTF-8", "Kq7#mZ2vR!\xff", "valid text"},
		{"truncated rune", "Kq7#mZ2vR!\xe2\x82", "valid text"},
		{"NUL", "Kq7#m\x00Z2vR!", "NUL"},
		{"trailing NUL", "Kq7#mZ2vR!\x00", "NUL"},
		// zxcvbn: the finding "password1234 passes" of issue 10.
		{"common password with digits", "password1234", "common"},
		{"one repeated character", strings.Repeat("a", 12), "Repeated"},
		{"keyboard row", "asdfghjkl;'", "keys"},
		{"sequence", "0123456789", "Sequences"},
		{"a word alone", "understanding", "word"},
		{"leet common password", "P@ssw0rd2024", "common"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.pw)
			if tt.wantMsg == "" {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			var e *errs.Error
			if !errors.As(err, &e) {
				t.Fatalf("Validate = %v (%T), want *errs.Error", err, err)
			}
			if e.Code != errs.Invalid || e.Field != "password" {
				t.Errorf("code, field = %q, %q; want %q, password", e.Code, e.Field, errs.Invalid)
			}
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", e.Message, tt.wantMsg)
			}
			if len(tt.pw) >= 4 && strings.Contains(err.Error(), tt.pw) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

// TestCheckContext: a password built from the user's own email address or
// mobile number is refused with the context, and the feedback says why.
func TestCheckContext(t *testing.T) {
	cases := []struct {
		pw, email, mobile string
	}{
		{"zorblaxquintet!", "zorblaxquintet@example.com", "+447911123456"},
		{"zorblax.quintet", "zorblax.quintet@example.com", "+447911123456"},
		{"Wexfordshire7911123456", "wex@wexfordshire.example", "+447911123456"},
		{"7911123456yq", "someone@example.com", "+447911123456"},
	}
	for _, c := range cases {
		if v := Check(c.pw); !v.Acceptable {
			t.Fatalf("Check(%q) without context: got %+v, want acceptable (pick a better fixture)", c.pw, v)
		}
		v := Check(c.pw, c.email, c.mobile)
		if v.Acceptable || v.Score >= MinScore {
			t.Errorf("Check(%q, %q, %q): got %+v, want refused", c.pw, c.email, c.mobile, v)
		}
		if !strings.Contains(strings.Join(v.Feedback, " "), "email address or mobile number") {
			t.Errorf("Check(%q) feedback %q does not name the contacts", c.pw, v.Feedback)
		}
		for _, f := range v.Feedback {
			if strings.Contains(f, c.pw) || strings.Contains(f, c.email) || strings.Contains(f, c.mobile) {
				t.Errorf("feedback %q repeats the password or a contact", f)
			}
		}
	}
	if v := Check("correct horse battery staple", "bob@example.com", "+447911123456"); !v.Acceptable || len(v.Feedback) != 0 {
		t.Errorf("a strong passphrase: got %+v, want acceptable without feedback", v)
	}
}

// TestCheckCost: scoring is bounded, whatever the password's length.
func TestCheckCost(t *testing.T) {
	worst := strings.Repeat("1qaz2wsx", 32) // 256 characters of keyboard pattern
	start := time.Now()
	v := Check(worst, "bob@example.com")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Check of 256 characters took %v, want it bounded (it scores 64)", d)
	}
	if v.Acceptable {
		t.Errorf("Check(keyboard pattern): got acceptable")
	}
}

func TestParsePHC(t *testing.T) {
	const salt, key = "c29tZXNhbHQ", "Bo1ismRVk2qm6+YAYLCmWHDb+j3fjUH3"
	good := "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + key
	p, s, k, err := ParsePHC(good)
	if err != nil {
		t.Fatalf("ParsePHC(%q): %v", good, err)
	}
	if want := (Params{Memory: 64, Time: 2, Threads: 1, SaltLen: 8, KeyLen: 24}); p != want {
		t.Errorf("params = %+v, want %+v", p, want)
	}
	if string(s) != "somesalt" || len(k) != 24 {
		t.Errorf("salt, key = %q, %d bytes; want %q, 24 bytes", s, len(k), "somesalt")
	}
	if got := encodePHC(p, s, k); got != good {
		t.Errorf("encodePHC(ParsePHC(s)) = %q, want %q", got, good)
	}

	bad := []struct{ name, s string }{
		{"empty", ""},
		{"argon2i", "$argon2i$v=19$m=64,t=2,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=64,t=2,p=1$" + salt + "$" + key},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{"version 16", "$argon2id$v=16$m=64,t=2,p=1$" + salt + "$" + key},
		{"no version", "$argon2id$m=64,t=2,p=1$" + salt + "$" + key},
		{"no leading $", "argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + key},
		{"trailing $", good + "$"},
		{"extra field", good + "$AAAA"},
		{"no key", "$argon2id$v=19$m=64,t=2,p=1$" + salt},
		{"empty key", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$"},
		{"empty salt", "$argon2id$v=19$m=64,t=2,p=1$$" + key},
		{"reordered params", "$argon2id$v=19$t=2,m=64,p=1$" + salt + "$" + key},
		{"missing param", "$argon2id$v=19$m=64,t=2$" + salt + "$" + key},
		{"extra param", "$argon2id$v=19$m=64,t=2,p=1,x=1$" + salt + "$" + key},
		{"spaces", "$argon2id$v=19$m=64, t=2,p=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=064,t=2,p=1$" + salt + "$" + key},
		{"plus sign", "$argon2id$v=19$m=+64,t=2,p=1$" + salt + "$" + key},
		{"minus sign", "$argon2id$v=19$m=-64,t=2,p=1$" + salt + "$" + key},
		{"hex", "$argon2id$v=19$m=0x40,t=2,p=1$" + salt + "$" + key},
		{"underscore", "$argon2id$v=19$m=6_4,t=2,p=1$" + salt + "$" + key},
		{"empty value", "$argon2id$v=19$m=,t=2,p=1$" + salt + "$" + key},
		{"memory overflow", "$argon2id$v=19$m=4294967296,t=2,p=1$" + salt + "$" + key},
		{"threads overflow", "$argon2id$v=19$m=4096,t=2,p=256$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"zero threads", "$argon2id$v=19$m=64,t=2,p=0$" + salt + "$" + key},
		{"memory below 8p", "$argon2id$v=19$m=15,t=2,p=2$" + salt + "$" + key},
		{"padded salt", "$argon2id$v=19$m=64,t=2,p=1$c29tZXNhbHQ=$" + key},
		{"url base64", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$Bo1ismRVk2qm6-YAYLCmWHDb-j3fjUH3"},
		{"non-canonical trailing bits", "$argon2id$v=19$m=64,t=2,p=1$c29tZXNhbHR$" + key},
		{"short salt", "$argon2id$v=19$m=64,t=2,p=1$c29tZXNhbA$" + key},
		{"short key", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$AAA"},
		{"too long", "$argon2id$v=19$m=64,t=2,p=1$" + strings.Repeat("A", 400) + "$" + key},
		{"NUL", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + key + "\x00"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			p, s, k, err := ParsePHC(tt.s)
			if err == nil {
				t.Fatalf("ParsePHC(%q) = %+v, %x, %x, nil; want error", tt.s, p, s, k)
			}
			if !errors.Is(err, errPHC) {
				t.Errorf("ParsePHC error = %v, want it to wrap errPHC", err)
			}
			if len(tt.s) > 20 && strings.Contains(err.Error(), tt.s) {
				t.Errorf("error %q echoes the input", err)
			}
		})
	}
}
