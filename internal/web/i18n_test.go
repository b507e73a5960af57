package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestLanguageFromAcceptLanguage: the page frame and the devices page
// come from the message catalogue in the language the browser asks for,
// German or English, with English for any other.
func TestLanguageFromAcceptLanguage(t *testing.T) {
	e := newEnv(t)
	b := e.client(t)
	b.signup("lang@example.com", "+447911100125", "correct horse battery staple")
	get := func(path, accept string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Language", accept)
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Language") {
			t.Errorf("GET %s: Vary %q, want Accept-Language", path, resp.Header.Get("Vary"))
		}
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	cases := []struct {
		accept, lang string
		want, never  []string
	}{
		{"de-DE,de;q=0.9,en;q=0.5", "de", []string{"Geräte", "0 von 3 Geräten", "Sie haben noch keine Geräte.", "Abmelden"}, []string{">Devices<", "Log out"}},
		{"en-GB,en;q=0.8", "en", []string{">Devices", "0 of 3 devices", "You have no devices yet.", "Log out"}, []string{"Geräte"}},
		{"fr-FR,fr;q=0.9", "en", []string{"0 of 3 devices"}, []string{"Geräte"}},
	}
	for _, c := range cases {
		page := get("/devices", c.accept)
		if !strings.Contains(page, `<html lang="`+c.lang+`">`) {
			t.Errorf("Accept-Language %q: want <html lang=%q>", c.accept, c.lang)
		}
		for _, w := range c.want {
			if !strings.Contains(page, w) {
				t.Errorf("Accept-Language %q: page lacks %q", c.accept, w)
			}
		}
		for _, n := range c.never {
			if strings.Contains(page, n) {
				t.Errorf("Accept-Language %q: page has %q", c.accept, n)
			}
		}
	}
	if home := get("/", "de"); !strings.Contains(home, "Ein VPN, das nur speichert, was es muss") || !strings.Contains(home, `href="/data"`) {
		t.Errorf("German home page lacks its heading or the link to the inventory")
	}
}
