package userspace

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/nitronet/nitronet/internal/gateway/dnsfwd"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// startAllDNS starts the DNS service, if there is one, on the gateway's
// addresses and on each of cfg.DNSResolvers, which it first adds to the
// NIC.
func (n *Network) startAllDNS() error {
	if n.dns == nil {
		if len(n.cfg.DNSResolvers) > 0 {
			return errors.New("DNS resolvers without upstreams")
		}
		return nil
	}
	for _, g := range slices.Clone(n.policy.gateway) {
		if err := n.startDNS(g, n.dns); err != nil {
			return err
		}
	}
	for _, r := range n.cfg.DNSResolvers {
		a := r.Addr.Unmap()
		if !n.policy.inPools(a) || r.Blocker == nil {
			return fmt.Errorf("resolver %v: want an address inside a client pool, with a blocker", a)
		}
		proto := ipv4.ProtocolNumber
		if a.Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{Protocol: proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(a.AsSlice()), PrefixLen: a.BitLen()}}
		if err := n.stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("add resolver address: %v", err)
		}
		if err := n.startDNS(a, n.dns.WithBlocker(r.Blocker)); err != nil {
			return err
		}
		// From here on a gateway address: the TUN device passes packets
		// for it (not client-to-client) and the forwarders refuse it.
		n.policy.gateway = append(n.policy.gateway, a)
	}
	return nil
}

// startDNS serves DNS on addr port cfg.DNSPort, UDP and TCP, with the
// forwarder fwd, on netstack endpoints that claim that port before the
// forwarders' destination policy (which refuses the gateway's own
// addresses and the client pools) is consulted. The endpoints are closed
// and the servers stopped by Close.
func (n *Network) startDNS(addr netip.Addr, fwd *dnsfwd.Forwarder) error {
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
	n.goTracked(func() { fwd.ServeUDP(n.ctx, uc) })
	n.goTracked(func() { fwd.ServeTCP(n.ctx, ln) })
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
