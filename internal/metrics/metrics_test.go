package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/metrics"
)

func TestExposition(t *testing.T) {
	r := metrics.New()
	r.Gauge("nitronet_live_sessions", "Open sessions.", func() []metrics.Sample {
		return []metrics.Sample{
			{Labels: map[string]string{"gateway": "gw_a", "b": `x"y\z`}, Value: 3},
			{Labels: map[string]string{"gateway": "gw_b"}, Value: 0},
		}
	})
	r.Gauge("nitronet_overdue", "Overdue requests.", func() []metrics.Sample { return []metrics.Sample{{Value: 2}} })
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	want := `# HELP nitronet_live_sessions Open sessions.
# TYPE nitronet_live_sessions gauge
nitronet_live_sessions{b="x\"y\\z",gateway="gw_a"} 3
nitronet_live_sessions{gateway="gw_b"} 0
# HELP nitronet_overdue Overdue requests.
# TYPE nitronet_overdue gauge
nitronet_overdue 2
`
	if string(body) != want {
		t.Fatalf("got\n%s\nwant\n%s", body, want)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("got Content-Type %q, want text/plain", ct)
	}
}
