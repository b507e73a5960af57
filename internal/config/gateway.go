package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/nitronet/nitronet/internal/dnsblock"
	"github.com/nitronet/nitronet/internal/gateway/blocklist"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/relay"
	"github.com/spf13/pflag"
)

// Gateway are the data-plane settings shared by `nitronet gateway` and
// `nitronet serve --gateway` (there with the prefix "gateway-").
type Gateway struct {
	// Mode is "kernel" or "userspace"; for `serve`, empty means no
	// gateway in the process.
	Mode string
	// Region and Endpoint are reported to the control server at every
	// start and replace those of the gateway's record (see
	// gwproto.HelloRequest). Endpoint is HOST:PORT, or HOST alone for
	// HOST:ListenPort; a port other than ListenPort is taken as a port
	// forward to it. For `serve` they default to "local" and 127.0.0.1;
	// for a standalone gateway empty keeps what `admin gateway add` set.
	Region, Endpoint string
	ListenPort       int
	// TCPPort, if not 0, is the port on which the gateway also takes
	// WireGuard over TCP (UDP-over-TCP, for clients whose network blocks
	// UDP). Off by default.
	TCPPort int
	// MultihopRelay, if not empty, lists multihop relay ports as
	// PORT=EXIT_ID@HOST:PORT, comma-separated (see package relay): each
	// port forwards to that exit gateway's WireGuard endpoint, so that
	// stock apps get multihop configurations through this gateway.
	MultihopRelay string
	KeyFile       string
	Interface     string
	Uplink        string
	Allow, Deny   []string
	DNSUpstreams  []string
	AllowPrivate  []string
	// QuantumResistant runs the ephemeral-peer service that quantum-
	// resistant tunnels need (on by default).
	QuantumResistant bool
	// UAPISocket is the path of a read-only UAPI socket for `wg show`, or
	// "" for none.
	UAPISocket string
	// Blocklists are the DNS blocklists, each "CATEGORY=FILE" (see
	// package blocklist); a category may have several files.
	Blocklists []string

	// Filled in by Validate.
	Relays                                            []relay.Route
	AllowPrefixes, DenyPrefixes, AllowPrivatePrefixes []netip.Prefix
	BlocklistSources                                  []blocklist.Source
}

// Bind registers g's flags on fs, each named prefix+NAME, and marks them
// as settings for Load.
func (g *Gateway) Bind(fs *pflag.FlagSet, prefix string) {
	mark := markSettings(fs)
	defer mark()
	fs.IntVar(&g.ListenPort, prefix+"listen-port", 51820, "WireGuard UDP port")
	fs.IntVar(&g.TCPPort, prefix+"tcp-port", 0, "also take WireGuard over TCP on this port, for clients whose network blocks UDP (`nitronet up --transport tcp`; 443 passes most firewalls; default: off)")
	fs.StringVar(&g.MultihopRelay, prefix+"multihop-relay", "", "relay ports for stock apps' multihop configs, PORT=EXIT_GATEWAY_ID@EXIT_HOST:PORT, comma-separated: each UDP PORT forwards to that exit's WireGuard endpoint (default: none)")
	region, endpoint := "", ""
	whose := "this gateway's record at every start (default: keep the one given to `admin gateway add`)"
	if prefix != "" {
		region, endpoint, whose = "local", "127.0.0.1", "the in-process gateway's record at every start"
	}
	fs.StringVar(&g.Region, prefix+"region", region, "region of "+whose)
	fs.StringVar(&g.Endpoint, prefix+"endpoint", endpoint, "HOST or HOST:PORT clients dial, for "+whose+
		"; HOST alone means HOST:--"+prefix+"listen-port, another port is for a NAT or port forward to it (IPv6 in brackets with a port)")
	fs.StringVar(&g.KeyFile, prefix+"key-file", "", "file for the gateway's own key and credential (mode 0600); without it a restart needs a new token")
	fs.StringVar(&g.Interface, prefix+"interface", "nitronet0", "kernel mode: TUN interface name")
	fs.StringVar(&g.Uplink, prefix+"uplink", "", "kernel mode: uplink interface (default: that of the default route)")
	fs.StringSliceVar(&g.Allow, prefix+"allow-cidr", nil, "admit handshakes only from these client source CIDRs (default: all)")
	fs.StringSliceVar(&g.Deny, prefix+"deny-cidr", nil, "never answer handshakes from these client source CIDRs")
	fs.StringSliceVar(&g.DNSUpstreams, prefix+"dns-upstream", nil, "resolvers (HOST:PORT) behind the gateway's tunnel DNS (default: the nameservers in /etc/resolv.conf)")
	fs.StringSliceVar(&g.AllowPrivate, prefix+"allow-private", nil, "private or link-local destinations clients may reach (default: none)")
	fs.BoolVar(&g.QuantumResistant, prefix+"quantum-resistant", true, "serve ephemeral peers for quantum-resistant tunnels (TCP 1337 on the tunnel addresses); false makes such clients fail closed")
	fs.StringVar(&g.UAPISocket, prefix+"uapi-socket", "", "serve a read-only WireGuard UAPI on this unix socket for `wg show` (live peer state, endpoints included; default: none)")
	fs.StringSliceVar(&g.Blocklists, prefix+"blocklist", nil, "DNS blocklist CATEGORY=FILE (ads, trackers, malware, adult, gambling; domain-list or hosts format), repeatable; reloaded on SIGHUP")
}

