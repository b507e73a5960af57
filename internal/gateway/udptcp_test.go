package gateway_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gateway/admission"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/udptcp"
)

// TestUDPOverTCPGateway: with a TCP port, a client whose WireGuard goes
// over TCP (udptcp.ClientBind) connects through the same device as UDP
// clients: its key is configured on demand by the handshake gate, it
// reaches a destination, and the port is in the start-up report. Nothing
// logged names the client's address.
func TestUDPOverTCPGateway(t *testing.T) {
	f := newFakeControl(t)
	targetURL, _ := newTarget(t)
	logs := &syncBuffer{}
	tcpKey, udpKey := mustKey(t), mustKey(t)
	f.setPeer(gwproto.Peer{DeviceID: "dev-tcp", PublicKey: tcpKey.Public().String(), Addresses: []string{"100.64.0.2/32"}})
	f.setPeer(gwproto.Peer{DeviceID: "dev-udp", PublicKey: udpKey.Public().String(), Addresses: []string{"100.64.0.3/32"}})

	g := newGateway(t, f, logs, func(c *gateway.Config) {
		c.Dial = (&loopbackDialer{}).dial
		c.TCPPort = -1
	})
	runGateway(t, g.Run)
	waitReady(t, g)
	waitFor(t, 10*time.Second, "peers from the full snapshot", func() bool { return g.Peers() == 2 })
	tcpPort := g.TCPPort()
	if tcpPort == 0 {
		t.Fatal("TCPPort: got 0 with Config.TCPPort -1, want the bound port")
	}
	if hs := f.helloReports(); len(hs) == 0 || hs[len(hs)-1].TCPPort != tcpPort {
		t.Fatalf("start-up report: got %+v, want tcp_port %d", hs, tcpPort)
	}
	if got := g.ConfiguredPeers(); got != 0 {
		t.Fatalf("configured peers before any handshake: got %d, want 0 (on demand)", got)
	}

	overTCP := newWGClientOn(t, udptcp.NewClientBind(udptcp.ClientConfig{}), "100.64.0.2", tcpKey, g.PublicKey(), uint16(tcpPort))
	overUDP := newWGClient(t, "100.64.0.3", udpKey, g.PublicKey(), g.ListenPort())
	for name, c := range map[string]*wgClient{"tcp": overTCP, "udp": overUDP} {
		var body string
		waitFor(t, 15*time.Second, "a page through the tunnel over "+name, func() bool {
			b, err := c.get(targetURL, 2*time.Second)
			body = b
			return err == nil
		})
		if body != targetBody {
			t.Errorf("over %s: body %q, want %q", name, body, targetBody)
		}
	}
	if got := g.ConfiguredPeers(); got != 2 {
		t.Errorf("configured peers after both connected: got %d, want 2", got)
	}
	if out := logs.String(); strings.Contains(out, "127.0.0.1") {
		t.Errorf("logs name a client address:\n%s", out)
	}
}

// TestUDPOverTCPAdmission: a denied source gets no handshake over TCP
// either.
func TestUDPOverTCPAdmission(t *testing.T) {
	f := newFakeControl(t)
	targetURL, _ := newTarget(t)
	clientKey := mustKey(t)
	f.setPeer(gwproto.Peer{DeviceID: "dev-1", PublicKey: clientKey.Public().String(), Addresses: []string{"100.64.0.2/32"}})
	g := newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) {
		c.Dial = (&loopbackDialer{}).dial
		c.TCPPort = -1
		c.Admission = admission.Policy{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	})
	runGateway(t, g.Run)
	waitReady(t, g)
	waitFor(t, 10*time.Second, "peer from the full snapshot", func() bool { return g.Peers() == 1 })
	client := newWGClientOn(t, udptcp.NewClientBind(udptcp.ClientConfig{}), "100.64.0.2", clientKey, g.PublicKey(), uint16(g.TCPPort()))
	if _, err := client.get(targetURL, 2*time.Second); err == nil {
		t.Fatal("request from a denied source over TCP: got success, want failure")
	}
	if hs := client.lastHandshake(t); !hs.IsZero() {
		t.Errorf("client handshake: got %v, want none", hs)
	}
}

// TestTCPPortInUse: a busy TCP port fails Run with ErrTCPPortInUse before
// anything is asked of the control server.
func TestTCPPortInUse(t *testing.T) {
	f := newFakeControl(t)
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	g := newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) { c.TCPPort = port })
	err = g.Run(t.Context())
	if !errors.Is(err, gateway.ErrTCPPortInUse) {
		t.Fatalf("Run: got %v, want ErrTCPPortInUse", err)
	}
	if n := f.enrollCount(); n != 0 {
		t.Errorf("enrollments: got %d, want 0", n)
	}
}
