// Package peers holds a gateway's peers: every key the control server's
// feed admits, in a compact Index, and the few of them that are configured
// on the wireguard-go device because they connected recently (Manager).
//
// A key is configured on the device only when its handshake initiation
// arrives (see package handshake), and removed again once it has had no
// handshake for longer than a session lasts. wireguard-go refuses more than
// 65,536 peers and costs tens of kilobytes and two goroutines per configured
// peer; an admitted key costs about a hundred bytes here.
package peers

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Peer is a validated feed entry: a device that may connect.
type Peer struct {
	DeviceID string
	Key      wgkey.PublicKey
	// Addrs are the device's tunnel addresses, sorted, without duplicates.
	Addrs []netip.Addr
}

// FromProto parses and validates a feed entry: the key must parse, every
// address must be a host prefix (/32 or /128), and the result must pass
// Check. The error never contains the key or an address.
func FromProto(p gwproto.Peer, pools []netip.Prefix) (Peer, error) {
	key, err := wgkey.ParsePublic(p.PublicKey)
	if err != nil {
		return Peer{}, fmt.Errorf("peer %s: invalid public key", p.DeviceID)
	}
	addrs := make([]netip.Addr, 0, len(p.Addresses))
	for _, s := range p.Addresses {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return Peer{}, fmt.Errorf("peer %s: invalid address", p.DeviceID)
		}
		a, bits := pfx.Addr(), pfx.Bits()
		if a.Is4In6() {
			a, bits = a.Unmap(), bits-96
		}
		if bits != a.BitLen() {
			return Peer{}, fmt.Errorf("peer %s: address is not a host prefix", p.DeviceID)
		}
		addrs = append(addrs, a)
	}
	return Peer{DeviceID: p.DeviceID, Key: key, Addrs: addrs}.Check(pools)
}

// Check validates p and returns it normalised: the device ID must be
// non-empty and at most MaxDeviceIDLen bytes, there must be at least one
// address and at most MaxAddrs of each family, and every address must lie
// inside one of pools, so that a bad or hostile feed entry cannot route
// other traffic to a peer. IPv4-mapped addresses become IPv4; the returned
// addresses are sorted and deduplicated, in a new slice. The error never
// contains the key or an address.
func (p Peer) Check(pools []netip.Prefix) (Peer, error) {
	return p.check(pools, make([]netip.Addr, 0, len(p.Addrs)))
}

// check is Check, appending the returned addresses to addrs[:0], which
// must not share memory with p.Addrs: a caller that does not keep the
// result can pass a buffer of its own and allocate nothing.
func (p Peer) check(pools []netip.Prefix, addrs []netip.Addr) (Peer, error) {
	if p.DeviceID == "" || len(p.DeviceID) > MaxDeviceIDLen {
		return Peer{}, fmt.Errorf("peer: device ID empty or longer than %d bytes", MaxDeviceIDLen)
	}
	if len(p.Addrs) == 0 {
		return Peer{}, fmt.Errorf("peer %s: no addresses", p.DeviceID)
	}
	addrs = addrs[:0]
	for _, a := range p.Addrs {
		a = a.Unmap()
		if !a.IsValid() || a.Zone() != "" {
			return Peer{}, fmt.Errorf("peer %s: invalid address", p.DeviceID)
		}
		if !slices.ContainsFunc(pools, func(pool netip.Prefix) bool { return pool.Contains(a) }) {
			return Peer{}, fmt.Errorf("peer %s: address outside the tunnel pools", p.DeviceID)
		}
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	if n4 := countIf(addrs, netip.Addr.Is4); n4 > MaxAddrs || len(addrs)-n4 > MaxAddrs {
		return Peer{}, fmt.Errorf("peer %s: more than %d addresses of a family", p.DeviceID, MaxAddrs)
	}
	p.Addrs = addrs
	return p, nil
}

func countIf(as []netip.Addr, f func(netip.Addr) bool) int {
	n := 0
	for _, a := range as {
		if f(a) {
			n++
		}
	}
	return n
}

// addUAPI returns the wireguard-go UAPI "set" text that configures p, or
// replaces its allowed IPs if it is configured already.
func addUAPI(p Peer) string {
	var b strings.Builder
	b.WriteString("public_key=")
	b.WriteString(p.Key.Hex())
	b.WriteString("\nreplace_allowed_ips=true\n")
	for _, a := range p.Addrs {
		b.WriteString("allowed_ip=")
		b.WriteString(netip.PrefixFrom(a, a.BitLen()).String())
		b.WriteByte('\n')
	}
	return b.String()
}

// removeUAPI returns the UAPI "set" text that removes key from the device.
func removeUAPI(key wgkey.PublicKey) string {
	return "public_key=" + key.Hex() + "\nremove=true\n"
}
