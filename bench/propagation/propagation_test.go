package propagation

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/wgkey"
)

const (
	// pollEvery is how often the gateway's peer count is read while
	// waiting; it bounds the measurement's resolution.
	pollEvery = 100 * time.Microsecond
	// sampleTimeout fails the benchmark if one change takes longer.
	sampleTimeout = 10 * time.Second
)

// BenchmarkPeerPropagation measures peer propagation on each storage
// engine: one iteration registers a device with POST /api/v1/devices on an
// assembled control server served over HTTP on 127.0.0.1, waits until a
// userspace-mode gateway following that server's peer feed (long-poll over
// HTTP) has admitted the peer, then deletes the device with DELETE
// /api/v1/devices/{id} and waits until the gateway has dropped it, so every
// addition meets the same preloaded peers. NITRONET_BENCH_PEERS sets how
// many devices are registered beforehand (default 10,000).
//
// Metrics, over all iterations (nearest-rank percentiles, in ms):
//
//	add-p50-ms, add-p99-ms, add-max-ms  from sending the POST to the peer
//	                                    being admitted by the gateway
//	api-p50-ms, api-p99-ms              the POST's round trip alone
//	after-p99-ms                        from the POST's answer to the peer
//	                                    being admitted (0 when the peer
//	                                    was there first)
//	rm-p50-ms, rm-p99-ms                from sending the DELETE to the peer
//	                                    being gone from the gateway
//	peers                               peers admitted before each addition
//	gateway-start-ms                    the gateway's start, from Run to
//	                                    every preloaded peer admitted
//	                                    (once, in the setup)
//	gateway-start-cpu-ms                the CPU time server and gateway
//	                                    used meanwhile
//
// ns/op is one whole addition-and-removal cycle. The setup (devices
// bulk-inserted through the store, one verified account made through the
// API, the gateway's enrolment and full sync) runs once per engine,
// outside the timed loop. Use -benchtime 200x for 200 samples.
func BenchmarkPeerPropagation(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) { benchPropagation(b, engine) })
	}
}

func benchPropagation(b *testing.B, engine string) {
	r := newRig(b, engine, benchPeers(b))
	api := &apiClient{base: r.url, hc: &http.Client{Timeout: 30 * time.Second}}
	if err := api.signup(b.Context(), r.outbox()); err != nil {
		b.Fatal(err)
	}
	gw, started, startCPU := r.startGateway(b, engine)
	base := gw.Peers()

	var add, apiRT, after, rm []time.Duration
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
		if err := api.call(b.Context(), "POST", "/api/v1/devices",
			map[string]string{"name": fmt.Sprintf("bench %d", n), "public_key": k.Public().String()},
			http.StatusCreated, &dev); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		t2 := waitPeers(b, gw, base+1, sampleTimeout)
		add = append(add, t2.Sub(t0))
		apiRT = append(apiRT, t1.Sub(t0))
		after = append(after, max(0, t2.Sub(t1)))

		t3 := time.Now()
		if err := api.call(b.Context(), "DELETE", "/api/v1/devices/"+dev.ID, nil, http.StatusNoContent, nil); err != nil {
			b.Fatal(err)
		}
		rm = append(rm, waitPeers(b, gw, base, sampleTimeout).Sub(t3))
		n++
	}
	for _, s := range [][]time.Duration{add, apiRT, after, rm} {
		slices.Sort(s)
	}
	b.ReportMetric(ms(percentile(add, 50)), "add-p50-ms")
	b.ReportMetric(ms(percentile(add, 99)), "add-p99-ms")
	b.ReportMetric(ms(percentile(add, 100)), "add-max-ms")
	b.ReportMetric(ms(percentile(apiRT, 50)), "api-p50-ms")
	b.ReportMetric(ms(percentile(apiRT, 99)), "api-p99-ms")
	b.ReportMetric(ms(percentile(after, 99)), "after-p99-ms")
	b.ReportMetric(ms(percentile(rm, 50)), "rm-p50-ms")
	b.ReportMetric(ms(percentile(rm, 99)), "rm-p99-ms")
	b.ReportMetric(float64(base), "peers")
	b.ReportMetric(ms(started), "gateway-start-ms")
	b.ReportMetric(ms(startCPU), "gateway-start-cpu-ms")
	b.Logf("%s: %d additions and removals with %d peers admitted; add p50 %v p99 %v max %v; remove p50 %v p99 %v",
		engine, len(add), base, percentile(add, 50), percentile(add, 99), percentile(add, 100),
		percentile(rm, 50), percentile(rm, 99))
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
		// Serve's outbound worker writes the codes a moment later.
		code, err := outboxCode(outbox, ch.outbox)
		for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond) // polling another goroutine's files
			code, err = outboxCode(outbox, ch.outbox)
		}
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
