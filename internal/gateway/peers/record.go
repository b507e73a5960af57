package peers

import (
	"encoding/binary"
	"net/netip"
)

// Limits of one index entry.
const (
	// MaxDeviceIDLen is the longest device ID the index stores.
	MaxDeviceIDLen = 127
	// MaxAddrs is the most addresses of one family a peer may have.
	MaxAddrs = 127
)

// A record is what the arena holds for one entry: the device ID, then the
// IPv4 addresses (4 bytes each), then the IPv6 addresses (16 bytes each).
// Two forms that the control server produces are stored shorter, flagged
// in the entry's length bytes:
//
//   - a device ID of the form "dev_" and 26 lowercase base32 characters
//     (package ident) is stored as the 16 bytes it encodes (idPacked);
//   - one IPv6 address that lies at the same offset in the IPv6 pool as the
//     one IPv4 address in the IPv4 pool, as the control server allocates
//     them, is not stored at all (v6Paired).
//
// A typical entry thus takes 20 arena bytes instead of 50.
const (
	idPacked = 0x80 // in entry.id
	v6Paired = 0x80 // in entry.n6
	lenMask  = 0x7f

	packedIDLen = 16
	idPrefix    = "dev_"
	idChars     = 26
	base32Lower = "abcdefghijklmnopqrstuvwxyz234567"
)

// poolPair holds the tunnel pools the index pairs addresses in.
type poolPair struct {
	ok    bool
	base4 uint32
	v4    netip.Prefix
	base6 [16]byte
	v6    netip.Prefix
}

func newPools(ps []netip.Prefix) poolPair {
	var p poolPair
	for _, pfx := range ps {
		pfx = pfx.Masked()
		switch {
		case pfx.Addr().Is4() && !p.v4.IsValid():
			p.v4 = pfx
		case pfx.Addr().Is6() && !p.v6.IsValid():
			p.v6 = pfx
		}
	}
	if p.v4.IsValid() && p.v6.IsValid() && 128-p.v6.Bits() >= 32-p.v4.Bits() {
		p.ok = true
		b4 := p.v4.Addr().As4()
		p.base4 = binary.BigEndian.Uint32(b4[:])
		p.base6 = p.v6.Addr().As16()
	}
	return p
}

// pair returns the IPv6 address at v4's offset, and whether v4 is in the
// IPv4 pool.
func (p *poolPair) pair(v4 netip.Addr) (netip.Addr, bool) {
	if !p.ok || !p.v4.Contains(v4) {
		return netip.Addr{}, false
	}
	b4 := v4.As4()
	off := binary.BigEndian.Uint32(b4[:]) - p.base4
	b6 := p.base6
	binary.BigEndian.PutUint64(b6[8:], binary.BigEndian.Uint64(b6[8:])+uint64(off))
	return netip.AddrFrom16(b6), true
}

// packID returns the 16 bytes that a "dev_" ID in canonical lowercase
// base32 encodes, and whether id has that form.
func packID(id string) (out [packedIDLen]byte, ok bool) {
	if len(id) != len(idPrefix)+idChars || id[:len(idPrefix)] != idPrefix {
		return out, false
	}
	var acc uint64
	bits, n := 0, 0
	for i := len(idPrefix); i < len(id); i++ {
		c := id[i]
		var v byte
		switch {
		case c >= 'a' && c <= 'z':
			v = c - 'a'
		case c >= '2' && c <= '7':
			v = c - '2' + 26
		default:
			return out, false
		}
		acc = acc<<5 | uint64(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out[n] = byte(acc >> bits)
			n++
			acc &= 1<<bits - 1
		}
	}
	// 26 characters carry 130 bits: the last 2 must be zero, or another
	// string would pack to the same bytes.
	return out, acc == 0
}

// unpackID is the inverse of packID.
func unpackID(b []byte) string {
	out := make([]byte, 0, len(idPrefix)+idChars)
	out = append(out, idPrefix...)
	var acc uint64
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint64(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, base32Lower[acc>>bits&31])
		}
	}
	out = append(out, base32Lower[acc<<(5-bits)&31])
	return string(out)
}

// storedID returns the form in which id is stored: its packed bytes with
// idPacked, or its own bytes. It never allocates when buf has room.
func storedID(id string, buf *[packedIDLen]byte) ([]byte, uint8) {
	if b, ok := packID(id); ok {
		*buf = b
		return buf[:], packedIDLen | idPacked
	}
	return []byte(id), uint8(len(id))
}

// meta is the length bytes of an entry.
type meta struct{ id, n4, n6 uint8 }

// validate checks p and counts its addresses by family.
func validate(p Peer) (n4, n6 int, err error) {
	if p.DeviceID == "" || len(p.DeviceID) > MaxDeviceIDLen {
		return 0, 0, errInvalid
	}
	for _, a := range p.Addrs {
		switch {
		case a.Is4():
			n4++
		case a.Is6() && !a.Is4In6() && a.Zone() == "":
			n6++
		default:
			return 0, 0, errInvalid
		}
	}
	if n4+n6 == 0 || n4 > MaxAddrs || n6 > MaxAddrs {
		return 0, 0, errInvalid
	}
	return n4, n6, nil
}

// appendRecord appends p's record to b, and returns it with the entry's
// length bytes. p must have passed validate with counts n4 and n6.
func (x *Index) appendRecord(b []byte, p Peer, n4, n6 int) ([]byte, meta) {
	var buf [packedIDLen]byte
	id, idm := storedID(p.DeviceID, &buf)
	m := meta{id: idm, n4: uint8(n4), n6: uint8(n6)}
	b = append(b, id...)
	var v4 netip.Addr
	for _, a := range p.Addrs {
		if a.Is4() {
			v4 = a
			v := a.As4()
			b = append(b, v[:]...)
		}
	}
	if n4 == 1 && n6 == 1 {
		for _, a := range p.Addrs {
			if want, ok := x.pools.pair(v4); ok && a.Is6() && a == want {
				m.n6 |= v6Paired
				return b, m
			}
		}
	}
	for _, a := range p.Addrs {
		if a.Is6() {
			v := a.As16()
			b = append(b, v[:]...)
		}
	}
	return b, m
}

// recordLen returns the length of a record with length bytes m.
func (m meta) recordLen() int {
	n := int(m.id&lenMask) + 4*int(m.n4)
	if m.n6&v6Paired == 0 {
		n += 16 * int(m.n6)
	}
	return n
}

// decode returns the peer a record with length bytes m holds.
func (x *Index) decode(key [32]byte, rec []byte, m meta) Peer {
	idLen := int(m.id & lenMask)
	p := Peer{Key: key, Addrs: make([]netip.Addr, 0, int(m.n4)+int(m.n6&lenMask))}
	if m.id&idPacked != 0 {
		p.DeviceID = unpackID(rec[:idLen])
	} else {
		p.DeviceID = string(rec[:idLen])
	}
	rec = rec[idLen:]
	for range m.n4 {
		p.Addrs = append(p.Addrs, netip.AddrFrom4([4]byte(rec[:4])))
		rec = rec[4:]
	}
	if m.n6&v6Paired != 0 {
		v6, _ := x.pools.pair(p.Addrs[0])
		return Peer{DeviceID: p.DeviceID, Key: key, Addrs: append(p.Addrs, v6)}
	}
	for range m.n6 {
		p.Addrs = append(p.Addrs, netip.AddrFrom16([16]byte(rec[:16])))
		rec = rec[16:]
	}
	return p
}
