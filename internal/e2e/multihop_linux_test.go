package e2e

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/netns"
)

// The multihop network: the world's gateway namespace is the entry; the
// exit has a namespace of its own whose uplink reaches the server
// namespace ("the internet") on a second link:
//
//	c0 [198.18.0.2] <-> entry [uplink0 198.19.0.1] <-> [198.19.0.2] server
//	                    exit  [uplink0 198.19.1.1] <-> [198.19.1.2] server
//
// The server forwards between the two links, so the entry reaches the
// exit's endpoint and the exit reaches the control server (on the entry
// namespace's loopback, endpointIP).
const (
	entryRegion = "e2e-entry"
	entryPort   = "51824"
	exitRegion  = "e2e-exit"
	exitPort    = "51825"
	exitIf      = "exit0" // the server's end of the exit's uplink
)

var (
	exitUplink = netip.MustParsePrefix("198.19.1.1/24")
	exitPeer   = netip.MustParsePrefix("198.19.1.2/24")
)

// TestMultihop: `nitronet up --entry … --exit …` carries the tunnel to the
// exit gateway inside a tunnel to the entry gateway. Packet captures on
// both gateways' uplinks show that the entry's never carries a
// destination of the client (the web server's address or port, the path
// fetched) and the exit's never carries the client's address, while the
// web server sees the exit's address. As controls, the entry's client link
// shows the client's address and the exit's uplink shows the destination.
func TestMultihop(t *testing.T) {
	netns.Require(t)
	requireTools(t)
	w := newWorld(t, 1)
	c := w.clients[0]
	exitNS := w.addExitNamespace(t)

	entrySock, exitSock := filepath.Join(t.TempDir(), "entry.sock"), filepath.Join(t.TempDir(), "exit.sock")
	w.startGateway(t, t, entryRegion, entryPort, "kernel", "--uapi-socket", entrySock)
	w.startGatewayIn(t, t, exitNS, netns.GatewayUplinkIf, exitUplink.Addr().String(), exitRegion, exitPort, "kernel",
		"--uapi-socket", exitSock)
	w.signup(t, c, alice)
	w.addDevice(t, c, "alice-multihop")
	w.assertNoRoute(t, c)

	entryUp := startCapture(t, w.tp.Gateway, netns.GatewayUplinkIf)
	entryIn := startCapture(t, w.tp.Gateway, c.net.GatewayIf)
	exitUp := startCapture(t, exitNS, netns.GatewayUplinkIf)

	w.up(t, t, c, "", false, "--entry", entryRegion, "--exit", exitRegion)
	var status struct {
		Connected bool `json:"connected"`
		Tunnel    struct {
			Region      string `json:"region"`
			EntryRegion string `json:"entry_region"`
		} `json:"tunnel"`
	}
	if err := json.Unmarshal([]byte(w.nitronet(t, c, "", "status", "--json")), &status); err != nil {
		t.Fatal(err)
	}
	if !status.Connected || status.Tunnel.Region != exitRegion || status.Tunnel.EntryRegion != entryRegion {
		t.Fatalf("status: got %+v, want connected, exit %s, entry %s", status, exitRegion, entryRegion)
	}
	// Each hop is quantum-resistant with a pre-shared key of its own: each
	// gateway holds a different one for an ephemeral key (not the
	// device's long-term key) that holds the device's tunnel address.
	if out, _ := w.upOutput(c, ""); !strings.Contains(out, "Quantum-resistant: ephemeral key") {
		t.Errorf("up: got %q, want a quantum-resistant tunnel", out)
	}
	long := longTermKey(t, c).Hex()
	psks := map[string]string{}
	for region, sock := range map[string]string{entryRegion: entrySock, exitRegion: exitSock} {
		for key, p := range gatewayPeers(t, sock) {
			if key != long && strings.Trim(p.psk, "0") != "" && slices.Contains(p.allowedIPs, c.tunAddr.String()+"/32") {
				psks[region] = p.psk
			}
		}
	}
	if psks[entryRegion] == "" || psks[exitRegion] == "" || psks[entryRegion] == psks[exitRegion] {
		t.Errorf("pre-shared keys of an ephemeral key holding %v: entry has one: %v, exit has one: %v, the same: %v; want one each, different",
			c.tunAddr, psks[entryRegion] != "", psks[exitRegion] != "", psks[entryRegion] == psks[exitRegion])
	}
	ns := c.net.NS
	exitAddr := exitUplink.Addr().String()
	if got := w.pollFetch(t, direct(ns), w.pageURL, ""); got != exitAddr {
		t.Fatalf("web server saw %s, want the exit's uplink %s", got, exitAddr)
	}
	if got := w.pollFetch(t, direct(ns), w.pageURL, canaryHost); got != exitAddr {
		t.Errorf("fetch by name: web server saw %s, want the exit's uplink %s", got, exitAddr)
	}
	// A transfer big enough to fill full-size packets at both hops.
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
			if bytes.Contains(p.raw, path) || bytes.Contains(p.raw, []byte(canaryHost)) {
				t.Fatalf("the entry's uplink carried the path or the name fetched in a packet %v -> %v", p.src, p.dst)
			}
			if p.dst == exitUplink.Addr() && p.proto == 17 && strconv.Itoa(int(p.dport)) == exitPort {
				toExit++
			}
		}
		if toExit == 0 {
			t.Errorf("no UDP from the entry to the exit's WireGuard port on the entry's uplink: the tunnel did not go this way")
		}
	})
	t.Run("entry_sees_client", func(t *testing.T) {
		for _, p := range inPkts {
			if p.involves(client) {
				return
			}
		}
		t.Errorf("control: the entry's client link shows no packet of the client %v", client)
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
	t.Run("nothing_logged", func(t *testing.T) {
		w.down(t, c)
		w.stopAndSearch(t, c)
	})
}

// addExitNamespace makes the exit gateway's namespace with its uplink to
// the server namespace, and lets the server forward between its links.
func (w *world) addExitNamespace(t *testing.T) *netns.NS {
	t.Helper()
	ns := netns.New(t)
	if err := netns.Connect(
		netns.End{NS: ns, IfName: netns.GatewayUplinkIf, Addr: exitUplink},
		netns.End{NS: w.tp.Server, IfName: exitIf, Addr: exitPeer},
	); err != nil {
		t.Fatal(err)
	}
	if err := ns.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), exitPeer.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := w.tp.Server.AddRoute(netip.MustParsePrefix(endpointIP+"/32"), w.tp.GatewayUplinkAddr.Addr()); err != nil {
		t.Fatal(err)
	}
	if out, err := w.tp.Server.Command(t.Context(), "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v: %s", err, out)
	}
	if err := ns.LinkUp("lo"); err != nil {
		t.Fatal(err)
	}
	return ns
}
