package server_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/server"
)

// runListening runs cfg's server (Run, as serve does) on loopback ports
// until the test ends, and returns its main and metrics base URLs.
func runListening(t *testing.T, cfg config.Settings) (main, metrics string) {
	t.Helper()
	cfg.DataDir, cfg.Listen, cfg.Transport.MetricsListen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	stdout := &lockedBuffer{}
	srv, err := server.New(context.Background(), cfg, server.Deps{Logger: slog.New(slog.DiscardHandler),
		Clock: time.Now, Rand: rand.Reader, Stdout: stdout})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		srv.Close()
	})
	waitUntil(t, 10*time.Second, "the metrics listener", func() bool { return strings.Contains(stdout.String(), "Metrics on") })
	out := stdout.String()
	main = regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out)[1]
	metrics = strings.TrimSuffix(regexp.MustCompile(`Metrics on (http://\S+)`).FindStringSubmatch(out)[1], "/metrics")
	return main, metrics
}

// get GETs url with the Bearer token (none if empty) and returns the
// status and body.
func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsListener reproduces the finding that /metrics answered
// anyone on the main listener: it is now served on --metrics-listen
// (loopback by default), and on the main listener only with
// --metrics-token, to callers that send it.
func TestMetricsListener(t *testing.T) {
	const series = "nitronet_live_sessions"
	t.Run("default", func(t *testing.T) {
		main, metrics := runListening(t, config.Default())
		if status, body := get(t, main+"/metrics", ""); status != 404 || strings.Contains(body, series) {
			t.Errorf("main listener /metrics: got %d, want 404 without metrics", status)
		}
		if status, body := get(t, metrics+"/metrics", ""); status != 200 || !strings.Contains(body, series) {
			t.Errorf("metrics listener /metrics: got %d %q, want 200 with %s", status, body, series)
		}
		if status, _ := get(t, metrics+"/api/v1/policy", ""); status != 404 {
			t.Errorf("metrics listener serves the API: got %d, want 404", status)
		}
	})
	t.Run("token", func(t *testing.T) {
		cfg := config.Default()
		tok := "metrics-token-0123456789"
		cfg.Transport.MetricsToken = tok
		main, metrics := runListening(t, cfg)
		for _, base := range []string{main, metrics} {
			for _, bad := range []string{"", "metrics-token-0123456788", tok + "x"} {
				if status, body := get(t, base+"/metrics", bad); status != 401 || strings.Contains(body, series) {
					t.Errorf("%s/metrics with token %q: got %d, want 401", base, bad, status)
				}
			}
			if status, body := get(t, base+"/metrics", tok); status != 200 || !strings.Contains(body, series) {
				t.Errorf("%s/metrics with the token: got %d, want 200 with %s", base, status, series)
			}
		}
	})
}

// TestBehindProxy: behind a TLS-terminating proxy the portal's cookies
// are Secure (with the __Host- prefix) and pages send HSTS, though the
// request arrives in plain HTTP and says nothing about its scheme; with
// a trusted proxy, rate limits count each client by X-Forwarded-For, and
// from any other peer the header is ignored. The header's addresses are
// never logged.
func TestBehindProxy(t *testing.T) {
	newServer := func(t *testing.T, trusted ...string) (*httptest.Server, *lockedBuffer) {
		cfg := testConfig(t, t.TempDir())
		cfg.Listen = "0.0.0.0:8080" // only Validate sees it: plain HTTP off loopback
		cfg.Transport.BehindProxy = true
		cfg.Transport.TrustedProxy = trusted
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		logs := &lockedBuffer{}
		lim := httpedge.DefaultLimits()
		lim.ResetBurst = 1
		srv, err := server.New(context.Background(), cfg, server.Deps{
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Clock:  time.Now, Rand: rand.Reader, Stdout: io.Discard, Limits: &lim,
		})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler)
		t.Cleanup(func() { hs.Close(); srv.Close() })
		return hs, logs
	}
	t.Run("secure cookies", func(t *testing.T) {
		hs, _ := newServer(t)
		resp, err := http.Get(hs.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cookies := resp.Cookies()
		if len(cookies) == 0 {
			t.Fatal("GET /login set no cookie")
		}
		for _, c := range cookies {
			if !c.Secure || !strings.HasPrefix(c.Name, "__Host-") {
				t.Errorf("cookie %s: Secure %v, want Secure with the __Host- prefix", c.Name, c.Secure)
			}
		}
		if hsts := resp.Header.Get("Strict-Transport-Security"); hsts == "" {
			t.Error("no Strict-Transport-Security behind the proxy")
		}
	})
	// reset asks for a password reset as the client whose address the
	// proxy puts in X-Forwarded-For, and returns the status.
	reset := func(t *testing.T, hs *httptest.Server, client string, n int) int {
		req, _ := http.NewRequest("POST", hs.URL+"/api/v1/password-reset",
			strings.NewReader(fmt.Sprintf(`{"email":"proxy%d@example.com"}`, n)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("trusted proxy", func(t *testing.T) {
		hs, logs := newServer(t, "127.0.0.1", "::1")
		if got := reset(t, hs, "203.0.113.7", 1); got != 202 {
			t.Fatalf("first client: got %d, want 202", got)
		}
		if got := reset(t, hs, "203.0.113.7", 2); got != 429 {
			t.Fatalf("first client again: got %d, want 429 (its budget is spent)", got)
		}
		if got := reset(t, hs, "203.0.113.8", 3); got != 202 {
			t.Fatalf("second client: got %d, want 202 (a budget of its own)", got)
		}
		// A client cannot pick a fresh key by sending the header itself:
		// the proxy appends its peer after it.
		if got := reset(t, hs, "198.51.100.1, 203.0.113.7", 4); got != 429 {
			t.Fatalf("forged hop: got %d, want 429", got)
		}
		if strings.Contains(logs.String(), "203.0.113.") || strings.Contains(logs.String(), "198.51.100.") {
			t.Errorf("the logs hold a forwarded address:\n%s", logs.String())
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		hs, _ := newServer(t) // behind a proxy, but none trusted
		if got := reset(t, hs, "203.0.113.7", 1); got != 202 {
			t.Fatalf("first request: got %d, want 202", got)
		}
		if got := reset(t, hs, "203.0.113.8", 2); got != 429 {
			t.Fatalf("another X-Forwarded-For from the same peer: got %d, want 429 (the header is not trusted)", got)
		}
	})
}
