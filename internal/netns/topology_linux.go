package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Fixed interface names of a Topology.
const (
	// ClientIf is the client's transit interface in each client namespace.
	ClientIf = "eth0"
	// ServerIf is the server's interface in the server namespace.
	ServerIf = "eth0"
	// GatewayUplinkIf is the gateway's interface towards the server.
	GatewayUplinkIf = "uplink0"
)

// Topology is a small VPN test network:
//
//	client_i [eth0 198.18.i.2/24] <-> [cl<i> 198.18.i.1/24] gateway
//	gateway [uplink0 198.19.0.1/24] <-> [eth0 198.19.0.2/24] server
//
// The gateway's default route points at the server, which plays "the
// internet". Clients have no route beyond their transit link and the
// server has no route beyond its link, so a client reaches the server only
// through a tunnel and the server can answer only if the gateway
// masquerades. Nothing enables forwarding: that is the gateway's job (or
// call Gateway.EnableForwarding for a plain-routing baseline).
//
// The exported fields must not be modified. AddClient is safe for
// concurrent use.
type Topology struct {
	Gateway *NS
	Server  *NS
	// Client is the first client, created by NewTopology.
	Client *Client

	GatewayUplinkAddr netip.Prefix // 198.19.0.1/24 on GatewayUplinkIf
	ServerAddr        netip.Prefix // 198.19.0.2/24 on ServerIf

	mu      sync.Mutex
	clients int
}

// Client is one client namespace of a Topology.
type Client struct {
	NS *NS
	// Addr is the client's transit address on ClientIf, 198.18.i.2/24.
	Addr netip.Prefix
	// GatewayAddr is the gateway's address on the same link, 198.18.i.1/24;
	// it is the client's tunnel endpoint.
	GatewayAddr netip.Prefix
	// GatewayIf is the gateway's interface name for this link, "cl<i>".
	GatewayIf string
}

// NewTopology builds a Topology with one client for the test t. All
// namespaces are removed by t.Cleanup. It skips or fails like Require.
func NewTopology(t testing.TB) *Topology {
	t.Helper()
	tp := &Topology{
		Gateway:           New(t),
		Server:            New(t),
		GatewayUplinkAddr: netip.MustParsePrefix("198.19.0.1/24"),
		ServerAddr:        netip.MustParsePrefix("198.19.0.2/24"),
	}
	err := Connect(
		End{NS: tp.Gateway, IfName: GatewayUplinkIf, Addr: tp.GatewayUplinkAddr},
		End{NS: tp.Server, IfName: ServerIf, Addr: tp.ServerAddr},
	)
	if err == nil {
		err = tp.Gateway.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), tp.ServerAddr.Addr())
	}
	if err != nil {
		t.Fatalf("topology: %v", err)
	}
	tp.Client = tp.AddClient(t)
	return tp
}

// AddClient adds a client namespace linked to the gateway on the next free
// 198.18.i.0/24 (at most 256 clients).
func (tp *Topology) AddClient(t testing.TB) *Client {
	t.Helper()
	tp.mu.Lock()
	i := tp.clients
	tp.clients++
	tp.mu.Unlock()
	if i > 255 {
		t.Fatalf("topology: too many clients")
	}
	c := &Client{
		NS:          New(t),
		Addr:        netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 2}), 24),
		GatewayAddr: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 1}), 24),
		GatewayIf:   fmt.Sprintf("cl%d", i),
	}
	err := Connect(
		End{NS: c.NS, IfName: ClientIf, Addr: c.Addr},
		End{NS: tp.Gateway, IfName: c.GatewayIf, Addr: c.GatewayAddr},
	)
	if err != nil {
		t.Fatalf("topology: client %d: %v", i, err)
	}
	return c
}

// ServeHTTP serves h on port 80 of every address of the server namespace
// until the test ends, and returns the base URL on ServerAddr
// ("http://198.19.0.2"). A nil h serves RemoteIP, which answers with the
// client's IP address as the server sees it.
func (tp *Topology) ServeHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	return Serve(t, tp.Server, ":80", h, "http://"+tp.ServerAddr.Addr().String())
}

// Serve serves h on address (for example ":80" or "[fd00::2]:80") inside
// ns until the test ends, and returns baseURL unchanged for convenience. A
// nil h serves RemoteIP.
func Serve(t testing.TB, ns *NS, address string, h http.Handler, baseURL string) string {
	t.Helper()
	if h == nil {
		h = RemoteIP()
	}
	l, err := ns.Listen("tcp", address)
	if err != nil {
		t.Fatalf("listen in %s: %v", ns.Name(), err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("http server in %s: %v", ns.Name(), err)
		}
	})
	return baseURL
}

// RemoteIP returns a handler that writes the request's remote IP address,
// without the port, and nothing else.
func RemoteIP() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, host)
	})
}
