package peers

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

var pools = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("fd00:6e6e::/48")}

func key(b byte) wgkey.PublicKey {
	var k wgkey.PublicKey
	for i := range k {
		k[i] = b
	}
	return k
}

func proto(id string, b byte, addrs ...string) gwproto.Peer {
	return gwproto.Peer{DeviceID: id, PublicKey: key(b).String(), Addresses: addrs}
}

func peer(id string, k wgkey.PublicKey, addrs ...string) Peer {
	p := Peer{DeviceID: id, Key: k}
	for _, a := range addrs {
		p.Addrs = append(p.Addrs, netip.MustParseAddr(a))
	}
	return p
}

func TestFromProto(t *testing.T) {
	tests := []struct {
		name    string
		in      gwproto.Peer
		want    []string
		wantErr bool
	}{
		{"ok sorted and deduplicated", proto("a", 1, "fd00:6e6e::2/128", "100.64.0.2/32", "100.64.0.2/32"), []string{"100.64.0.2", "fd00:6e6e::2"}, false},
		{"mapped IPv4 is IPv4", proto("a", 1, "::ffff:100.64.0.2/128"), []string{"100.64.0.2"}, false},
		{"bad key", gwproto.Peer{DeviceID: "a", PublicKey: "nope", Addresses: []string{"100.64.0.2/32"}}, nil, true},
		{"no device ID", proto("", 1, "100.64.0.2/32"), nil, true},
		{"device ID too long", proto(strings.Repeat("d", MaxDeviceIDLen+1), 1, "100.64.0.2/32"), nil, true},
		{"no addresses", proto("a", 1), nil, true},
		{"not a host prefix", proto("a", 1, "100.64.0.0/24"), nil, true},
		{"default route refused", proto("a", 1, "0.0.0.0/0"), nil, true},
		{"outside pools", proto("a", 1, "192.0.2.1/32"), nil, true},
		{"garbage address", proto("a", 1, "x"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FromProto(tt.in, pools)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err: got %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var got []string
			for _, a := range p.Addrs {
				got = append(got, a.String())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUAPI(t *testing.T) {
	p := peer("a", key(1), "100.64.0.2", "fd00:6e6e::2")
	hex := key(1).Hex()
	if got, want := addUAPI(p), "public_key="+hex+"\nreplace_allowed_ips=true\nallowed_ip=100.64.0.2/32\nallowed_ip=fd00:6e6e::2/128\n"; got != want {
		t.Errorf("addUAPI: got %q, want %q", got, want)
	}
	if got, want := removeUAPI(key(1)), "public_key="+hex+"\nremove=true\n"; got != want {
		t.Errorf("removeUAPI: got %q, want %q", got, want)
	}
}

func FuzzFromProto(f *testing.F) {
	f.Add("dev_a", key(1).String(), "100.64.0.2/32", "fd00:6e6e::2/128")
	f.Add("", "", "", "")
	f.Add("d", key(2).String(), "::ffff:100.64.0.2/128", "100.64.0.0/10")
	f.Add("d", "AAAA", "fe80::1%eth0/128", "x")
	f.Fuzz(func(t *testing.T, id, pub, a1, a2 string) {
		p, err := FromProto(gwproto.Peer{DeviceID: id, PublicKey: pub, Addresses: []string{a1, a2}}, pools)
		if err != nil {
			return
		}
		// Whatever FromProto accepts, the index stores and returns as is.
		x := NewIndex()
		if _, err := x.Admit(p); err != nil {
			t.Fatalf("FromProto accepted %+v, Admit refused it: %v", p, err)
		}
		got, ok := x.Peer(p.Key)
		if !ok || got.DeviceID != p.DeviceID || len(got.Addrs) != len(p.Addrs) {
			t.Fatalf("round trip: got %+v, want %+v", got, p)
		}
		for i := range got.Addrs {
			if got.Addrs[i] != p.Addrs[i] {
				t.Fatalf("round trip: got %v, want %v", got.Addrs, p.Addrs)
			}
		}
	})
}
