package gateway

import (
	"net/netip"
	"strconv"
	"testing"
)

func TestDefaults(t *testing.T) {
	c, err := Config{ServerURL: "http://127.0.0.1:1"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want string
	}{
		{"mode", c.Mode, ModeUserspace},
		{"dns port", strconv.Itoa(c.DNSPort), "53"},
		{"addr4", c.Addr4.String(), "100.64.0.1"},
		{"addr6", c.Addr6.String(), "fd00:6e6e::1"},
		{"addresses", netip.PrefixFrom(c.Addr4, c.Pool4.Bits()).String() + " " + netip.PrefixFrom(c.Addr6, c.Pool6.Bits()).String(), "100.64.0.1/10 fd00:6e6e::1/48"},
		{"pools", NetworkConfig{Addresses: c.addresses()}.Pools()[0].String() + " " + NetworkConfig{Addresses: c.addresses()}.Pools()[1].String(), "100.64.0.0/10 fd00:6e6e::/48"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
