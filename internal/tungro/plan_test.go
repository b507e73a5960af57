package tungro

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// headroom is the offset wireguard-go writes packets at
// (device.MessageTransportOffsetContent).
const headroom = 16

// isTCP reports whether pkt is a packet plan writes itself.
func isTCP(pkt []byte) bool { return classify(pkt) == kindTCP }

// naiveSum is RFC 1071's ones'-complement sum, written plainly and
// independently of sum and fold.
func naiveSum(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return s
}

func naivePseudo(src, dst []byte, length int) uint32 {
	s := naiveSum(dst, naiveSum(src, 0))
	return naiveSum([]byte{0, protoTCP, byte(length >> 8), byte(length)}, s)
}

// spec describes one TCP packet to build.
type spec struct {
	src, dst     netip.Addr
	sport, dport uint16
	seq, ack     uint32
	flags        byte
	window       uint16
	id           uint16
	df           bool
	ttl          byte
	tos          byte   // IPv4 TOS, IPv6 traffic class
	flow         uint32 // XORed into the IPv6 flow label
	urp          uint16 // TCP urgent pointer (URG stays off)
	opts         []byte // a multiple of 4 bytes
	payload      []byte
	badCsum      bool
}

// build returns the IP packet of s with valid checksums (unless badCsum).
func build(s spec) []byte {
	tcpLen := 20 + len(s.opts) + len(s.payload)
	var pkt []byte
	if s.src.Is6() {
		pkt = make([]byte, 40+tcpLen)
		fl := uint32(0xabcde) ^ s.flow&0xfffff
		binary.BigEndian.PutUint32(pkt[0:], 6<<28|uint32(s.tos)<<20|fl)
		binary.BigEndian.PutUint16(pkt[4:], uint16(tcpLen))
		pkt[6] = protoTCP
		pkt[7] = s.ttl
		copy(pkt[8:24], s.src.AsSlice())
		copy(pkt[24:40], s.dst.AsSlice())
	} else {
		pkt = make([]byte, 20+tcpLen)
		pkt[0] = 0x45
		pkt[1] = s.tos
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		binary.BigEndian.PutUint16(pkt[4:], s.id)
		if s.df {
			pkt[6] = 0x40
		}
		pkt[8] = s.ttl
		pkt[9] = protoTCP
		copy(pkt[12:16], s.src.AsSlice())
		copy(pkt[16:20], s.dst.AsSlice())
		binary.BigEndian.PutUint16(pkt[10:], ^uint16(naiveSum(pkt[:20], 0)))
	}
	iph := len(pkt) - tcpLen
	tcp := pkt[iph:]
	binary.BigEndian.PutUint16(tcp[0:], s.sport)
	binary.BigEndian.PutUint16(tcp[2:], s.dport)
	binary.BigEndian.PutUint32(tcp[4:], s.seq)
	binary.BigEndian.PutUint32(tcp[8:], s.ack)
	tcp[12] = byte((20 + len(s.opts)) / 4 << 4)
	tcp[13] = s.flags
	binary.BigEndian.PutUint16(tcp[14:], s.window)
	binary.BigEndian.PutUint16(tcp[18:], s.urp)
	copy(tcp[20:], s.opts)
	copy(tcp[20+len(s.opts):], s.payload)
	src, dst := addrs(pkt, s.src.Is6())
	c := ^uint16(naiveSum(tcp, naivePseudo(src, dst, tcpLen)))
	if s.badCsum {
		c ^= 0x0101
	}
	binary.BigEndian.PutUint16(tcp[16:], c)
	return pkt
}

// batch puts pkts into buffers the way wireguard-go hands them to Write:
// headroom bytes before each, and spare capacity after.
func batch(pkts [][]byte) [][]byte {
	bufs := make([][]byte, len(pkts))
	for i, p := range pkts {
		b := make([]byte, headroom+len(p), headroom+len(p)+64)
		copy(b[headroom:], p)
		bufs[i] = b
	}
	return bufs
}

// written is what one write of a unit put on the wire, as the kernel would
// deliver it: the packets it cuts the super-packet into.
type written struct {
	segments [][]byte
}

