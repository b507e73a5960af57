// Package wgconf builds, parses and converts WireGuard client configurations.
//
// A Config renders to the wg-quick file format understood by stock WireGuard
// apps (Render), parses back from it (Parse), converts to the wireguard-go
// UAPI text used to configure an in-process device (UAPI), and renders as a QR
// code for mobile apps (QR).
//
// Errors returned by this package name the line and the key at fault but never
// echo configuration values, so they are safe to log: a value may be a
// private key or an endpoint address.
package wgconf

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// MaxSize is the largest configuration text, in bytes, that Parse accepts.
const MaxSize = 256 << 10

// MaxLineLen is the longest line, in bytes, that Parse accepts.
const MaxLineLen = 4096

// MinMTU and MaxMTU bound Interface.MTU when it is set.
const (
	MinMTU = 576
	MaxMTU = 65535
)

// Config is a WireGuard client configuration: one local interface and the
// peers (gateways) it talks to.
type Config struct {
	Interface Interface
	Peers     []Peer
}

// Interface is the [Interface] section of a configuration.
type Interface struct {
	// PrivateKey is the device's key. Nil renders an empty "PrivateKey = "
	// line for the user to fill in; the key is generated and kept on the
	// device and this package never stores it anywhere.
	PrivateKey *wgkey.PrivateKey
	// Addresses are the tunnel addresses with their prefix lengths.
	Addresses []netip.Prefix
	// DNS are the resolvers to use while the tunnel is up.
	DNS []netip.Addr
	// MTU is the tunnel MTU; 0 means the default.
	MTU int
}

// Peer is a [Peer] section of a configuration.
type Peer struct {
	PublicKey wgkey.PublicKey
	// Endpoint is "host:port" (an IPv6 host in brackets); the host may be a
	// DNS name. Empty means no endpoint.
	Endpoint string
	// AllowedIPs are the destinations routed to this peer, masked.
	AllowedIPs []netip.Prefix
	// PersistentKeepalive is the keepalive interval in seconds; 0 is off.
	PersistentKeepalive int
}

// Render returns c in the wg-quick file format. Empty optional fields are
// omitted, except that a nil PrivateKey renders as an empty "PrivateKey = "
// line. Render does not validate c; call Validate first for a Config that was
// not produced by Parse.
func (c Config) Render() string {
	var b strings.Builder
	b.WriteString("[Interface]\n")
	if c.Interface.PrivateKey != nil {
		b.WriteString("PrivateKey = " + c.Interface.PrivateKey.Base64() + "\n")
	} else {
		b.WriteString("PrivateKey = \n")
	}
	if len(c.Interface.Addresses) > 0 {
		b.WriteString("Address = " + joinPrefixes(c.Interface.Addresses) + "\n")
	}
	if len(c.Interface.DNS) > 0 {
		s := make([]string, len(c.Interface.DNS))
		for i, a := range c.Interface.DNS {
			s[i] = a.String()
		}
		b.WriteString("DNS = " + strings.Join(s, ", ") + "\n")
	}
	if c.Interface.MTU != 0 {
		b.WriteString("MTU = " + strconv.Itoa(c.Interface.MTU) + "\n")
	}
	for _, p := range c.Peers {
		b.WriteString("\n[Peer]\n")
		b.WriteString("PublicKey = " + p.PublicKey.String() + "\n")
		if p.Endpoint != "" {
			b.WriteString("Endpoint = " + p.Endpoint + "\n")
		}
		if len(p.AllowedIPs) > 0 {
			b.WriteString("AllowedIPs = " + joinPrefixes(p.AllowedIPs) + "\n")
		}
		if p.PersistentKeepalive != 0 {
			b.WriteString("PersistentKeepalive = " + strconv.Itoa(p.PersistentKeepalive) + "\n")
		}
	}
	return b.String()
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// Validate reports whether c can be rendered and parsed back unchanged and
// used to configure a device. It returns nil for any Config returned by Parse.
func (c Config) Validate() error {
	if m := c.Interface.MTU; m != 0 && (m < MinMTU || m > MaxMTU) {
		return fmt.Errorf("interface: MTU must be between %d and %d", MinMTU, MaxMTU)
	}
	for i, a := range c.Interface.Addresses {
		if !a.IsValid() || a.Addr().Is4In6() {
			return fmt.Errorf("interface: address %d is invalid", i+1)
		}
	}
	for i, a := range c.Interface.DNS {
		if !a.IsValid() || a.Zone() != "" {
			return fmt.Errorf("interface: DNS server %d is invalid", i+1)
		}
	}
	for i, p := range c.Peers {
		if p.PublicKey.IsZero() {
			return fmt.Errorf("peer %d: public key is missing", i+1)
		}
		if p.Endpoint != "" {
			if err := checkEndpoint(p.Endpoint); err != nil {
				return fmt.Errorf("peer %d: %w", i+1, err)
			}
		}
		for j, a := range p.AllowedIPs {
			if !a.IsValid() || a.Masked() != a || a.Addr().Is4In6() {
				return fmt.Errorf("peer %d: allowed IP %d is invalid or not masked", i+1, j+1)
			}
		}
		if k := p.PersistentKeepalive; k < 0 || k > 65535 {
			return fmt.Errorf("peer %d: persistent keepalive must be between 0 and 65535", i+1)
		}
	}
	return nil
}

// checkEndpoint validates a "host:port" endpoint without echoing it.
func checkEndpoint(s string) error {
	if len(s) > 261 {
		return fmt.Errorf("endpoint is too long")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("endpoint must be host:port (IPv6 in brackets)")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("endpoint port must be a number between 1 and 65535")
	}
	if host == "" {
		return fmt.Errorf("endpoint host is empty")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return fmt.Errorf("endpoint address must not have a zone")
		}
		if a.Is4() && strings.HasPrefix(s, "[") {
			return fmt.Errorf("endpoint IPv4 address must not be in brackets")
		}
		if a.Is6() && !strings.HasPrefix(s, "[") {
			return fmt.Errorf("endpoint IPv6 address must be in brackets")
		}
		return nil
	}
	if strings.HasPrefix(s, "[") {
		return fmt.Errorf("endpoint has brackets around a non-IPv6 host")
	}
	if !isHostname(host) {
		return fmt.Errorf("endpoint host is neither an IP address nor a valid DNS name")
	}
	return nil
}

