package tungro

import (
	"encoding/binary"
)

const (
	protoTCP = 6

	tcpFlagACK = 0x10
	tcpFlagPSH = 0x08

	// maxSegments bounds one super-packet: 64 segments and one header
	// iovec stay far below the kernel's UIO_MAXIOV (1024), and 64 KiB of
	// IP length is reached first for any usual segment size.
	maxSegments = 64
	// maxIPLen is the largest IPv4 total length, and the largest IPv6
	// payload length without a jumbogram.
	maxIPLen = 0xffff

	// VirtioNetHdrLen is the size of struct virtio_net_hdr, which a TUN
	// device opened with IFF_VNET_HDR expects before every packet.
	VirtioNetHdrLen = 10

	virtioNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	virtioGSOTCPv4  = 1 // VIRTIO_NET_HDR_GSO_TCPV4
	virtioGSOTCPv6  = 4 // VIRTIO_NET_HDR_GSO_TCPV6
	tcpCsumOffset   = 16
)

// flowKey identifies a TCP connection's direction: its addresses and
// ports. A flow has at most one open super-packet at a time.
type flowKey struct {
	addrs [32]byte // source then destination; IPv4 uses the first 8 bytes
	ports uint32
	v6    bool
}

// segment is a parsed TCP packet that could join a super-packet.
type segment struct {
	key     flowKey
	iphLen  int
	tcphLen int
	payload int
	seq     uint32
	psh     bool
}

// unit is one write: a single packet (len(members) == 1, written as it
// is) or a super-packet of the members' segments, head first.
type unit struct {
	members []int // indices into the batch
	seg     segment
	ipLen   int    // IP length of the super-packet so far
	nextSeq uint32 // sequence number that may be appended
	open    bool   // another segment may be appended
	psh     bool   // the last segment has PSH
	checked bool   // the head's checksum has been verified
}

// planner decides, for one batch, which packets are written together. Its
// slices are reused from batch to batch.
type planner struct {
	units  []unit
	others []int // packets that are not TCP, for the inner device
	// whole is set when the batch holds a packet whose flow cannot be
	// told from its first header (an IPv4 fragment, an IPv6 extension
	// header) or a buffer shorter than the offset: such a batch goes to
	// the inner device whole, in its order, as wireguard-go writes it.
	whole bool
}

// lookback is how many of the latest units are searched for a flow's open
// super-packet; a flow further back starts a new one (correct, just less
// coalesced).
const lookback = 16

// plan fills p.units and p.others for bufs, whose packets start at offset.
// Every index of bufs ends up in exactly one unit or in others. Units are
// in the order of their first packet, and a flow's packets never move
// before an earlier packet of the same flow, so per-flow order is kept.
// Segments are merged only after both checksums verify, so a corrupt
// segment is never hidden inside a super-packet whose checksum the kernel
// will compute afresh.
func (p *planner) plan(bufs [][]byte, offset int) {
	p.reset()
	for i := range bufs {
		if len(bufs[i]) < offset {
			p.leaveWhole()
			return
		}
		pkt := bufs[i][offset:]
		switch classify(pkt) {
		case kindAmbiguous:
			p.leaveWhole()
			return
		case kindOther:
			p.others = append(p.others, i)
			continue
		}
		s, ok := parseSegment(pkt)
		if !ok {
			// A TCP packet that cannot be merged (SYN, FIN, RST, no
			// payload, options in the IP header...). Its flow's open
			// super-packet, if any, is closed so that nothing of the
			// flow overtakes it.
			if keyOf(pkt, &s.key) {
				p.close(s.key)
			}
			p.single(i, s)
			continue
		}
		u := p.find(s.key)
		if u != nil && p.canAppend(u, bufs, offset, pkt, s) {
			if !u.checked {
				head := bufs[u.members[0]][offset:]
				u.checked = true
				if !checksumValid(head, u.seg) {
					// The head stays alone; the segment starts anew.
					u.open = false
					p.start(i, s)
					continue
				}
			}
			if !checksumValid(pkt, s) {
				u.open = false
				p.single(i, s)
				continue
			}
			p.append(u, i, s)
			continue
		}
		if u != nil {
			u.open = false
		}
		p.start(i, s)
	}
}