// segmentLikeKernel cuts one write (virtio-net header and packet) into the
// packets the kernel's GSO would produce (tcp_gso_segment and
// inet_gso_segment / ipv6_gso_segment): lengths, IPv4 IDs counting up,
// sequence numbers, PSH only on the last, fresh checksums. It checks the
// header and the partial checksum it is handed.
func segmentLikeKernel(t *testing.T, w []byte) [][]byte {
	t.Helper()
	hdr, pkt := w[:VirtioNetHdrLen], w[VirtioNetHdrLen:]
	if hdr[0] == 0 && hdr[1] == 0 {
		if !bytes.Equal(hdr, make([]byte, VirtioNetHdrLen)) {
			t.Fatalf("single packet with a non-zero virtio-net header % x", hdr)
		}
		return [][]byte{bytes.Clone(pkt)}
	}
	v6 := pkt[0]>>4 == 6
	iph := 20
	wantGSO := byte(virtioGSOTCPv4)
	if v6 {
		iph, wantGSO = 40, virtioGSOTCPv6
	}
	hdrLen := int(binary.NativeEndian.Uint16(hdr[2:]))
	mss := int(binary.NativeEndian.Uint16(hdr[4:]))
	if hdr[0] != virtioNeedsCsum || hdr[1] != wantGSO || int(binary.NativeEndian.Uint16(hdr[6:])) != iph ||
		binary.NativeEndian.Uint16(hdr[8:]) != tcpCsumOffset {
		t.Fatalf("virtio-net header % x", hdr)
	}
	tcph := int(pkt[iph+12]>>4) * 4
	if hdrLen != iph+tcph || mss <= 0 {
		t.Fatalf("hdr_len %d gso_size %d for headers %d", hdrLen, mss, iph+tcph)
	}
	// The length fields and the IPv4 header checksum must be right, and
	// the TCP checksum field must hold the pseudo-header sum.
	if v6 {
		if int(binary.BigEndian.Uint16(pkt[4:])) != len(pkt)-40 {
			t.Fatal("IPv6 payload length not updated")
		}
	} else {
		if int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) || naiveSum(pkt[:20], 0) != 0xffff {
			t.Fatal("IPv4 total length or header checksum not updated")
		}
	}
	src, dst := addrs(pkt, v6)
	if got, want := binary.BigEndian.Uint16(pkt[iph+16:]), uint16(naivePseudo(src, dst, len(pkt)-iph)); got != want {
		t.Fatalf("partial checksum %04x, want %04x", got, want)
	}

	payload := pkt[hdrLen:]
	seq := binary.BigEndian.Uint32(pkt[iph+4:])
	id := binary.BigEndian.Uint16(pkt[4:])
	var out [][]byte
	for k := 0; len(payload) > 0; k++ {
		n := min(mss, len(payload))
		seg := make([]byte, hdrLen+n)
		copy(seg, pkt[:hdrLen])
		copy(seg[hdrLen:], payload[:n])
		payload = payload[n:]
		if v6 {
			binary.BigEndian.PutUint16(seg[4:], uint16(len(seg)-40))
		} else {
			binary.BigEndian.PutUint16(seg[2:], uint16(len(seg)))
			binary.BigEndian.PutUint16(seg[4:], id+uint16(k))
			seg[10], seg[11] = 0, 0
			binary.BigEndian.PutUint16(seg[10:], ^uint16(naiveSum(seg[:20], 0)))
		}
		tcp := seg[iph:]
		binary.BigEndian.PutUint32(tcp[4:], seq+uint32(k*mss))
		if len(payload) > 0 {
			tcp[13] &^= tcpFlagPSH | 0x01 // PSH and FIN only on the last
		}
		tcp[16], tcp[17] = 0, 0
		binary.BigEndian.PutUint16(tcp[16:], ^uint16(naiveSum(tcp, naivePseudo(src, dst, len(tcp)))))
		out = append(out, seg)
	}
	return out
}

// simulate plans bufs and returns, in write order, what each unit's write
// delivers, and the indices handed to the inner device.
func simulate(t *testing.T, bufs [][]byte) (units [][][]byte, others []int, p *planner) {
	t.Helper()
	p = &planner{}
	p.plan(bufs, headroom)
	for k := range p.units {
		var w []byte
		for _, b := range pieces(nil, bufs, headroom, &p.units[k]) {
			w = append(w, b...)
		}
		units = append(units, segmentLikeKernel(t, w))
	}
	return units, append([]int(nil), p.others...), p
}

// flowOf names a TCP packet's flow (addresses and ports).
func flowOf(pkt []byte) string {
	if pkt[0]>>4 == 6 {
		return fmt.Sprintf("%x", pkt[8:44])
	}
	ihl := int(pkt[0]&0x0f) * 4
	return fmt.Sprintf("%x%x", pkt[12:20], pkt[ihl:ihl+4])
}

