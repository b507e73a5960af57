package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
)

// metricsHandler serves the metrics registry. With --metrics-token it
// answers only requests that send the token as a Bearer token (compared
// in constant time), and 401 to every other.
func (s *Server) metricsHandler() http.Handler {
	tok := s.Config.Transport.MetricsToken
	if tok == "" {
		return s.Metrics
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(tok)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nitronet metrics"`)
			httpedge.WriteError(w, s.deps.Logger, errs.E(errs.Unauthenticated, "metrics need the --metrics-token as a Bearer token"))
			return
		}
		s.Metrics.ServeHTTP(w, r)
	})
}

// startMetrics serves GET /metrics on --metrics-listen, if set, until ctx
// ends or stop is called. It returns once it listens; a busy address is
// an error naming the flag.
func (s *Server) startMetrics(ctx context.Context) (stop func(), err error) {
	addr := s.Config.Transport.MetricsListen
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	stop = s.serveSide(ctx, ln, s.edge(mux), "metrics listener")
	fmt.Fprintf(s.deps.Stdout, "Metrics on http://%s/metrics\n", ln.Addr())
	return stop, nil
}

// serveSide serves h on ln, a listener beside the main one, with the main
// listener's timeouts, logging a failure as name, until the returned stop
// is called; stop closes the server and waits for it to end.
func (s *Server) serveSide(ctx context.Context, ln net.Listener, h http.Handler, name string) (stop func()) {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.deps.Logger.Error(name, "err", err)
		}
	}()
	return func() { hs.Close(); <-done }
}
