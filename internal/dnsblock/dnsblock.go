// Package dnsblock names the categories of DNS content blocking, the sets
// of them a device may choose, and the resolver address that stands for
// each set on a gateway's tunnel side.
//
// # Resolver addresses
//
// A device's choice reaches the gateway as the address of the resolver its
// configuration names, never as a record the gateway keeps: the gateway's
// DNS service answers on one address per non-empty set, and applies that
// set's blocklists to every query it receives there, whoever sent it. A
// device that chose nothing uses the gateway's ordinary tunnel addresses.
//
// The address of set s (1 to 31) in the IPv6 tunnel pool P is
//
//	P's network address + 0x53<<32 + s
//
// so for the default pool fd00:6e6e::/48 it is fd00:6e6e::53:0:1 to
// fd00:6e6e::53:0:1f, all inside Prefix(P) = fd00:6e6e::53:0:0/123. Device
// addresses are the pool's network address plus an offset below 2^32 (the
// IPv4 pool has at most 32 host bits and both pools use the same offset),
// so no device can ever hold a resolver address. The IPv4 pool has no
// such spare bits: device addresses are packed from its start and an
// operator may size it to the device count, so the resolvers are IPv6
// only. DNS inside the tunnel works over IPv6 whatever the network under
// it carries, since every device has an IPv6 tunnel address.
package dnsblock

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Category is one category of blocklists. Its value is a single bit of a
// Set.
type Category uint8

// The categories, in their canonical order.
const (
	Ads Category = 1 << iota
	Trackers
	Malware
	Adult
	Gambling
)

// All is the set of every category.
const All Set = Set(Ads | Trackers | Malware | Adult | Gambling)

var names = [...]string{"ads", "trackers", "malware", "adult", "gambling"}

// Categories returns every category in canonical order.
func Categories() []Category {
	out := make([]Category, len(names))
	for i := range names {
		out[i] = Category(1 << i)
	}
	return out
}

// String returns the category's name ("ads", ...), or "" for a value that
// is not a single category.
func (c Category) String() string {
	for i, n := range names {
		if c == Category(1<<i) {
			return n
		}
	}
	return ""
}

// ParseCategory returns the category named s (case-insensitive, spaces
// trimmed). An unknown name is an error that lists the known ones.
func ParseCategory(s string) (Category, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range names {
		if s == n {
			return Category(1 << i), nil
		}
	}
	return 0, fmt.Errorf("unknown blocking category %q: want %s", clip(s), strings.Join(names[:], ", "))
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Set is a set of categories; the zero Set blocks nothing. The values 0 to
// 31 are the valid sets.
type Set uint8

// ParseSet returns the set of the categories named (see ParseCategory).
// Names may repeat; none gives the empty set.
func ParseSet(names []string) (Set, error) {
	var s Set
	for _, n := range names {
		c, err := ParseCategory(n)
		if err != nil {
			return 0, err
		}
		s |= Set(c)
	}
	return s, nil
}

// Valid reports whether s holds only known categories.
func (s Set) Valid() bool { return s&^All == 0 }

// Has reports whether c is in s.
func (s Set) Has(c Category) bool { return s&Set(c) != 0 }

// Names returns the names of the categories in s in canonical order; an
// empty set gives an empty, non-nil slice. Bits outside All are ignored.
func (s Set) Names() []string {
	out := []string{}
	for _, c := range Categories() {
		if s.Has(c) {
			out = append(out, c.String())
		}
	}
	return out
}

// String returns the names joined with commas, or "none".
func (s Set) String() string {
	if s&All == 0 {
		return "none"
	}
	return strings.Join(s.Names(), ",")
}

// magic is the 32-bit word above the set in a resolver address: the DNS
// port number, 53, in hex.
const magic = 0x53

// ErrPoolTooSmall is returned for an IPv6 pool with fewer than 40 host
// bits, which leaves no room for the resolver addresses.
var ErrPoolTooSmall = errors.New("dnsblock: the IPv6 tunnel pool must be /88 or larger for DNS blocking resolvers")

// Prefix returns the /123 of pool6 that holds every resolver address.
func Prefix(pool6 netip.Prefix) (netip.Prefix, error) {
	a, err := Resolver(pool6, 0)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, 123), nil
}

// Resolver returns the resolver address of set s in the IPv6 tunnel pool
// pool6 (see the package comment). Set 0 gives the base of Prefix, which
// no resolver answers on. It fails for an invalid set, a pool that is not
// IPv6 or one smaller than /88.
func Resolver(pool6 netip.Prefix, s Set) (netip.Addr, error) {
	if !s.Valid() {
		return netip.Addr{}, fmt.Errorf("dnsblock: invalid set %d", s)
	}
	if !pool6.IsValid() || !pool6.Addr().Is6() || pool6.Addr().Is4In6() {
		return netip.Addr{}, errors.New("dnsblock: not an IPv6 pool")
	}
	if pool6.Bits() > 88 {
		return netip.Addr{}, ErrPoolTooSmall
	}
	b := pool6.Masked().Addr().As16()
	b[11] = magic
	b[15] = byte(s)
	return netip.AddrFrom16(b), nil
}

// SetOf returns the set whose resolver address in pool6 is a, and false if
// a is none (set 0's base included).
func SetOf(pool6 netip.Prefix, a netip.Addr) (Set, bool) {
	base, err := Resolver(pool6, 0)
	if err != nil || !netip.PrefixFrom(base, 123).Contains(a) {
		return 0, false
	}
	s := Set(a.As16()[15])
	return s, s != 0 && s.Valid()
}

// Resolvers returns the resolver address of every non-empty set, indexed
// by set: out[s] for s in 1..31 (out[0] is the zero Addr).
func Resolvers(pool6 netip.Prefix) ([]netip.Addr, error) {
	out := make([]netip.Addr, int(All)+1)
	for s := Set(1); s <= All; s++ {
		a, err := Resolver(pool6, s)
		if err != nil {
			return nil, err
		}
		out[s] = a
	}
	return out, nil
}
