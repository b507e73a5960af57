package cli

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gateway/kernelnet"
	"github.com/spf13/cobra"
)

// gatewayFlags are the data-plane settings shared by `nitronet gateway`
// and `nitronet serve --gateway`.
type gatewayFlags struct {
	listenPort   int
	mode         string
	keyFile      string
	ifName       string
	uplink       string
	allow, deny  []string
	dnsUpstreams []string
	allowPrivate []string
}

func (f *gatewayFlags) bind(cmd *cobra.Command, prefix string) {
	fs := cmd.Flags()
	fs.IntVar(&f.listenPort, prefix+"listen-port", 51820, "WireGuard UDP port")
	fs.StringVar(&f.keyFile, prefix+"key-file", "", "file for the gateway's own key and credential (mode 0600); without it a restart needs a new token")
	fs.StringVar(&f.ifName, prefix+"interface", "nitronet0", "kernel mode: TUN interface name")
	fs.StringVar(&f.uplink, prefix+"uplink", "", "kernel mode: uplink interface (default: that of the default route)")
	fs.StringSliceVar(&f.allow, prefix+"allow-cidr", nil, "admit handshakes only from these client source CIDRs (default: all)")
	fs.StringSliceVar(&f.deny, prefix+"deny-cidr", nil, "never answer handshakes from these client source CIDRs")
	fs.StringSliceVar(&f.dnsUpstreams, prefix+"dns-upstream", nil, "resolvers (HOST:PORT) behind the gateway's tunnel DNS (default: the nameservers in /etc/resolv.conf)")
	fs.StringSliceVar(&f.allowPrivate, prefix+"allow-private", nil, "private or link-local destinations clients may reach (default: none)")
}

func parsePrefixes(flag string, ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("--%s %q: want a CIDR prefix", flag, s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
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

// config builds a gateway.Config (without server, token or clock).
func (f *gatewayFlags) config(prefix string, log *slog.Logger) (gateway.Config, error) {
	var c gateway.Config
	switch f.mode {
	case gateway.ModeKernel, gateway.ModeUserspace:
	default:
		return c, fmt.Errorf("--%smode must be kernel or userspace", prefix)
	}
	if f.listenPort < 1 || f.listenPort > 65535 {
		return c, fmt.Errorf("--%slisten-port must be 1 to 65535", prefix)
	}
	var err error
	if c.Admission.Allow, err = parsePrefixes(prefix+"allow-cidr", f.allow); err != nil {
		return c, err
	}
	if c.Admission.Deny, err = parsePrefixes(prefix+"deny-cidr", f.deny); err != nil {
		return c, err
	}
	if c.AllowPrivate, err = parsePrefixes(prefix+"allow-private", f.allowPrivate); err != nil {
		return c, err
	}
	c.DNSUpstreams = f.dnsUpstreams
	if len(c.DNSUpstreams) == 0 {
		c.DNSUpstreams = systemResolvers()
	}
	for _, u := range c.DNSUpstreams {
		if _, _, err := net.SplitHostPort(u); err != nil {
			return c, fmt.Errorf("--%sdns-upstream %q: want HOST:PORT", prefix, u)
		}
	}
	c.ListenPort = f.listenPort
	c.Mode = f.mode
	c.KeyFile = f.keyFile
	c.Logger = log
	if f.mode == gateway.ModeKernel {
		ifName, uplink := f.ifName, f.uplink
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
	return c, nil
}

func newGatewayCmd(g *globals) *cobra.Command {
	var f gatewayFlags
	var token, logFormat, logLevel string
	c := &cobra.Command{
		Use:   "gateway --server URL --token TOKEN",
		Short: "Run a WireGuard gateway that streams its peers from the control server",
		Long: "Run a gateway. It enrolls once with the token from `nitronet admin gateway add`\n" +
			"and then authenticates with its own credential (kept in --key-file if given).\n" +
			"It writes nothing else to disk, and logs no client address, destination, DNS name\n" +
			"or traffic count. Kernel mode needs root; userspace mode needs none.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if token == "" {
				token = g.env.Getenv("NITRONET_GATEWAY_TOKEN")
			}
			server := g.server
			if server == "" {
				server = g.env.Getenv("NITRONET_SERVER")
			}
			if server == "" {
				return errors.New("--server is required")
			}
			if token == "" && f.keyFile == "" {
				return errors.New("--token is required (or --key-file holding an earlier enrollment)")
			}
			log := newLogger(g.env.Stderr, logFormat, logLevel)
			cfg, err := f.config("", log)
			if err != nil {
				return err
			}
			cfg.ServerURL, cfg.Token, cfg.Clock, cfg.Rand = server, token, g.env.Clock, g.env.Rand
			gw, err := gateway.New(cfg)
			if err != nil {
				return err
			}
			go func() {
				select {
				case <-gw.Ready():
					fmt.Fprintf(g.env.Stdout, "Gateway %s running (%s mode) on UDP port %d\n", gw.ID(), f.mode, gw.ListenPort())
				case <-cmd.Context().Done():
				}
			}()
			return gw.Run(cmd.Context())
		},
	}
	f.bind(c, "")
	c.Flags().StringVar(&f.mode, "mode", gateway.ModeKernel, "kernel (TUN + nftables, needs root) or userspace (netstack, no root)")
	c.Flags().StringVar(&token, "token", "", "one-time enrollment token (env NITRONET_GATEWAY_TOKEN)")
	c.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	c.Flags().StringVar(&logLevel, "log-level", "info", "log level")
	return c
}
