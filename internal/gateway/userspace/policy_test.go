package userspace

import (
	"net/netip"
	"testing"
)

func TestDestPolicy(t *testing.T) {
	p := &destPolicy{
		gateway: []netip.Addr{netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("fd00:6e6e::1")},
		pools:   []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("fd00:6e6e::/48")},
		private: privateRanges(),
	}
	withLoopback := *p
	withLoopback.allowPrivate = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("100.64.0.0/10")}

	tests := []struct {
		name string
		p    *destPolicy
		dst  string
		want bool
	}{
		{"public v4", p, "203.0.113.10", true},
		{"public v6", p, "2001:db8::10", true},
		{"other client", p, "100.64.0.7", false},
		{"other client v6", p, "fd00:6e6e::7", false},
		{"gateway itself", p, "100.64.0.1", false},
		{"loopback", p, "127.0.0.1", false},
		{"loopback v6", p, "::1", false},
		{"mapped loopback", p, "::ffff:127.0.0.1", false},
		{"rfc1918 10", p, "10.1.2.3", false},
		{"rfc1918 172", p, "172.20.0.1", false},
		{"rfc1918 192", p, "192.168.1.1", false},
		{"link local", p, "169.254.169.254", false},
		{"cgnat outside pool", p, "100.127.0.1", false},
		{"ula", p, "fd12::1", false},
		{"v6 link local", p, "fe80::1", false},
		{"unspecified", p, "0.0.0.0", false},
		{"multicast", p, "224.0.0.1", false},
		{"broadcast", p, "255.255.255.255", false},
		{"allowed loopback", &withLoopback, "127.0.0.1", true},
		{"other loopback still refused", &withLoopback, "127.0.0.2", false},
		{"allowing the pool does not allow clients", &withLoopback, "100.64.0.7", false},
		{"allowing the pool does not allow the gateway", &withLoopback, "100.64.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.allowed(netip.MustParseAddr(tt.dst)); got != tt.want {
				t.Errorf("allowed(%s): got %v, want %v", tt.dst, got, tt.want)
			}
		})
	}
}
