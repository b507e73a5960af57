package httpedge

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestTrustProxies: only a trusted peer's X-Forwarded-For counts, and
// only its rightmost untrusted hop, so a client cannot pick its own key
// by sending the header.
func TestTrustProxies(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, c := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer's header ignored", "198.51.100.9:4000", []string{"203.0.113.7"}, "addr:198.51.100.9"},
		{"trusted peer, one hop", "10.1.2.3:4000", []string{"203.0.113.7"}, "addr:203.0.113.7"},
		{"client prepends a forged hop", "10.1.2.3:4000", []string{"192.0.2.66, 203.0.113.7"}, "addr:203.0.113.7"},
		{"chain of trusted proxies", "10.1.2.3:4000", []string{"203.0.113.7, 10.9.9.9", "10.8.8.8"}, "addr:203.0.113.7"},
		{"IPv6 peer, IPv6 client", "[::1]:4000", []string{"2001:db8::7"}, "addr:2001:db8::7"},
		{"IPv4-mapped client", "10.1.2.3:4000", []string{"::ffff:203.0.113.7"}, "addr:203.0.113.7"},
		{"no header", "10.1.2.3:4000", nil, "addr:10.1.2.3"},
		{"only trusted hops", "10.1.2.3:4000", []string{"10.7.7.7"}, "addr:10.1.2.3"},
		{"unreadable hop keeps the peer", "10.1.2.3:4000", []string{"203.0.113.7, junk"}, "addr:10.1.2.3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got string
			h := TrustProxies(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = ClientKey(r) }))
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.peer
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	// Without trusted proxies the header is never read.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.2.3:4000"
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	var got string
	TrustProxies(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = ClientKey(r) })).ServeHTTP(httptest.NewRecorder(), r)
	if got != "addr:10.1.2.3" {
		t.Fatalf("no trusted proxies: got %q", got)
	}
}