func (p *planner) reset() {
	for i := range p.units {
		p.units[i].members = p.units[i].members[:0]
	}
	p.units = p.units[:0]
	p.others = p.others[:0]
	p.whole = false
}

// leaveWhole drops what was planned and marks the batch for the inner
// device.
func (p *planner) leaveWhole() {
	p.reset()
	p.whole = true
}

// next returns a cleared unit appended to p.units, reusing its members
// slice.
func (p *planner) next() *unit {
	if len(p.units) < cap(p.units) {
		p.units = p.units[:len(p.units)+1]
		u := &p.units[len(p.units)-1]
		*u = unit{members: u.members[:0]}
		return u
	}
	p.units = append(p.units, unit{})
	return &p.units[len(p.units)-1]
}

// single adds packet i as a unit of its own.
func (p *planner) single(i int, s segment) {
	u := p.next()
	u.members = append(u.members, i)
	u.seg = s
}

// start adds packet i as the head of a super-packet that later segments
// of its flow may join.
func (p *planner) start(i int, s segment) {
	u := p.next()
	u.members = append(u.members, i)
	u.seg = s
	u.ipLen = s.iphLen + s.tcphLen + s.payload
	u.nextSeq = s.seq + uint32(s.payload)
	u.psh = s.psh
	// Nothing may follow a segment with PSH.
	u.open = !s.psh
}

func (p *planner) append(u *unit, i int, s segment) {
	u.members = append(u.members, i)
	u.ipLen += s.payload
	u.nextSeq += uint32(s.payload)
	if s.psh || s.payload < u.seg.payload {
		// PSH, or a short segment, can only be the last.
		u.psh = s.psh
		u.open = false
	}
}

// find returns the open unit of key among the latest units, or nil.
func (p *planner) find(key flowKey) *unit {
	for j := len(p.units) - 1; j >= 0 && j >= len(p.units)-lookback; j-- {
		u := &p.units[j]
		if u.open && u.seg.key == key {
			return u
		}
	}
	return nil
}

// close closes key's open unit among the latest units, if there is one.
func (p *planner) close(key flowKey) {
	if u := p.find(key); u != nil {
		u.open = false
	}
}

// canAppend reports whether s (packet pkt) may follow u's segments: next
// in sequence, no longer than the head's payload, within the size limits,
// and with IP and TCP headers that only differ where a kernel segmenting
// the super-packet would make them differ (lengths, checksums, the IPv4
// ID of a packet with DF set, PSH on the last segment).
func (p *planner) canAppend(u *unit, bufs [][]byte, offset int, pkt []byte, s segment) bool {
	h := u.seg
	if !u.open || len(u.members) >= maxSegments || s.seq != u.nextSeq ||
		s.payload > h.payload || s.iphLen != h.iphLen || s.tcphLen != h.tcphLen {
		return false
	}
	if newLen := u.ipLen + s.payload; newLen > maxIPLen || (h.key.v6 && newLen-h.iphLen > maxIPLen) {
		return false
	}
	head := bufs[u.members[0]][offset:]
	if h.key.v6 {
		// Version, traffic class and flow label; hop limit.
		if binary.BigEndian.Uint32(head[0:4]) != binary.BigEndian.Uint32(pkt[0:4]) || head[7] != pkt[7] {
			return false
		}
	} else {
		// Version and IHL, TOS; flags (DF, reserved); TTL.
		if head[0] != pkt[0] || head[1] != pkt[1] || head[6]>>5 != pkt[6]>>5 || head[8] != pkt[8] {
			return false
		}
		if head[6]&0x40 == 0 {
			// Without DF the IDs must count up from the head's, as
			// the kernel numbers the segments it cuts.
			want := binary.BigEndian.Uint16(head[4:6]) + uint16(len(u.members))
			if binary.BigEndian.Uint16(pkt[4:6]) != want {
				return false
			}
		}
	}
	ht, pt := head[h.iphLen:h.iphLen+h.tcphLen], pkt[s.iphLen:s.iphLen+s.tcphLen]
	// Acknowledgment number; data offset, flags but PSH, window; urgent
	// pointer; options.
	if binary.BigEndian.Uint32(ht[8:12]) != binary.BigEndian.Uint32(pt[8:12]) || ht[12] != pt[12] || ht[13]&^tcpFlagPSH != pt[13]&^tcpFlagPSH ||
		ht[14] != pt[14] || ht[15] != pt[15] || ht[18] != pt[18] || ht[19] != pt[19] {
		return false
	}
	for k := 20; k < len(ht); k++ {
		if ht[k] != pt[k] {
			return false
		}
	}
	return true
}