// normalise blanks what the kernel may legitimately rewrite: the IPv4 ID of
// a packet with DF set (and so the header checksum).
func normalise(pkt []byte) []byte {
	pkt = bytes.Clone(pkt)
	if pkt[0]>>4 == 4 && len(pkt) >= 20 && pkt[6]&0x40 != 0 {
		pkt[4], pkt[5], pkt[10], pkt[11] = 0, 0, 0, 0
	}
	return pkt
}

// checkDelivery checks that the writes deliver exactly the input TCP
// packets, each flow in its original order, and hand every other packet to
// the inner device.
func checkDelivery(t *testing.T, in [][]byte, units [][][]byte, others []int) {
	t.Helper()
	wantFlows := map[string][][]byte{}
	var wantOthers []int
	for i, p := range in {
		if !isTCP(p) {
			wantOthers = append(wantOthers, i)
			continue
		}
		wantFlows[flowOf(p)] = append(wantFlows[flowOf(p)], normalise(p))
	}
	if fmt.Sprint(others) != fmt.Sprint(wantOthers) {
		t.Fatalf("inner device got %v, want %v", others, wantOthers)
	}
	gotFlows := map[string][][]byte{}
	for _, segs := range units {
		for _, s := range segs {
			gotFlows[flowOf(s)] = append(gotFlows[flowOf(s)], normalise(s))
		}
	}
	if len(gotFlows) != len(wantFlows) {
		t.Fatalf("%d flows delivered, want %d", len(gotFlows), len(wantFlows))
	}
	for f, want := range wantFlows {
		got := gotFlows[f]
		if len(got) != len(want) {
			t.Fatalf("flow %s: %d packets delivered, want %d", f[:16], len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("flow %s packet %d:\n got % x\nwant % x", f[:16], i, got[i], want[i])
			}
		}
	}
}

var (
	cli4 = netip.MustParseAddr("100.64.0.2")
	srv4 = netip.MustParseAddr("198.19.0.2")
	cli6 = netip.MustParseAddr("fd00::2")
	srv6 = netip.MustParseAddr("fd00:1::2")
	tsOp = []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2} // NOP NOP timestamps
)

// stream returns n in-order segments of size bytes of one flow.
func stream(v6 bool, n, size int, mod func(i int, s *spec)) [][]byte {
	src, dst := cli4, srv4
	if v6 {
		src, dst = cli6, srv6
	}
	var out [][]byte
	for i := range n {
		s := spec{src: src, dst: dst, sport: 40000, dport: 5201, seq: 1000 + uint32(i*size), ack: 77,
			flags: tcpFlagACK, window: 500, id: uint16(300 + i), df: true, ttl: 64, opts: tsOp,
			payload: bytes.Repeat([]byte{byte(i)}, size)}
		if mod != nil {
			mod(i, &s)
		}
		out = append(out, build(s))
	}
	return out
}

func TestChecksumMatchesRFC1071(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := fold(sum(b, 0)), uint16(naiveSum(b, 0)); got != want && !(got == 0xffff && want == 0) && !(got == 0 && want == 0xffff) {
			t.Fatalf("len %d: sum %04x, want %04x", n, got, want)
		}
	}
}

func TestPlanCoalescesAStream(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprint("v6=", v6), func(t *testing.T) {
			in := stream(v6, 30, 1368, func(i int, s *spec) {
				if i == 29 {
					s.flags |= tcpFlagPSH
					s.payload = s.payload[:100]
				}
			})
			units, others, p := simulate(t, batch(in))
			checkDelivery(t, in, units, others)
			if len(p.units) != 1 || len(p.units[0].members) != 30 {
				t.Fatalf("want one super-packet of 30 segments, got %d units", len(p.units))
			}
		})
	}
}

func TestPlanSizeLimit(t *testing.T) {
	in := stream(false, 120, 1400, nil)
	units, others, p := simulate(t, batch(in))
	checkDelivery(t, in, units, others)
	for _, u := range p.units {
		if u.ipLen > maxIPLen || len(u.members) > maxSegments {
			t.Fatalf("unit of %d bytes, %d segments", u.ipLen, len(u.members))
		}
	}
	if len(p.units) != 3 { // 46 segments of 1400 bytes fit 65,535
		t.Fatalf("%d units, want 3", len(p.units))
	}
}

