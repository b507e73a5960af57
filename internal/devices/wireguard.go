package devices

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/dnsblock"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gateways"
	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Gateways lists the gateways a device configuration may name.
// *gateways.Service implements it.
type Gateways interface {
	// Enrolled returns the gateways that have enrolled, oldest first.
	Enrolled(ctx context.Context) ([]gateways.Gateway, error)
}

// Gateway returns the enrolled gateway named by name, an id or a region.
// With name empty it returns the only enrolled gateway, if there is
// exactly one. Otherwise the error names the field "gateway": Invalid when
// a choice is needed, NotFound for a name no enrolled gateway has.
func (s *Service) Gateway(ctx context.Context, name string) (gateways.Gateway, error) {
	if s.cfg.Gateways == nil {
		return gateways.Gateway{}, errs.E(errs.Unavailable, "no gateway directory is configured")
	}
	enrolled, err := s.cfg.Gateways.Enrolled(ctx)
	if err != nil {
		return gateways.Gateway{}, err
	}
	return pickGateway(enrolled, name)
}

// pickGateway returns the gateway of enrolled named by name (an id or a
// region); with name empty, the only one, if there is exactly one.
func pickGateway(enrolled []gateways.Gateway, name string) (gateways.Gateway, error) {
	if name == "" {
		if len(enrolled) == 1 {
			return enrolled[0], nil
		}
		return gateways.Gateway{}, errs.Field(errs.Invalid, "gateway", "choose a gateway (there are %d)", len(enrolled))
	}
	for _, g := range enrolled {
		if g.ID == name || g.Region == name {
			return g, nil
		}
	}
	return gateways.Gateway{}, errs.Field(errs.NotFound, "gateway", "no enrolled gateway %q", clip(name, 40))
}

// clip shortens s to n characters for an error message.
func clip(s string, n int) string {
	if !utf8.ValidString(s) {
		return "(invalid UTF-8)"
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// WireGuard returns the wg-quick configuration of the account's device id
// through the enrolled gateway named by gateway (as Gateway takes it), and
// that gateway. Every front end that hands out device configurations
// calls it. The configuration's interface has the device's addresses and
// the configured tunnel-side DNS resolvers, and no private key: that lives
// only on the device, which fills it in. All traffic, IPv4 and IPv6, goes
// through the tunnel. An unknown device is NotFound (field "id"); a
// gateway without a valid key yet is Unavailable.
func (s *Service) WireGuard(ctx context.Context, accountID, id, gateway string) (wgconf.Config, gateways.Gateway, error) {
	d, err := s.Get(ctx, accountID, id)
	if err != nil {
		return wgconf.Config{}, gateways.Gateway{}, err
	}
	gw, err := s.Gateway(ctx, gateway)
	if err != nil {
		return wgconf.Config{}, gateways.Gateway{}, err
	}
	dns, err := s.dns(d.DNSBlocking)
	if err != nil {
		return wgconf.Config{}, gateways.Gateway{}, err
	}
	c, err := WireGuardConfig(d.Addresses, gw, dns)
	if err != nil {
		return wgconf.Config{}, gateways.Gateway{}, err
	}
	return c, gw, nil
}

// dns returns the tunnel-side DNS resolvers of a device that chose the
// blocking categories named: the gateways' own addresses for none, else
// the resolver of that set, which applies its lists (package dnsblock).
func (s *Service) dns(blocking []string) ([]netip.Addr, error) {
	set, err := s.ParseBlocking(blocking)
	if err != nil {
		return nil, err
	}
	if set == 0 {
		return s.cfg.DNS, nil
	}
	a, err := dnsblock.Resolver(s.cfg.Pool6, set)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "DNS blocking resolver")
	}
	return []netip.Addr{a}, nil
}

