package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/nitronet/nitronet/internal/gateway"
)

// requireNetNSEnv makes the namespace tests fail instead of skip when they
// cannot run, so CI cannot lose them silently.
const requireNetNSEnv = "NITRONET_REQUIRE_NETNS"

// skipOrFail skips the test, or fails it if requireNetNSEnv is "1".
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(requireNetNSEnv) == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (set "+requireNetNSEnv+"=1 to fail instead)", args...)
}

// testNS is a network namespace this test created, named "nd-…". It is
// deleted by t.Cleanup.
type testNS struct {
	name string
	h    vnetns.NsHandle
}

// newTestNS creates a namespace named "nd-<random>-<pid>" with loopback up
// and an interface "nd0" (one end of a veth pair) holding the gateway's tunnel addresses
// 100.64.0.1/10 and fd00:6e6e::1/48 and the DNS blocking resolvers of the
// default pool, fd00:6e6e::53:0:1 to fd00:6e6e::53:0:1f (the kernel
// network's job in production). It skips or fails the test if it is not root or the
// namespace cannot be made.
func newTestNS(t *testing.T) *testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "network namespace test needs root")
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	ns := &testNS{name: "nd-" + hex.EncodeToString(b[:]) + "-" + strconv.Itoa(os.Getpid()), h: vnetns.None()}
	t.Cleanup(func() {
		if ns.h.IsOpen() {
			ns.h.Close()
		}
		if err := vnetns.DeleteNamed(ns.name); err != nil && !errors.Is(err, os.ErrNotExist) {
			// A failed bind mount leaves a plain file behind.
			if rerr := os.Remove("/run/netns/" + ns.name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				t.Errorf("delete namespace %s: %v", ns.name, err)
			}
		}
	})
	err := onThread(func() error {
		h, err := vnetns.NewNamed(ns.name) // switches this thread into it
		ns.h = h
		return err
	})
	if err != nil {
		skipOrFail(t, "create network namespace: %v", err)
	}

	nl, err := netlink.NewHandleAt(ns.h)
	if err != nil {
		t.Fatalf("netlink in namespace: %v", err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatalf("lo up: %v", err)
	}
	// A veth pair with both ends here (no dummy driver is needed); it goes
	// away with the namespace.
	link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nd0"}, PeerName: "nd1"}
	if err := nl.LinkAdd(link); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	addrs := []string{"100.64.0.1/10", "fd00:6e6e::1/48"}
	for s := 1; s <= 31; s++ {
		addrs = append(addrs, fmt.Sprintf("fd00:6e6e::53:0:%x/128", s))
	}
	for _, p := range addrs {
		a, err := netlink.ParseAddr(p)
		if err != nil {
			t.Fatal(err)
		}
		if a.IP.To4() == nil {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := nl.AddrAdd(link, a); err != nil {
			t.Fatalf("add %s: %v", p, err)
		}
	}
	if err := nl.LinkSetUp(link); err != nil {
		t.Fatalf("nd0 up: %v", err)
	}
	return ns
}

// onThread runs fn on a locked OS thread that is switched back to the
// current namespace afterwards, or, if that fails, discarded.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := vnetns.Set(orig); err != nil {
			// Keep the thread locked: it exits with this goroutine.
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// do runs fn on a locked OS thread inside ns. Sockets fn opens stay in ns
// whichever goroutine uses them later; goroutines fn starts do not.
func (ns *testNS) do(fn func() error) error {
	return onThread(func() error {
		if err := vnetns.Set(ns.h); err != nil {
			return err
		}
		return fn()
	})
}

func (ns *testNS) dial(t *testing.T, network, addr string) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	err := ns.do(func() error {
		var err error
		c, err = net.DialTimeout(network, addr, 3*time.Second)
		return err
	})
	return c, err
}

// fakeTUN is the TUN device of fakeKernelNetwork: it carries no packets.
type fakeTUN struct {
	once   sync.Once
	closed chan struct{}
	events chan tun.Event
}

