package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/nitronet/nitronet/internal/ephemeral"
	"github.com/nitronet/nitronet/internal/gateway/peers"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// TCPListener is implemented by a Network that serves the gateway's own
// TCP services on its tunnel addresses itself (userspace mode's netstack).
// For any other network the gateway listens on kernel sockets bound to the
// tunnel addresses, which the network must let clients reach (see
// NetworkConfig.ServicePorts).
type TCPListener interface {
	ListenTCP(addr netip.AddrPort) (net.Listener, error)
}

// startEphemeral starts the ephemeral-peer service of quantum-resistant
// tunnels (see package ephemeral) on port cfg.EphemeralPort of the
// gateway's tunnel addresses and of its DNS blocking resolvers (a client
// asks the first DNS server of its configuration, which is a resolver for
// a device that chose blocking categories), unless
// cfg.DisableEphemeralPeers. It must run
// after the device is built. The service stops when ctx is done; the
// returned function waits for that and logs the service's counts.
func (g *Gateway) startEphemeral(ctx context.Context, network Network, key wgkey.PrivateKey) (wait func(), err error) {
	if g.cfg.DisableEphemeralPeers {
		g.log.Info("quantum-resistant tunnels off: no ephemeral-peer service")
		return func() {}, nil
	}
	srv, err := ephemeral.NewServer(ephemeral.ServerConfig{
		Gateway: key.Public(),
		Device: func(a netip.Addr) (wgkey.PublicKey, error) {
			k, err := g.peers.DeviceByAddr(a)
			if err != nil {
				return k, ephemeral.ErrNotDevice
			}
			return k, nil
		},
		Install: func(device, eph wgkey.PublicKey, psk ephemeral.PSK) error {
			err := g.peers.AddAlias(device, eph, psk)
			if errors.Is(err, peers.ErrAliasRefused) {
				return ephemeral.ErrRefused
			}
			return err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	var lns []net.Listener
	for _, a := range append([]netip.Addr{g.cfg.Addr4, g.cfg.Addr6}, g.resolvers...) {
		ap := netip.AddrPortFrom(a, uint16(g.cfg.EphemeralPort))
		var ln net.Listener
		if tl, ok := network.(TCPListener); ok {
			ln, err = tl.ListenTCP(ap)
		} else {
			var lc net.ListenConfig
			ln, err = lc.Listen(ctx, "tcp", ap.String())
		}
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("gateway: ephemeral-peer service: %w", err)
		}
		lns = append(lns, ln)
	}
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Go(func() {
			if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
				g.log.Warn("ephemeral-peer service stopped early", "err", innermost(err).Error())
			}
		})
	}
	g.log.Info("ephemeral-peer service up (quantum-resistant tunnels)", "port", g.cfg.EphemeralPort)
	return func() {
		wg.Wait()
		st := srv.Stats()
		// Counts only: nothing about who asked.
		g.log.Info("ephemeral-peer service stopped", "installed", st.Installed, "refused", st.Refused, "failed", st.Failed)
	}, nil
}
