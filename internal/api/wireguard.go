package api

import (
	"net/http"
	"net/netip"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gateways"
	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// handleDeviceWireGuard answers GET /api/v1/devices/{id}/wireguard?gateway=ID
// with a wg-quick configuration for the caller's device and one gateway.
// Its "PrivateKey = " line is empty: the private key lives only on the
// device, and the client fills it in.
func (s *Server) handleDeviceWireGuard(w http.ResponseWriter, r *http.Request, p Principal) {
	d, err := s.cfg.Devices.Get(r.Context(), p.AccountID, r.PathValue("id"))
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	gws, err := s.cfg.Gateways.Enrolled(r.Context())
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	gw, err := pickGateway(gws, r.URL.Query().Get("gateway"))
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	cfg, err := DeviceConfig(d.Addresses, gw, s.cfg.GatewayDNS)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="nitronet-`+gw.Region+`.conf"`)
	_, _ = w.Write([]byte(cfg.Render()))
}

// pickGateway returns the gateway of enrolled named by id (an id or a
// region). With id empty it returns the only one, if there is one.
func pickGateway(enrolled []gateways.Gateway, id string) (gateways.Gateway, error) {
	if id == "" {
		if len(enrolled) == 1 {
			return enrolled[0], nil
		}
		return gateways.Gateway{}, errs.E(errs.Invalid, "choose a gateway with ?gateway=ID (there are %d)", len(enrolled))
	}
	for _, g := range enrolled {
		if g.ID == id || g.Region == id {
			return g, nil
		}
	}
	return gateways.Gateway{}, errs.E(errs.NotFound, "no enrolled gateway %q", id)
}

// DeviceConfig builds the wg-quick configuration (without a private key)
// for a device with addresses connecting through gw, whose tunnel-side DNS
// resolvers are dns. All traffic, IPv4 and IPv6, goes through the tunnel.
func DeviceConfig(addresses []string, gw gateways.Gateway, dns []netip.Addr) (wgconf.Config, error) {
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
