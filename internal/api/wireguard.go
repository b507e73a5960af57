package api

import (
	"net/http"

	"github.com/nitronet/nitronet/internal/gateways"
	"github.com/nitronet/nitronet/internal/wgconf"
)

// handleDeviceWireGuard answers GET /api/v1/devices/{id}/wireguard?gateway=G
// (G an enrolled gateway's id or region; optional when there is only one)
// with a wg-quick configuration for the caller's device and that gateway,
// built by the devices service. With entry=E it is a multihop
// configuration for stock apps: through entry gateway E's relay port to
// the exit named by exit= (or gateway=). Its "PrivateKey = " line is
// empty: the private key lives only on the device, and the client fills
// it in.
func (s *Server) handleDeviceWireGuard(w http.ResponseWriter, r *http.Request, p Principal) {
	q := r.URL.Query()
	var cfg wgconf.Config
	var gw gateways.Gateway
	var err error
	name := ""
	if entry := q.Get("entry"); entry != "" || q.Has("exit") {
		exit := q.Get("exit")
		if exit == "" {
			exit = q.Get("gateway")
		}
		var in gateways.Gateway
		cfg, in, gw, err = s.cfg.Devices.WireGuardMultihop(r.Context(), p.AccountID, r.PathValue("id"), entry, exit)
		name = in.Region + "-"
	} else {
		cfg, gw, err = s.cfg.Devices.WireGuard(r.Context(), p.AccountID, r.PathValue("id"), q.Get("gateway"))
	}
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="nitronet-`+name+gw.Region+`.conf"`)
	_, _ = w.Write([]byte(cfg.Render()))
}