// Modes of a gateway.
const (
	GatewayKernel    = "kernel"
	GatewayUserspace = "userspace"
)

// Validate checks g and parses its prefixes. flagPrefix is the prefix its
// flags were bound with; errors name the flag. An empty Mode is an error
// for a standalone gateway (flagPrefix "") and means "no gateway" for
// `serve` (flagPrefix "gateway-").
func (g *Gateway) Validate(flagPrefix string) error {
	modeFlag := "mode"
	if flagPrefix != "" {
		modeFlag = strings.TrimSuffix(flagPrefix, "-")
	}
	switch g.Mode {
	case "":
		if flagPrefix == "" {
			return fmt.Errorf("--%s must be kernel or userspace", modeFlag)
		}
		return nil // serve without a gateway
	case GatewayKernel, GatewayUserspace:
	default:
		return fmt.Errorf("--%s %q: want kernel or userspace", modeFlag, g.Mode)
	}
	if g.ListenPort < 1 || g.ListenPort > 65535 {
		return fmt.Errorf("--%slisten-port must be 1 to 65535", flagPrefix)
	}
	if g.TCPPort < 0 || g.TCPPort > 65535 {
		return fmt.Errorf("--%stcp-port must be 1 to 65535, or 0 for none", flagPrefix)
	}
	var err error
	if g.Relays, err = relay.Parse(g.MultihopRelay); err != nil {
		return fmt.Errorf("--%smultihop-relay: %v", flagPrefix, err)
	}
	for _, r := range g.Relays {
		if r.Port == g.ListenPort || r.Port == g.TCPPort {
			return fmt.Errorf("--%smultihop-relay: port %d is the gateway's own", flagPrefix, r.Port)
		}
	}
	if g.AllowPrefixes, err = parsePrefixes(flagPrefix+"allow-cidr", g.Allow); err != nil {
		return err
	}
	if g.DenyPrefixes, err = parsePrefixes(flagPrefix+"deny-cidr", g.Deny); err != nil {
		return err
	}
	if g.AllowPrivatePrefixes, err = parsePrefixes(flagPrefix+"allow-private", g.AllowPrivate); err != nil {
		return err
	}
	if g.BlocklistSources, err = parseBlocklists(flagPrefix+"blocklist", g.Blocklists); err != nil {
		return err
	}
	for _, u := range g.DNSUpstreams {
		if _, _, err := net.SplitHostPort(u); err != nil {
			return fmt.Errorf("--%sdns-upstream %q: want HOST:PORT", flagPrefix, u)
		}
	}
	if flagPrefix != "" && strings.TrimSpace(g.Endpoint) == "" {
		return fmt.Errorf("--%sendpoint must not be empty", flagPrefix)
	}
	if g.Endpoint != "" {
		if _, err := gwproto.ResolveEndpoint(g.Endpoint, g.ListenPort); err != nil {
			return fmt.Errorf("--%sendpoint %q: %v (want HOST or HOST:PORT)", flagPrefix, g.Endpoint, err)
		}
	}
	if flagPrefix != "" && strings.TrimSpace(g.Region) == "" {
		return fmt.Errorf("--%sregion must not be empty", flagPrefix)
	}
	if g.Region != "" {
		if _, err := gwproto.NormalizeRegion(g.Region); err != nil {
			return fmt.Errorf("--%sregion %q: %v", flagPrefix, g.Region, err)
		}
	}
	return nil
}

// parseBlocklists parses CATEGORY=FILE values.
func parseBlocklists(flag string, ss []string) ([]blocklist.Source, error) {
	var out []blocklist.Source
	for _, s := range ss {
		name, path, ok := strings.Cut(s, "=")
		if !ok || strings.TrimSpace(path) == "" {
			return nil, fmt.Errorf("--%s %q: want CATEGORY=FILE", flag, s)
		}
		c, err := dnsblock.ParseCategory(name)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: %v", flag, s, err)
		}
		out = append(out, blocklist.Source{Category: c, Path: strings.TrimSpace(path)})
	}
	return out, nil
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