// kind sorts packets for plan.
type kind int

const (
	kindTCP       kind = iota // IPv4 or IPv6 TCP, not a fragment, no extension header
	kindOther                 // UDP, ICMP, anything not IP: for the inner device
	kindAmbiguous             // might belong to a TCP or UDP flow without showing it
)

// classify sorts pkt. An IPv4 fragment, or an IPv6 packet whose next
// header is not TCP, UDP, ICMPv6 or "no next header", is ambiguous: its
// transport header is elsewhere or absent, so its flow is unknown.
func classify(pkt []byte) kind {
	if len(pkt) < 20 {
		return kindOther
	}
	switch pkt[0] >> 4 {
	case 4:
		if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 { // MF or a fragment offset
			return kindAmbiguous
		}
		if pkt[9] == protoTCP {
			return kindTCP
		}
	case 6:
		if len(pkt) < 40 {
			return kindOther
		}
		switch pkt[6] {
		case protoTCP:
			return kindTCP
		case 17, 58, 59: // UDP, ICMPv6, no next header
		default:
			return kindAmbiguous
		}
	}
	return kindOther
}

// keyOf fills key from an IPv4 or IPv6 TCP packet with an intact header,
// and reports whether it could.
func keyOf(pkt []byte, key *flowKey) bool {
	var iphLen int
	switch pkt[0] >> 4 {
	case 4:
		iphLen = int(pkt[0]&0x0f) * 4
		if iphLen < 20 || len(pkt) < iphLen+20 {
			return false
		}
		*key = flowKey{}
		copy(key.addrs[:8], pkt[12:20])
	case 6:
		iphLen = 40
		if len(pkt) < iphLen+20 {
			return false
		}
		*key = flowKey{v6: true}
		copy(key.addrs[:], pkt[8:40])
	default:
		return false
	}
	key.ports = binary.BigEndian.Uint32(pkt[iphLen:])
	return true
}

// parseSegment parses a TCP packet (kindTCP) that could be merged: no IPv4
// options and a valid IPv4 header checksum, lengths that match the buffer,
// flags ACK or ACK|PSH only, and a payload.
func parseSegment(pkt []byte) (segment, bool) {
	var s segment
	if !keyOf(pkt, &s.key) {
		return s, false
	}
	if s.key.v6 {
		s.iphLen = 40
		if int(binary.BigEndian.Uint16(pkt[4:6])) != len(pkt)-40 {
			return s, false
		}
	} else {
		s.iphLen = 20
		if pkt[0]&0x0f != 5 || int(binary.BigEndian.Uint16(pkt[2:4])) != len(pkt) {
			return s, false
		}
		if fold(sum(pkt[:20], 0)) != 0xffff {
			// A corrupt header goes alone, for the kernel to drop,
			// not renewed in a super-packet.
			return s, false
		}
	}
	tcp := pkt[s.iphLen:]
	s.tcphLen = int(tcp[12]>>4) * 4
	if s.tcphLen < 20 || len(tcp) < s.tcphLen || tcp[12]&0x0f != 0 {
		return s, false
	}
	switch tcp[13] {
	case tcpFlagACK:
	case tcpFlagACK | tcpFlagPSH:
		s.psh = true
	default:
		return s, false
	}
	s.payload = len(tcp) - s.tcphLen
	if s.payload == 0 {
		return s, false
	}
	s.seq = binary.BigEndian.Uint32(tcp[4:8])
	return s, true
}

