package e2e

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nitronet/nitronet/internal/netns"
)

// capture records every IP packet that crosses one interface of a
// namespace, both ways, through an AF_PACKET socket (the test's own
// tcpdump). It holds at most maxCaptured bytes; what comes after is
// counted but not kept.
type capture struct {
	fd   int
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	pkts    [][]byte
	size    int
	dropped int
}

const maxCaptured = 256 << 20

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// startCapture starts capturing on ifname in ns until the test ends (or
// stop).
func startCapture(t *testing.T, ns *netns.NS, ifname string) *capture {
	t.Helper()
	c := &capture{fd: -1, done: make(chan struct{})}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("capture on %s in %s: %v", ifname, ns.Name(), err)
	}
	c.wg.Add(1)
	go c.read()
	t.Cleanup(func() { c.stop() })
	return c
}

func (c *capture) read() {
	defer c.wg.Done()
	buf := make([]byte, 1<<17)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.size+n <= maxCaptured {
			c.pkts = append(c.pkts, append([]byte(nil), buf[:n]...))
			c.size += n
		} else {
			c.dropped++
		}
		c.mu.Unlock()
	}
}

// stop ends the capture and returns the packets, parsed. It may be called
// more than once.
func (c *capture) stop() []packet {
	select {
	case <-c.done:
	default:
		close(c.done)
		c.wg.Wait()
		unix.Close(c.fd)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]packet, 0, len(c.pkts))
	for _, b := range c.pkts {
		if p, ok := parsePacket(b); ok {
			out = append(out, p)
		}
	}
	return out
}

// packet is a captured IP packet.
type packet struct {
	src, dst     netip.Addr
	proto        uint8 // 6 TCP, 17 UDP
	sport, dport uint16
	raw          []byte
}

// parsePacket parses an IPv4 or IPv6 packet (IPv6 without extension
// headers), and reports false for anything else.
func parsePacket(b []byte) (packet, bool) {
	if len(b) < 1 {
		return packet{}, false
	}
	var p packet
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) < 20 || ihl < 20 || len(b) < ihl {
			return packet{}, false
		}
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.proto, l4 = b[9], b[ihl:]
	case 6:
		if len(b) < 40 {
			return packet{}, false
		}
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		p.proto, l4 = b[6], b[40:]
	default:
		return packet{}, false
	}
	if (p.proto == unix.IPPROTO_TCP || p.proto == unix.IPPROTO_UDP) && len(l4) >= 4 {
		p.sport, p.dport = binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
	}
	p.raw = b
	return p, true
}

// involves reports whether a is p's source or destination.
func (p packet) involves(a netip.Addr) bool { return p.src == a || p.dst == a }
