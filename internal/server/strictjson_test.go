package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestStrictJSON reproduces the JSON findings of the adversarial pass
// against the login route: each request below logged in (201) with the
// previous decoder, which let the last of two members win, matched names
// case-insensitively and took a body without a Content-Type. Each is now
// refused with 400, and only the well-formed request logs in.
func TestStrictJSON(t *testing.T) {
	e := newEnv(t, storetest.Backends()[0], nil)
	const email, pw = "strict@example.com", "correct horse battery"
	if _, err := e.srv.Accounts.Signup(t.Context(), email, "+447911100777", pw); err != nil {
		t.Fatal(err)
	}
	post := func(contentType, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest("POST", e.url+"/api/v1/sessions", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	good := `{"email":"` + email + `","password":"` + pw + `"}`
	for _, c := range []struct {
		name, contentType, body, field string
	}{
		{"duplicate key, the last one would win", "application/json",
			`{"email":"` + email + `","password":"not the password","password":"` + pw + `"}`, "password"},
		{"duplicate key, the first one would lose", "application/json",
			`{"email":"nobody@example.com","email":"` + email + `","password":"` + pw + `"}`, "email"},
		{"case-folded field names", "application/json", `{"Email":"` + email + `","PASSWORD":"` + pw + `"}`, "Email"},
		{"no Content-Type", "", good, ""},
		{"text/plain, as a cross-site form sends", "text/plain", good, ""},
		{"a type that starts like JSON", "application/jsonp", good, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, out := post(c.contentType, c.body)
			errObj, _ := out["error"].(map[string]any)
			if status != 400 || errObj["code"] != "invalid" {
				t.Fatalf("got %d %v, want 400 invalid", status, out)
			}
			if got, _ := errObj["field"].(string); got != c.field {
				t.Fatalf("got field %q, want %q", got, c.field)
			}
			if _, ok := out["token"]; ok {
				t.Fatal("the answer holds a session token")
			}
		})
	}
	if status, out := post("application/json; charset=utf-8", good); status != 201 || out["token"] == nil {
		t.Fatalf("a well-formed login: got %d %v, want 201 with a token", status, out)
	}
}
