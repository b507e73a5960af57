package kernelnet

import (
	"net/netip"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func validConfig() Config {
	return Config{
		IfName:    "nt0",
		Addresses: prefixes("100.64.0.1/10", "fd00:6e6e::1/48"),
		Pools:     prefixes("100.64.0.0/10", "fd00:6e6e::/48"),
		DNSPort:   53,
	}
}

func TestConfigNormalize(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"no name", func(c *Config) { c.IfName = "" }, "interface name"},
		{"long name", func(c *Config) { c.IfName = "abcdefghijklmnop" }, "interface name"},
		{"slash in name", func(c *Config) { c.IfName = "a/b" }, "interface name"},
		{"no addresses", func(c *Config) { c.Addresses = nil }, "no tunnel addresses"},
		{"invalid address", func(c *Config) { c.Addresses = []netip.Prefix{{}} }, "invalid tunnel address"},
		{"mapped address", func(c *Config) { c.Addresses = prefixes("::ffff:100.64.0.1/106") }, "invalid tunnel address"},
		{"no pools", func(c *Config) { c.Pools = nil }, "no client pools"},
		{"invalid allow", func(c *Config) { c.AllowPrivate = []netip.Prefix{{}} }, "allow-private"},
		{"dns port", func(c *Config) { c.DNSPort = 70000 }, "DNS port"},
		{"service port", func(c *Config) { c.ServicePorts = []int{0} }, "service port"},
		{"dns addresses without a port", func(c *Config) {
			c.DNSPort, c.DNSAddresses = 0, []netip.Addr{netip.MustParseAddr("fd00:6e6e::53:0:1")}
		}, "without a DNS port"},
		{"invalid dns address", func(c *Config) { c.DNSAddresses = []netip.Addr{{}} }, "invalid DNS address"},
		{"mtu small", func(c *Config) { c.MTU = 100 }, "MTU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mod(&c)
			got, err := c.normalize()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("normalize: %v", err)
				}
				if got.MTU != DefaultMTU || got.Logger == nil {
					t.Errorf("defaults: MTU %d, Logger %v; want %d, non-nil", got.MTU, got.Logger, DefaultMTU)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("normalize error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigMasksPrefixes(t *testing.T) {
	c := validConfig()
	c.Pools = prefixes("100.64.3.7/10")
	c.AllowPrivate = prefixes("10.1.2.3/16")
	got, err := c.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParsePrefix("100.64.0.0/10"); got.Pools[0] != want {
		t.Errorf("pool = %v, want %v", got.Pools[0], want)
	}
	if want := netip.MustParsePrefix("10.1.0.0/16"); got.AllowPrivate[0] != want {
		t.Errorf("allow = %v, want %v", got.AllowPrivate[0], want)
	}
	// Addresses keep their host part: it is the gateway's own address.
	if want := netip.MustParsePrefix("100.64.0.1/10"); got.Addresses[0] != want {
		t.Errorf("address = %v, want %v", got.Addresses[0], want)
	}
}

func TestFamilies(t *testing.T) {
	tests := []struct {
		addrs, pools []string
		v4, v6       bool
	}{
		{[]string{"100.64.0.1/10"}, []string{"100.64.0.0/10"}, true, false},
		{[]string{"fd00::1/64"}, []string{"fd00::/64"}, false, true},
		{[]string{"100.64.0.1/10"}, []string{"fd00::/64"}, true, true},
	}
	for _, tt := range tests {
		c := Config{Addresses: prefixes(tt.addrs...), Pools: prefixes(tt.pools...)}
		if v4, v6 := c.families(); v4 != tt.v4 || v6 != tt.v6 {
			t.Errorf("families(%v, %v) = %v, %v; want %v, %v", tt.addrs, tt.pools, v4, v6, tt.v4, tt.v6)
		}
	}
}

func TestDefaultBlockedCoversBrief(t *testing.T) {
	blocked := DefaultBlocked()
	for _, a := range []string{
		"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
		"100.64.0.2", "127.0.0.1", "fc00::1", "fd12::1", "fe80::1", "::1",
	} {
		addr := netip.MustParseAddr(a)
		found := false
		for _, p := range blocked {
			if p.Contains(addr) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s not blocked", a)
		}
	}
	for _, a := range []string{"198.18.0.1", "198.19.0.2", "1.1.1.1", "2001:4860::1", "172.32.0.1"} {
		addr := netip.MustParseAddr(a)
		for _, p := range blocked {
			if p.Contains(addr) {
				t.Errorf("%s blocked by %v", a, p)
			}
		}
	}
}

func TestHostPrefixes(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	var resolvers []string
	for i := 1; i < 32; i++ {
		resolvers = append(resolvers, netip.AddrFrom16([16]byte{0: 0xfd, 3: 0x6e, 11: 0x53, 15: byte(i)}).String())
	}
	tests := []struct {
		in   []netip.Addr
		want string
	}{
		{nil, ""},
		{addrs("fd00::1"), "fd00::1/128"},
		{addrs(resolvers...), "fd00:6e::53:0:1/128 fd00:6e::53:0:2/127 fd00:6e::53:0:4/126 fd00:6e::53:0:8/125 fd00:6e::53:0:10/124"},
		{addrs("10.0.0.3", "10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.1"), "10.0.0.0/30"},
		{addrs("10.0.0.1", "10.0.0.2"), "10.0.0.1/32 10.0.0.2/32"},
		{addrs("10.0.0.4", "10.0.0.5", "10.0.0.7"), "10.0.0.4/31 10.0.0.7/32"},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range hostPrefixes(tt.in) {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("hostPrefixes(%v): got %v, want %s", tt.in, got, tt.want)
		}
	}
}