// fromSixth applies f to the sixth segment of a stream and those after it.
func fromSixth(f func(s *spec)) func(int, *spec) {
	return func(i int, s *spec) {
		if i >= 5 {
			f(s)
		}
	}
}

// TestPlanBreaks covers each rule that keeps a segment out of the
// super-packet before it, and checks the delivery stays exact.
func TestPlanBreaks(t *testing.T) {
	cases := []struct {
		name  string
		mod   func(i int, s *spec)
		units int
	}{
		{"seq gap", fromSixth(func(s *spec) { s.seq += 1 }), 2},
		{"reordered", func(i int, s *spec) {
			if i == 4 {
				s.seq += 1368
			} else if i == 5 {
				s.seq -= 1368
			}
		}, 4},
		{"ack changes", fromSixth(func(s *spec) { s.ack++ }), 2},
		{"window changes", fromSixth(func(s *spec) { s.window++ }), 2},
		{"options change", fromSixth(func(s *spec) { s.opts = []byte{1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 2} }), 2},
		{"ttl changes", fromSixth(func(s *spec) { s.ttl = 63 }), 2},
		{"PSH in the middle", func(i int, s *spec) {
			if i == 4 {
				s.flags |= tcpFlagPSH
			}
		}, 2},
		{"short in the middle", func(i int, s *spec) {
			if i == 4 {
				s.payload = s.payload[:10]
			} else if i > 4 {
				s.seq -= 1358
			}
		}, 2},
		{"longer after", func(i int, s *spec) {
			if i >= 5 {
				s.payload = append(s.payload, 1, 2, 3)
				s.seq += uint32(3 * (i - 5))
			}
		}, 2},
		{"FIN in the middle", func(i int, s *spec) {
			if i == 5 {
				s.flags |= 0x01
			}
		}, 3},
		{"pure ACK in the middle", func(i int, s *spec) {
			if i == 5 {
				s.payload = nil
			} else if i > 5 {
				s.seq -= 1368
			}
		}, 3},
		{"no DF, IDs counting", func(i int, s *spec) { s.df = false }, 1},
		{"no DF, ID jumps", func(i int, s *spec) {
			s.df = false
			if i >= 5 {
				s.id += 7
			}
		}, 2},
		{"DF, IDs anything", func(i int, s *spec) { s.id = uint16(i * 31) }, 1},
		{"bad checksum in the middle", func(i int, s *spec) {
			if i == 5 {
				s.badCsum = true
			}
		}, 3},
		{"bad checksum first", func(i int, s *spec) {
			if i == 0 {
				s.badCsum = true
			}
		}, 2},
		{"TOS changes", fromSixth(func(s *spec) { s.tos = 0x02 }), 2}, // ECT(0)
		{"urgent pointer changes", fromSixth(func(s *spec) { s.urp = 9 }), 2},
		{"v6 hop limit changes", fromSixth(func(s *spec) { s.ttl = 63 }), 2},
		{"v6 traffic class changes", fromSixth(func(s *spec) { s.tos = 0x02 }), 2},
		{"v6 flow label changes", fromSixth(func(s *spec) { s.flow = 1 }), 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := stream(strings.HasPrefix(c.name, "v6 "), 10, 1368, c.mod)
			units, others, p := simulate(t, batch(in))
			checkDelivery(t, in, units, others)
			if len(p.units) != c.units {
				var sizes []int
				for _, u := range p.units {
					sizes = append(sizes, len(u.members))
				}
				t.Fatalf("units %v, want %d units", sizes, c.units)
			}
		})
	}
}

// TestPlanBadChecksumStaysAlone checks that a corrupt segment is written
// alone and unchanged, so the receiver's checksum check still drops it.
func TestPlanBadChecksumStaysAlone(t *testing.T) {
	in := stream(false, 10, 1368, func(i int, s *spec) { s.badCsum = i == 5 })
	bufs := batch(in)
	p := &planner{}
	p.plan(bufs, headroom)
	for _, u := range p.units {
		for _, m := range u.members {
			if m == 5 && len(u.members) != 1 {
				t.Fatalf("corrupt segment merged into a unit of %d", len(u.members))
			}
		}
	}
	for k := range p.units {
		u := &p.units[k]
		if u.members[0] != 5 {
			continue
		}
		w := pieces(nil, bufs, headroom, u)
		if len(w) != 1 || !bytes.Equal(w[0][VirtioNetHdrLen:], in[5]) {
			t.Fatal("corrupt segment was changed")
		}
	}
}

