package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/nitronet/nitronet/internal/gateway/dnsfwd"
)

// startKernelDNS starts the DNS service of kernel mode: a dnsfwd.Forwarder
// to cfg.DNSUpstreams on kernel sockets bound to port cfg.DNSPort of Addr4
// and Addr6, UDP and TCP, and the same forwarder with each resolver's
// blocker on its address. The addresses must already be assigned, so it
// runs after the network is set up. With no upstreams it starts nothing and
// logs once that DNS is off.
//
// The sockets are bound in the network namespace of the calling thread. The
// servers stop when ctx is done; the returned function waits for that. On
// error nothing is left running and wait is nil.
func (g *Gateway) startKernelDNS(ctx context.Context, resolvers []dnsfwd.Resolver) (wait func(), err error) {
	if len(g.cfg.DNSUpstreams) == 0 {
		g.log.Info("DNS service off: no upstream resolvers configured")
		return func() {}, nil
	}
	fwd, err := dnsfwd.New(dnsfwd.Config{Upstreams: g.cfg.DNSUpstreams})
	if err != nil {
		return nil, fmt.Errorf("gateway: DNS service: %w", err)
	}
	type socket struct {
		fwd *dnsfwd.Forwarder
		pc  net.PacketConn
		ln  net.Listener
	}
	var (
		lc      net.ListenConfig
		sockets []socket
	)
	closeAll := func() {
		for _, s := range sockets {
			s.pc.Close()
			s.ln.Close()
		}
	}
	serving := []dnsfwd.Resolver{{Addr: g.cfg.Addr4}, {Addr: g.cfg.Addr6}}
	for _, r := range append(serving, resolvers...) {
		ap := netip.AddrPortFrom(r.Addr, uint16(g.cfg.DNSPort)).String()
		pc, err := lc.ListenPacket(ctx, "udp", ap)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("gateway: DNS service: %w", err)
		}
		ln, err := lc.Listen(ctx, "tcp", ap)
		if err != nil {
			pc.Close()
			closeAll()
			return nil, fmt.Errorf("gateway: DNS service: %w", err)
		}
		s := socket{fwd: fwd, pc: pc, ln: ln}
		if r.Blocker != nil {
			s.fwd = fwd.WithBlocker(r.Blocker)
		}
		sockets = append(sockets, s)
	}

	var wg sync.WaitGroup
	failed := func(transport string, err error) {
		if err != nil {
			// Only the innermost error: the outer ones name the socket.
			g.log.Warn("DNS service stopped early", "transport", transport, "err", innermost(err).Error())
		}
	}
	for _, s := range sockets {
		wg.Go(func() { failed("udp", s.fwd.ServeUDP(ctx, s.pc)) })
		wg.Go(func() { failed("tcp", s.fwd.ServeTCP(ctx, s.ln)) })
	}
	g.log.Info("DNS service up", "port", g.cfg.DNSPort, "upstreams", len(g.cfg.DNSUpstreams), "blocking_resolvers", len(resolvers))
	return func() {
		wg.Wait()
		g.log.Info("DNS service stopped", "failures", fwd.Failures())
	}, nil
}

// innermost returns the last error in err's Unwrap chain.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
