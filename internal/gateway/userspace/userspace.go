// Package userspace is the gateway's unprivileged network: a gVisor netstack
// behind a tun.Device that terminates the clients' TCP and UDP flows and
// re-originates them from the gateway's own sockets. It needs no root and no
// kernel TUN device.
//
// Isolation is enforced here: flows to other clients, to the gateway's own
// addresses (except its DNS on port 53), to loopback and to private ranges
// are refused; ICMP is answered only for the gateway's own addresses and is
// not forwarded. Nothing about any flow is logged or kept once it ends.
package userspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/nitronet/nitronet/internal/gateway/dnsfwd"
)

const nicID tcpip.NICID = 1

// DialFunc dials an outbound connection from the gateway host.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Config configures a Network.
type Config struct {
	// Addresses are the gateway's tunnel addresses with the prefix length of
	// their pool, e.g. 100.64.0.1/10 and fd00:6e6e::1/48. The masked
	// prefixes are the client pools. At least one is required.
	Addresses []netip.Prefix
	// AllowPrivate lists private or loopback destinations that clients may
	// reach anyway. Client pools and the gateway's own addresses are refused
	// regardless.
	AllowPrivate []netip.Prefix
	// DNSUpstreams are resolvers ("host" or "host:port", port 53 by default)
	// that the gateway's DNS service on port 53 of its tunnel addresses
	// forwards to (see package dnsfwd). With none there is no DNS service,
	// and the gateway's addresses refuse port 53 like any other port.
	DNSUpstreams []string
	// DNSPort is the port of the DNS service; 0 means 53.
	DNSPort int
	// DNSResolvers are further addresses of the DNS service, each with
	// the Blocker applied to the queries it receives: the resolvers of DNS
	// blocking (see package dnsblock). They must lie inside a client pool;
	// like the gateway's own addresses they answer DNS and nothing else.
	// They need DNSUpstreams.
	DNSResolvers []dnsfwd.Resolver
	// MTU of the tunnel; 0 means 1420.
	MTU int
	// Dial opens outbound connections; nil means a net.Dialer.
	Dial DialFunc
	// UDPIdleTimeout closes a UDP flow after this long without traffic in
	// either direction; 0 means 60s.
	UDPIdleTimeout time.Duration
	// Logger receives operational messages only; nil discards them.
	Logger *slog.Logger
}

// Network is a running userspace network. Its TUN device is handed to
// wireguard-go. Close it to stop all flows; it is safe for concurrent use.
type Network struct {
	cfg    Config
	policy destPolicy
	dial   DialFunc
	log    *slog.Logger
	stack  *stack.Stack
	ep     *channel.Endpoint
	dev    *tunDevice
	dns    *dnsfwd.Forwarder // nil: no DNS service

	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[io.Closer]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New builds the netstack, assigns the gateway addresses, starts the TCP and
// UDP forwarders and the DNS service, and returns the Network.
func New(cfg Config) (*Network, error) {
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("userspace: no gateway addresses")
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1420
	}
	if cfg.DNSPort == 0 {
		cfg.DNSPort = 53
	}
	if cfg.DNSPort < 0 || cfg.DNSPort > 65535 {
		return nil, errors.New("userspace: DNSPort out of range")
	}
	if cfg.UDPIdleTimeout == 0 {
		cfg.UDPIdleTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	var dns *dnsfwd.Forwarder
	if len(cfg.DNSUpstreams) > 0 {
		var err error
		dns, err = dnsfwd.New(dnsfwd.Config{Upstreams: cfg.DNSUpstreams, Dial: dnsfwd.DialFunc(dial)})
		if err != nil {
			return nil, fmt.Errorf("userspace: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Network{
		cfg:    cfg,
		dial:   dial,
		log:    cfg.Logger,
		dns:    dns,
		ctx:    ctx,
		cancel: cancel,
		conns:  map[io.Closer]struct{}{},
		policy: destPolicy{allowPrivate: append([]netip.Prefix(nil), cfg.AllowPrivate...), private: privateRanges()},
	}
	for _, a := range cfg.Addresses {
		if !a.IsValid() {
			cancel()
			return nil, errors.New("userspace: invalid gateway address")
		}
		n.policy.gateway = append(n.policy.gateway, a.Addr().Unmap())
		n.policy.pools = append(n.policy.pools, a.Masked())
	}

	// gVisor drops packets to loopback addresses arriving from a NIC as
	// martians. Permit them only if the operator allows some loopback
	// destination; the destination policy still decides every flow.
	loop := allowsLoopback(cfg.AllowPrivate)
	n.stack = stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			ipv4.NewProtocolWithOptions(ipv4.Options{AllowExternalLoopbackTraffic: loop}),
			ipv6.NewProtocolWithOptions(ipv6.Options{AllowExternalLoopbackTraffic: loop}),
		},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	fail := func(format string, args ...any) (*Network, error) {
		cancel()
		n.stack.Close()
		return nil, fmt.Errorf("userspace: "+format, args...)
	}
	sack := tcpip.TCPSACKEnabled(true)
	if err := n.stack.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fail("enable SACK: %v", err)
	}
	n.ep = channel.New(1024, uint32(cfg.MTU), "")
	if err := n.stack.CreateNIC(nicID, n.ep); err != nil {
		return fail("create NIC: %v", err)
	}
	// Promiscuous: accept packets for any destination, so the forwarders
	// see every flow. Spoofing: reply from that destination's address.
	if err := n.stack.SetPromiscuousMode(nicID, true); err != nil {
		return fail("promiscuous mode: %v", err)
	}
	if err := n.stack.SetSpoofing(nicID, true); err != nil {
		return fail("spoofing: %v", err)
	}
	for _, a := range cfg.Addresses {
		proto := ipv4.ProtocolNumber
		if a.Addr().Is6() && !a.Addr().Is4In6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{
			Protocol: proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{
				Address:   tcpip.AddrFromSlice(a.Addr().Unmap().AsSlice()),
				PrefixLen: a.Bits() - bitsOffset(a.Addr()),
			},
		}
		if err := n.stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fail("add address: %v", err)
		}
	}
	n.stack.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})

	tcpFwd := tcp.NewForwarder(n.stack, 0, 1024, n.handleTCP)
	n.stack.SetTransportProtocolHandler(tcp.ProtocolNumber, tcpFwd.HandlePacket)
	udpFwd := udp.NewForwarder(n.stack, n.handleUDP)
	n.stack.SetTransportProtocolHandler(udp.ProtocolNumber, udpFwd.HandlePacket)

	if err := n.startAllDNS(); err != nil {
		n.Close()
		return nil, fmt.Errorf("userspace: DNS service: %w", err)
	}
	n.dev = newTUNDevice(n.ep, cfg.MTU, &n.policy, n.Close)
	return n, nil
}

