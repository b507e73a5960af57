package api

import (
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/errs"
)

// fuzzBody is the request body the fuzz target decodes into.
type fuzzBody struct {
	Email    string  `json:"email"`
	Password string  `json:"password"`
	Name     *string `json:"name"`
}

// FuzzDecodeJSON: DecodeJSON never panics and refuses with Invalid (or
// TooLarge) only. What it accepts is a single object without a repeated
// member name at any depth, whose names are exactly the struct's tags; and
// encoding/json, the lenient decoder it replaced, decodes it to the same
// value.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"email":"a@b.co","password":"x"}`, `{`, `[]`, `{"a":1}`, `{} {}`, ``, `null`, `{"email":1}`,
		`{"email":"a","email":"b"}`, `{"Email":"a"}`, `{"paſſword":"x"}`, `{"\u0065mail":"a"}`, `{"name":null}`,
		"{\"email\":\"\xff\"}", `{"email":"\ud800"}`, `{"name":"x","name":null}`, ` {"password":""} `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var v fuzzBody
		err := DecodeJSON(strings.NewReader(in), &v)
		if err != nil {
			if c := errs.CodeOf(err); c != errs.Invalid && c != errs.TooLarge {
				t.Fatalf("got code %s for %q, want invalid", c, in)
			}
			return
		}
		if err := uniqueExactNames(in); err != nil {
			t.Fatalf("accepted %q: %v", in, err)
		}
		var old fuzzBody
		dec := json.NewDecoder(strings.NewReader(in))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&old); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", in, err)
		}
		if !reflect.DeepEqual(v, old) {
			t.Fatalf("%q: decoded %+v, encoding/json %+v", in, v, old)
		}
	})
}

// uniqueExactNames walks in with encoding/json's tokenizer and returns an
// error if an object repeats a member name or the top-level object has a
// name that is not exactly one of fuzzBody's tags.
func uniqueExactNames(in string) error {
	dec := json.NewDecoder(strings.NewReader(in))
	type frame struct {
		object bool
		names  map[string]bool
		key    bool // the next token of an object is a name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			name := tok.(string)
			if top.names[name] {
				return errors.New("repeated name " + name)
			}
			if len(stack) == 1 && name != "email" && name != "password" && name != "name" {
				return errors.New("inexact name " + name)
			}
			top.names[name] = true
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true // the value of a member, so a name comes next
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, names: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}
