package wgconf

import (
	"errors"
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
	if len(s) > MaxSize {
		return Config{}, &ParseError{Msg: fmt.Sprintf("configuration is larger than %d bytes", MaxSize)}
	}
	if !utf8.ValidString(s) {
		return Config{}, &ParseError{Msg: "configuration is not valid UTF-8"}
	}
	p := parser{seen: map[string]bool{}}
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
		var err error
		switch {
		case line == "":
		case strings.HasPrefix(line, "["):
			err = p.header(n, line)
		default:
			err = p.keyValue(n, line)
		}
		if err != nil {
			return Config{}, err
		}
	}
	if !p.sawInterface {
		return Config{}, &ParseError{Msg: "missing [Interface] section"}
	}
	if err := p.finishPeer(); err != nil {
		return Config{}, err
	}
	return p.c, nil
}

// The sections of a configuration.
const (
	sectionNone = iota
	sectionInterface
	sectionPeer
)

// parser is Parse's state between lines.
type parser struct {
	c            Config
	section      int
	sawInterface bool
	seen         map[string]bool // single-valued keys seen in the current section
	cur          *Peer           // the [Peer] section being read
	peerStart    int             // its header's line
}

// finishPeer adds the [Peer] section being read, if any, to the
// configuration.
func (p *parser) finishPeer() error {
	if p.cur == nil {
		return nil
	}
	if p.cur.PublicKey.IsZero() {
		return &ParseError{Line: p.peerStart, Msg: "[Peer] section has no PublicKey"}
	}
	p.c.Peers = append(p.c.Peers, *p.cur)
	p.cur = nil
	return nil
}

// header reads the section header on line n.
func (p *parser) header(n int, line string) error {
	switch strings.ToLower(line) {
	case "[interface]":
		if p.sawInterface {
			return &ParseError{Line: n, Msg: "duplicate [Interface] section"}
		}
		if p.section != sectionNone {
			return &ParseError{Line: n, Msg: "[Interface] must come before any [Peer]"}
		}
		p.section, p.sawInterface = sectionInterface, true
	case "[peer]":
		if !p.sawInterface {
			return &ParseError{Line: n, Msg: "[Peer] before [Interface]"}
		}
		if err := p.finishPeer(); err != nil {
			return err
		}
		p.section, p.cur, p.peerStart = sectionPeer, &Peer{}, n
	default:
		return &ParseError{Line: n, Msg: "unknown section header (want [Interface] or [Peer])"}
	}
	clear(p.seen)
	return nil
}

// keyValue reads the "Key = Value" line n into the current section.
func (p *parser) keyValue(n int, line string) error {
	key, value, ok := strings.Cut(line, "=")
	if !ok {
		return &ParseError{Line: n, Msg: `expected "Key = Value"`}
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	lkey := strings.ToLower(key)
	var err error
	switch p.section {
	case sectionNone:
		return &ParseError{Line: n, Msg: "key outside of any section"}
	case sectionInterface:
		err = p.interfaceKey(lkey, value)
	case sectionPeer:
		err = p.peerKey(lkey, value)
	}
	if errors.Is(err, errUnknownKey) {
		where := "[Interface]"
		if p.section == sectionPeer {
			where = "[Peer]"
		}
		return &ParseError{Line: n, Msg: fmt.Sprintf("unknown or unsupported key %s in %s", quoteKey(key), where)}
	}
	if err != nil {
		return &ParseError{Line: n, Msg: err.Error()}
	}
	if single := lkey != "address" && lkey != "dns" && lkey != "allowedips"; single {
		if p.seen[lkey] {
			return &ParseError{Line: n, Msg: fmt.Sprintf("duplicate key %s", quoteKey(key))}
		}
		p.seen[lkey] = true
	}
	return nil
}

// errUnknownKey is a key the section does not take.
var errUnknownKey = errors.New("unknown key")

// interfaceKey sets the [Interface] key lkey (lower case) to value.
func (p *parser) interfaceKey(lkey, value string) error {
	var err error
	switch lkey {
	case "privatekey":
		err = parsePrivateKey(&p.c.Interface, value)
	case "address":
		err = parsePrefixes(&p.c.Interface.Addresses, value, false)
	case "dns":
		err = parseDNS(&p.c.Interface.DNS, value)
	case "mtu":
		p.c.Interface.MTU, err = parseInt(value, MinMTU, MaxMTU, "MTU")
	default:
		return errUnknownKey
	}
	return err
}

// peerKey sets the key lkey (lower case) of the current [Peer] to value.
func (p *parser) peerKey(lkey, value string) error {
	cur := p.cur
	var err error
	switch lkey {
	case "publickey":
		if cur.PublicKey, err = wgkey.ParsePublic(value); err != nil {
			err = fmt.Errorf("PublicKey: %v", err)
		}
	case "endpoint":
		if err = checkEndpoint(value); err == nil {
			cur.Endpoint = value
		}
	case "allowedips":
		err = parsePrefixes(&cur.AllowedIPs, value, true)
	case "persistentkeepalive":
		if strings.EqualFold(value, "off") {
			cur.PersistentKeepalive = 0
		} else {
			cur.PersistentKeepalive, err = parseInt(value, 0, 65535, "PersistentKeepalive")
		}
	default:
		return errUnknownKey
	}
	return err
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
