package gateway_test

import (
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/relay"
)

// freeUDPPort returns a UDP port free on loopback a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestMultihopRelayGateway: a gateway with a relay port reports it (with
// its exit) at start, and a WireGuard client that dials the relay port
// reaches the exit's device (here the gateway's own, the simplest exit)
// and a destination behind it.
func TestMultihopRelayGateway(t *testing.T) {
	f := newFakeControl(t)
	targetURL, _ := newTarget(t)
	key := mustKey(t)
	f.setPeer(gwproto.Peer{DeviceID: "dev-1", PublicKey: key.Public().String(), Addresses: []string{"100.64.0.2/32"}})
	listen, relayPort := freeUDPPort(t), freeUDPPort(t)
	g := newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) {
		c.Dial = (&loopbackDialer{}).dial
		c.ListenPort = listen
		c.Relays = []relay.Route{{Exit: "gw-exit", Port: relayPort, Upstream: "127.0.0.1:" + strconv.Itoa(listen)}}
	})
	runGateway(t, g.Run)
	waitReady(t, g)
	want := []gwproto.Relay{{Exit: "gw-exit", Port: relayPort}}
	if hs := f.helloReports(); len(hs) == 0 || !slices.Equal(hs[len(hs)-1].Relays, want) {
		t.Fatalf("start-up report: got %+v, want relays %v", hs, want)
	}
	c := newWGClient(t, "100.64.0.2", key, g.PublicKey(), uint16(relayPort))
	var body string
	waitFor(t, 15*time.Second, "a page through the relay port", func() bool {
		b, err := c.get(targetURL, 2*time.Second)
		body = b
		return err == nil
	})
	if body != targetBody {
		t.Errorf("through the relay: body %q, want %q", body, targetBody)
	}
}
