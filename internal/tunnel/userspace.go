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

	"github.com/nitronet/nitronet/internal/wgconf"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// proxyTimeout bounds proxy handshakes and connection set-up.
const proxyTimeout = 30 * time.Second

// upUserspace runs the device on netstack and serves the local proxies.
func upUserspace(_ context.Context, o Options, uapi string) (*Tunnel, error) {
	c := o.Config
	socksListen, httpListen := o.ProxyListen, o.HTTPListen
	if socksListen == "" {
		socksListen = DefaultSOCKSListen
	}
	if httpListen == "" {
		httpListen = DefaultHTTPListen
	}
	dev, tnet, err := newNetstackDevice(c, o.bind(), uapi, o.Logger)
	if err != nil {
		return nil, err
	}
	px, err := serveProxies(tnet, socksListen, httpListen, o.Logger)
	if err != nil {
		dev.Close()
		return nil, err
	}
	t := &Tunnel{
		log:       o.Logger,
		dev:       dev,
		mode:      "userspace",
		addrs:     append([]netip.Prefix(nil), c.Interface.Addresses...),
		gateway:   c.Peers[0].Endpoint,
		socksAddr: px.socksAddr,
		httpAddr:  px.httpAddr,
		dial:      tnet.DialContext,
		closeFn: func() error {
			err := px.close()
			dev.Close()
			return err
		},
	}
	t.configure(c)
	o.Logger.Info("tunnel up", "mode", "userspace", "socks", t.socksAddr, "http", t.httpAddr, "dns_servers", len(c.Interface.DNS))
	return t, nil
}

// newNetstackDevice creates a WireGuard device on a netstack TUN with c's
// addresses, DNS servers and MTU, sending through bind, configures it with
// uapi and brings it up. On an error it has closed what it made.
func newNetstackDevice(c wgconf.Config, bind conn.Bind, uapi string, log *slog.Logger) (*device.Device, *netstack.Net, error) {
	mtu := c.Interface.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	addrs := make([]netip.Addr, len(c.Interface.Addresses))
	for i, p := range c.Interface.Addresses {
		addrs[i] = p.Addr()
	}
	tdev, tnet, err := netstack.CreateNetTUN(addrs, c.Interface.DNS, mtu)
	if err != nil {
		return nil, nil, fmt.Errorf("tunnel: create netstack: %w", err)
	}
	dev := device.NewDevice(tdev, bind, deviceLogger(log))
	if err := dev.IpcSet(uapi); err != nil {
		dev.Close()
		return nil, nil, errors.New("tunnel: configure device failed") // the error may quote the UAPI text
	}
	if err := dev.Up(); err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("tunnel: device up: %w", err)
	}
	return dev, tnet, nil
}

// proxies are the SOCKS5 and HTTP proxies of a userspace tunnel.
type proxies struct {
	socksAddr, httpAddr string // where they listen
	close               func() error
}

// serveProxies starts the SOCKS5 and HTTP proxies on loopback addresses
// socksListen and httpListen, dialling through tnet. Their close stops
// them, aborting dials in progress, and waits for their handlers.
func serveProxies(tnet *netstack.Net, socksListen, httpListen string, log *slog.Logger) (*proxies, error) {
	socksLn, err := listenLoopback(socksListen)
	if err != nil {
		return nil, fmt.Errorf("tunnel: SOCKS5 listener: %w", err)
	}
	httpLn, err := listenLoopback(httpListen)
	if err != nil {
		socksLn.Close()
		return nil, fmt.Errorf("tunnel: HTTP proxy listener: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	conns := newConnSet()
	dial := tnet.DialContext
	ss := &socksServer{ctx: ctx, dial: dial, log: log, conns: conns, timeout: proxyTimeout}
	hp := newHTTPProxy(ctx, dial, log, conns, proxyTimeout)
	srv := hp.server()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ss.serve(socksLn) }()
	go func() { defer wg.Done(); _ = srv.Serve(httpLn) }()
	return &proxies{
		socksAddr: socksLn.Addr().String(),
		httpAddr:  httpLn.Addr().String(),
		close: func() error {
			cancel() // aborts dials in progress so handlers can finish
			socksLn.Close()
			err := srv.Close()
			hp.close()
			conns.close()
			wg.Wait()
			if errors.Is(err, net.ErrClosed) {
				err = nil
			}
			return err
		},
	}, nil
}
