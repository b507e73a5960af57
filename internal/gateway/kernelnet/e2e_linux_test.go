package kernelnet

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/nitronet/nitronet/internal/netns"
	"github.com/nitronet/nitronet/internal/wgkey"
)

const gwPort = 51820

// wgLogger returns a wireguard-go logger that reports errors to t until the
// test's cleanups have run. Create it before the device so that its
// cleanup runs after the device's Close.
func wgLogger(t *testing.T, name string) *device.Logger {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			if !done {
				t.Logf(name+": "+format, args...)
			}
		},
	}
}

// pinnedTUN is a client-side TUN in a foreign namespace, treated as nsTUN
// treats the gateway's: a fixed MTU and no up/down events, so that
// wireguard-go never opens sockets from a thread in the wrong namespace.
type pinnedTUN struct {
	tun.Device
	mtu    int
	events chan tun.Event
}

func pin(d tun.Device, mtu int) *pinnedTUN {
	p := &pinnedTUN{Device: d, mtu: mtu, events: make(chan tun.Event, 5)}
	go func() {
		defer close(p.events)
		for e := range d.Events() {
			if e &^= tun.EventUp | tun.EventDown; e != 0 {
				p.events <- e
			}
		}
	}()
	return p
}

func (p *pinnedTUN) MTU() (int, error)        { return p.mtu, nil }
func (p *pinnedTUN) Events() <-chan tun.Event { return p.events }

