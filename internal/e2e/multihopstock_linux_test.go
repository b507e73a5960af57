package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/netns"
)

// relayPort is the entry's multihop relay port to the exit.
const relayPort = "51830"

// TestMultihopStockConfig: an entry gateway started with --multihop-relay
// forwards a port to the exit gateway, and `nitronet device config
// --entry --exit` gives a stock client (wireguard-go configured by
// `wg setconf` from the plain config file, no quantum-resistant step) a
// config whose peer is the exit, reached at that port. Traffic flows
// entry→exit; the web server sees the exit's address. The exit's uplink
// never carries the client's address, the entry's uplink never carries a
// destination, and nothing written names either.
func TestMultihopStockConfig(t *testing.T) {
	netns.Require(t)
	requireTools(t)
	w := newWorld(t, 1)
	c := w.clients[0]
	exitNS := w.addExitNamespace(t)

	exitGW := w.startGatewayIn(t, t, exitNS, netns.GatewayUplinkIf, exitUplink.Addr().String(), exitRegion, exitPort, "kernel")
	out, _ := exitGW.output()
	m := regexp.MustCompile(`Gateway (\S+) running`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the exit gateway did not print its id: %q", out)
	}
	exitID := m[1]
	relay := relayPort + "=" + exitID + "@" + net.JoinHostPort(exitUplink.Addr().String(), exitPort)
	w.startGateway(t, t, entryRegion, entryPort, "kernel", "--multihop-relay", relay)
	w.signup(t, c, alice)
	w.addDevice(t, c, "alice-stock-multihop")
	w.assertNoRoute(t, c)

	conf := w.nitronet(t, c, "", "device", "config", c.devID, "--entry", entryRegion, "--exit", exitRegion)
	if !strings.Contains(conf, "\nEndpoint = "+net.JoinHostPort(endpointIP, relayPort)+"\n") {
		t.Fatalf("device config: got %q, want endpoint %s:%s (the entry's relay port)", redactKeys(conf), endpointIP, relayPort)
	}

	entryUp := startCapture(t, w.tp.Gateway, netns.GatewayUplinkIf)
	entryIn := startCapture(t, w.tp.Gateway, c.net.GatewayIf)
	exitUp := startCapture(t, exitNS, netns.GatewayUplinkIf)

	w.stockTunnel(t, c, conf, fmt.Sprintf("e2emh%d", os.Getpid()%100000))
	ns := c.net.NS
	exitAddr := exitUplink.Addr().String()
	if got := w.pollFetch(t, direct(ns), w.pageURL, ""); got != exitAddr {
		t.Fatalf("web server saw %s, want the exit's uplink %s", got, exitAddr)
	}
	if body, err := fetch(direct(ns), "http://"+net.JoinHostPort(w.tp.ServerAddr.Addr().String(), httpPort)+canaryPath+"?"+strings.Repeat("x", 2000), "", 10*time.Second); err != nil {
		t.Errorf("fetch with a long request: %v (%q)", err, body)
	}

	client := c.net.Addr.Addr()
	web := w.tp.ServerAddr.Addr()
	port, _ := strconv.Atoi(httpPort)
	path := []byte(strings.TrimPrefix(canaryPath, "/"))
	entryPkts, inPkts, exitPkts := entryUp.stop(), entryIn.stop(), exitUp.stop()
	t.Logf("captured %d packets on the entry's uplink, %d on its client link, %d on the exit's uplink", len(entryPkts), len(inPkts), len(exitPkts))

	t.Run("entry_sees_no_destination", func(t *testing.T) {
		toExit := 0
		for _, p := range entryPkts {
			if p.involves(web) || p.sport == uint16(port) || p.dport == uint16(port) {
				t.Fatalf("the entry's uplink carried a packet %v:%d -> %v:%d (the web server's address or port)", p.src, p.sport, p.dst, p.dport)
			}
			if bytes.Contains(p.raw, path) {
				t.Fatalf("the entry's uplink carried the path fetched in a packet %v -> %v", p.src, p.dst)
			}
			if p.dst == exitUplink.Addr() && p.proto == 17 && strconv.Itoa(int(p.dport)) == exitPort {
				toExit++
			}
		}
		if toExit == 0 {
			t.Errorf("no UDP from the entry to the exit's WireGuard port on the entry's uplink: the tunnel did not go this way")
		}
	})
	t.Run("entry_sees_client_at_relay", func(t *testing.T) {
		for _, p := range inPkts {
			if p.src == client && p.proto == 17 && strconv.Itoa(int(p.dport)) == relayPort {
				return
			}
		}
		t.Errorf("control: the entry's client link shows no UDP from the client %v to the relay port %s", client, relayPort)
	})
	t.Run("exit_sees_no_client", func(t *testing.T) {
		sawDest := false
		for _, p := range exitPkts {
			if p.involves(client) {
				t.Fatalf("the exit's uplink carried a packet %v -> %v: the client's address", p.src, p.dst)
			}
			if bytes.Contains(p.raw, []byte(client.String())) {
				t.Fatalf("the exit's uplink carried the client's address as text in a packet %v -> %v", p.src, p.dst)
			}
			if p.dst == web && p.dport == uint16(port) && bytes.Contains(p.raw, path) {
				sawDest = true
			}
		}
		if !sawDest {
			t.Errorf("control: the exit's uplink shows no request to the web server %v:%d for the path", web, port)
		}
	})
	t.Run("nothing_logged", func(t *testing.T) { w.stopAndSearch(t, c) })
}
