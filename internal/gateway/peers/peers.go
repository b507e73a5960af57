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

// FromProto validates a feed entry. The key must parse, the device ID must
// be non-empty and at most MaxDeviceIDLen bytes, there must be at least one
// address, and every address must be a host prefix (/32 or /128) inside one
// of pools, so a bad or hostile feed entry cannot route other traffic to a
// peer. The returned addresses are sorted and deduplicated. The error never
// contains the key or an address.
func FromProto(p gwproto.Peer, pools []netip.Prefix) (Peer, error) {
	key, err := wgkey.ParsePublic(p.PublicKey)
	if err != nil {
		return Peer{}, fmt.Errorf("peer %s: invalid public key", p.DeviceID)
	}
	if p.DeviceID == "" || len(p.DeviceID) > MaxDeviceIDLen {
		return Peer{}, fmt.Errorf("peer: device ID empty or longer than %d bytes", MaxDeviceIDLen)
	}
	if len(p.Addresses) == 0 {
		return Peer{}, fmt.Errorf("peer %s: no addresses", p.DeviceID)
	}
	addrs := make([]netip.Addr, 0, len(p.Addresses))
	for _, s := range p.Addresses {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return Peer{}, fmt.Errorf("peer %s: invalid address", p.DeviceID)
		}
		a := pfx.Addr()
		bits := pfx.Bits()
		if a.Is4In6() {
			a, bits = a.Unmap(), bits-96
		}
		if bits != a.BitLen() || a.Zone() != "" {
			return Peer{}, fmt.Errorf("peer %s: address is not a host prefix", p.DeviceID)
		}
		if !slices.ContainsFunc(pools, func(pool netip.Prefix) bool { return pool.Contains(a) }) {
			return Peer{}, fmt.Errorf("peer %s: address outside the tunnel pools", p.DeviceID)
		}
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	for _, fam := range []func(netip.Addr) bool{netip.Addr.Is4, netip.Addr.Is6} {
		n := 0
		for _, a := range addrs {
			if fam(a) {
				n++
			}
		}
		if n > MaxAddrs {
			return Peer{}, fmt.Errorf("peer %s: more than %d addresses of a family", p.DeviceID, MaxAddrs)
		}
	}
	return Peer{DeviceID: p.DeviceID, Key: key, Addrs: addrs}, nil
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
