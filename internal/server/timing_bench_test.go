package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/spf13/pflag"
)

// The timing benchmarks of issue 10, finding 4: a request about an address
// with an account and one about an address without must take the same
// time. Each benchmark mixes the two cases in one run (the machine is
// shared and noisy) and reports each case's median and their ratio; see
// docs/benchmarks.md.
//
//	go test ./internal/server -run '^$' -bench 'Timing' -benchtime 200x

// benchServer assembles a server on backend back with limits nobody hits,
// serving on an httptest listener.
func benchServer(b *testing.B, back storetest.Backend) (*server.Server, string) {
	b.Helper()
	var cfg config.Settings
	cfg.Bind(pflag.NewFlagSet("serve", pflag.ContinueOnError))
	cfg.DataDir = b.TempDir()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	lim := httpedge.Limits{SignupPerHour: 1e9, SignupBurst: 1e6, LoginPerHour: 1e9, LoginBurst: 1e6,
		VerifyPerHour: 1e9, VerifyBurst: 1e6, ResetPerHour: 1e9, ResetBurst: 1e6}
	srv, err := server.New(context.Background(), cfg, server.Deps{Logger: slog.New(slog.DiscardHandler),
		Clock: time.Now, Rand: rand.Reader, Limits: &lim, Store: back.OpenSQL(b, storetest.DefaultPool())})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler)
	b.Cleanup(func() { hs.Close(); srv.Close() })
	return srv, hs.URL
}

// post sends a JSON POST and returns how long the answer took.
func post(b *testing.B, url string, body any, want int) time.Duration {
	b.Helper()
	j, _ := json.Marshal(body)
	start := time.Now()
	resp, err := http.Post(url, "application/json", bytes.NewReader(j))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode != want {
		b.Fatalf("POST %s: got %d, want %d", url, resp.StatusCode, want)
	}
	return d
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// pick chooses the case of iteration i: a fixed pseudo-random sequence,
// not strict alternation, whose period would line up with the garbage
// collector's (each argon2id hash allocates 19 MiB) and bias one case.
func pick(i int) bool {
	x := uint64(i)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	x ^= x >> 31
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 29
	return x&1 == 0
}

// report records the medians of the two cases, named a and b, and their
// ratio a/b.
func report(tb *testing.B, a string, as []time.Duration, b string, bs []time.Duration) {
	ma, mb := median(as), median(bs)
	tb.ReportMetric(float64(ma.Microseconds()), a+"-µs")
	tb.ReportMetric(float64(mb.Microseconds()), b+"-µs")
	if mb > 0 {
		tb.ReportMetric(float64(ma)/float64(mb), a+"/"+b)
	}
}

// BenchmarkResetTiming: POST /api/v1/password-reset for an address with an
// account and for one without.
func BenchmarkResetTiming(b *testing.B) {
	for _, back := range storetest.Backends() {
		b.Run(back.Name, func(b *testing.B) {
			srv, url := benchServer(b, back)
			if _, err := srv.Accounts.Signup(context.Background(), "known@example.com", "+447911100999", strongPW); err != nil {
				b.Fatal(err)
			}
			var known, unknown []time.Duration
			b.ResetTimer()
			for i := range b.N {
				if pick(i) {
					known = append(known, post(b, url+"/api/v1/password-reset", map[string]string{"email": "known@example.com"}, 202))
				} else {
					unknown = append(unknown, post(b, url+"/api/v1/password-reset", map[string]string{"email": fmt.Sprintf("ghost%d@example.com", i)}, 202))
				}
				if i%50 == 49 {
					// The worker's share, outside the measured requests.
					b.StopTimer()
					if _, err := srv.Outbound.Drain(context.Background()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
			b.StopTimer()
			report(b, "known", known, "unknown", unknown)
		})
	}
}

// BenchmarkSignupTiming: POST /api/v1/accounts with a new address and
// with the address of an existing account. Both hash the password.
func BenchmarkSignupTiming(b *testing.B) {
	for _, back := range storetest.Backends() {
		b.Run(back.Name, func(b *testing.B) {
			srv, url := benchServer(b, back)
			if _, err := srv.Accounts.Signup(context.Background(), "taken@example.com", "+447911100998", strongPW); err != nil {
				b.Fatal(err)
			}
			var fresh, taken []time.Duration
			b.ResetTimer()
			for i := range b.N {
				mobile := fmt.Sprintf("+4479111%05d", i%90000+1000)
				if pick(i) {
					fresh = append(fresh, post(b, url+"/api/v1/accounts", map[string]string{"email": fmt.Sprintf("new%d@example.com", i), "mobile": mobile, "password": strongPW2}, 201))
				} else {
					taken = append(taken, post(b, url+"/api/v1/accounts", map[string]string{"email": "taken@example.com", "mobile": mobile, "password": strongPW2}, 201))
				}
				if i%20 == 19 {
					b.StopTimer()
					if _, err := srv.Outbound.Drain(context.Background()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
			b.StopTimer()
			report(b, "new", fresh, "taken", taken)
		})
	}
}
