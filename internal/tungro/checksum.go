package tungro

import (
	"encoding/binary"
	"math/bits"
)

// littleEndian reports the host's byte order; sums are taken over native
// words and swapped once at the end (RFC 1071: the ones'-complement sum is
// independent of byte order up to that swap).
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// sum adds b to the ones'-complement accumulator ac, reading native-order
// 64-bit words with end-around carry. The result is only meaningful
// through fold.
func sum(b []byte, ac uint64) uint64 {
	var carry uint64
	for len(b) >= 64 {
		ac, carry = bits.Add64(ac, binary.NativeEndian.Uint64(b[0:8]), 0)
		ac, carry = bits.Add64(ac, binary.NativeEndian.Uint64(b[8:16]), carry)
		ac, carry = bits.Add64(ac, binary.NativeEndian.Uint64(b[16:24]), carry)
		ac, carry = bits.Add64(ac, binary.NativeEndian.Uint64(b[24:32]), carry)
		ac, carry = bits.Add64(ac, binary.NativeEndian.Uint64(b[32:40]), carry)
		ac, carry = bits.Add64(ac, binary.NativeEndian.Uint64(b[40:48]), carry)
		ac, carry = bits.Add64(ac, binary.NativeEndian.Uint64(b[48:56]), carry)
		ac, carry = bits.Add64(ac, binary.NativeEndian.Uint64(b[56:64]), carry)
		ac += carry
		b = b[64:]
	}
	for len(b) >= 8 {
		ac, carry = bits.Add64(ac, binary.NativeEndian.Uint64(b[:8]), 0)
		ac += carry
		b = b[8:]
	}
	if len(b) >= 4 {
		ac, carry = bits.Add64(ac, uint64(binary.NativeEndian.Uint32(b[:4])), 0)
		ac += carry
		b = b[4:]
	}
	if len(b) >= 2 {
		ac, carry = bits.Add64(ac, uint64(binary.NativeEndian.Uint16(b[:2])), 0)
		ac += carry
		b = b[2:]
	}
	if len(b) == 1 {
		// The odd byte is the high-order byte of a zero-padded word.
		w := [2]byte{b[0], 0}
		ac, carry = bits.Add64(ac, uint64(binary.NativeEndian.Uint16(w[:])), 0)
		ac += carry
	}
	return ac
}

// fold reduces ac to the 16-bit ones'-complement sum, in network order as
// a number (so binary.BigEndian.PutUint16 stores it).
func fold(ac uint64) uint16 {
	ac = (ac >> 32) + (ac & 0xffffffff)
	ac = (ac >> 32) + (ac & 0xffffffff)
	ac = (ac >> 16) + (ac & 0xffff)
	ac = (ac >> 16) + (ac & 0xffff)
	ac = (ac >> 16) + (ac & 0xffff)
	v := uint16(ac)
	if littleEndian {
		v = bits.ReverseBytes16(v)
	}
	return v
}

// pseudo returns the accumulator of a TCP or UDP pseudo-header: the two
// addresses (4 or 16 bytes each), the protocol and the transport length.
func pseudo(src, dst []byte, proto uint8, length int) uint64 {
	ac := sum(dst, sum(src, 0))
	var w [4]byte
	w[1] = proto
	binary.BigEndian.PutUint16(w[2:], uint16(length))
	return sum(w[:], ac)
}
