package tungro

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/nitronet/nitronet/internal/netns"
)

// TestWriteThroughKernel plays the client side of a TCP connection by
// writing packets into a real TUN device through Device.Write: the
// kernel's TCP in the namespace must accept the super-packets, deliver
// every byte in order, and drop a corrupt segment rather than receive it
// inside a super-packet.
func TestWriteThroughKernel(t *testing.T) {
	netns.Require(t)
	for _, c := range []struct {
		name  string
		local netip.Prefix
		peer  netip.Addr
	}{
		{"v4", netip.MustParsePrefix("100.64.7.1/24"), netip.MustParseAddr("100.64.7.2")},
		{"v6", netip.MustParsePrefix("fd00:7::1/64"), netip.MustParseAddr("fd00:7::2")},
	} {
		t.Run(c.name, func(t *testing.T) {
			testWriteThroughKernel(t, c.local, c.peer)
		})
	}
}

// newTUN creates TUN "tg0" (wireguard-go's tun.CreateTUN) with address
// local in a new namespace, up, and returns it and its wrapper; both are
// closed at the end of the test.
func newTUN(tb testing.TB, local netip.Prefix) (*netns.NS, tun.Device, *Device) {
	tb.Helper()
	ns := netns.New(tb)
	var raw tun.Device
	if err := ns.Do(func() (err error) {
		raw, err = tun.CreateTUN("tg0", 1420)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { raw.Close() })
	dev, ok := Wrap(raw).(*Device)
	if !ok {
		tb.Fatal("Wrap left a TUN with virtio-net headers unwrapped")
	}
	if err := ns.AddTunnelAddr("tg0", local); err != nil {
		tb.Fatal(err)
	}
	if err := ns.LinkUp("tg0"); err != nil {
		tb.Fatal(err)
	}
	return ns, raw, dev
}

func testWriteThroughKernel(t *testing.T, local netip.Prefix, peer netip.Addr) {
	ns, _, dev := newTUN(t, local)
	const port = 5201
	ln, err := ns.Listen("tcp", net.JoinHostPort(local.Addr().String(), strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	// What the kernel sends back to the peer, TCP from the listener only.
	replies := make(chan []byte, 64)
	go func() {
		bufs := [][]byte{make([]byte, 65535+headroom)}
		sizes := []int{0}
		for {
			n, err := dev.Read(bufs, sizes, headroom)
			if err != nil {
				return
			}
			for i := range n {
				pkt := bytes.Clone(bufs[i][headroom : headroom+sizes[i]])
				if isTCP(pkt) {
					replies <- pkt
				}
			}
		}
	}()

	base := spec{src: peer, dst: local.Addr(), sport: 40000, dport: port, window: 65535, ttl: 64, df: true}
	write := func(specs ...spec) {
		t.Helper()
		var pkts [][]byte
		for _, s := range specs {
			pkts = append(pkts, build(s))
		}
		if _, err := dev.Write(batch(pkts), headroom); err != nil {
			t.Fatalf("write: %v", err)
		}
	}

	// Handshake.
	syn := base
	syn.seq, syn.flags = 1000, 0x02
	write(syn)
	var synack []byte
	select {
	case synack = <-replies:
	case <-time.After(10 * time.Second):
		t.Fatal("no SYN-ACK")
	}
	iph := 20
	if peer.Is6() {
		iph = 40
	}
	if synack[iph+13] != 0x12 {
		t.Fatalf("reply flags %#x, want SYN-ACK", synack[iph+13])
	}
	ack := binary.BigEndian.Uint32(synack[iph+4:]) + 1

	data := make([]byte, 50*1000)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	seg := func(i int) spec {
		s := base
		s.seq, s.ack, s.flags, s.id = 1001+uint32(i*1000), ack, tcpFlagACK, uint16(i)
		s.payload = data[i*1000 : (i+1)*1000]
		return s
	}
	// The handshake's last ACK and 40 segments in one batch: one single
	// packet and one super-packet.
	first := base
	first.seq, first.ack, first.flags = 1001, ack, tcpFlagACK
	batch1 := []spec{first}
	for i := range 40 {
		s := seg(i)
		if i == 39 {
			s.flags |= tcpFlagPSH
		}
		batch1 = append(batch1, s)
	}
	write(batch1...)
	if st := dev.Stats(); st.SuperPackets != 1 || st.Segments != 40 {
		t.Fatalf("stats %+v, want one super-packet of 40 segments", st)
	}

	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make([]byte, len(data))
	read := func(from, to int) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(conn, got[from:to]); err != nil {
			t.Fatalf("read bytes %d-%d: %v", from, to, err)
		}
	}
	read(0, 40000)

	// Ten more, the sixth corrupt: five are merged, the corrupt one goes
	// alone and the kernel drops it, the last four are merged and wait
	// out of order.
	var batch2 []spec
	for i := 40; i < 50; i++ {
		s := seg(i)
		s.badCsum = i == 45
		batch2 = append(batch2, s)
	}
	write(batch2...)
	read(40000, 45000)
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := conn.Read(got[45000:]); !os.IsTimeout(err) {
		t.Fatalf("read %d bytes past the corrupt segment (err %v): it was not dropped", n, err)
	}
	if st := dev.Stats(); st.SuperPackets != 3 || st.Segments != 49 {
		t.Fatalf("stats %+v, want 3 super-packets of 49 segments", st)
	}
	write(seg(45)) // the retransmission
	read(45000, 50000)
	if !bytes.Equal(got, data) {
		t.Fatal("the bytes received differ from the bytes sent")
	}
}

// BenchmarkWrite writes batches of 128 segments of one TCP flow (the
// batch wireguard-go hands a TUN) through a real TUN in a namespace, with
// wireguard-go's own writer and with Device.Write, in the same run. The
// packets go to an address the namespace does not forward, so the kernel
// takes each super-packet and drops it whole: what is measured is the
// writer and the system call, the part that differs. Buffers are 64 KiB
// and reused, as wireguard-go's pooled ones are.
func BenchmarkWrite(b *testing.B) {
	netns.Require(b)
	_, raw, ours := newTUN(b, netip.MustParsePrefix("100.64.8.1/24"))
	in := stream(false, 128, 1368, func(i int, s *spec) {
		s.src, s.dst = netip.MustParseAddr("100.64.8.2"), netip.MustParseAddr("100.64.9.2")
	})
	backing := make([][]byte, len(in))
	for i := range backing {
		backing[i] = make([]byte, 65535)
	}
	bufs := make([][]byte, len(in))
	reset := func() {
		for i, p := range in {
			bufs[i] = backing[i][:headroom+len(p)]
			copy(bufs[i][headroom:], p[:52]) // the headers both writers rewrite
		}
	}
	for i, p := range in {
		copy(backing[i][headroom:], p)
	}
	for _, w := range []struct {
		name string
		dev  tun.Device
	}{{"wireguard-go", raw}, {"tungro", ours}} {
		b.Run(w.name, func(b *testing.B) {
			b.SetBytes(int64(128 * 1368))
			for b.Loop() {
				reset()
				if _, err := w.dev.Write(bufs, headroom); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