func (d *fakeTUN) File() *os.File { return nil }
func (d *fakeTUN) Read([][]byte, []int, int) (int, error) {
	<-d.closed
	return 0, os.ErrClosed
}
func (d *fakeTUN) Write(bufs [][]byte, _ int) (int, error) { return len(bufs), nil }
func (d *fakeTUN) MTU() (int, error)                       { return 1420, nil }
func (d *fakeTUN) Name() (string, error)                   { return "nd0", nil }
func (d *fakeTUN) Events() <-chan tun.Event                { return d.events }
func (d *fakeTUN) BatchSize() int                          { return 1 }
func (d *fakeTUN) Close() error {
	d.once.Do(func() {
		close(d.closed)
		close(d.events)
	})
	return nil
}

// fakeKernelNetwork stands in for kernelnet, whose work (the tunnel
// addresses on an interface) newTestNS has done. It records the
// NetworkConfig it was given.
type fakeKernelNetwork struct {
	tun *fakeTUN
	got chan gateway.NetworkConfig
}

func newFakeKernelNetwork() *fakeKernelNetwork {
	return &fakeKernelNetwork{
		tun: &fakeTUN{closed: make(chan struct{}), events: make(chan tun.Event)},
		got: make(chan gateway.NetworkConfig, 1),
	}
}

func (n *fakeKernelNetwork) factory(nc gateway.NetworkConfig) (gateway.Network, error) {
	n.got <- nc
	return n, nil
}
func (n *fakeKernelNetwork) TUN() tun.Device { return n.tun }
func (n *fakeKernelNetwork) Close() error    { return n.tun.Close() }

// freePort returns a port number that is free for UDP and TCP on the
// namespace's tunnel addresses at the time of the call.
func freePort(t *testing.T, ns *testNS) int {
	t.Helper()
	var port int
	err := ns.do(func() error {
		for range 20 {
			pc, err := net.ListenPacket("udp", "100.64.0.1:0")
			if err != nil {
				return err
			}
			port = pc.LocalAddr().(*net.UDPAddr).Port
			pc.Close()
			ok := true
			for _, a := range []string{"100.64.0.1", "fd00:6e6e::1"} {
				ln, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
				if err != nil {
					ok = false
					break
				}
				ln.Close()
			}
			if ok {
				return nil
			}
		}
		return errors.New("no free port")
	})
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// runGatewayIn runs g.Run on a thread inside ns, so the sockets Run opens
// itself (the WireGuard port and the DNS service) live in ns. Goroutines
// Run starts are outside it: the control client reaches the fake control
// server, and the DNS forwarder the fake upstream, on the test process's
// own 127.0.0.1.
func runGatewayIn(t *testing.T, ns *testNS, g *gateway.Gateway) (stop func()) {
	return runGateway(t, func(ctx context.Context) error {
		return ns.do(func() error { return g.Run(ctx) })
	})
}

// exchange sends an A query for name over c (UDP, or TCP with length
// framing) and returns the answer's A records.
func exchange(t *testing.T, c net.Conn, name string) ([]string, dnsmessage.RCode) {
	t.Helper()
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 0x1234, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	_, stream := c.LocalAddr().(*net.TCPAddr) // a kernel or a netstack TCP conn
	if stream {
		b = append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write query: %v", err)
	}
	buf := make([]byte, 65535)
	var n int
	if stream {
		if _, err = io.ReadFull(c, buf[:2]); err == nil {
			n = int(binary.BigEndian.Uint16(buf))
			_, err = io.ReadFull(c, buf[:n])
		}
	} else {
		n, err = c.Read(buf)
	}
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatalf("unpack answer: %v", err)
	}
	if m.Header.ID != 0x1234 || !m.Header.Response {
		t.Fatalf("answer header: got %+v", m.Header)
	}
	var addrs []string
	for _, a := range m.Answers {
		if ar, ok := a.Body.(*dnsmessage.AResource); ok {
			addrs = append(addrs, netip.AddrFrom4(ar.A).String())
		}
	}
	return addrs, m.Header.RCode
}

// kernelGateway returns a kernel-mode gateway on a fakeKernelNetwork, with
// its own fake control server. (fakeDNS, the upstream, speaks UDP only; the
// forwarder asks upstreams over UDP whatever the client used.)
func kernelGateway(t *testing.T, upstreams []string, port int, logs *syncBuffer) (*gateway.Gateway, *fakeKernelNetwork) {
	t.Helper()
	f := newFakeControl(t)
	kn := newFakeKernelNetwork()
	g := newGateway(t, f, logs, func(c *gateway.Config) {
		c.Mode = gateway.ModeKernel
		c.NewNetwork = kn.factory
		c.DNSUpstreams = upstreams
		c.DNSPort = port
	})
	return g, kn
}

