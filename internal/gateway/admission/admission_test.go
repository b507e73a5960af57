package admission

import (
	"net"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
)

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestPolicyAdmits(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		addr   string
		want   bool
	}{
		{"zero policy admits v4", Policy{}, "203.0.113.7", true},
		{"zero policy admits v6", Policy{}, "2001:db8::1", true},
		{"deny matches", Policy{Deny: pfx("198.51.100.0/24")}, "198.51.100.9", false},
		{"deny does not match", Policy{Deny: pfx("198.51.100.0/24")}, "198.51.101.9", true},
		{"allow list excludes others", Policy{Allow: pfx("10.0.0.0/8")}, "11.0.0.1", false},
		{"allow list includes", Policy{Allow: pfx("10.0.0.0/8")}, "10.1.2.3", true},
		{"deny wins over allow", Policy{Allow: pfx("10.0.0.0/8"), Deny: pfx("10.9.0.0/16")}, "10.9.1.1", false},
		{"allow beside deny", Policy{Allow: pfx("10.0.0.0/8"), Deny: pfx("10.9.0.0/16")}, "10.8.1.1", true},
		{"mapped v4 is unmapped", Policy{Deny: pfx("127.0.0.0/8")}, "::ffff:127.0.0.1", false},
		{"mapped prefix matches v4", Policy{Deny: pfx("::ffff:127.0.0.0/104")}, "127.0.0.5", false},
		{"v4 allow does not admit v6", Policy{Allow: pfx("0.0.0.0/0")}, "2001:db8::1", false},
		{"unmasked prefix still works", Policy{Deny: pfx("192.0.2.77/24")}, "192.0.2.1", false},
		{"invalid address refused", Policy{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			}
			if got := tt.policy.Admits(a); got != tt.want {
				t.Errorf("Admits(%v): got %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

// fakeBind delivers a fixed batch once per call of its receive function.
type fakeBind struct {
	conn.Bind
	batch []netip.AddrPort
}

func (f *fakeBind) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	calls := 0
	fn := func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		calls++
		if calls > 2 {
			return 0, net.ErrClosed
		}
		for i, ap := range f.batch {
			sizes[i] = 100
			eps[i] = &conn.StdNetEndpoint{AddrPort: ap}
		}
		return len(f.batch), nil
	}
	return []conn.ReceiveFunc{fn}, 4242, nil
}

func TestBindFilters(t *testing.T) {
	fb := &fakeBind{batch: []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:1000"),
		netip.MustParseAddrPort("203.0.113.1:1000"),
		netip.MustParseAddrPort("[::1]:1000"),
	}}
	b := NewBind(fb, Policy{Deny: pfx("127.0.0.0/8", "::1/128")})
	fns, port, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if port != 4242 || b.Port() != 4242 {
		t.Errorf("port: got %d/%d, want 4242", port, b.Port())
	}
	sizes := make([]int, 3)
	eps := make([]conn.Endpoint, 3)
	n, err := fns[0](make([][]byte, 3), sizes, eps)
	if err != nil || n != 3 {
		t.Fatalf("receive: got n=%d err=%v, want 3, nil", n, err)
	}
	want := []int{0, 100, 0}
	for i := range want {
		if sizes[i] != want[i] {
			t.Errorf("sizes[%d]: got %d, want %d", i, sizes[i], want[i])
		}
	}
	if got := b.Dropped(); got != 2 {
		t.Errorf("Dropped: got %d, want 2", got)
	}
}

func TestBindAllDeniedReadsAgain(t *testing.T) {
	fb := &fakeBind{batch: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}}
	b := NewBind(fb, Policy{Deny: pfx("127.0.0.0/8")})
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	// Both batches are denied; the filter keeps reading until the inner
	// function reports closed, never returning an all-empty batch.
	n, err := fns[0](make([][]byte, 1), make([]int, 1), make([]conn.Endpoint, 1))
	if n != 0 || err != net.ErrClosed {
		t.Errorf("got n=%d err=%v, want 0, net.ErrClosed", n, err)
	}
	if got := b.Dropped(); got != 2 {
		t.Errorf("Dropped: got %d, want 2", got)
	}
}
