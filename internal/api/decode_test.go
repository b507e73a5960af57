package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
)

// login is a request body of the API's login route.
type login struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// TestDecodeJSONStrict: each input was accepted by the encoding/json
// decoder DecodeJSON used before (the last duplicate winning, names
// matched case-insensitively) and is now refused, naming the member.
func TestDecodeJSONStrict(t *testing.T) {
	for _, c := range []struct {
		name, in, field, msg string
	}{
		{"duplicate key, last would win", `{"email":"a@example.com","password":"wrong","password":"right"}`, "password", "more than once"},
		{"duplicate key, same value", `{"email":"a@example.com","email":"a@example.com","password":"x"}`, "email", "more than once"},
		{"case-folded name", `{"Email":"a@example.com","password":"x"}`, "Email", "unknown field"},
		{"upper-case name", `{"email":"a@example.com","PASSWORD":"x"}`, "PASSWORD", "unknown field"},
		// encoding/json folds the Kelvin sign (U+212A) to k, and ſ
		// (U+017F) to s: "paſſword" matched "password".
		{"Unicode case folding", `{"email":"a@example.com","paſſword":"x"}`, "paſſword", "unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var v login
			err := DecodeJSON(strings.NewReader(c.in), &v)
			if errs.CodeOf(err) != errs.Invalid || errs.FieldOf(err) != c.field || !strings.Contains(errs.MessageOf(err), c.msg) {
				t.Fatalf("got %v (field %q), want invalid naming %q (%s)", err, errs.FieldOf(err), c.field, c.msg)
			}
		})
	}
}

// TestDecodeJSONNested: duplicates and unknown names are found at any
// depth, and named by their path.
func TestDecodeJSONNested(t *testing.T) {
	type report struct {
		Intervals []struct {
			DeviceID string     `json:"device_id"`
			Start    time.Time  `json:"start"`
			End      *time.Time `json:"end"`
		} `json:"intervals"`
	}
	for in, field := range map[string]string{
		`{"intervals":[{"device_id":"a","start":"2026-01-01T00:00:00Z","start":"1900-01-01T00:00:00Z"}]}`: "intervals.start",
		`{"intervals":[{"device_id":"a"},{"Device_ID":"b"}]}`:                                             "intervals.Device_ID",
		`{"intervals":[{"device_id":"a","start":"yesterday"}]}`:                                           "intervals.start",
		`{"intervals":{"device_id":"a"}}`:                                                                 "intervals",
	} {
		var v report
		if err := DecodeJSON(strings.NewReader(in), &v); errs.CodeOf(err) != errs.Invalid || errs.FieldOf(err) != field {
			t.Errorf("%s: got %v (field %q), want invalid naming %q", in, err, errs.FieldOf(err), field)
		}
	}
}

// TestDecodeJSONShape: what is not exactly one JSON object is refused
// with a clear message, and a well-formed object is decoded.
func TestDecodeJSONShape(t *testing.T) {
	for in, msg := range map[string]string{
		``:                        "must not be empty",
		" \n ":                    "must not be empty",
		`null`:                    "must be a JSON object",
		`[]`:                      "must be a JSON object",
		`"x"`:                     "must be a JSON object",
		`{"email":"a"} {}`:        "single JSON object",
		`{"email":"a"}x`:          "single JSON object",
		`{"email":`:               "not valid JSON",
		`{"email":"a",}`:          "not valid JSON",
		"{\"email\":\"\xff\"}":    "not valid JSON", // invalid UTF-8
		`{"email":1}`:             "wrong type",
		`{"email":"a","name":""}`: "unknown field",
	} {
		var v login
		if err := DecodeJSON(strings.NewReader(in), &v); errs.CodeOf(err) != errs.Invalid || !strings.Contains(errs.MessageOf(err), msg) {
			t.Errorf("%q: got %v, want invalid %q", in, err, msg)
		}
	}
	var v login
	if err := DecodeJSON(strings.NewReader(" {\"email\":\"a@example.com\",\"password\":\"p\"}\n"), &v); err != nil || v != (login{"a@example.com", "p"}) {
		t.Fatalf("got %+v, %v", v, err)
	}
}

// TestDecodeContentType: a JSON route refuses a body without a
// Content-Type (which a cross-site fetch of a Blob sends without a CORS
// preflight) and any type but application/json.
func TestDecodeContentType(t *testing.T) {
	body := `{"email":"a@example.com","password":"p"}`
	for _, c := range []struct {
		ct string
		ok bool
	}{
		{"", false},
		{"text/plain", false},
		{"text/plain; charset=utf-8", false},
		{"application/x-www-form-urlencoded", false},
		{"multipart/form-data; boundary=x", false},
		{"application/jsonx", false},
		{"application/json-patch+json", false},
		{"application/json; charset=iso-8859-1", false},
		{"application/json; foo=bar", false},
		{"application/json", true},
		{"Application/JSON", true},
		{"application/json; charset=utf-8", true},
		{"application/json;charset=UTF-8", true},
	} {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/sessions", strings.NewReader(body))
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		var v login
		err := decode(httptest.NewRecorder(), r, &v)
		if c.ok && err != nil {
			t.Errorf("Content-Type %q: got %v, want it accepted", c.ct, err)
		}
		if !c.ok && (errs.CodeOf(err) != errs.Invalid || !strings.Contains(errs.MessageOf(err), "Content-Type")) {
			t.Errorf("Content-Type %q: got %v, want invalid naming the Content-Type", c.ct, err)
		}
	}
}

// TestDecodeTooLarge: a body over the limit is TooLarge.
func TestDecodeTooLarge(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/sessions",
		strings.NewReader(`{"email":"`+strings.Repeat("a", MaxBody)+`"}`))
	r.Header.Set("Content-Type", "application/json")
	var v login
	if err := decode(httptest.NewRecorder(), r, &v); errs.CodeOf(err) != errs.TooLarge {
		t.Fatalf("got %v, want too_large", err)
	}
}
