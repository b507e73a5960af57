package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/nitronet/nitronet/internal/wgconf"
)

// hopOverhead is what carrying a WireGuard packet inside another costs:
// an IPv6 header (40), UDP (8) and WireGuard's transport header and tag
// (32). The inner tunnel's MTU is the entry's less this, so that an inner
// packet never needs fragmenting in the outer one.
const hopOverhead = 80

// hop is the entry of a multihop tunnel: a WireGuard device on a netstack
// with a tunnel to the entry gateway and nothing else on it, run as a
// Tunnel of its own (userspace mode, no proxies) so that it can be made
// quantum-resistant like any tunnel. The exit tunnel's device sends its
// UDP through it (hopBind), so the entry gateway sees only encrypted
// packets to the exit gateway, and the exit gateway sees them come from
// the entry gateway.
type hop struct {
	tun   *Tunnel
	net   *netstack.Net
	addrs []netip.Addr
}

// upHop brings up the entry hop for c, sending through bind (marked with
// FwMark if mark, in TUN mode, so that it bypasses the tunnel it carries).
// With quantum, the hop carries nothing but the exchange with the entry
// gateway until it is made quantum-resistant (see Options.QuantumResistant).
func upHop(ctx context.Context, c wgconf.Config, bind conn.Bind, mark, quantum bool, log *slog.Logger) (*hop, error) {
	device := c
	var hold []netip.Prefix
	if quantum {
		var err error
		if hold, err = holdPrefixes(c); err != nil {
			return nil, fmt.Errorf("entry hop: %w", err)
		}
		device.Peers = []wgconf.Peer{c.Peers[0]}
		device.Peers[0].AllowedIPs = hold
	}
	uapi, err := device.UAPIContext(ctx, systemResolver)
	if err != nil {
		return nil, fmt.Errorf("entry hop: %w", err)
	}
	if mark {
		uapi = fmt.Sprintf("fwmark=%d\n", FwMark) + uapi
	}
	device.Interface.DNS = nil // the hop's netstack resolves nothing
	dev, tnet, err := newNetstackDevice(device, bind, uapi, log)
	if err != nil {
		return nil, fmt.Errorf("entry hop: %w", err)
	}
	t := &Tunnel{
		log:     log.With("hop", "entry"),
		dev:     dev,
		mode:    "userspace",
		addrs:   append([]netip.Prefix(nil), c.Interface.Addresses...),
		gateway: c.Peers[0].Endpoint,
		dial:    tnet.DialContext,
		hold:    hold,
		closeFn: func() error { dev.Close(); return nil },
	}
	t.configure(c)
	h := &hop{tun: t, net: tnet}
	for _, p := range c.Interface.Addresses {
		h.addrs = append(h.addrs, p.Addr())
	}
	return h, nil
}

func (h *hop) close() { h.tun.Close() }

// lastHandshake returns the entry hop's last handshake, or the zero time.
func (h *hop) lastHandshake() time.Time { return h.tun.Status().LastHandshake }

// hopMTU returns the MTU of a tunnel carried inside entry (whose MTU is
// entryMTU, 0 for the default), no larger than want (0 for the default).
func hopMTU(entryMTU, want int) int {
	if entryMTU == 0 {
		entryMTU = DefaultMTU
	}
	if want == 0 {
		want = DefaultMTU
	}
	return min(want, entryMTU-hopOverhead)
}

// hopBind is a conn.Bind whose UDP sockets live on a hop's netstack: what
// it sends leaves through the entry tunnel. It opens one socket for each
// address family the hop has an address of.
type hopBind struct {
	h *hop

	mu    sync.Mutex
	conns map[bool]netstackUDP // by "is IPv4"
}

// netstackUDP is the part of a gonet.UDPConn a hopBind uses.
type netstackUDP interface {
	ReadFrom([]byte) (int, net.Addr, error)
	WriteTo([]byte, net.Addr) (int, error)
	Close() error
}

func newHopBind(h *hop) *hopBind { return &hopBind{h: h} }

// Open binds a UDP socket on port (0: any) to each of the hop's addresses.
func (b *hopBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	b.conns = map[bool]netstackUDP{}
	var fns []conn.ReceiveFunc
	for _, a := range b.h.addrs {
		if b.conns[a.Is4()] != nil {
			continue
		}
		c, err := b.h.net.ListenUDPAddrPort(netip.AddrPortFrom(a, port))
		if err != nil {
			b.closeLocked()
			return nil, 0, fmt.Errorf("entry hop: UDP socket: %w", err)
		}
		b.conns[a.Is4()] = c
		if port == 0 {
			if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
				port = uint16(ua.Port)
			}
		}
		fns = append(fns, b.receive(c))
	}
	if len(fns) == 0 {
		return nil, 0, errors.New("entry hop: no address")
	}
	return fns, port, nil
}

func (b *hopBind) receive(c netstackUDP) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n, from, err := c.ReadFrom(bufs[0])
		if err != nil {
			return 0, net.ErrClosed // closed: the only way a netstack read fails
		}
		ua, _ := from.(*net.UDPAddr)
		if ua == nil {
			return 0, net.ErrClosed
		}
		sizes[0], eps[0] = n, &hopEndpoint{addr: ua.AddrPort()}
		return 1, nil
	}
}

// Close closes the sockets.
func (b *hopBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeLocked()
	return nil
}

func (b *hopBind) closeLocked() {
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

// SetMark does nothing: the hop's own socket carries the mark.
func (b *hopBind) SetMark(uint32) error { return nil }

// BatchSize returns 1: the netstack sockets read one datagram at a time.
func (b *hopBind) BatchSize() int { return 1 }

// ParseEndpoint parses an IP:port endpoint.
func (b *hopBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return &hopEndpoint{addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// Send sends bufs to ep through the hop.
func (b *hopBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(*hopEndpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	b.mu.Lock()
	c := b.conns[e.addr.Addr().Is4()]
	b.mu.Unlock()
	if c == nil {
		return fmt.Errorf("entry hop: no address of the exit's family")
	}
	to := net.UDPAddrFromAddrPort(e.addr)
	for _, p := range bufs {
		if _, err := c.WriteTo(p, to); err != nil {
			return err
		}
	}
	return nil
}

// hopEndpoint is a peer's address seen through the hop.
type hopEndpoint struct{ addr netip.AddrPort }

func (*hopEndpoint) ClearSrc()             {}
func (*hopEndpoint) SrcToString() string   { return "" }
func (e *hopEndpoint) DstToString() string { return e.addr.String() }
func (e *hopEndpoint) DstToBytes() []byte  { b, _ := e.addr.MarshalBinary(); return b }
func (e *hopEndpoint) DstIP() netip.Addr   { return e.addr.Addr() }
func (*hopEndpoint) SrcIP() netip.Addr     { return netip.Addr{} }

var _ conn.Bind = (*hopBind)(nil)
