package dnsblock

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseSet(t *testing.T) {
	tests := []struct {
		in      []string
		want    Set
		names   string
		wantErr string
	}{
		{in: nil, want: 0, names: "none"},
		{in: []string{"ads"}, want: Set(Ads), names: "ads"},
		{in: []string{"Trackers", " ads ", "ads"}, want: Set(Ads | Trackers), names: "ads,trackers"},
		{in: []string{"gambling", "adult", "malware", "trackers", "ads"}, want: All, names: "ads,trackers,malware,adult,gambling"},
		{in: []string{"ads", "porn"}, wantErr: `unknown blocking category "porn"`},
		{in: []string{""}, wantErr: "unknown blocking category"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, "+"), func(t *testing.T) {
			got, err := ParseSet(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			if got.String() != tt.names {
				t.Errorf("String: got %q, want %q", got.String(), tt.names)
			}
			back, err := ParseSet(got.Names())
			if err != nil || back != got {
				t.Errorf("ParseSet(Names()): got %v, %v; want %v", back, err, got)
			}
		})
	}
	if n := Set(0).Names(); n == nil || len(n) != 0 {
		t.Errorf("empty set Names: got %#v, want an empty non-nil slice", n)
	}
	if Set(32).Valid() || !All.Valid() {
		t.Error("Valid: want 32 invalid and All valid")
	}
}

func TestResolver(t *testing.T) {
	pool := netip.MustParsePrefix("fd00:6e6e::/48")
	tests := []struct {
		s    Set
		want string
	}{
		{1, "fd00:6e6e::53:0:1"},
		{Set(Ads | Trackers), "fd00:6e6e::53:0:3"},
		{All, "fd00:6e6e::53:0:1f"},
	}
	for _, tt := range tests {
		got, err := Resolver(pool, tt.s)
		if err != nil || got.String() != tt.want {
			t.Errorf("Resolver(%v): got %v, %v; want %s", tt.s, got, err, tt.want)
		}
		if s, ok := SetOf(pool, got); !ok || s != tt.s {
			t.Errorf("SetOf(%v): got %v, %v; want %v", got, s, ok, tt.s)
		}
	}
	p, err := Prefix(pool)
	if err != nil || p.String() != "fd00:6e6e::53:0:0/123" {
		t.Errorf("Prefix: got %v, %v", p, err)
	}
	all, err := Resolvers(pool)
	if err != nil || len(all) != 32 || all[0].IsValid() {
		t.Fatalf("Resolvers: got %d addresses (first %v), %v", len(all), all[0], err)
	}
	for s := 1; s < 32; s++ {
		if !p.Contains(all[s]) || slices.Index(all, all[s]) != s {
			t.Errorf("Resolvers[%d] = %v: not unique inside %v", s, all[s], p)
		}
	}
	for _, a := range []string{"fd00:6e6e::53:0:0", "fd00:6e6e::2", "fd00:6e6e::1", "fd00:6e6e::53:0:20", "100.64.0.1", "fd00:6e6f::53:0:1"} {
		if s, ok := SetOf(pool, netip.MustParseAddr(a)); ok {
			t.Errorf("SetOf(%s): got %v, want none", a, s)
		}
	}
	for _, bad := range []string{"fd00::/89", "100.64.0.0/10", "::ffff:0:0/96"} {
		if _, err := Resolver(netip.MustParsePrefix(bad), 1); err == nil {
			t.Errorf("Resolver in %s: got nil error", bad)
		}
	}
	if _, err := Resolver(pool, 32); err == nil {
		t.Error("Resolver of set 32: got nil error")
	}
	// The largest device offset of any IPv4 pool (below 2^32) never reaches
	// a resolver address.
	b := pool.Addr().As16()
	b[12], b[13], b[14], b[15] = 0xff, 0xff, 0xff, 0xff
	if _, ok := SetOf(pool, netip.AddrFrom16(b)); ok || p.Contains(netip.AddrFrom16(b)) {
		t.Error("a device address at offset 2^32-1 is inside the resolver prefix")
	}
}
