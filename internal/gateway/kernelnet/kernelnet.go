// Package kernelnet sets up kernel-mode networking for a gateway: a TUN
// device for wireguard-go, IP forwarding, and an nftables table that
// masquerades client traffic and isolates clients. It is pure Go (netlink
// and nftables over netlink); it runs no external binaries.
//
// # Ruleset
//
// Setup creates one table, inet "nitronet-<ifname>", and touches nothing
// outside it, so it coexists with other firewalls. Its base chains have
// policy accept and only match packets to or from the TUN interface:
//
//	postrouting (nat, srcnat):  oif uplink, saddr in a pool            -> masquerade
//	forward (filter, 0):        iif tun, oif tun                         -> drop (client to client)
//	                            oif tun, ct state established,related   -> accept
//	                            oif tun                                  -> drop (no unsolicited inbound)
//	                            iif tun, oif uplink, daddr in AllowPrivate -> accept
//	                            iif tun, daddr in DefaultBlocked         -> drop
//	                            iif tun, oif uplink, saddr in a pool     -> accept
//	                            iif tun                                  -> drop (other interfaces, spoofed sources)
//	input (filter, 0):          iif not tun or lo, daddr a tunnel or DNS address -> drop
//	                            iif tun, ct state established,related   -> accept
//	                            iif tun, daddr a gateway tunnel address, udp/tcp dport DNSPort -> accept
//	                            iif tun, daddr a DNS address, udp/tcp dport DNSPort -> accept
//	                            iif tun, daddr a tunnel or DNS address, tcp dport in ServicePorts -> accept
//	                            iif tun                                  -> drop (gateway's own addresses)
//
// The DNS addresses (Config.DNSAddresses, the resolvers of DNS blocking)
// are matched as the fewest prefixes that hold exactly them.
//
// No rule has a counter, log, quota, limit or set-update expression, and
// the chains have no counters: the no-log policy forbids per-client byte
// and packet counts. (Connection tracking, which NAT needs, keeps flows in
// kernel memory only; nf_conntrack_acct should stay at its default 0.)
//
// Note that an accept verdict here does not override a drop in another
// table's chain on the same hook; a host firewall with a forward policy of
// drop must allow the TUN interface itself.
package kernelnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
)

// DefaultMTU is the TUN MTU when Config.MTU is 0: a 1500-byte uplink minus
// the WireGuard overhead over IPv6.
const DefaultMTU = 1420

// Config describes the gateway's kernel networking.
type Config struct {
	// IfName is the TUN interface name, at most 15 bytes. It must not exist
	// yet.
	IfName string
	// Addresses are the gateway's own tunnel addresses with their prefix
	// lengths, e.g. 100.64.0.1/10 and fd00:6e6e::1/48. At least one.
	Addresses []netip.Prefix
	// Pools are the client address pools, e.g. 100.64.0.0/10 and
	// fd00:6e6e::/48; they are routed to the TUN and masqueraded. At least
	// one.
	Pools []netip.Prefix
	// Uplink is the interface traffic leaves by. "" means the interface of
	// the IPv4 default route (or, without one, of the IPv6 default route).
	Uplink string
	// AllowPrivate lists destinations inside DefaultBlocked that clients may
	// nevertheless reach through the uplink.
	AllowPrivate []netip.Prefix
	// DNSPort is the port of the gateway's DNS resolver on its tunnel
	// addresses, reachable by clients over UDP and TCP. 0 means none.
	DNSPort int
	// ServicePorts are TCP ports of other gateway services on its tunnel
	// addresses and DNSAddresses that clients may reach (the
	// ephemeral-peer service).
	ServicePorts []int
	// DNSAddresses are further addresses of the gateway's DNS resolver:
	// the resolvers of DNS blocking, one per set of categories (see
	// package dnsblock). Setup assigns each to the TUN interface as a host
	// address; clients reach them on DNSPort only, like the tunnel
	// addresses. They require a DNSPort.
	DNSAddresses []netip.Addr
	// MTU is the TUN MTU; 0 means DefaultMTU.
	MTU int
	// Logger receives setup and teardown messages, never packet data. nil
	// discards them.
	Logger *slog.Logger
}