// WireGuardMultihop returns the wg-quick configuration of the account's
// device id for a multihop tunnel that stock WireGuard apps can use: its
// peer is the exit gateway (its public key), reached at the entry
// gateway's relay port for that exit (on the entry's endpoint host),
// which forwards the tunnel's datagrams to the exit. The entry sees the
// device's address but carries only the exit's ciphertext; the exit sees
// the entry's address, never the device's. entry and exit are named as
// Gateway takes them and must differ (Invalid, field "exit"); an entry
// that reports no relay to the exit is Invalid with field "entry". It
// returns the configuration, the entry and the exit.
func (s *Service) WireGuardMultihop(ctx context.Context, accountID, id, entry, exit string) (wgconf.Config, gateways.Gateway, gateways.Gateway, error) {
	fail := func(err error) (wgconf.Config, gateways.Gateway, gateways.Gateway, error) {
		return wgconf.Config{}, gateways.Gateway{}, gateways.Gateway{}, err
	}
	d, err := s.Get(ctx, accountID, id)
	if err != nil {
		return fail(err)
	}
	in, out, port, err := s.Multihop(ctx, entry, exit)
	if err != nil {
		return fail(err)
	}
	host, _, err := net.SplitHostPort(in.Endpoint)
	if err != nil {
		return fail(errs.E(errs.Unavailable, "gateway %s has no valid endpoint", in.ID))
	}
	via := out
	via.Endpoint = net.JoinHostPort(host, strconv.Itoa(port))
	dns, err := s.dns(d.DNSBlocking) // the exit's resolvers, as for a single hop
	if err != nil {
		return fail(err)
	}
	c, err := WireGuardConfig(d.Addresses, via, dns)
	if err != nil {
		return fail(err)
	}
	return c, in, out, nil
}

// Multihop checks that a stock app can reach the gateway exit through
// the gateway entry (both named as Gateway takes them): they must differ
// (Invalid, field "exit") and entry must report a relay port to exit
// (Invalid, field "entry"). It returns both gateways and the relay port.
// Front ends call it before they register a key for a multihop
// configuration, so that a device is never added for a route that cannot
// be configured.
func (s *Service) Multihop(ctx context.Context, entry, exit string) (in, out gateways.Gateway, port int, err error) {
	failRoute := func(err error) (gateways.Gateway, gateways.Gateway, int, error) {
		return gateways.Gateway{}, gateways.Gateway{}, 0, err
	}
	if s.cfg.Gateways == nil {
		return failRoute(errs.E(errs.Unavailable, "no gateway directory is configured"))
	}
	enrolled, err := s.cfg.Gateways.Enrolled(ctx)
	if err != nil {
		return failRoute(err)
	}
	if entry == "" {
		return failRoute(errs.Field(errs.Invalid, "entry", "choose an entry gateway"))
	}
	if exit == "" {
		return failRoute(errs.Field(errs.Invalid, "exit", "choose an exit gateway"))
	}
	in, err = pickGateway(enrolled, entry)
	if err != nil {
		return failRoute(relabel(err, "entry"))
	}
	out, err = pickGateway(enrolled, exit)
	if err != nil {
		return failRoute(relabel(err, "exit"))
	}
	if in.ID == out.ID {
		return failRoute(errs.Field(errs.Invalid, "exit", "the exit must be another gateway than the entry"))
	}
	port, ok := in.RelayPort(out.ID)
	if !ok {
		return failRoute(errs.Field(errs.Invalid, "entry", "gateway %s relays no multihop tunnel to %s", in.Region, out.Region))
	}
	return in, out, port, nil
}

// relabel returns err with its field renamed to field, if it is a field
// error of pickGateway.
func relabel(err error, field string) error {
	var e *errs.Error
	if errors.As(err, &e) && e.Field == "gateway" {
		return errs.Field(e.Code, field, "%s", strings.Replace(e.Message, "gateway", field+" gateway", 1))
	}
	return err
}

// WireGuardConfig builds the wg-quick configuration (without a private
// key) for a device with addresses connecting through gw, whose
// tunnel-side DNS resolvers are dns. All traffic, IPv4 and IPv6, goes
// through the tunnel.
func WireGuardConfig(addresses []string, gw gateways.Gateway, dns []netip.Addr) (wgconf.Config, error) {
	var c wgconf.Config
	for _, a := range addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return c, errs.Wrap(errs.Internal, err, "bad device address")
		}
		c.Interface.Addresses = append(c.Interface.Addresses, p)
	}
	c.Interface.DNS = dns
	pub, err := wgkey.ParsePublic(gw.PublicKey)
	if err != nil {
		return c, errs.E(errs.Unavailable, "gateway %s has no valid key yet", gw.ID)
	}
	c.Peers = []wgconf.Peer{{
		PublicKey:           pub,
		Endpoint:            gw.Endpoint,
		AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		PersistentKeepalive: 25,
	}}
	return c, nil
}
