package peers

import (
	"errors"
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

func peer(id string, b byte, addrs ...string) Peer {
	p := Peer{DeviceID: id, Key: key(b)}
	for _, a := range addrs {
		p.Allowed = append(p.Allowed, netip.MustParsePrefix(a))
	}
	return p
}

func proto(id string, b byte, addrs ...string) gwproto.Peer {
	return gwproto.Peer{DeviceID: id, PublicKey: key(b).String(), Addresses: addrs}
}

func set(ps ...Peer) Set {
	s := Set{}
	for _, p := range ps {
		s[p.Key] = p
	}
	return s
}

func TestDiff(t *testing.T) {
	a := peer("a", 1, "100.64.0.2/32")
	b := peer("b", 2, "100.64.0.3/32")
	b2 := peer("b", 2, "100.64.0.4/32")
	c := peer("c", 3, "100.64.0.5/32")
	tests := []struct {
		name      string
		cur, want Set
		ops       []string // kind:deviceID in order
	}{
		{"both empty", set(), set(), nil},
		{"add all", set(), set(a, b), []string{"add:a", "add:b"}},
		{"remove all", set(a, b), set(), []string{"remove:a", "remove:b"}},
		{"unchanged", set(a, b), set(a, b), nil},
		{"mixed, removals first", set(a, b, c), set(b2, peer("d", 0, "100.64.0.9/32")), []string{"remove:a", "remove:c", "add:d", "update:b"}},
		{"device id change only", set(a), set(peer("a2", 1, "100.64.0.2/32")), []string{"update:a2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, op := range Diff(tt.cur, tt.want) {
				got = append(got, op.Kind.String()+":"+op.Peer.DeviceID)
			}
			if strings.Join(got, ",") != strings.Join(tt.ops, ",") {
				t.Errorf("got %v, want %v", got, tt.ops)
			}
		})
	}
}

func TestOpUAPI(t *testing.T) {
	p := peer("a", 1, "100.64.0.2/32", "fd00:6e6e::2/128")
	hex := key(1).Hex()
	tests := []struct {
		name string
		op   Op
		want string
	}{
		{"remove", Op{Kind: Remove, Peer: p}, "public_key=" + hex + "\nremove=true\n"},
		{"add", Op{Kind: Add, Peer: p}, "public_key=" + hex + "\nreplace_allowed_ips=true\nallowed_ip=100.64.0.2/32\nallowed_ip=fd00:6e6e::2/128\n"},
		{"update", Op{Kind: Update, Peer: p}, "public_key=" + hex + "\nreplace_allowed_ips=true\nallowed_ip=100.64.0.2/32\nallowed_ip=fd00:6e6e::2/128\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.op.UAPI(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFromProto(t *testing.T) {
	tests := []struct {
		name    string
		in      gwproto.Peer
		want    []string
		wantErr bool
	}{
		{"ok sorted and deduplicated", proto("a", 1, "fd00:6e6e::2/128", "100.64.0.2/32", "100.64.0.2/32"), []string{"100.64.0.2/32", "fd00:6e6e::2/128"}, false},
		{"bad key", gwproto.Peer{DeviceID: "a", PublicKey: "nope", Addresses: []string{"100.64.0.2/32"}}, nil, true},
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
			for _, a := range p.Allowed {
				got = append(got, a.String())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// recorder is a fake device that records every UAPI request.
type recorder struct {
	calls []string
	fail  bool
}

func (r *recorder) IpcSet(s string) error {
	if r.fail {
		return errors.New("boom")
	}
	r.calls = append(r.calls, s)
	return nil
}

func TestTableAppliesOnlyDiffs(t *testing.T) {
	dev := &recorder{}
	tab := NewTable(dev, pools)

	res := tab.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32"), proto("bad", 3, "8.8.8.8/32")})
	if res.Added != 2 || res.Rejected != 1 || len(dev.calls) != 2 {
		t.Fatalf("first full: got added=%d rejected=%d calls=%d, want 2, 1, 2", res.Added, res.Rejected, len(dev.calls))
	}

	// Same snapshot again: nothing to do.
	dev.calls = nil
	tab.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32")})
	if len(dev.calls) != 0 {
		t.Errorf("identical full: got %d calls, want 0", len(dev.calls))
	}

	// One peer changed and one removed: exactly two single-peer requests.
	dev.calls = nil
	res = tab.ApplyFull([]gwproto.Peer{proto("b", 2, "100.64.0.4/32")})
	if len(dev.calls) != 2 || len(res.Removed) != 1 || res.Removed[0].DeviceID != "a" || res.Updated != 1 {
		t.Fatalf("changed full: got calls=%q removed=%v updated=%d", dev.calls, res.Removed, res.Updated)
	}
	if want := "public_key=" + key(1).Hex() + "\nremove=true\n"; dev.calls[0] != want {
		t.Errorf("removal: got %q, want %q", dev.calls[0], want)
	}
	for _, c := range dev.calls {
		if strings.Count(c, "public_key=") != 1 || strings.Contains(c, "replace_peers") || strings.Contains(c, "private_key") {
			t.Errorf("request is not minimal: %q", c)
		}
	}

	// Changes.
	dev.calls = nil
	res = tab.ApplyChange(gwproto.Change{Peer: proto("c", 5, "100.64.0.5/32")})
	if res.Added != 1 || len(dev.calls) != 1 {
		t.Errorf("add change: got added=%d calls=%d, want 1, 1", res.Added, len(dev.calls))
	}
	res = tab.ApplyChange(gwproto.Change{Peer: gwproto.Peer{PublicKey: key(5).String()}, Removed: true})
	if len(res.Removed) != 1 || res.Removed[0].DeviceID != "c" {
		t.Errorf("remove change: got removed=%v, want [c]", res.Removed)
	}
	if _, ok := tab.DeviceID(key(5)); ok {
		t.Errorf("DeviceID after removal: got present, want absent")
	}
	res = tab.ApplyChange(gwproto.Change{Peer: gwproto.Peer{PublicKey: key(9).String()}, Removed: true})
	if len(res.Removed) != 0 || len(dev.calls) != 2 {
		t.Errorf("remove unknown: got removed=%d calls=%d, want 0, 2", len(res.Removed), len(dev.calls))
	}
	// An existing peer changed to an unacceptable address is removed.
	res = tab.ApplyChange(gwproto.Change{Peer: proto("b", 2, "0.0.0.0/0")})
	if res.Rejected != 1 || len(res.Removed) != 1 || tab.Len() != 0 {
		t.Errorf("invalid update: got rejected=%d removed=%d len=%d, want 1, 1, 0", res.Rejected, len(res.Removed), tab.Len())
	}
}

func TestTableDeviceFailureNotRecorded(t *testing.T) {
	dev := &recorder{fail: true}
	tab := NewTable(dev, pools)
	res := tab.ApplyChange(gwproto.Change{Peer: proto("a", 1, "100.64.0.2/32")})
	if res.Failed != 1 || tab.Len() != 0 {
		t.Errorf("got failed=%d len=%d, want 1, 0", res.Failed, tab.Len())
	}
}
