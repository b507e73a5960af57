package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// proxyTimeout bounds proxy handshakes and connection set-up.
const proxyTimeout = 30 * time.Second

// upUserspace runs the device on netstack and serves the local proxies.
func upUserspace(_ context.Context, o Options, uapi string) (*Tunnel, error) {
	c := o.Config
	mtu := c.Interface.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	socksListen, httpListen := o.ProxyListen, o.HTTPListen
	if socksListen == "" {
		socksListen = DefaultSOCKSListen
	}
	if httpListen == "" {
		httpListen = DefaultHTTPListen
	}
	addrs := make([]netip.Addr, len(c.Interface.Addresses))
	for i, p := range c.Interface.Addresses {
		addrs[i] = p.Addr()
	}

	var undo []func() error
	rollback := func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		return errors.Join(errs...)
	}

	tdev, tnet, err := netstack.CreateNetTUN(addrs, c.Interface.DNS, mtu)
	if err != nil {
		return nil, fmt.Errorf("tunnel: create netstack: %w", err)
	}
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), deviceLogger(o.Logger))
	undo = append(undo, func() error { dev.Close(); return nil })
	if err := dev.IpcSet(uapi); err != nil {
		_ = rollback()
		return nil, errors.New("tunnel: configure device failed") // the error may quote the UAPI text
	}
	if err := dev.Up(); err != nil {
		_ = rollback()
		return nil, fmt.Errorf("tunnel: device up: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	undo = append(undo, func() error { cancel(); return nil })
	conns := newConnSet()
	socksLn, err := listenLoopback(socksListen)
	if err != nil {
		_ = rollback()
		return nil, fmt.Errorf("tunnel: SOCKS5 listener: %w", err)
	}
	httpLn, err := listenLoopback(httpListen)
	if err != nil {
		socksLn.Close()
		_ = rollback()
		return nil, fmt.Errorf("tunnel: HTTP proxy listener: %w", err)
	}
	dial := tnet.DialContext
	ss := &socksServer{ctx: ctx, dial: dial, log: o.Logger, conns: conns, timeout: proxyTimeout}
	hp := newHTTPProxy(ctx, dial, o.Logger, conns, proxyTimeout)
	srv := hp.server()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ss.serve(socksLn) }()
	go func() { defer wg.Done(); _ = srv.Serve(httpLn) }()

	undo = append(undo, func() error {
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
	})

	t := &Tunnel{
		log:       o.Logger,
		dev:       dev,
		mode:      "userspace",
		addrs:     append([]netip.Prefix(nil), c.Interface.Addresses...),
		gateway:   c.Peers[0].Endpoint,
		socksAddr: socksLn.Addr().String(),
		httpAddr:  httpLn.Addr().String(),
		closeFn:   rollback,
	}
	o.Logger.Info("tunnel up", "mode", "userspace", "socks", t.socksAddr, "http", t.httpAddr, "dns_servers", len(c.Interface.DNS))
	return t, nil
}
