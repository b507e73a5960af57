package userspace

import (
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
