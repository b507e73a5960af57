package password

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/errs"
)

// FuzzParsePHC checks that ParsePHC never panics, and that whatever it
// accepts is canonical (re-encodes to the same string) and safe to hand to
// argon2 once checkVerifiable passes.
func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Bo1ismRVk2qm6+YAYLCmWHDb+j3fjUH3Bo1ismRVk2q")
	f.Add("$argon2id$v=19$m=64,t=2,p=1$c29tZXNhbHQ$Bo1ismRVk2qm6+YAYLCmWHDb+j3fjUH3")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$")
	f.Add("$argon2i$v=19$m=64,t=2,p=1$c29tZXNhbHQ$AAAA")
	f.Add("$$$$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := ParsePHC(s)
		if err != nil {
			if !errors.Is(err, errPHC) {
				t.Errorf("ParsePHC error = %v, want it to wrap errPHC", err)
			}
			if p != (Params{}) || salt != nil || key != nil {
				t.Errorf("ParsePHC returned values with an error")
			}
			return
		}
		if got := encodePHC(p, salt, key); got != s {
			t.Errorf("encodePHC(ParsePHC(%q)) = %q, want the input", s, got)
		}
		if p.Time < 1 || p.Threads < 1 || p.Memory < 8*uint32(p.Threads) {
			t.Errorf("ParsePHC accepted invalid argon2 parameters %+v", p)
		}
		if int(p.SaltLen) != len(salt) || int(p.KeyLen) != len(key) || len(salt) < 8 || len(key) < 4 {
			t.Errorf("ParsePHC params %+v inconsistent with %d-byte salt, %d-byte key", p, len(salt), len(key))
		}
		if checkVerifiable(p) == nil {
			if p.Memory > MaxMemory || p.Time > MaxTime || p.Threads > MaxThreads || p.KeyLen > MaxKeyLen {
				t.Errorf("checkVerifiable accepted hostile params %+v", p)
			}
		}
	})
}

// FuzzValidate checks Validate against a direct statement of the policy:
// accepted exactly when the length rules hold and zxcvbn scores the
// (first 64 characters of the) password at least MinScore; never with a
// message that holds the password; and Check agrees with Validate.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"", "0123456789", "012345678", strings.Repeat("é", 10),
		strings.Repeat("a", 257), "0123456789\xff", "01234\x0056789", "correct horse battery staple", "password1234"} {
		f.Add(s, "bob@example.com")
	}
	f.Fuzz(func(t *testing.T, s, context string) {
		err := Validate(s, context)
		v := Check(s, context)
		n := utf8.RuneCountInString(s)
		lengthOK := utf8.ValidString(s) && !strings.ContainsRune(s, 0) && n >= MinLength && n <= MaxLength
		if (err == nil) != v.Acceptable || (v.Acceptable && (!lengthOK || v.Score < MinScore)) {
			t.Fatalf("Validate(%q) = %v, Check = %+v: want them to agree with the length rules and the score", s, err, v)
		}
		if !lengthOK && v.Acceptable {
			t.Fatalf("Check(%q) accepted a password outside the length rules", s)
		}
		if err != nil && errs.CodeOf(err) != errs.Invalid {
			t.Errorf("Validate code = %q, want %q", errs.CodeOf(err), errs.Invalid)
		}
		if err != nil && len(s) >= 4 && strings.Contains(err.Error(), s) {
			t.Errorf("Validate(%q): the message holds the password", s)
		}
	})
}
