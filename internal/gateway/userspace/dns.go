package userspace

import (
	"context"
	"net"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// dnsTimeout bounds one upstream exchange.
const dnsTimeout = 5 * time.Second

// maxDNSInFlight bounds concurrent UDP queries per gateway address.
const maxDNSInFlight = 256

// startDNS serves DNS on addr port 53, UDP and TCP, by forwarding each query
// to the upstream resolvers in order. Queries and answers pass through
// without being parsed or recorded.
func (n *Network) startDNS(addr netip.Addr) error {
	proto := ipv4.ProtocolNumber
	if addr.Is6() {
		proto = ipv6.ProtocolNumber
	}
	fa := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(addr.AsSlice()), Port: 53}
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
	n.goTracked(func() { n.serveDNSUDP(uc) })
	n.goTracked(func() { n.serveDNSTCP(ln) })
	return nil
}

func (n *Network) serveDNSUDP(uc *gonet.UDPConn) {
	sem := make(chan struct{}, maxDNSInFlight)
	for {
		buf := make([]byte, 65535)
		k, from, err := uc.ReadFrom(buf)
		if err != nil {
			return
		}
		if len(n.dns) == 0 {
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // overloaded: drop, the client retries
		}
		query := buf[:k]
		n.goTracked(func() {
			defer func() { <-sem }()
			if ans := n.exchangeUDP(query); ans != nil {
				uc.WriteTo(ans, from)
			}
		})
	}
}

// exchangeUDP sends query to each upstream in turn and returns the first
// answer, or nil.
func (n *Network) exchangeUDP(query []byte) []byte {
	for _, up := range n.dns {
		ctx, cancel := context.WithTimeout(n.ctx, dnsTimeout)
		c, err := n.dial(ctx, "udp", up)
		cancel()
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(dnsTimeout))
		if _, err := c.Write(query); err != nil {
			c.Close()
			continue
		}
		buf := make([]byte, 65535)
		k, err := c.Read(buf)
		c.Close()
		if err != nil {
			continue
		}
		return buf[:k]
	}
	return nil
}

func (n *Network) serveDNSTCP(ln *gonet.TCPListener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !n.goTracked(func() { n.forwardDNSTCP(c) }) {
			c.Close()
			return
		}
	}
}

// forwardDNSTCP relays one client DNS-over-TCP connection to the first
// upstream that accepts a connection.
func (n *Network) forwardDNSTCP(c net.Conn) {
	for _, up := range n.dns {
		ctx, cancel := context.WithTimeout(n.ctx, dnsTimeout)
		out, err := n.dial(ctx, "tcp", up)
		cancel()
		if err == nil {
			n.relayStream(c, out)
			return
		}
	}
	c.Close()
}
