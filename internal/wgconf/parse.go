package wgconf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// ParseError is returned by Parse for a malformed configuration. Its message
// names the line and key but never the offending value.
type ParseError struct {
	Line int    // 1-based line number; 0 for whole-file problems
	Msg  string // what is wrong
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return "wgconf: " + e.Msg
	}
	return fmt.Sprintf("wgconf: line %d: %s", e.Line, e.Msg)
}

// Parse reads a configuration in the wg-quick file format.
//
// Parse is strict: the text must be valid UTF-8 of at most MaxSize bytes, it
// must hold exactly one [Interface] section and then any number of [Peer]
// sections, and only the keys Render writes are accepted (PrivateKey,
// Address, DNS, MTU; PublicKey, Endpoint, AllowedIPs, PersistentKeepalive).
// Section and key names are case-insensitive, "#" starts a comment, and the
// list keys (Address, DNS, AllowedIPs) may repeat and take comma-separated
// values. An empty PrivateKey value gives a nil Interface.PrivateKey.
// AllowedIPs are masked and a bare address in Address or AllowedIPs becomes a
// single-host prefix. Errors are *ParseError.
func Parse(s string) (Config, error) {
	var c Config
	if len(s) > MaxSize {
		return c, &ParseError{Msg: fmt.Sprintf("configuration is larger than %d bytes", MaxSize)}
	}
	if !utf8.ValidString(s) {
		return c, &ParseError{Msg: "configuration is not valid UTF-8"}
	}
	const (
		none = iota
		iface
		peer
	)
	section := none
	sawInterface := false
	seen := map[string]bool{} // single-valued keys seen in the current section
	var cur *Peer
	finishPeer := func(line int) error {
		if cur == nil {
			return nil
		}
		if cur.PublicKey.IsZero() {
			return &ParseError{Line: line, Msg: "[Peer] section has no PublicKey"}
		}
		c.Peers = append(c.Peers, *cur)
		cur = nil
		return nil
	}
	peerStart := 0
	for i, raw := range strings.Split(s, "\n") {
		n := i + 1
		if len(raw) > MaxLineLen {
			return Config{}, &ParseError{Line: n, Msg: fmt.Sprintf("line is longer than %d bytes", MaxLineLen)}
		}
		line := raw
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			switch strings.ToLower(line) {
			case "[interface]":
				if sawInterface {
					return Config{}, &ParseError{Line: n, Msg: "duplicate [Interface] section"}
				}
				if section != none {
					return Config{}, &ParseError{Line: n, Msg: "[Interface] must come before any [Peer]"}
				}
				section, sawInterface = iface, true
			case "[peer]":
				if !sawInterface {
					return Config{}, &ParseError{Line: n, Msg: "[Peer] before [Interface]"}
				}
				if err := finishPeer(peerStart); err != nil {
					return Config{}, err
				}
				section, cur, peerStart = peer, &Peer{}, n
			default:
				return Config{}, &ParseError{Line: n, Msg: "unknown section header (want [Interface] or [Peer])"}
			}
			clear(seen)
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return Config{}, &ParseError{Line: n, Msg: `expected "Key = Value"`}
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		lkey := strings.ToLower(key)
		if section == none {
			return Config{}, &ParseError{Line: n, Msg: "key outside of any section"}
		}
		single := lkey != "address" && lkey != "dns" && lkey != "allowedips"
		var err error
		switch {
		case section == iface && lkey == "privatekey":
			err = parsePrivateKey(&c.Interface, value)
		case section == iface && lkey == "address":
			err = parsePrefixes(&c.Interface.Addresses, value, false)
		case section == iface && lkey == "dns":
			err = parseDNS(&c.Interface.DNS, value)
		case section == iface && lkey == "mtu":
			c.Interface.MTU, err = parseInt(value, MinMTU, MaxMTU, "MTU")
		case section == peer && lkey == "publickey":
			cur.PublicKey, err = wgkey.ParsePublic(value)
			if err != nil {
				err = fmt.Errorf("PublicKey: %v", err)
			}
		case section == peer && lkey == "endpoint":
			if err = checkEndpoint(value); err == nil {
				cur.Endpoint = value
			}
		case section == peer && lkey == "allowedips":
			err = parsePrefixes(&cur.AllowedIPs, value, true)
		case section == peer && lkey == "persistentkeepalive":
			if strings.EqualFold(value, "off") {
				cur.PersistentKeepalive = 0
			} else {
				cur.PersistentKeepalive, err = parseInt(value, 0, 65535, "PersistentKeepalive")
			}
		default:
			where := "[Interface]"
			if section == peer {
				where = "[Peer]"
			}
			return Config{}, &ParseError{Line: n, Msg: fmt.Sprintf("unknown or unsupported key %s in %s", quoteKey(key), where)}
		}
		if err != nil {
			return Config{}, &ParseError{Line: n, Msg: err.Error()}
		}
		if single {
			if seen[lkey] {
				return Config{}, &ParseError{Line: n, Msg: fmt.Sprintf("duplicate key %s", quoteKey(key))}
			}
			seen[lkey] = true
		}
	}
	if !sawInterface {
		return Config{}, &ParseError{Msg: "missing [Interface] section"}
	}
	if err := finishPeer(peerStart); err != nil {
		return Config{}, err
	}
	return c, nil
}

// quoteKey quotes a key name for an error message, shortened so a long junk
// line cannot flood logs.
func quoteKey(k string) string {
	if len(k) > 32 {
		k = k[:32] + "..."
	}
	return strconv.Quote(k)
}

func parsePrivateKey(in *Interface, value string) error {
	if value == "" {
		in.PrivateKey = nil
		return nil
	}
	if len(value) != 44 {
		return fmt.Errorf("PrivateKey must be 44 characters of base64")
	}
	k, err := wgkey.ParsePrivate(value)
	if err != nil {
		return fmt.Errorf("PrivateKey is not valid base64 of 32 bytes")
	}
	in.PrivateKey = &k
	return nil
}

func parsePrefixes(dst *[]netip.Prefix, value string, mask bool) error {
	if value == "" {
		return nil // wg-quick allows an empty AllowedIPs
	}
	for _, f := range strings.Split(value, ",") {
		f = strings.TrimSpace(f)
		var p netip.Prefix
		if strings.Contains(f, "/") {
			var err error
			p, err = netip.ParsePrefix(f)
			if err != nil {
				return fmt.Errorf("invalid CIDR prefix in list")
			}
		} else {
			a, err := netip.ParseAddr(f)
			if err != nil || a.Zone() != "" {
				return fmt.Errorf("invalid IP address in list")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			return fmt.Errorf("IPv4-mapped IPv6 prefixes are not allowed")
		}
		if mask {
			p = p.Masked()
		}
		*dst = append(*dst, p)
	}
	return nil
}

func parseDNS(dst *[]netip.Addr, value string) error {
	for _, f := range strings.Split(value, ",") {
		f = strings.TrimSpace(f)
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("DNS must be a list of IP addresses (search domains are not supported)")
		}
		*dst = append(*dst, a)
	}
	return nil
}

func parseInt(value string, lo, hi int, name string) (int, error) {
	n, err := strconv.Atoi(value)
	if err != nil || n < lo || n > hi || strconv.Itoa(n) != value {
		return 0, fmt.Errorf("%s must be an integer between %d and %d", name, lo, hi)
	}
	return n, nil
}
