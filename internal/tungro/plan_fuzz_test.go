package tungro

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// packets splits data into packets, each preceded by a 2-byte big-endian
// length (a short tail is one last packet).
func packets(data []byte) [][]byte {
	var out [][]byte
	for len(data) >= 2 && len(out) < 256 {
		n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
		out = append(out, data[2:2+n])
		data = data[2+n:]
	}
	return out
}

func joinPackets(pkts [][]byte) []byte {
	var out []byte
	for _, p := range pkts {
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	return out
}

// FuzzPlan checks, on any batch, that planning never panics, that every
// packet is written exactly once (in a unit, or by the inner device), and
// that each write delivers exactly the packets it was made of: a single
// one unchanged behind a zero virtio-net header, a super-packet cut back
// into its members as the kernel would cut it.
func FuzzPlan(f *testing.F) {
	f.Add(joinPackets(stream(false, 6, 100, nil)))
	f.Add(joinPackets(stream(true, 6, 100, func(i int, s *spec) { s.badCsum = i == 3 })))
	f.Add(joinPackets(append(stream(false, 3, 50, nil), stream(false, 3, 50, func(i int, s *spec) { s.sport = 1 })...)))
	f.Add(joinPackets(stream(false, 4, 30, func(i int, s *spec) { s.df = false; s.flags |= tcpFlagPSH * byte(i&1) })))
	f.Add([]byte{0, 20, 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := packets(data)
		bufs := batch(in)
		p := &planner{}
		p.plan(bufs, headroom)
		seen := make([]int, len(in))
		for _, i := range p.others {
			seen[i]++
			if classify(in[i]) != kindOther {
				t.Fatalf("TCP packet %d handed to the inner device", i)
			}
		}
		for k := range p.units {
			u := &p.units[k]
			for _, m := range u.members {
				seen[m]++
			}
			var w []byte
			for _, b := range pieces(nil, bufs, headroom, u) {
				w = append(w, b...)
			}
			segs := segmentLikeKernel(t, w)
			if len(segs) != len(u.members) {
				t.Fatalf("unit of %d members cut into %d segments", len(u.members), len(segs))
			}
			for j, m := range u.members {
				if !bytes.Equal(normalise(segs[j]), normalise(in[m])) {
					t.Fatalf("unit %d member %d:\n got % x\nwant % x", k, j, segs[j], in[m])
				}
			}
		}
		if p.whole {
			if len(p.units) != 0 || len(p.others) != 0 {
				t.Fatal("a batch left whole was also planned")
			}
			return
		}
		for i, n := range seen {
			if n != 1 {
				t.Fatalf("packet %d written %d times", i, n)
			}
		}
		// No packet is written before an earlier one of its flow.
		last := map[flowKey]int{}
		for k := range p.units {
			for _, m := range p.units[k].members {
				var key flowKey
				if !keyOf(in[m], &key) {
					continue
				}
				if prev, ok := last[key]; ok && prev > m {
					t.Fatalf("packet %d written after packet %d of its flow", prev, m)
				}
				last[key] = m
			}
		}
	})
}
