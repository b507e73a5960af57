package gwproto

import (
	"net"
	"strings"
	"testing"
)

func TestResolveEndpoint(t *testing.T) {
	tests := []struct {
		in   string
		port int
		want string // "" means an error
	}{
		{"vpn.example.com:51820", 0, "vpn.example.com:51820"},
		{"vpn.example.com:443", 51820, "vpn.example.com:443"}, // an explicit port wins: a port forward
		{"vpn.example.com", 51999, "vpn.example.com:51999"},
		{" 198.18.0.1 ", 51820, "198.18.0.1:51820"},
		{"[2001:db8::1]:51820", 0, "[2001:db8::1]:51820"},
		{"2001:db8::1", 51820, "[2001:db8::1]:51820"},
		{"[2001:db8::1]", 51820, "[2001:db8::1]:51820"},
		{"vpn.example.com", 0, ""},
		{"", 51820, ""},
		{":51820", 0, ""},
		{"host:0", 0, ""},
		{"host:65536", 0, ""},
		{"host:x", 51820, ""},
		{"a b:1", 0, ""},
		{"user@host:1", 0, ""},
		{"host/path", 51820, ""},
		{"not:an:address", 51820, ""},
	}
	for _, tt := range tests {
		got, err := ResolveEndpoint(tt.in, tt.port)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ResolveEndpoint(%q, %d): got %q, want an error", tt.in, tt.port, got)
			} else if strings.Contains(err.Error(), strings.TrimSpace(tt.in)) && strings.TrimSpace(tt.in) != "" {
				t.Errorf("ResolveEndpoint(%q): error %q quotes the input", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ResolveEndpoint(%q, %d): got %q, %v; want %q", tt.in, tt.port, got, err, tt.want)
		}
	}
}

func TestNormalizeRegion(t *testing.T) {
	if got, err := NormalizeRegion(" EU-West-1 "); err != nil || got != "eu-west-1" {
		t.Errorf("got %q, %v; want eu-west-1", got, err)
	}
	for _, bad := range []string{"", "eu west", "eu_west", strings.Repeat("a", 33), "é"} {
		if _, err := NormalizeRegion(bad); err == nil {
			t.Errorf("NormalizeRegion(%q): got nil error", bad)
		}
	}
}

// FuzzResolveEndpoint: ResolveEndpoint never panics, and what it returns is
// a HOST:PORT that it accepts again unchanged.
func FuzzResolveEndpoint(f *testing.F) {
	for _, s := range []string{"vpn.example.com:51820", "198.18.0.1", "[::1]", "::1", "[::1]:1", ":", "[", "a:b:c", ""} {
		f.Add(s, 51820)
		f.Add(s, 0)
	}
	f.Fuzz(func(t *testing.T, in string, port int) {
		out, err := ResolveEndpoint(in, port)
		if err != nil {
			return
		}
		if _, _, err := net.SplitHostPort(out); err != nil {
			t.Fatalf("ResolveEndpoint(%q, %d) = %q, not HOST:PORT: %v", in, port, out, err)
		}
		if again, err := ResolveEndpoint(out, 0); err != nil || again != out {
			t.Fatalf("ResolveEndpoint(%q, 0) = %q, %v; want it unchanged", out, again, err)
		}
	})
}
