package tungro

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
					select {
					case replies <- pkt:
					default: // only the first few replies matter
					}
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

	// Handshake. The SYN is sent again until it is answered: a new IPv6
	// address may not take packets at once.
	syn := base
	syn.seq, syn.flags = 1000, 0x02
	var synack []byte
	deadline := time.After(10 * time.Second)
	for synack == nil {
		write(syn)
		select {
		case synack = <-replies:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("no SYN-ACK")
		}
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

// plainTUN creates TUN name in ns without virtio-net headers (IFF_NO_PI
// only), so that the kernel must cut any GSO packet it routes there into
// segments itself, and returns its file (non-blocking, closed at the end
// of the test).
func plainTUN(tb testing.TB, ns *netns.NS, name string, addr netip.Prefix) *os.File {
	tb.Helper()
	var f *os.File
	if err := ns.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun")
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	if err := ns.AddTunnelAddr(name, addr); err != nil {
		tb.Fatal(err)
	}
	if err := ns.LinkUp(name); err != nil {
		tb.Fatal(err)
	}
	return f
}

// TestForwardedSegments writes super-packets into a TUN of a namespace
// that forwards them to a TUN without offloads, so the kernel's own GSO
// cuts them: what comes out must be exactly the segments that went in
// (hop count one lower), in order, a corrupt segment included as it was.
// This is the gateway's path: TUN, forwarding, an uplink.
func TestForwardedSegments(t *testing.T) {
	netns.Require(t)
	for _, c := range []struct {
		name          string
		in, out       netip.Prefix
		src, dst      netip.Addr
		v6, df        bool
		forwardSysctl string
	}{
		{"v4 DF", netip.MustParsePrefix("100.64.10.1/24"), netip.MustParsePrefix("100.64.11.1/24"),
			netip.MustParseAddr("100.64.10.2"), netip.MustParseAddr("100.64.11.2"), false, true, "/proc/sys/net/ipv4/ip_forward"},
		{"v4 no DF", netip.MustParsePrefix("100.64.10.1/24"), netip.MustParsePrefix("100.64.11.1/24"),
			netip.MustParseAddr("100.64.10.2"), netip.MustParseAddr("100.64.11.2"), false, false, "/proc/sys/net/ipv4/ip_forward"},
		{"v6", netip.MustParsePrefix("fd00:10::1/64"), netip.MustParsePrefix("fd00:11::1/64"),
			netip.MustParseAddr("fd00:10::2"), netip.MustParseAddr("fd00:11::2"), true, true, "/proc/sys/net/ipv6/conf/all/forwarding"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns, _, dev := newTUN(t, c.in)
			out := plainTUN(t, ns, "tp0", c.out)
			if err := ns.Do(func() error { return os.WriteFile(c.forwardSysctl, []byte("1\n"), 0) }); err != nil {
				t.Fatal(err)
			}
			// Two full super-packets, a short PSH one at the end of the
			// second, then a corrupt segment between two merged runs.
			in := stream(c.v6, 70, 1000, func(i int, s *spec) {
				s.src, s.dst, s.df = c.src, c.dst, c.df
				if i == 45 {
					s.flags |= tcpFlagPSH
					s.payload = s.payload[:333]
				}
				if i > 45 {
					s.seq -= 667
				}
				s.badCsum = i == 60
			})
			if _, err := dev.Write(batch(in), headroom); err != nil {
				t.Fatal(err)
			}
			if st := dev.Stats(); st.SuperPackets < 3 || st.Segments < 60 {
				t.Fatalf("stats %+v: the batch was not coalesced", st)
			}
			var got [][]byte
			buf := make([]byte, 65536)
			out.SetReadDeadline(time.Now().Add(10 * time.Second))
			for len(got) < len(in) {
				n, err := out.Read(buf)
				if err != nil {
					t.Fatalf("after %d of %d segments: %v", len(got), len(in), err)
				}
				if isTCP(buf[:n]) {
					got = append(got, bytes.Clone(buf[:n]))
				}
			}
			for i, want := range in {
				want = bytes.Clone(want)
				if c.v6 {
					want[7]-- // hop limit
				} else {
					want[8]-- // TTL
					want[10], want[11] = 0, 0
					binary.BigEndian.PutUint16(want[10:], ^uint16(naiveSum(want[:20], 0)))
				}
				if !bytes.Equal(normalise(got[i]), normalise(want)) {
					t.Fatalf("segment %d:\n got % x\nwant % x", i, got[i][:60], want[:60])
				}
			}
		})
	}
}

// TestWriteAfterClose checks that writing to a closed device reports
// os.ErrClosed, which wireguard-go treats as the end of the device, and
// not one error per packet.
func TestWriteAfterClose(t *testing.T) {
	netns.Require(t)
	_, raw, dev := newTUN(t, netip.MustParsePrefix("100.64.12.1/24"))
	raw.Close()
	_, err := dev.Write(batch(stream(false, 3, 100, nil)), headroom)
	if !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write after close: %v, want os.ErrClosed", err)
	}
}
