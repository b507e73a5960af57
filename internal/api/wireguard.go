package api

import (
	"net/http"
)

// handleDeviceWireGuard answers GET /api/v1/devices/{id}/wireguard?gateway=G
// (G an enrolled gateway's id or region; optional when there is only one)
// with a wg-quick configuration for the caller's device and that gateway,
// built by the devices service. Its "PrivateKey = " line is empty: the
// private key lives only on the device, and the client fills it in.
func (s *Server) handleDeviceWireGuard(w http.ResponseWriter, r *http.Request, p Principal) {
	cfg, gw, err := s.cfg.Devices.WireGuard(r.Context(), p.AccountID, r.PathValue("id"), r.URL.Query().Get("gateway"))
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="nitronet-`+gw.Region+`.conf"`)
	_, _ = w.Write([]byte(cfg.Render()))
}
