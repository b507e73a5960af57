package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gateway/kernelnet"
)

// GatewayConfig turns validated data-plane settings into a gateway.Config,
// without the server URL, token, clock or randomness, which the caller
// sets. Kernel mode gets a TUN device with nftables (package kernelnet).
// With no resolvers configured, the gateway's DNS forwards to the
// nameservers of /etc/resolv.conf.
func GatewayConfig(g config.Gateway, log *slog.Logger) gateway.Config {
	c := gateway.Config{
		ListenPort:   g.ListenPort,
		Mode:         g.Mode,
		KeyFile:      g.KeyFile,
		AllowPrivate: g.AllowPrivatePrefixes,
		DNSUpstreams: g.DNSUpstreams,
		Logger:       log,
	}
	c.Admission.Allow, c.Admission.Deny = g.AllowPrefixes, g.DenyPrefixes
	if len(c.DNSUpstreams) == 0 {
		c.DNSUpstreams = systemResolvers()
	}
	if g.Mode == config.GatewayKernel {
		ifName, uplink := g.Interface, g.Uplink
		c.NewNetwork = func(nc gateway.NetworkConfig) (gateway.Network, error) {
			n, err := kernelnet.Setup(kernelnet.Config{
				IfName: ifName, Addresses: nc.Addresses, Pools: nc.Pools(), Uplink: uplink,
				AllowPrivate: nc.AllowPrivate, DNSPort: nc.DNSPort, MTU: nc.MTU, Logger: nc.Logger,
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

// inProcessGateway builds the gateway that `serve --gateway` runs beside
// the control server, talking to it at selfURL. It enrolls with a token
// minted directly through the gateways service; its key and credential
// are kept in DATA/gateway.key (or --gateway-key-file) so that a restart
// reuses the same gateway record.
func (s *Server) inProcessGateway(ctx context.Context, selfURL string) (*gateway.Gateway, error) {
	g := s.Config.Gateway
	if g.KeyFile == "" {
		g.KeyFile = filepath.Join(s.Config.DataDir, "gateway.key")
	}
	d := s.deps
	gc := GatewayConfig(g, d.Logger.With("component", "gateway"))
	if _, err := os.Stat(g.KeyFile); errors.Is(err, fs.ErrNotExist) {
		_, tok, err := s.Gateways.Add(ctx, g.Region, g.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("in-process gateway: %w", err)
		}
		gc.Token = tok
	}
	gc.ServerURL, gc.Clock, gc.Rand = selfURL, d.Clock, d.Rand
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
	return gateway.New(gc)
}

// Run listens on the configured address and serves until ctx ends (see
// Serve), with the in-process gateway beside it when one is configured.
// It tells the operator on Stdout where it listens.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Config.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	scheme := "http"
	if s.Config.TLSCert != "" {
		scheme = "https"
	}
	out := s.deps.Stdout
	fmt.Fprintf(out, "Nitronet control server listening on %s://%s (data in %s)\n", scheme, ln.Addr(), s.Config.DataDir)
	s.deps.Logger.Info("serving", "storage", s.storageName())
	if s.Config.Gateway.Mode == "" {
		return s.Serve(ctx, ln)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gw, err := s.inProcessGateway(ctx, scheme+"://"+ln.Addr().String())
	if err != nil {
		ln.Close()
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- s.Serve(ctx, ln) }()
	go func() { errc <- gw.Run(ctx) }()
	go func() {
		select {
		case <-gw.Ready():
			fmt.Fprintf(out, "Gateway %s running in this process (%s mode), endpoint %s\n", gw.ID(), s.Config.Gateway.Mode, s.Config.Gateway.Endpoint)
		case <-ctx.Done():
		}
	}()
	first := <-errc
	cancel()
	second := <-errc
	return errors.Join(first, second)
}

func (s *Server) storageName() string {
	if s.Config.Database != "" {
		return "postgres"
	}
	return "sqlite"
}
