package api

import (
	"net/http"

	"github.com/nitronet/nitronet/internal/gwproto"
)

// handleGatewayHello records what a gateway reports about itself at start
// (POST /api/v1/gateway/hello, see docs/gateway-protocol.md).
func (s *Server) handleGatewayHello(w http.ResponseWriter, r *http.Request) {
	var req gwproto.HelloRequest
	if err := decode(w, r, &req); err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	resp, err := s.cfg.Gateways.Hello(r.Context(), GatewayFrom(r.Context()), req)
	if err != nil {
		writeError(w, s.cfg.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