// startDevice creates a wireguard-go device on td inside ns, configures it
// with uapi and brings it up there (so its UDP sockets live in ns).
func startDevice(t *testing.T, ns *netns.NS, td tun.Device, name, uapi string) *device.Device {
	t.Helper()
	logger := wgLogger(t, name)
	var dev *device.Device
	err := ns.Do(func() error {
		dev = device.NewDevice(td, conn.NewDefaultBind(), logger)
		if err := dev.IpcSet(uapi); err != nil {
			return fmt.Errorf("ipc set: %w", err)
		}
		return dev.Up()
	})
	if dev != nil {
		t.Cleanup(dev.Close)
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return dev
}

// handshakeState summarises dev's peers for a test's failure message: for
// each, whether a handshake completed and whether any data came in (test
// devices only; nothing the product logs).
func handshakeState(dev *device.Device) string {
	var b strings.Builder
	if err := dev.IpcGetOperation(&b); err != nil {
		return "uapi get: " + err.Error()
	}
	var out []string
	for _, line := range strings.Split(b.String(), "\n") {
		switch {
		case strings.HasPrefix(line, "last_handshake_time_sec="):
			out = append(out, "handshake="+strconv.FormatBool(line != "last_handshake_time_sec=0"))
		case strings.HasPrefix(line, "rx_bytes="):
			out = append(out, "received="+strconv.FormatBool(line != "rx_bytes=0"))
		}
	}
	if len(out) == 0 {
		return "no peers"
	}
	return strings.Join(out, " ")
}

type wgClient struct {
	*netns.Client
	key    wgkey.PrivateKey
	v4, v6 netip.Prefix
	dev    *device.Device // set by startClient
}

func newKey(t *testing.T) wgkey.PrivateKey {
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startClient creates wg0 in the client's namespace with its tunnel
// addresses and default routes, and a wireguard-go device peered with the
// gateway.
func startClient(t *testing.T, c *wgClient, gw wgkey.PublicKey) {
	t.Helper()
	var td tun.Device
	if err := c.NS.Do(func() error {
		var err error
		td, err = tun.CreateTUN("wg0", DefaultMTU)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return c.NS.AddTunnelAddr("wg0", c.v4) },
		func() error { return c.NS.AddTunnelAddr("wg0", c.v6) },
		func() error { return c.NS.LinkUp("wg0") },
		func() error { return c.NS.AddDeviceRoute(netip.MustParsePrefix("0.0.0.0/0"), "wg0") },
		func() error { return c.NS.AddDeviceRoute(netip.MustParsePrefix("::/0"), "wg0") },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			td.Close()
			t.Fatal(err)
		}
	}
	uapi := fmt.Sprintf("private_key=%s\npublic_key=%s\nendpoint=%s\nallowed_ip=0.0.0.0/0\nallowed_ip=::/0\n",
		c.key.Hex(), gw.Hex(), netip.AddrPortFrom(c.GatewayAddr.Addr(), gwPort))
	c.dev = startDevice(t, c.NS, pin(td, DefaultMTU), "client "+c.v4.Addr().String(), uapi)
}

// get fetches url from inside ns and returns the body.
func get(ctx context.Context, ns *netns.NS, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := ns.HTTPClient().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// listen opens a TCP listener inside ns that accepts and closes
// connections until the test ends.
func listen(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	l, err := ns.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// reachable reports whether a TCP connection from ns to addr succeeds
// within timeout. Dropped packets show up as a timeout.
func reachable(t *testing.T, ns *netns.NS, addr string, timeout time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	c, err := ns.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestWireGuardEndToEnd runs real wireguard-go devices: a gateway on the
// kernelnet TUN and two clients, each in its own namespace, and checks
// forwarding, masquerade and isolation at the packet level.
func TestWireGuardEndToEnd(t *testing.T) {
	tests := []struct {
		name          string
		allowPrivate  []netip.Prefix
		wantV6Private bool
	}{
		{"default", nil, false},
		{"allow private", prefixes("fd00:5e::/64"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tp := netns.NewTopology(t)
			c2 := tp.AddClient(t)
			// A private (fc00::/7) network on the uplink side, from the
			// tunnel ranges the test kit allows.
			for _, f := range []func() error{
				func() error {
					return tp.Gateway.AddTunnelAddr(netns.GatewayUplinkIf, netip.MustParsePrefix("fd00:5e::1/64"))
				},
				func() error { return tp.Server.AddTunnelAddr(netns.ServerIf, netip.MustParsePrefix("fd00:5e::2/64")) },
				// Lets the server try unsolicited connections to clients.
				func() error {
					return tp.Server.AddRoute(netip.MustParsePrefix("100.64.0.0/10"), tp.GatewayUplinkAddr.Addr())
				},
			} {
				if err := f(); err != nil {
					t.Fatal(err)
				}
			}
			url := tp.ServeHTTP(t, nil)

			gwKey := newKey(t)
			clients := []*wgClient{
				{Client: tp.Client, key: newKey(t), v4: netip.MustParsePrefix("100.64.0.2/32"), v6: netip.MustParsePrefix("fd00:6e6e::2/128")},
				{Client: c2, key: newKey(t), v4: netip.MustParsePrefix("100.64.0.3/32"), v6: netip.MustParsePrefix("fd00:6e6e::3/128")},
			}

			kn, err := setupIn(t, tp.Gateway, Config{
				IfName:       "nt0",
				Addresses:    prefixes("100.64.0.1/10", "fd00:6e6e::1/48"),
				Pools:        prefixes("100.64.0.0/10", "fd00:6e6e::/48"),
				Uplink:       netns.GatewayUplinkIf,
				AllowPrivate: tt.allowPrivate,
				DNSPort:      53,
			})
			if err != nil {
				t.Fatal(err)
			}
			var uapi strings.Builder
			fmt.Fprintf(&uapi, "private_key=%s\nlisten_port=%d\n", gwKey.Hex(), gwPort)
			for _, c := range clients {
				fmt.Fprintf(&uapi, "public_key=%s\nallowed_ip=%s\nallowed_ip=%s\n", c.key.Public().Hex(), c.v4, c.v6)
			}
			gw := startDevice(t, tp.Gateway, kn.TUN(), "gateway", uapi.String())
			for _, c := range clients {
				startClient(t, c, gwKey.Public())
			}

			// Forwarding and masquerade: the server sees the gateway's uplink
			// address, and it has no route back to the clients' transit
			// networks, so any answer at all proves the tunnel path.
			for _, c := range clients {
				ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
				body, err := get(ctx, c.NS, url)
				cancel()
				if err != nil {
					t.Fatalf("client %v GET %s: %v (client: %s; gateway: %s)", c.v4.Addr(), url, err, handshakeState(c.dev), handshakeState(gw))
				}
				if body != "198.19.0.1" {
					t.Errorf("client %v: server saw %q, want 198.19.0.1 (masqueraded)", c.v4.Addr(), body)
				}
			}

			// IPv6 to a private destination: dropped unless allowed, and
			// masqueraded when allowed.
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			body, err := get(ctx, tp.Client.NS, "http://[fd00:5e::2]")
			cancel()
			if tt.wantV6Private {
				if err != nil || body != "fd00:5e::1" {
					t.Errorf("GET private v6 = %q, %v; want fd00:5e::1, nil", body, err)
				}
			} else if err == nil {
				t.Errorf("GET private v6 succeeded (%q); want it dropped", body)
			}

			const blocked = time.Second
			listen(t, c2.NS, "100.64.0.3:8080")
			listen(t, tp.Client.NS, "100.64.0.2:8082")
			listen(t, tp.Gateway, ":8081")
			listen(t, tp.Gateway, "100.64.0.1:53")
			checks := []struct {
				name string
				from *netns.NS
				addr string
				want bool
			}{
				// Controls: the listeners work and routes exist.
				{"gateway to client 2", tp.Gateway, "100.64.0.3:8080", true},
				{"gateway to client 1", tp.Gateway, "100.64.0.2:8082", true},
				{"server to gateway uplink", tp.Server, "198.19.0.1:8081", true},
				{"client to gateway DNS", tp.Client.NS, "100.64.0.1:53", true},
				// Isolation.
				{"client to client", tp.Client.NS, "100.64.0.3:8080", false},
				{"client to gateway tunnel address", tp.Client.NS, "100.64.0.1:8081", false},
				{"client to gateway uplink address", tp.Client.NS, "198.19.0.1:8081", false},
				// Client 2 reaches client 1's transit link only through the tunnel.
				{"client to gateway transit address", c2.NS, net.JoinHostPort(tp.Client.GatewayAddr.Addr().String(), "8081"), false},
				{"unsolicited inbound", tp.Server, "100.64.0.2:8082", false},
				// The resolver on the tunnel address serves clients only,
				// not neighbours on the uplink.
				{"uplink neighbour to gateway DNS", tp.Server, "100.64.0.1:53", false},
			}
			for _, ck := range checks {
				if got := reachable(t, ck.from, ck.addr, blocked); got != ck.want {
					t.Errorf("%s (%s): reachable = %v, want %v", ck.name, ck.addr, got, ck.want)
				}
			}
		})
	}
}
