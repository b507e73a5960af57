package propagation

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/wgkey"
)

const (
	// preloadPeers is how many devices exist, and are configured on the
	// gateway, before the first measured addition.
	preloadPeers = 10_000
	// preloadPerAccount spreads the preloaded devices over accounts, as
	// the default --device-limit would.
	preloadPerAccount = 5
	// pollEvery is how often the gateway's peer count is read while
	// waiting; it bounds the measurement's resolution.
	pollEvery = 100 * time.Microsecond
	// sampleTimeout fails the benchmark if one change takes longer.
	sampleTimeout = 10 * time.Second
	// syncTimeout bounds the gateway's initial sync of the preloaded peers.
	syncTimeout = 5 * time.Minute
)

// BenchmarkPeerPropagation measures peer propagation on each storage
// engine: one iteration registers a device with POST /api/v1/devices on an
// assembled control server served over HTTP on 127.0.0.1, waits until a
// userspace-mode gateway following that server's peer feed (long-poll over
// HTTP) has the peer on its wireguard-go device, then deletes the device
// with DELETE /api/v1/devices/{id} and waits until the gateway has dropped
// it, so every addition meets the same 10,000 configured peers.
//
// Metrics, over all iterations (nearest-rank percentiles, in ms):
//
//	add-p50-ms, add-p99-ms, add-max-ms  from sending the POST to the peer
//	                                    being on the gateway's device
//	api-p50-ms, api-p99-ms              the POST's round trip alone
//	after-p99-ms                        from the POST's answer to the peer
//	                                    being on the device (0 when the
//	                                    peer was there first)
//	rm-p50-ms, rm-p99-ms                from sending the DELETE to the peer
//	                                    being gone from the device
//	peers                               peers on the gateway before each
//	                                    addition
//
// ns/op is one whole addition-and-removal cycle. The setup (10,000 devices
// inserted through the store, one verified account made through the API,
// gateway enrolment and its full sync) runs once per engine, outside the
// timed loop. Use -benchtime 200x for 200 samples.
func BenchmarkPeerPropagation(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) { benchPropagation(b, engine) })
	}
}