func TestKernelDNS(t *testing.T) {
	ns := newTestNS(t)
	answer := netip.MustParseAddr("192.0.2.77")
	upstream := fakeDNS(t, answer)
	port := freePort(t, ns)
	var logs syncBuffer
	g, kn := kernelGateway(t, []string{upstream}, port, &logs)
	stop := runGatewayIn(t, ns, g)
	waitReady(t, g)

	if nc := <-kn.got; nc.DNSPort != port {
		t.Errorf("NetworkConfig.DNSPort: got %d, want %d", nc.DNSPort, port)
	}
	tests := []struct {
		network, addr string
	}{
		{"udp", "100.64.0.1"},
		{"tcp", "100.64.0.1"},
		{"udp", "fd00:6e6e::1"},
		{"tcp", "fd00:6e6e::1"},
		{"udp", "fd00:6e6e::53:0:1"}, // the resolver of ads, without a list
		{"tcp", "fd00:6e6e::53:0:1f"},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.addr, func(t *testing.T) {
			c, err := ns.dial(t, tt.network, net.JoinHostPort(tt.addr, strconv.Itoa(port)))
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			addrs, rcode := exchange(t, c, "kernel-secret.test.")
			if rcode != dnsmessage.RCodeSuccess || len(addrs) != 1 || addrs[0] != answer.String() {
				t.Errorf("answer: got %v %v, want [%v] success", addrs, rcode, answer)
			}
		})
	}

	// An open client connection must not hold up shutdown.
	idle, err := ns.dial(t, "tcp", net.JoinHostPort("100.64.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer idle.Close()
	stop()

	t.Run("sockets closed after shutdown", func(t *testing.T) {
		for _, a := range []string{"100.64.0.1", "fd00:6e6e::1"} {
			c, err := ns.dial(t, "tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err == nil {
				c.Close()
				t.Errorf("%s: connected after shutdown", a)
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s: got %v, want connection refused", a, err)
			}
			if err := ns.do(func() error {
				pc, err := net.ListenPacket("udp", net.JoinHostPort(a, strconv.Itoa(port)))
				if err == nil {
					pc.Close()
				}
				return err
			}); err != nil {
				t.Errorf("%s: UDP port still bound after shutdown: %v", a, err)
			}
		}
	})

	t.Run("no client data in logs", func(t *testing.T) {
		out := logs.String()
		if !strings.Contains(out, "DNS service up") || !strings.Contains(out, "DNS service stopped") {
			t.Fatalf("logs lack DNS start and stop:\n%s", out)
		}
		for _, s := range []string{"kernel-secret", answer.String(), "100.64.0.1", "fd00:6e6e::1", "127.0.0.1"} {
			if strings.Contains(out, s) {
				t.Errorf("logs contain %q:\n%s", s, out)
			}
		}
	})
}

func TestKernelDNSOff(t *testing.T) {
	ns := newTestNS(t)
	port := freePort(t, ns)
	var logs syncBuffer
	g, kn := kernelGateway(t, nil, port, &logs)
	stop := runGatewayIn(t, ns, g)
	waitReady(t, g)

	if nc := <-kn.got; nc.DNSPort != 0 {
		t.Errorf("NetworkConfig.DNSPort: got %d, want 0 (no DNS service)", nc.DNSPort)
	}
	c, err := ns.dial(t, "tcp", net.JoinHostPort("100.64.0.1", strconv.Itoa(port)))
	if err == nil {
		c.Close()
		t.Error("DNS port accepts connections with no upstreams")
	}
	stop()
	out := logs.String()
	if got := strings.Count(out, "DNS service off"); got != 1 {
		t.Errorf(`"DNS service off" logged %d times, want 1:\n%s`, got, out)
	}
	if strings.Contains(out, "100.64.0.1") || strings.Contains(out, "fd00:6e6e::1") {
		t.Errorf("logs contain an address:\n%s", out)
	}
}