// isHostname reports whether s is a syntactically valid DNS name made of
// letters, digits, hyphens and dots.
func isHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Resolver looks up the IP addresses of a host; *net.Resolver's LookupNetIP
// method with network "ip" fits.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

// UAPI returns the wireguard-go IPC "set" text for c, resolving endpoint host
// names with the system resolver (5 second timeout). See UAPIContext.
func (c Config) UAPI() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.UAPIContext(ctx, func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	})
}

// UAPIContext returns the wireguard-go IPC "set" text for c: private_key,
// replace_peers=true, and for each peer public_key, endpoint (resolved to an
// IP with resolve when it is a name, preferring IPv4), replace_allowed_ips,
// allowed_ip and persistent_keepalive_interval. It fails if c has no private
// key or does not validate. The text contains the private key: hand it only
// to Device.IpcSet and never log it.
func (c Config) UAPIContext(ctx context.Context, resolve Resolver) (string, error) {
	if c.Interface.PrivateKey == nil {
		return "", fmt.Errorf("uapi: configuration has no private key")
	}
	if err := c.Validate(); err != nil {
		return "", fmt.Errorf("uapi: %w", err)
	}
	var b strings.Builder
	b.WriteString("private_key=" + c.Interface.PrivateKey.Hex() + "\n")
	b.WriteString("replace_peers=true\n")
	for i, p := range c.Peers {
		b.WriteString("public_key=" + p.PublicKey.Hex() + "\n")
		if p.Endpoint != "" {
			ap, err := ResolveEndpoint(ctx, p.Endpoint, resolve)
			if err != nil {
				return "", fmt.Errorf("uapi: peer %d: %w", i+1, err)
			}
			b.WriteString("endpoint=" + ap.String() + "\n")
		}
		b.WriteString("persistent_keepalive_interval=" + strconv.Itoa(p.PersistentKeepalive) + "\n")
		b.WriteString("replace_allowed_ips=true\n")
		for _, a := range p.AllowedIPs {
			b.WriteString("allowed_ip=" + a.String() + "\n")
		}
	}
	return b.String(), nil
}

// ResolveEndpoint turns a "host:port" endpoint into an address and port.
// An IP literal is returned as is; a name is looked up with resolve and the
// first IPv4 answer is preferred. Errors do not include the endpoint.
func ResolveEndpoint(ctx context.Context, endpoint string, resolve Resolver) (netip.AddrPort, error) {
	if err := checkEndpoint(endpoint); err != nil {
		return netip.AddrPort{}, err
	}
	host, portStr, _ := net.SplitHostPort(endpoint)
	port, _ := strconv.Atoi(portStr)
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	if resolve == nil {
		return netip.AddrPort{}, fmt.Errorf("endpoint is a name and no resolver was given")
	}
	addrs, err := resolve(ctx, host)
	if err != nil || len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("endpoint name could not be resolved")
	}
	best := addrs[0].Unmap()
	for _, a := range addrs {
		if a.Unmap().Is4() {
			best = a.Unmap()
			break
		}
	}
	return netip.AddrPortFrom(best, uint16(port)), nil
}
