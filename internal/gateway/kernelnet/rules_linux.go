package kernelnet

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Chain names inside the table.
const (
	chainPostrouting = "postrouting"
	chainForward     = "forward"
	chainInput       = "input"
)

// rule is one nftables rule before it is bound to a table: its chain, a
// comment (visible in `nft list table`) and its expressions.
type rule struct {
	chain   string
	comment string
	exprs   []expr.Any
}

// ruleset holds what the rules are built from.
type ruleset struct {
	tun, uplink string
	addrs       []netip.Addr   // the gateway's tunnel addresses
	dnsOnly     []netip.Prefix // the DNS addresses, as prefixes
	pools       []netip.Prefix
	allow       []netip.Prefix
	blocked     []netip.Prefix
	dnsPort     uint16 // 0: no DNS rule
	services    []uint16
}

func newRuleset(c Config, tun, uplink string) ruleset {
	r := ruleset{
		tun:     tun,
		uplink:  uplink,
		pools:   c.Pools,
		allow:   c.AllowPrivate,
		blocked: DefaultBlocked(),
		dnsPort: uint16(c.DNSPort),
	}
	for _, a := range c.Addresses {
		r.addrs = append(r.addrs, a.Addr())
	}
	for _, p := range c.ServicePorts {
		r.services = append(r.services, uint16(p))
	}
	r.dnsOnly = hostPrefixes(c.DNSAddresses)
	return r
}

// rules returns every rule in evaluation order per chain.
func (r ruleset) rules() []rule {
	var out []rule
	add := func(chain, comment string, parts ...[]expr.Any) {
		var ex []expr.Any
		for _, p := range parts {
			ex = append(ex, p...)
		}
		out = append(out, rule{chain: chain, comment: comment, exprs: ex})
	}
	accept := verdict(expr.VerdictAccept)
	drop := verdict(expr.VerdictDrop)

	for _, p := range r.pools {
		add(chainPostrouting, "masquerade clients", ifname(expr.MetaKeyOIFNAME, r.uplink), addrMatch(p, true), []expr.Any{&expr.Masq{}})
	}

	add(chainForward, "no client to client", ifname(expr.MetaKeyIIFNAME, r.tun), ifname(expr.MetaKeyOIFNAME, r.tun), drop)
	add(chainForward, "replies to clients", ifname(expr.MetaKeyOIFNAME, r.tun), ctEstablishedRelated(), accept)
	add(chainForward, "no unsolicited inbound", ifname(expr.MetaKeyOIFNAME, r.tun), drop)
	for _, p := range r.allow {
		add(chainForward, "allowed private", ifname(expr.MetaKeyIIFNAME, r.tun), ifname(expr.MetaKeyOIFNAME, r.uplink), addrMatch(p, false), accept)
	}
	for _, p := range r.blocked {
		add(chainForward, "no private destinations", ifname(expr.MetaKeyIIFNAME, r.tun), addrMatch(p, false), drop)
	}
	for _, p := range r.pools {
		add(chainForward, "clients to uplink", ifname(expr.MetaKeyIIFNAME, r.tun), ifname(expr.MetaKeyOIFNAME, r.uplink), addrMatch(p, true), accept)
	}
	add(chainForward, "nothing else from clients", ifname(expr.MetaKeyIIFNAME, r.tun), drop)

	// The tunnel addresses (and the DNS service bound to them) exist only
	// for clients: the kernel would otherwise accept packets for them from
	// any interface, the uplink included.
	own := make([]netip.Prefix, 0, len(r.addrs)+len(r.dnsOnly))
	for _, a := range r.addrs {
		own = append(own, netip.PrefixFrom(a, a.BitLen()))
	}
	own = append(own, r.dnsOnly...)
	for _, p := range own {
		add(chainInput, "tunnel addresses only via the tunnel", ifnameNot(expr.MetaKeyIIFNAME, r.tun), ifnameNot(expr.MetaKeyIIFNAME, "lo"),
			addrMatch(p, false), drop)
	}
	add(chainInput, "replies to gateway", ifname(expr.MetaKeyIIFNAME, r.tun), ctEstablishedRelated(), accept)
	if r.dnsPort != 0 {
		for _, p := range own {
			for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
				add(chainInput, "dns", ifname(expr.MetaKeyIIFNAME, r.tun), addrMatch(p, false), dport(proto, r.dnsPort), accept)
			}
		}
	}
	for _, port := range r.services {
		for _, p := range own {
			add(chainInput, "gateway service", ifname(expr.MetaKeyIIFNAME, r.tun), addrMatch(p, false), dport(unix.IPPROTO_TCP, port), accept)
		}
	}
	add(chainInput, "nothing else to gateway", ifname(expr.MetaKeyIIFNAME, r.tun), drop)
	return out
}

// chains returns the base chains of table t, keyed by name.
func chains(t *nftables.Table) map[string]*nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return map[string]*nftables.Chain{
		chainPostrouting: {Name: chainPostrouting, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept},
		chainForward: {Name: chainForward, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
		chainInput: {Name: chainInput, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept},
	}
}

// ifname matches the input or output interface name exactly.
func ifname(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

// ifnameNot matches any interface name but name.
func ifnameNot(key expr.MetaKey, name string) []expr.Any {
	m := ifname(key, name)
	m[1].(*expr.Cmp).Op = expr.CmpOpNeq
	return m
}

// addrMatch matches the source (src) or destination address against p,
// including the check of the IP family that makes the offset meaningful in
// an inet table.
func addrMatch(p netip.Prefix, src bool) []expr.Any {
	proto, off, n := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
	if src {
		off = 12
	}
	if p.Addr().Is6() {
		proto, off, n = unix.NFPROTO_IPV6, 24, 16
		if src {
			off = 8
		}
	}
	ex := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
	}
	if p.Bits() < int(n*8) {
		mask := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		ex = append(ex, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(ex, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()})
}

// ctEstablishedRelated matches conntrack state established or related.
func ctEstablishedRelated() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// dport matches the transport protocol and its destination port.
func dport(proto byte, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }
