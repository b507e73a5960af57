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
// and Addr6, UDP and TCP. The addresses must already be assigned, so it
// runs after the network is set up. With no upstreams it starts nothing and
// logs once that DNS is off.
//
// The sockets are bound in the network namespace of the calling thread. The
// servers stop when ctx is done; the returned function waits for that. On
// error nothing is left running and wait is nil.
func (g *Gateway) startKernelDNS(ctx context.Context) (wait func(), err error) {
	if len(g.cfg.DNSUpstreams) == 0 {
		g.log.Info("DNS service off: no upstream resolvers configured")
		return func() {}, nil
	}
	fwd, err := dnsfwd.New(dnsfwd.Config{Upstreams: g.cfg.DNSUpstreams})
	if err != nil {
		return nil, fmt.Errorf("gateway: DNS service: %w", err)
	}
	var (
		lc  net.ListenConfig
		pcs []net.PacketConn
		lns []net.Listener
	)
	closeAll := func() {
		for _, pc := range pcs {
			pc.Close()
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, a := range []netip.Addr{g.cfg.Addr4, g.cfg.Addr6} {
		ap := netip.AddrPortFrom(a, uint16(g.cfg.DNSPort)).String()
		pc, err := lc.ListenPacket(ctx, "udp", ap)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("gateway: DNS service: %w", err)
		}
		pcs = append(pcs, pc)
		ln, err := lc.Listen(ctx, "tcp", ap)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("gateway: DNS service: %w", err)
		}
		lns = append(lns, ln)
	}

	var wg sync.WaitGroup
	failed := func(transport string, err error) {
		if err != nil {
			// Only the innermost error: the outer ones name the socket.
			g.log.Warn("DNS service stopped early", "transport", transport, "err", innermost(err).Error())
		}
	}
	for _, pc := range pcs {
		wg.Go(func() { failed("udp", fwd.ServeUDP(ctx, pc)) })
	}
	for _, ln := range lns {
		wg.Go(func() { failed("tcp", fwd.ServeTCP(ctx, ln)) })
	}
	g.log.Info("DNS service up", "port", g.cfg.DNSPort, "upstreams", len(g.cfg.DNSUpstreams))
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