func TestPlanInterleavedFlowsAndOthers(t *testing.T) {
	a := stream(false, 8, 1000, nil)
	b := stream(true, 8, 1200, nil)
	c := stream(false, 8, 1000, func(i int, s *spec) { s.sport = 40001 })
	udp := []byte{0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 100, 64, 0, 2, 198, 19, 0, 2, 0, 53, 0, 53, 0, 8, 0, 0}
	var in [][]byte
	for i := range 8 {
		in = append(in, a[i], b[i], c[i])
		if i%3 == 0 {
			in = append(in, udp)
		}
	}
	units, others, p := simulate(t, batch(in))
	checkDelivery(t, in, units, others)
	if len(p.units) != 3 || len(others) != 3 {
		t.Fatalf("%d units and %d others, want 3 and 3", len(p.units), len(others))
	}
}

// TestPlanRandomBatches mixes streams, damage and junk at random and checks
// exact, ordered delivery every time.
func TestPlanRandomBatches(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 300 {
		var in [][]byte
		for f := range 1 + r.IntN(4) {
			size := 1 + r.IntN(1400)
			s := stream(r.IntN(2) == 1, 1+r.IntN(40), size, func(i int, s *spec) {
				s.sport = uint16(30000 + f)
				switch r.IntN(30) {
				case 0:
					s.badCsum = true
				case 1:
					s.flags |= tcpFlagPSH
				case 2:
					s.payload = s.payload[:r.IntN(len(s.payload)+1)]
				case 3:
					s.seq += uint32(r.IntN(3000))
				case 4:
					s.df = false
				case 5:
					s.flags = 0x02 // SYN
				case 6:
					s.ack++
				}
			})
			in = append(in, s...)
		}
		r.Shuffle(len(in), func(i, j int) {
			if r.IntN(8) == 0 {
				in[i], in[j] = in[j], in[i]
			}
		})
		units, others, _ := simulate(t, batch(in))
		t.Logf("round %d: %d packets", round, len(in))
		checkDelivery(t, in, units, others)
	}
}

func BenchmarkPlan(b *testing.B) {
	in := stream(false, 128, 1368, nil)
	bufs := batch(in)
	p := &planner{}
	var dst [][]byte
	b.SetBytes(int64(128 * 1368))
	for b.Loop() {
		p.plan(bufs, headroom)
		for k := range p.units {
			dst = pieces(dst[:0], bufs, headroom, &p.units[k])
		}
		// pieces rewrote the heads; the next round plans them again,
		// which their new lengths would refuse, so restore them.
		for i, pkt := range in {
			copy(bufs[i][headroom:], pkt)
		}
	}
}

// TestPlanAmbiguousBatchGoesWhole checks that a batch with a packet whose
// flow its first header hides (an IPv6 extension header, an IPv4
// fragment) is left to the inner device whole, so that no later packet of
// that flow can be written before it.
func TestPlanAmbiguousBatchGoesWhole(t *testing.T) {
	hopByHop := func(pkt []byte) []byte {
		// Insert an 8-byte hop-by-hop header (PadN) before TCP.
		out := make([]byte, 0, len(pkt)+8)
		out = append(out, pkt[:40]...)
		out = append(out, protoTCP, 0, 1, 4, 0, 0, 0, 0)
		out = append(out, pkt[40:]...)
		out[6] = 0
		binary.BigEndian.PutUint16(out[4:], uint16(len(out)-40))
		return out
	}
	fragment := func(pkt []byte) []byte {
		pkt = bytes.Clone(pkt)
		pkt[6] |= 0x20 // MF
		pkt[10], pkt[11] = 0, 0
		binary.BigEndian.PutUint16(pkt[10:], ^uint16(naiveSum(pkt[:20], 0)))
		return pkt
	}
	for _, c := range []struct {
		name string
		v6   bool
		mod  func([]byte) []byte
	}{{"IPv6 hop-by-hop", true, hopByHop}, {"IPv4 fragment", false, fragment}} {
		t.Run(c.name, func(t *testing.T) {
			in := stream(c.v6, 3, 100, nil)
			in[1] = c.mod(in[1])
			p := &planner{}
			p.plan(batch(in), headroom)
			if !p.whole {
				t.Fatal("batch not left whole to the inner device")
			}
			p.plan(batch(stream(c.v6, 3, 100, nil)), headroom)
			if p.whole {
				t.Fatal("whole not reset by the next plan")
			}
		})
	}
}
