package sqlstore

import (
	"encoding/binary"
	"net/netip"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// Address allocation.
//
// A device's tunnel addresses are base+offset in both pools, with the same
// offset. Offset 0 is the network address and offset 1 is reserved for the
// gateway side, so devices get offsets 2 through size-2 of the IPv4 pool
// (size-1 is the broadcast address). The allocator state row holds the next
// never-used offset; released offsets go to a free list and are reused
// lowest first. Allocation reads only those two tables, never devices.

// firstOffset is the offset of the first device address.
const firstOffset = 2

// addrPool is a validated store.Pool.
type addrPool struct {
	v4, v6    netip.Prefix // masked
	maxOffset int64        // highest offset a device may get
}

// newAddrPool validates p. The IPv4 pool must leave room for at least one
// device (at most /30), and the IPv6 pool must have at least as many host
// bits as the IPv4 pool.
func newAddrPool(p store.Pool) (addrPool, error) {
	if !p.V4.IsValid() || !p.V4.Addr().Is4() {
		return addrPool{}, errs.E(errs.Invalid, "address pool: %v is not an IPv4 prefix", p.V4)
	}
	if !p.V6.IsValid() || !p.V6.Addr().Is6() || p.V6.Addr().Is4In6() {
		return addrPool{}, errs.E(errs.Invalid, "address pool: %v is not an IPv6 prefix", p.V6)
	}
	host4 := 32 - p.V4.Bits()
	if host4 < 2 {
		return addrPool{}, errs.E(errs.Invalid, "address pool: %v is too small", p.V4)
	}
	if 128-p.V6.Bits() < host4 {
		return addrPool{}, errs.E(errs.Invalid, "address pool: %v is smaller than %v", p.V6, p.V4)
	}
	return addrPool{
		v4:        p.V4.Masked(),
		v6:        p.V6.Masked(),
		maxOffset: int64(1)<<host4 - 2,
	}, nil
}

// addrs returns the IPv4 and IPv6 addresses at offset, which must be in
// [0, maxOffset+1].
func (p addrPool) addrs(offset int64) (netip.Addr, netip.Addr) {
	b4 := p.v4.Addr().As4()
	v := binary.BigEndian.Uint32(b4[:]) + uint32(offset)
	binary.BigEndian.PutUint32(b4[:], v)

	b6 := p.v6.Addr().As16()
	// The host part of the base is zero and holds offset without carry.
	lo := binary.BigEndian.Uint64(b6[8:]) + uint64(offset)
	binary.BigEndian.PutUint64(b6[8:], lo)
	return netip.AddrFrom4(b4), netip.AddrFrom16(b6)
}

// v6Leading96Zero reports whether the first 96 bits of the IPv6 pool are
// zero. PostgreSQL writes such addresses as "::a.b.c.d", where netip
// writes "::a0b:c0d"; both name the same address, and nothing compares
// the text, but registration keeps netip's form for them.
func (p addrPool) v6Leading96Zero() bool {
	b := p.v6.Addr().As16()
	for _, x := range b[:12] {
		if x != 0 {
			return false
		}
	}
	return true
}