// checksumValid verifies the TCP checksum of pkt, parsed as s.
func checksumValid(pkt []byte, s segment) bool {
	src, dst := addrs(pkt, s.key.v6)
	l4 := pkt[s.iphLen:]
	return fold(sum(l4, pseudo(src, dst, protoTCP, len(l4)))) == 0xffff
}

// addrs returns the source and destination address fields of pkt.
func addrs(pkt []byte, v6 bool) (src, dst []byte) {
	if v6 {
		return pkt[8:24], pkt[24:40]
	}
	return pkt[12:16], pkt[16:20]
}

// finish rewrites the head of super-packet u in place (pkt, preceded by
// VirtioNetHdrLen bytes of headroom in hdr) for the kernel to segment: the
// IP length fields, the IPv4 header checksum, PSH if the last segment had
// it, the TCP checksum field holding the pseudo-header sum that checksum
// offload completes, and the virtio-net header describing the GSO.
func finish(hdr, pkt []byte, u *unit) {
	s := u.seg
	if s.key.v6 {
		binary.BigEndian.PutUint16(pkt[4:6], uint16(u.ipLen-s.iphLen))
	} else {
		binary.BigEndian.PutUint16(pkt[2:4], uint16(u.ipLen))
		pkt[10], pkt[11] = 0, 0
		binary.BigEndian.PutUint16(pkt[10:12], ^fold(sum(pkt[:s.iphLen], 0)))
	}
	tcp := pkt[s.iphLen:]
	if u.psh {
		tcp[13] |= tcpFlagPSH
	}
	src, dst := addrs(pkt, s.key.v6)
	binary.BigEndian.PutUint16(tcp[tcpCsumOffset:], fold(pseudo(src, dst, protoTCP, u.ipLen-s.iphLen)))

	gso := byte(virtioGSOTCPv4)
	if s.key.v6 {
		gso = virtioGSOTCPv6
	}
	hdr[0] = virtioNeedsCsum
	hdr[1] = gso
	binary.NativeEndian.PutUint16(hdr[2:], uint16(s.iphLen+s.tcphLen)) // hdr_len
	binary.NativeEndian.PutUint16(hdr[4:], uint16(s.payload))          // gso_size
	binary.NativeEndian.PutUint16(hdr[6:], uint16(s.iphLen))           // csum_start
	binary.NativeEndian.PutUint16(hdr[8:], tcpCsumOffset)              // csum_offset
}

// pieces appends to dst what one write of unit u consists of, rewriting the
// head for a super-packet (see finish) or clearing its virtio-net header
// for a single packet: the header and the first packet, then each further
// segment's payload. bufs[i] must have VirtioNetHdrLen bytes of headroom
// before offset.
func pieces(dst [][]byte, bufs [][]byte, offset int, u *unit) [][]byte {
	head := bufs[u.members[0]]
	if len(u.members) == 1 {
		clear(head[offset-VirtioNetHdrLen : offset])
	} else {
		finish(head[offset-VirtioNetHdrLen:offset], head[offset:], u)
	}
	dst = append(dst, head[offset-VirtioNetHdrLen:])
	hl := u.seg.iphLen + u.seg.tcphLen
	for _, m := range u.members[1:] {
		dst = append(dst, bufs[m][offset+hl:])
	}
	return dst
}
