package devices

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gateways"
	"github.com/nitronet/nitronet/internal/wgkey"
)

func TestPickGateway(t *testing.T) {
	a := gateways.Gateway{ID: "gw_a", Region: "eu-west"}
	b := gateways.Gateway{ID: "gw_b", Region: "us-east"}
	for _, c := range []struct {
		name     string
		enrolled []gateways.Gateway
		by       string
		want     string
		code     errs.Code
	}{
		{"the only one", []gateways.Gateway{a}, "", "gw_a", ""},
		{"by id", []gateways.Gateway{a, b}, "gw_b", "gw_b", ""},
		{"by region", []gateways.Gateway{a, b}, "eu-west", "gw_a", ""},
		{"a choice is needed", []gateways.Gateway{a, b}, "", "", errs.Invalid},
		{"none enrolled", nil, "", "", errs.Invalid},
		{"unknown", []gateways.Gateway{a, b}, "ap-south", "", errs.NotFound},
	} {
		g, err := pickGateway(c.enrolled, c.by)
		if errs.CodeOf(err) != c.code || g.ID != c.want {
			t.Errorf("%s: got %q, %v; want %q, code %q", c.name, g.ID, err, c.want, c.code)
		}
		if err != nil && errs.FieldOf(err) != "gateway" {
			t.Errorf("%s: error names field %q, want gateway", c.name, errs.FieldOf(err))
		}
	}
}

func TestWireGuardConfig(t *testing.T) {
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	gw := gateways.Gateway{ID: "gw_a", Region: "eu-west", Endpoint: "198.18.0.1:51820", PublicKey: k.Public().String()}
	dns := []netip.Addr{netip.MustParseAddr("100.64.0.1")}
	c, err := WireGuardConfig([]string{"100.64.0.2/32", "fd00:6e6e::2/128"}, gw, dns)
	if err != nil {
		t.Fatal(err)
	}
	text := c.Render()
	for _, want := range []string{"PrivateKey = \n", "Address = 100.64.0.2/32, fd00:6e6e::2/128", "DNS = 100.64.0.1",
		"PublicKey = " + gw.PublicKey, "Endpoint = 198.18.0.1:51820", "AllowedIPs = 0.0.0.0/0, ::/0", "PersistentKeepalive = 25"} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %q:\n%s", want, text)
		}
	}
	gw.PublicKey = ""
	if _, err := WireGuardConfig(nil, gw, dns); !errs.Is(err, errs.Unavailable) {
		t.Errorf("gateway without a key: got %v, want Unavailable", err)
	}
}

// TestDNSOfBlocking checks the DNS servers a configuration names for each
// choice of blocking categories: the gateways' addresses for none, the
// set's resolver in the IPv6 pool otherwise, and errors for an unknown
// category or a service without a usable pool.
func TestDNSOfBlocking(t *testing.T) {
	gwDNS := []netip.Addr{netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("fd00:6e6e::1")}
	s := &Service{cfg: Config{DNS: gwDNS, Pool6: netip.MustParsePrefix("fd00:6e6e::/48")}}
	for _, c := range []struct {
		blocking []string
		want     string
		code     errs.Code
	}{
		{nil, "[100.64.0.1 fd00:6e6e::1]", ""},
		{[]string{}, "[100.64.0.1 fd00:6e6e::1]", ""},
		{[]string{"ads"}, "[fd00:6e6e::53:0:1]", ""},
		{[]string{"gambling", "Trackers"}, "[fd00:6e6e::53:0:12]", ""},
		{[]string{"ads", "trackers", "malware", "adult", "gambling"}, "[fd00:6e6e::53:0:1f]", ""},
		{[]string{"casino"}, "[]", errs.Invalid},
	} {
		got, err := s.dns(c.blocking)
		if errs.CodeOf(err) != c.code || fmt.Sprint(got) != c.want {
			t.Errorf("dns(%v): got %v, %v; want %s, code %q", c.blocking, got, err, c.want, c.code)
		}
		if err != nil && errs.FieldOf(err) != "dns_blocking" {
			t.Errorf("dns(%v): error names field %q, want dns_blocking", c.blocking, errs.FieldOf(err))
		}
	}
	noPool := &Service{cfg: Config{DNS: gwDNS}}
	if _, err := noPool.ParseBlocking([]string{"ads"}); errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("ParseBlocking without a pool: got %v, want Unavailable", err)
	}
	if set, err := noPool.ParseBlocking(nil); err != nil || set != 0 {
		t.Errorf("ParseBlocking(nil) without a pool: got %v, %v; want the empty set", set, err)
	}
}
