package userspace

import (
	"fmt"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// startDNS serves DNS on addr port cfg.DNSPort, UDP and TCP, with the forwarder
// n.dns, on netstack endpoints that claim that port before the forwarders'
// destination policy (which refuses the gateway's own addresses) is
// consulted. The endpoints are closed and the servers stopped by Close.
func (n *Network) startDNS(addr netip.Addr) error {
	proto := ipv4.ProtocolNumber
	if addr.Is6() {
		proto = ipv6.ProtocolNumber
	}
	fa := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(addr.AsSlice()), Port: uint16(n.cfg.DNSPort)}
	uc, err := gonet.DialUDP(n.stack, &fa, nil, proto)
	if err != nil {
		return err
	}
	ln, err := gonet.ListenTCP(n.stack, fa, proto)
	if err != nil {
		uc.Close()
		return err
	}
	if !n.track(uc, ln) {
		return net.ErrClosed
	}
	// Serve errors carry no client data, but a read error on a netstack
	// endpoint only happens when it is closed, so they are not logged.
	n.goTracked(func() { n.dns.ServeUDP(n.ctx, uc) })
	n.goTracked(func() { n.dns.ServeTCP(n.ctx, ln) })
	return nil
}

// ListenTCP listens on addr, one of the gateway's tunnel addresses, inside
// the netstack: clients reach it through the tunnel, before the
// destination policy (which refuses the gateway's own addresses) is
// consulted. The listener's connections report the client's tunnel
// address as their remote address. Close closes the listener.
func (n *Network) ListenTCP(addr netip.AddrPort) (net.Listener, error) {
	a := addr.Addr().Unmap()
	if !n.policy.isGateway(a) {
		return nil, fmt.Errorf("userspace: %v is not a gateway address", a)
	}
	proto := ipv4.ProtocolNumber
	if a.Is6() {
		proto = ipv6.ProtocolNumber
	}
	fa := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: addr.Port()}
	ln, err := gonet.ListenTCP(n.stack, fa, proto)
	if err != nil {
		return nil, fmt.Errorf("userspace: listen: %w", err)
	}
	if !n.track(ln) {
		return nil, net.ErrClosed
	}
	return ln, nil
}
