package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/dnsblock"
	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gateway/kernelnet"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/metrics"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// GatewayConfig turns validated data-plane settings into a gateway.Config,
// without the server URL, token (or Enroll), clock or randomness, which the
// caller sets. The region and endpoint go to the gateway's start-up report. Kernel mode gets a TUN device with nftables (package kernelnet).
// With no resolvers configured, the gateway's DNS forwards to the
// nameservers of /etc/resolv.conf.
func GatewayConfig(g config.Gateway, log *slog.Logger) gateway.Config {
	c := gateway.Config{
		ListenPort:   g.ListenPort,
		TCPPort:      g.TCPPort,
		Relays:       g.Relays,
		Endpoint:     g.Endpoint,
		Region:       g.Region,
		Mode:         g.Mode,
		KeyFile:      g.KeyFile,
		AllowPrivate: g.AllowPrivatePrefixes,
		DNSUpstreams: g.DNSUpstreams,
		Blocklists:   g.BlocklistSources,
		Logger:       log,

		DisableEphemeralPeers: !g.QuantumResistant,
		UAPISocket:            g.UAPISocket,
	}
	c.Admission.Allow, c.Admission.Deny = g.AllowPrefixes, g.DenyPrefixes
	if len(c.DNSUpstreams) == 0 {
		c.DNSUpstreams = systemResolvers()
	}
	if g.Mode == config.GatewayKernel {
		ifName, uplink := g.Interface, g.Uplink
		c.NewNetwork = func(nc gateway.NetworkConfig) (gateway.Network, error) {
			var dnsAddrs []netip.Addr
			for _, r := range nc.DNSResolvers {
				dnsAddrs = append(dnsAddrs, r.Addr)
			}
			n, err := kernelnet.Setup(kernelnet.Config{
				IfName: ifName, Addresses: nc.Addresses, Pools: nc.Pools(), Uplink: uplink,
				AllowPrivate: nc.AllowPrivate, DNSPort: nc.DNSPort, DNSAddresses: dnsAddrs, ServicePorts: nc.ServicePorts,
				MTU: nc.MTU, Logger: nc.Logger,
			})
			if err != nil {
				return nil, err
			}
			return n, nil
		}
	}
	return c
}

// systemResolvers returns the nameservers of /etc/resolv.conf as HOST:53.
func systemResolvers() []string {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if a, err := netip.ParseAddr(fields[1]); err == nil && !a.IsLoopback() {
				out = append(out, net.JoinHostPort(a.String(), "53"))
			}
		}
	}
	return out
}

// GatewayError returns err, an error of gateway.Run, in the terms of the
// command line: a busy WireGuard port names the listen-port flag of g,
// whose flags were bound with flagPrefix ("" for `nitronet gateway`,
// "gateway-" for `serve`), and a refused credential says how to enroll
// the gateway anew.
func GatewayError(err error, g config.Gateway, flagPrefix string) error {
	switch {
	case errors.Is(err, gateway.ErrPortInUse):
		return fmt.Errorf("--%slisten-port %d: UDP port already in use by another program (nothing was saved); free it or choose another port with --%slisten-port",
			flagPrefix, g.ListenPort, flagPrefix)
	case errors.Is(err, gateway.ErrTCPPortInUse):
		return fmt.Errorf("--%stcp-port %d: TCP port already in use by another program (nothing was saved); free it or choose another port with --%stcp-port",
			flagPrefix, g.TCPPort, flagPrefix)
	case errors.Is(err, gateway.ErrCredentialRefused):
		return fmt.Errorf("the control server refused the credential in --%skey-file %s: the gateway was removed (nitronet admin gateway remove), "+
			"or the file belongs to another control server; enroll it again: make a new token with `nitronet admin gateway add`, "+
			"remove %s, and start with --token TOKEN", flagPrefix, g.KeyFile, g.KeyFile)
	}
	return err
}

