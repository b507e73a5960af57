package tunnel

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"time"
)

// httpProxy is an HTTP proxy whose outgoing connections go through dial. It
// supports CONNECT tunnels and forwarding of absolute-form http:// requests.
// It adds no forwarding headers and logs no destinations.
type httpProxy struct {
	ctx     context.Context // canceled when the tunnel closes
	dial    dialFunc
	log     *slog.Logger
	conns   *connSet // hijacked CONNECT connections
	timeout time.Duration
	rp      *httputil.ReverseProxy
	tr      *http.Transport
}

func newHTTPProxy(ctx context.Context, dial dialFunc, logger *slog.Logger, conns *connSet, timeout time.Duration) *httpProxy {
	p := &httpProxy{ctx: ctx, dial: dial, log: logger, conns: conns, timeout: timeout}
	p.tr = &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		MaxIdleConns:          32,
		IdleConnTimeout:       60 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
	}
	p.rp = &httputil.ReverseProxy{
		// The outgoing request is already a clone of the incoming one with
		// hop-by-hop headers (Proxy-Connection, Proxy-Authorization, …)
		// removed and its absolute URL kept; no X-Forwarded-* is added.
		Rewrite:   func(*httputil.ProxyRequest) {},
		Transport: p.tr,
		ErrorLog:  log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.log.Debug("http proxy: upstream request failed")
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return p
}

// server returns an http.Server for p that logs nothing about clients.
func (p *httpProxy) server() *http.Server {
	return &http.Server{
		Handler:           p,
		ReadHeaderTimeout: p.timeout,
		ErrorLog:          log.New(io.Discard, "", 0),
		BaseContext:       func(net.Listener) context.Context { return p.ctx },
	}
}

// ServeHTTP implements http.Handler.
func (p *httpProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	if !r.URL.IsAbs() || r.URL.Scheme != "http" || r.URL.Host == "" {
		http.Error(w, "this is a proxy: send absolute http:// URLs or use CONNECT", http.StatusBadRequest)
		return
	}
	p.rp.ServeHTTP(w, r)
}

func (p *httpProxy) connect(w http.ResponseWriter, r *http.Request) {
	if _, _, err := net.SplitHostPort(r.Host); err != nil {
		http.Error(w, "CONNECT needs host:port", http.StatusBadRequest)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "hijacking not supported", http.StatusInternalServerError)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	up, err := p.dial(ctx, "tcp", r.Host)
	cancel()
	if err != nil {
		p.log.Debug("http proxy: connect through tunnel failed")
		http.Error(w, "cannot reach destination through the tunnel", http.StatusBadGateway)
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	if !p.conns.add(c) {
		c.Close()
		up.Close()
		return
	}
	defer p.conns.remove(c)
	if !p.conns.add(up) {
		c.Close()
		up.Close()
		return
	}
	defer p.conns.remove(up)
	_ = c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		c.Close()
		up.Close()
		return
	}
	// Bytes the client sent behind its request are already buffered.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			c.Close()
			up.Close()
			return
		}
	}
	splice(c, up)
}

// close closes idle upstream connections.
func (p *httpProxy) close() { p.tr.CloseIdleConnections() }
