package tunnel

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Tunnel addresses used by the tests (100.64.0.0/10 and fd00::/8 only).
var (
	gwTunV4     = netip.MustParseAddr("100.64.0.1")
	gwTunV6     = netip.MustParseAddr("fd00::1")
	clientTunV4 = netip.MustParsePrefix("100.64.0.2/32")
	clientTunV6 = netip.MustParsePrefix("fd00::2/128")
)

// testGatewayName is the DNS name the test gateway's resolver answers.
const testGatewayName = "gw.nitronet.test"

func testKey(t testing.TB, seed byte) wgkey.PrivateKey {
	t.Helper()
	k, err := wgkey.Generate(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// netstackGateway is an in-process WireGuard "gateway" on netstack, reached
// over UDP on 127.0.0.1, serving HTTP on port 80 and DNS on port 53 at its
// tunnel addresses.
type netstackGateway struct {
	Key  wgkey.PrivateKey
	Port int
	dev  *device.Device
}

// startNetstackGateway starts a gateway that accepts the given client keys.
func startNetstackGateway(t *testing.T, clients ...wgkey.PublicKey) *netstackGateway {
	t.Helper()
	gw, _ := startNetstackGatewayNet(t, clients...)
	return gw
}

// startNetstackGatewayNet is startNetstackGateway, also returning the
// gateway's netstack.
func startNetstackGatewayNet(t *testing.T, clients ...wgkey.PublicKey) (*netstackGateway, *netstack.Net) {
	t.Helper()
	gw := &netstackGateway{Key: testKey(t, 9)}
	tdev, tnet, err := netstack.CreateNetTUN([]netip.Addr{gwTunV4, gwTunV6}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	gw.dev = device.NewDevice(tdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "test-gateway: "))
	t.Cleanup(gw.dev.Close)
	var b strings.Builder
	b.WriteString("private_key=" + gw.Key.Hex() + "\nlisten_port=0\nreplace_peers=true\n")
	for i, c := range clients {
		fmt.Fprintf(&b, "public_key=%s\nallowed_ip=100.64.0.%d/32\nallowed_ip=fd00::%x/128\n", c.Hex(), i+2, i+2)
	}
	if err := gw.dev.IpcSet(b.String()); err != nil {
		t.Fatal(err)
	}
	if err := gw.dev.Up(); err != nil {
		t.Fatal(err)
	}
	get, err := gw.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			gw.Port, _ = strconv.Atoi(v)
		}
	}
	if gw.Port == 0 {
		t.Fatal("gateway has no listen port")
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from gateway, host %s", r.Host)
	})
	srv := &http.Server{Handler: mux}
	var wg sync.WaitGroup
	for _, a := range []netip.Addr{gwTunV4, gwTunV6} {
		ln, err := tnet.ListenTCPAddrPort(netip.AddrPortFrom(a, 80))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	}
	udp, err := tnet.ListenUDPAddrPort(netip.AddrPortFrom(gwTunV4, 53))
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); serveTestDNS(udp) }()
	t.Cleanup(func() {
		srv.Close()
		udp.Close()
		wg.Wait()
	})
	return gw, tnet
}

// ClientConfig returns a configuration for the first client key given to
// startNetstackGateway, routing everything to the gateway over 127.0.0.1.
func (gw *netstackGateway) ClientConfig(key wgkey.PrivateKey) wgconf.Config {
	return wgconf.Config{
		Interface: wgconf.Interface{
			PrivateKey: &key,
			Addresses:  []netip.Prefix{clientTunV4, clientTunV6},
			DNS:        []netip.Addr{gwTunV4},
		},
		Peers: []wgconf.Peer{{
			PublicKey:  gw.Key.Public(),
			Endpoint:   net.JoinHostPort("127.0.0.1", strconv.Itoa(gw.Port)),
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		}},
	}
}

// serveTestDNS answers A and AAAA queries for testGatewayName with the
// gateway's tunnel addresses and NXDOMAIN for everything else.
func serveTestDNS(c net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		resp := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeSuccess})
		name := strings.TrimSuffix(q.Name.String(), ".")
		if name != testGatewayName {
			resp = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeNameError})
		}
		resp.EnableCompression()
		_ = resp.StartQuestions()
		_ = resp.Question(q)
		_ = resp.StartAnswers()
		if name == testGatewayName {
			rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
			switch q.Type {
			case dnsmessage.TypeA:
				_ = resp.AResource(rh, dnsmessage.AResource{A: gwTunV4.As4()})
			case dnsmessage.TypeAAAA:
				_ = resp.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: gwTunV6.As16()})
			}
		}
		out, err := resp.Finish()
		if err != nil {
			continue
		}
		_, _ = c.WriteTo(out, from)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