// DefaultBlocked returns the destinations clients may not reach unless
// listed in Config.AllowPrivate: private, shared (CGNAT, which includes the
// tunnel pools), loopback, link-local, multicast and reserved ranges.
func DefaultBlocked() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("224.0.0.0/4"),
		netip.MustParsePrefix("240.0.0.0/4"),
		netip.MustParsePrefix("::/127"), // unspecified and loopback
		netip.MustParsePrefix("fc00::/7"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("ff00::/8"),
	}
}

// TableName returns the name of the nftables table (family inet) that
// Setup creates for the TUN interface ifname.
func TableName(ifname string) string { return "nitronet-" + ifname }

// normalize validates c and returns a copy with defaults filled in and
// prefixes masked.
func (c Config) normalize() (Config, error) {
	var errs []error
	if c.IfName == "" || len(c.IfName) > 15 || strings.ContainsAny(c.IfName, "/ \t\n%") {
		errs = append(errs, fmt.Errorf("invalid interface name %q", c.IfName))
	}
	if len(c.Addresses) == 0 {
		errs = append(errs, errors.New("no tunnel addresses"))
	}
	for _, a := range c.Addresses {
		if !a.IsValid() || a.Addr().Zone() != "" || a.Addr().Is4In6() {
			errs = append(errs, fmt.Errorf("invalid tunnel address %v", a))
		}
	}
	if len(c.Pools) == 0 {
		errs = append(errs, errors.New("no client pools"))
	}
	masked := func(name string, in []netip.Prefix) []netip.Prefix {
		out := make([]netip.Prefix, 0, len(in))
		for _, p := range in {
			if !p.IsValid() || p.Addr().Is4In6() {
				errs = append(errs, fmt.Errorf("invalid %s prefix %v", name, p))
				continue
			}
			out = append(out, p.Masked())
		}
		return out
	}
	c.Addresses = append([]netip.Prefix(nil), c.Addresses...)
	c.Pools = masked("pool", c.Pools)
	c.AllowPrivate = masked("allow-private", c.AllowPrivate)
	if c.DNSPort < 0 || c.DNSPort > 65535 {
		errs = append(errs, fmt.Errorf("invalid DNS port %d", c.DNSPort))
	}
	for _, p := range c.ServicePorts {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("invalid service port %d", p))
		}
	}
	if len(c.DNSAddresses) > 0 && c.DNSPort == 0 {
		errs = append(errs, errors.New("DNS addresses without a DNS port"))
	}
	for _, a := range c.DNSAddresses {
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			errs = append(errs, fmt.Errorf("invalid DNS address %v", a))
		}
	}
	c.DNSAddresses = append([]netip.Addr(nil), c.DNSAddresses...)
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < 576 || c.MTU > 65535 {
		errs = append(errs, fmt.Errorf("invalid MTU %d", c.MTU))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("kernelnet: config: %w", err)
	}
	return c, nil
}

// families reports which IP families the configuration uses.
func (c Config) families() (v4, v6 bool) {
	for _, ps := range [][]netip.Prefix{c.Addresses, c.Pools} {
		for _, p := range ps {
			if p.Addr().Is4() {
				v4 = true
			} else {
				v6 = true
			}
		}
	}
	return v4, v6
}

// hostPrefixes returns the fewest prefixes that together hold exactly the
// addresses of addrs (duplicates allowed, any order).
func hostPrefixes(addrs []netip.Addr) []netip.Prefix {
	sorted := slices.Clone(addrs)
	slices.SortFunc(sorted, netip.Addr.Compare)
	sorted = slices.Compact(sorted)
	var out []netip.Prefix
	for i := 0; i < len(sorted); {
		// The largest aligned block starting at sorted[i] whose every
		// address follows in sorted, contiguously.
		a := sorted[i]
		bits := a.BitLen()
		for bits > 0 {
			p := netip.PrefixFrom(a, bits-1)
			if p.Masked().Addr() != a || !contiguous(sorted[i:], p) {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(a, bits)
		out = append(out, p)
		i += 1 << min(a.BitLen()-bits, 62)
	}
	return out
}

// contiguous reports whether s starts with every address of p, in order.
func contiguous(s []netip.Addr, p netip.Prefix) bool {
	host := p.Addr().BitLen() - p.Bits()
	if host >= 62 || len(s) < 1<<host {
		return false
	}
	last := s[(1<<host)-1]
	// s is sorted and without repeats, so 2^host addresses from p's first
	// to an address inside p are exactly p.
	return p.Contains(last) && s[0] == p.Addr()
}
