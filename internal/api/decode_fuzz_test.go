package api

import (
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/errs"
)

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"email":"a@b.co","password":"x"}`, `{`, `[]`, `{"a":1}`, `{} {}`, ``, `null`, `{"email":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var v struct {
			Email    string  `json:"email"`
			Password string  `json:"password"`
			Name     *string `json:"name"`
		}
		err := DecodeJSON(strings.NewReader(in), &v)
		if err != nil {
			if c := errs.CodeOf(err); c != errs.Invalid && c != errs.TooLarge {
				t.Fatalf("got code %s for %q, want invalid", c, in)
			}
		}
	})
}