func benchPropagation(b *testing.B, engine string) {
	r := newRig(b, engine)
	base := r.gw.Peers()
	var add, api, after, rm []time.Duration
	n := 0
	for b.Loop() {
		k, err := wgkey.Generate(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		var dev struct {
			ID string `json:"id"`
		}
		t0 := time.Now()
		if err := r.api.call(b.Context(), "POST", "/api/v1/devices",
			map[string]string{"name": fmt.Sprintf("bench %d", n), "public_key": k.Public().String()},
			http.StatusCreated, &dev); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		t2 := waitPeers(b, r.gw, base+1, sampleTimeout)
		add = append(add, t2.Sub(t0))
		api = append(api, t1.Sub(t0))
		after = append(after, max(0, t2.Sub(t1)))

		t3 := time.Now()
		if err := r.api.call(b.Context(), "DELETE", "/api/v1/devices/"+dev.ID, nil, http.StatusNoContent, nil); err != nil {
			b.Fatal(err)
		}
		t4 := waitPeers(b, r.gw, base, sampleTimeout)
		rm = append(rm, t4.Sub(t3))
		n++
	}
	for _, s := range [][]time.Duration{add, api, after, rm} {
		slices.Sort(s)
	}
	b.ReportMetric(ms(percentile(add, 50)), "add-p50-ms")
	b.ReportMetric(ms(percentile(add, 99)), "add-p99-ms")
	b.ReportMetric(ms(percentile(add, 100)), "add-max-ms")
	b.ReportMetric(ms(percentile(api, 50)), "api-p50-ms")
	b.ReportMetric(ms(percentile(api, 99)), "api-p99-ms")
	b.ReportMetric(ms(percentile(after, 99)), "after-p99-ms")
	b.ReportMetric(ms(percentile(rm, 50)), "rm-p50-ms")
	b.ReportMetric(ms(percentile(rm, 99)), "rm-p99-ms")
	b.ReportMetric(float64(base), "peers")
	b.Logf("%s: %d additions and removals with %d peers configured; add p50 %v p99 %v max %v; remove p50 %v p99 %v",
		engine, len(add), base, percentile(add, 50), percentile(add, 99), percentile(add, 100),
		percentile(rm, 50), percentile(rm, 99))
}

// rig is an assembled control server serving HTTP on 127.0.0.1 with
// preloadPeers devices, a gateway in userspace mode following it that has
// synced them, and an API client logged in to a verified account.
type rig struct {
	api *apiClient
	gw  *gateway.Gateway
}

// newRig builds a rig on engine ("sqlite" or "postgres"; the latter is
// skipped unless NITRONET_TEST_POSTGRES is set). Everything is stopped and
// removed when b ends: the gateway first, then the server, then the store.
func newRig(b *testing.B, engine string) *rig {
	b.Helper()
	ctx := b.Context()
	quiet := slog.New(slog.DiscardHandler)

	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	if engine == "postgres" {
		cfg.Database = storetest.PostgresURL(b) // skips b without a server
	}
	st, err := server.OpenStore(ctx, cfg, quiet)
	if err != nil {
		b.Fatalf("open %s store: %v", engine, err)
	}
	start := time.Now()
	if err := preload(ctx, st, preloadPeers); err != nil {
		st.Close()
		b.Fatalf("preload: %v", err)
	}
	b.Logf("%s: preloaded %d devices through the store in %v", engine, preloadPeers, time.Since(start).Round(time.Millisecond))

	srv, err := server.New(ctx, cfg, server.Deps{Logger: quiet, Clock: time.Now, Rand: rand.Reader, Store: st})
	if err != nil {
		st.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(srvCtx, ln) }()
	b.Cleanup(func() {
		stopSrv()
		if err := <-served; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	url := "http://" + ln.Addr().String()

	api := &apiClient{base: url, hc: &http.Client{Timeout: 30 * time.Second}}
	if err := api.signup(ctx, filepath.Join(cfg.DataDir, "outbox")); err != nil {
		b.Fatal(err)
	}

	_, token, err := srv.Gateways.Add(ctx, staff.System(), "bench", "127.0.0.1:51820")
	if err != nil {
		b.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{ServerURL: url, Token: token, Mode: gateway.ModeUserspace, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	gwCtx, stopGW := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- gw.Run(gwCtx) }()
	b.Cleanup(func() {
		stopGW()
		if err := <-ran; err != nil {
			b.Errorf("gateway: %v", err)
		}
	})
	select {
	case <-gw.Ready():
	case err := <-ran:
		b.Fatalf("gateway stopped before it was ready: %v", err)
	case <-time.After(time.Minute):
		b.Fatal("gateway not ready after a minute")
	}
	start = time.Now()
	waitPeers(b, gw, preloadPeers, syncTimeout)
	b.Logf("%s: gateway synced %d peers in %v", engine, preloadPeers, time.Since(start).Round(time.Millisecond))
	return &rig{api: api, gw: gw}
}

// preload inserts n devices through the store, preloadPerAccount to an
// account, with accounts created directly in the store (their sealed
// contact fields are placeholders; nothing here decrypts them). The
// Store interface has no bulk insert, so each account and device is its
// own transaction, exactly as registration writes them.
func preload(ctx context.Context, st store.Store, n int) error {
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for a := 0; a*preloadPerAccount < n; a++ {
		id := fmt.Sprintf("acc_preload%06d", a)
		acct := &store.Account{
			ID:           id,
			EmailSealed:  []byte("sealed-email-" + id),
			MobileSealed: []byte("sealed-mobile-" + id),
			WrappedKey:   []byte("wrapped-key-" + id),
			EmailIndex:   []byte("email-index-" + id),
			MobileIndex:  []byte("mobile-index-" + id),
			PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$preloaded",
			Status:       store.StatusActive,
			CreatedAt:    created,
		}
		if err := st.CreateAccount(ctx, acct); err != nil {
			return fmt.Errorf("account %s: %w", id, err)
		}
		for i := a * preloadPerAccount; i < min(n, (a+1)*preloadPerAccount); i++ {
			d := &store.Device{
				ID:        fmt.Sprintf("dev_preload%06d", i),
				AccountID: id,
				Name:      "preloaded",
				PublicKey: storetest.PublicKey(i),
				CreatedAt: created,
			}
			if err := st.CreateDevice(ctx, d, preloadPerAccount); err != nil {
				return fmt.Errorf("device %s: %w", d.ID, err)
			}
		}
	}
	return nil
}

// waitPeers polls gw until it has want peers and returns the time it saw
// them; it fails b after timeout.
func waitPeers(b *testing.B, gw *gateway.Gateway, want int, timeout time.Duration) time.Time {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if gw.Peers() == want {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("gateway has %d peers after %v, want %d", gw.Peers(), timeout, want)
		}
		time.Sleep(pollEvery)
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, or 0 if it is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// apiClient calls the control server's JSON API, with a bearer token once
// signup has logged in. It is not safe for concurrent use.
type apiClient struct {
	base  string
	hc    *http.Client
	token string
}

// call sends in (if not nil) as JSON and decodes the answer into out (if not
// nil). It returns an error unless the status is want.
func (c *apiClient) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: got status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// signup creates an account through the API, logs in, and verifies its
// email and mobile with the codes the server wrote to outbox.
func (c *apiClient) signup(ctx context.Context, outbox string) error {
	const email, mobile, password = "bench@example.com", "+447911100123", "benchmark password"
	if err := c.call(ctx, "POST", "/api/v1/accounts",
		map[string]string{"email": email, "mobile": mobile, "password": password}, http.StatusCreated, nil); err != nil {
		return err
	}
	var sess struct {
		Token string `json:"token"`
	}
	if err := c.call(ctx, "POST", "/api/v1/sessions",
		map[string]string{"email": email, "password": password}, http.StatusCreated, &sess); err != nil {
		return err
	}
	c.token = sess.Token
	for _, ch := range []struct{ api, outbox string }{{"email", "email"}, {"mobile", "sms"}} {
		code, err := outboxCode(outbox, ch.outbox)
		if err != nil {
			return err
		}
		if err := c.call(ctx, "POST", "/api/v1/me/verify",
			map[string]string{"channel": ch.api, "code": code}, http.StatusOK, nil); err != nil {
			return err
		}
	}
	return nil
}

// outboxCode returns the 6-digit code in the body of the newest
// verification message for channel ("email" or "sms") in the outbox
// directory dir.
func outboxCode(dir, channel string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	code := regexp.MustCompile(`\b(\d{6})\b`)
	for _, e := range slices.Backward(entries) { // names start with a timestamp
		if !strings.Contains(e.Name(), "verify-code") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", fmt.Errorf("outbox: %w", err)
		}
		head, body, ok := strings.Cut(string(b), "\n\n")
		if !ok || !strings.HasPrefix(head, "Channel: "+channel+"\n") {
			continue
		}
		if m := code.FindStringSubmatch(body); m != nil {
			return m[1], nil
		}
	}
	return "", errors.New("outbox: no verification code for " + channel)
}
