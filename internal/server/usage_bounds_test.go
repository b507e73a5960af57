package server_test

import (
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestGatewayReportBounds reproduces the finding that a gateway could
// report intervals from 1900 to 9999, which retention (it deletes
// intervals that ended before its cut-off) never reached: an open
// interval from 1900, one from 1900 to 1901, and one ending in 9999 were
// each answered 204 and recorded. Each is now refused with 400, and the
// account's usage holds only the honest interval.
func TestGatewayReportBounds(t *testing.T) {
	e := newEnv(t, storetest.Backends()[0], nil)
	_, tok := e.signup("bounds@example.com", "+447911100788")
	dev := e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "phone", "public_key": newKey(t)}, 201)["id"].(string)
	_, enrollTok, err := e.srv.Gateways.Add(t.Context(), gatewayAdmin, "eu-west", "198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	cred := e.want("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": enrollTok, "public_key": newKey(t)}, 201)["credential"].(string)

	y1900 := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	y9999 := time.Date(9999, 12, 31, 23, 59, 0, 0, time.UTC)
	now := time.Now().UTC().Truncate(time.Minute)
	for name, iv := range map[string]map[string]any{
		"open since 1900":  {"device_id": dev, "start": y1900},
		"1900 to 1901":     {"device_id": dev, "start": y1900, "end": y1900.AddDate(1, 0, 0)},
		"now to 9999":      {"device_id": dev, "start": now, "end": y9999},
		"from 9999":        {"device_id": dev, "start": y9999},
		"a year before it": {"device_id": dev, "start": now.AddDate(-1, 0, 0), "end": now},
	} {
		t.Run(name, func(t *testing.T) {
			out := e.with(t).want("POST", "/api/v1/gateway/sessions", cred, map[string]any{"intervals": []any{iv}}, 400)
			if f := out["error"].(map[string]any)["field"]; f != "intervals.start" && f != "intervals.end" {
				t.Errorf("error field %v, want intervals.start or intervals.end", f)
			}
		})
	}
	e.want("POST", "/api/v1/gateway/sessions", cred, map[string]any{"intervals": []any{
		map[string]any{"device_id": dev, "start": now}}}, 204)
	sessions := e.want("GET", "/api/v1/me/usage?days=3660", tok, nil, 200)["sessions"].([]any)
	if len(sessions) != 1 || sessions[0].(map[string]any)["started_at"] != now.Format(time.RFC3339) {
		t.Fatalf("usage %v, want only the session from %s", sessions, now.Format(time.RFC3339))
	}
}
