// Package admission decides which client source addresses may reach a
// gateway's WireGuard port at all, and enforces that decision below
// wireguard-go.
//
// The policy is evaluated in memory for each received datagram. Nothing here
// records, logs or counts per address: the only observable is a global
// counter of dropped datagrams.
package admission

import (
	"net/netip"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/conn"
)

// Policy is an allow/deny list of client source prefixes.
//
// An empty Allow list admits every address; otherwise an address must be in
// at least one Allow prefix. An address in any Deny prefix is refused, even if
// it is also allowed: Deny wins. The zero Policy admits everything.
type Policy struct {
	Allow []netip.Prefix
	Deny  []netip.Prefix
}

// Admits reports whether a datagram from addr may be handed to WireGuard.
// IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry.
// An invalid addr is never admitted. Admits is safe for concurrent use as
// long as p is not modified.
func (p Policy) Admits(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, d := range p.Deny {
		if prefixContains(d, addr) {
			return false
		}
	}
	if len(p.Allow) == 0 {
		return true
	}
	for _, a := range p.Allow {
		if prefixContains(a, addr) {
			return true
		}
	}
	return false
}

// prefixContains is netip.Prefix.Contains after unmapping the prefix's
// address, so that ::ffff:10.0.0.0/104 style entries still match IPv4.
func prefixContains(p netip.Prefix, a netip.Addr) bool {
	if !p.IsValid() {
		return false
	}
	pa := p.Addr()
	if pa.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			bits = 0
		}
		p = netip.PrefixFrom(pa.Unmap(), bits)
	}
	return p.Masked().Contains(a)
}

// Bind wraps a conn.Bind and drops every received datagram whose source is
// not admitted by the policy, before wireguard-go parses it. A refused
// source therefore never gets a handshake response or a cookie reply.
//
// Sending is passed through unchanged. Bind is safe for concurrent use.
type Bind struct {
	conn.Bind
	policy  Policy
	dropped atomic.Uint64
	port    atomic.Uint32
}

// NewBind returns inner wrapped with policy. The policy is copied; later
// changes to the caller's slices do not affect the Bind.
func NewBind(inner conn.Bind, policy Policy) *Bind {
	cp := Policy{
		Allow: append([]netip.Prefix(nil), policy.Allow...),
		Deny:  append([]netip.Prefix(nil), policy.Deny...),
	}
	return &Bind{Bind: inner, policy: cp}
}

// Dropped returns how many datagrams have been refused since the Bind was
// created. It is a single global counter, not broken down by anything.
func (b *Bind) Dropped() uint64 { return b.dropped.Load() }

// Port returns the UDP port of the last successful Open, or 0 if the Bind
// was never opened.
func (b *Bind) Port() uint16 { return uint16(b.port.Load()) }

// Open opens the inner Bind and wraps each of its receive functions with the
// admission filter.
func (b *Bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	b.port.Store(uint32(actual))
	if len(b.policy.Allow) == 0 && len(b.policy.Deny) == 0 {
		// Everyone is admitted: keep the receive path exactly as fast as
		// the inner bind's.
		return fns, actual, nil
	}
	wrapped := make([]conn.ReceiveFunc, len(fns))
	for i, fn := range fns {
		wrapped[i] = b.filter(fn)
	}
	return wrapped, actual, nil
}

// filter returns a ReceiveFunc that zeroes the size of every refused packet,
// which wireguard-go skips. If every packet of a batch is refused, it reads
// again rather than returning an all-empty batch.
func (b *Bind) filter(fn conn.ReceiveFunc) conn.ReceiveFunc {
	return func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		for {
			n, err := fn(packets, sizes, eps)
			if err != nil || n == 0 {
				return n, err
			}
			kept := 0
			for i := 0; i < n; i++ {
				if sizes[i] == 0 {
					continue
				}
				if eps[i] == nil || !b.policy.Admits(eps[i].DstIP()) {
					sizes[i] = 0
					eps[i] = nil
					b.dropped.Add(1)
					continue
				}
				kept++
			}
			if kept > 0 {
				return n, nil
			}
		}
	}
}