// allowsLoopback reports whether any prefix overlaps 127.0.0.0/8 or ::1.
func allowsLoopback(ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Overlaps(netip.MustParsePrefix("127.0.0.0/8")) || p.Contains(netip.IPv6Loopback()) {
			return true
		}
	}
	return false
}

func bitsOffset(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// TUN returns the device to hand to wireguard-go. Closing it closes the
// Network.
func (n *Network) TUN() tun.Device { return n.dev }

// Close stops the stack and every flow. It is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	conns := n.conns
	n.conns = nil
	n.mu.Unlock()

	n.cancel()
	for c := range conns {
		c.Close()
	}
	if n.dev != nil {
		n.dev.close()
	}
	n.stack.Close()
	n.ep.Close()
	n.wg.Wait()
	n.stack.Wait()
	return nil
}

// track registers c to be closed by Close. It returns false, closing c, if
// the Network is already closed.
func (n *Network) track(cs ...io.Closer) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		n.conns[c] = struct{}{}
	}
	return true
}

func (n *Network) untrack(cs ...io.Closer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range cs {
		delete(n.conns, c)
	}
}

// goTracked runs fn on a goroutine that Close waits for, unless the Network
// is closed.
func (n *Network) goTracked(fn func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
	return true
}

func toAddr(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip.Unmap()
}

// handleTCP runs on its own goroutine for each new client SYN that no
// listener claims. The outbound connection is dialled first, so a refused or
// unreachable destination is reported to the client with a RST.
func (n *Network) handleTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	dst := toAddr(id.LocalAddress)
	if !n.policy.allowed(dst) {
		r.Complete(true)
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
	out, err := n.dial(ctx, "tcp", netip.AddrPortFrom(dst, id.LocalPort).String())
	cancel()
	if err != nil {
		// The error names the destination: it is dropped, not logged.
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		r.Complete(true)
		out.Close()
		return
	}
	r.Complete(false)
	ep.SocketOptions().SetKeepAlive(true)
	in := gonet.NewTCPConn(&wq, ep)
	n.relayStream(in, out)
}

type closeWriter interface{ CloseWrite() error }

// relayStream copies both ways until both directions end, propagating
// half-closes, then closes both connections.
func (n *Network) relayStream(a, b net.Conn) {
	if !n.track(a, b) {
		return
	}
	defer n.untrack(a, b)
	defer a.Close()
	defer b.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if cw, ok := dst.(closeWriter); ok && err == nil {
			cw.CloseWrite()
		} else {
			dst.Close()
			src.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}

// handleUDP runs synchronously in the stack for the first datagram of each
// flow that no endpoint claims. It must not block.
func (n *Network) handleUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := toAddr(id.LocalAddress)
	if !n.policy.allowed(dst) {
		return // dropped
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		return
	}
	in := gonet.NewUDPConn(&wq, ep)
	target := netip.AddrPortFrom(dst, id.LocalPort).String()
	if !n.goTracked(func() {
		ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
		out, err := n.dial(ctx, "udp", target)
		cancel()
		if err != nil {
			in.Close()
			return
		}
		n.relayPackets(in, out)
	}) {
		in.Close()
	}
}

// relayPackets copies datagrams both ways until neither side has sent
// anything for UDPIdleTimeout, or the Network closes.
func (n *Network) relayPackets(in, out net.Conn) {
	if !n.track(in, out) {
		return
	}
	defer n.untrack(in, out)
	defer in.Close()
	defer out.Close()
	var mu sync.Mutex
	last := time.Now()
	touch := func() {
		mu.Lock()
		last = time.Now()
		mu.Unlock()
	}
	idle := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return time.Since(last) >= n.cfg.UDPIdleTimeout
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 65535)
		for {
			src.SetReadDeadline(time.Now().Add(n.cfg.UDPIdleTimeout))
			k, err := src.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && !idle() {
					continue
				}
				dst.Close()
				src.Close()
				return
			}
			touch()
			if _, err := dst.Write(buf[:k]); err != nil {
				dst.Close()
				src.Close()
				return
			}
		}
	}
	go cp(out, in)
	go cp(in, out)
	<-done
	<-done
}
