package devices

import (
	"crypto/rand"
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
