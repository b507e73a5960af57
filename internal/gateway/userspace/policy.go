package userspace

import "net/netip"

// privateRanges returns the destinations a client may not reach unless the
// operator allows them explicitly: the gateway host's loopback and every
// private, link-local, shared (CGNAT) and reserved range.
func privateRanges() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("240.0.0.0/4"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fc00::/7"),
		netip.MustParsePrefix("fe80::/10"),
	}
}

// destPolicy decides which destinations a client may reach through the
// gateway. It is immutable after construction and safe for concurrent use.
type destPolicy struct {
	gateway      []netip.Addr   // the gateway's own tunnel addresses
	pools        []netip.Prefix // client pools: no client-to-client traffic
	allowPrivate []netip.Prefix // operator exceptions to private
	private      []netip.Prefix // privateRanges()
}

// allowed reports whether a client may open a flow to dst. The gateway's own
// addresses and the client pools are always refused (DNS on the gateway is
// served by a listener before this check is reached), as are unspecified,
// multicast and broadcast addresses. Loopback, private and reserved ranges
// are refused unless inside an allowPrivate prefix.
func (p *destPolicy) allowed(dst netip.Addr) bool {
	dst = dst.Unmap()
	if !dst.IsValid() || dst.IsUnspecified() || dst.IsMulticast() || dst.IsInterfaceLocalMulticast() {
		return false
	}
	if p.isGateway(dst) || p.inPools(dst) {
		return false
	}
	for _, a := range p.allowPrivate {
		if a.Contains(dst) {
			return true
		}
	}
	for _, r := range p.private {
		if r.Contains(dst) {
			return false
		}
	}
	return true
}

// isGateway reports whether a is one of the gateway's tunnel addresses.
func (p *destPolicy) isGateway(a netip.Addr) bool {
	a = a.Unmap()
	for _, g := range p.gateway {
		if g == a {
			return true
		}
	}
	return false
}

// inPools reports whether a is inside a client pool.
func (p *destPolicy) inPools(a netip.Addr) bool {
	a = a.Unmap()
	for _, pool := range p.pools {
		if pool.Contains(a) {
			return true
		}
	}
	return false
}