// inProcessGateway builds the gateway that `serve --gateway` runs beside
// the control server, talking to it at selfURL. Its key and credential are
// kept in DATA/gateway.key (or --gateway-key-file) so that a restart reuses
// the same gateway record. It needs no token: once its port is bound, a
// gateway that is not enrolled yet, or whose credential the server refuses
// because an operator removed it, is provisioned directly through the
// gateways service by staff.System (audited as the system). At every start
// its start-up report makes the record follow --gateway-region,
// --gateway-endpoint and --gateway-listen-port.
func (s *Server) inProcessGateway(selfURL string) (*gateway.Gateway, error) {
	g := s.Config.Gateway
	if g.KeyFile == "" {
		g.KeyFile = filepath.Join(s.Config.DataDir, "gateway.key")
	}
	d := s.deps
	gc := GatewayConfig(g, d.Logger.With("component", "gateway"))
	gc.Enroll = func(ctx context.Context, pub wgkey.PublicKey) (gwproto.EnrollResponse, error) {
		endpoint, err := gwproto.ResolveEndpoint(g.Endpoint, g.ListenPort)
		if err != nil {
			return gwproto.EnrollResponse{}, fmt.Errorf("--gateway-endpoint: %w", err)
		}
		r, err := s.Gateways.Provision(ctx, staff.System(), g.Region, endpoint, pub)
		if err != nil {
			return gwproto.EnrollResponse{}, err
		}
		return *r, nil
	}
	gc.ServerURL, gc.Clock, gc.Rand, gc.Reload = selfURL, d.Clock, d.Rand, d.Reload
	if s.Config.TLSCert != "" {
		// Under TLS the gateway trusts exactly the server's own
		// certificate, which must be valid for the listen address.
		pem, err := os.ReadFile(s.Config.TLSCert)
		if err != nil {
			return nil, err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-cert holds no PEM certificate")
		}
		gc.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	}
	if tc, err := s.acmeTLS(); err != nil {
		return nil, err
	} else if tc != nil {
		gc.HTTPClient = s.acmeSelfClient(tc)
	}
	return gateway.New(gc)
}

// Run listens on the configured address and serves until ctx ends (see
// Serve), with the in-process gateway beside it when one is configured.
// It tells the operator on Stdout where it listens.
//
// With a gateway, the server serves until the gateway has stopped: when
// ctx ends the gateway stops first and makes its final session report to
// a server that still answers, then the server shuts down. If either fails
// the other is stopped the same way.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Config.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	scheme := "http"
	if s.Config.ServesTLS() {
		scheme = "https"
	}
	out := s.deps.Stdout
	fmt.Fprintf(out, "Nitronet control server listening on %s://%s (data in %s)\n", scheme, ln.Addr(), s.Config.DataDir)
	if t := s.Config.Transport; t.BehindProxy && len(t.TrustedProxies) == 0 {
		fmt.Fprintf(out, "Behind a proxy without --trusted-proxy: rate limits count every client as the proxy's address\n")
	}
	s.deps.Logger.Info("serving", "storage", s.storageName())
	stopACME, err := s.startACME(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopACME()
	stopMetrics, err := s.startMetrics(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopMetrics()
	if s.Config.Gateway.Mode == "" {
		return s.Serve(ctx, ln)
	}
	gw, err := s.inProcessGateway(scheme + "://" + ln.Addr().String())
	if err != nil {
		ln.Close()
		return err
	}
	s.blockedGauge(gw)
	gwCtx, stopGateway := context.WithCancel(ctx)
	defer stopGateway()
	// The server's context ends only after the gateway has stopped.
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServer()
	gwDone, srvDone := make(chan error, 1), make(chan error, 1)
	go func() { srvDone <- s.Serve(srvCtx, ln) }()
	go func() { gwDone <- gw.Run(gwCtx) }()
	go func() {
		select {
		case <-gw.Ready():
			fmt.Fprintf(out, "Gateway %s running in this process (%s mode), UDP port %d, endpoint %s\n",
				gw.ID(), s.Config.Gateway.Mode, gw.ListenPort(), gw.Endpoint())
		case <-gwCtx.Done():
		}
	}()
	var gwErr, srvErr error
	select {
	case gwErr = <-gwDone:
		stopServer()
		srvErr = <-srvDone
	case srvErr = <-srvDone:
		stopGateway()
		gwErr = <-gwDone
	}
	return errors.Join(GatewayError(gwErr, s.Config.Gateway, "gateway-"), srvErr)
}

func (s *Server) storageName() string {
	if s.Config.Database != "" {
		return "postgres"
	}
	return "sqlite"
}

// blockedGauge registers the DNS blocking totals of the in-process gateway
// gw: queries blocked per category, over all clients (the only figures the
// gateway keeps about blocking).
func (s *Server) blockedGauge(gw *gateway.Gateway) {
	s.Metrics.Gauge("nitronet_dns_blocked", "DNS queries answered NXDOMAIN by a blocklist since the gateway started, by category (totals over all clients).", func() []metrics.Sample {
		totals := gw.BlockedTotals()
		out := make([]metrics.Sample, 0, len(totals))
		for _, c := range dnsblock.Categories() {
			out = append(out, metrics.Sample{Labels: map[string]string{"category": c.String()}, Value: float64(totals[c.String()])})
		}
		return out
	})
}
