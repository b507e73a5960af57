package e2e

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/netns"
)

// The UDP-over-TCP gateway: its UDP port and its TCP port.
const (
	tcpRegion  = "e2e-tcp"
	tcpUDPPort = "51823"
	tcpPort    = "443"
)

// TestUDPOverTCP: on a client network that drops all UDP to the gateway, a
// plain `nitronet up` gets no handshake, while `nitronet up --transport
// tcp` connects to the gateway's --tcp-port and carries traffic (and DNS)
// through the tunnel; the drop rule sees none of the tunnel's packets. The
// logs and data the system wrote hold neither the client's address nor the
// destination.
func TestUDPOverTCP(t *testing.T) {
	netns.Require(t)
	requireTools(t)
	w := newWorld(t, 1)
	c := w.clients[0]
	w.startGateway(t, t, tcpRegion, tcpUDPPort, "kernel", "--tcp-port", tcpPort)
	w.signup(t, c, alice)
	w.addDevice(t, c, "alice-tcp")
	w.assertNoRoute(t, c)

	dropUDP(t, c.net.NS, endpointIP)
	before := udpDropped(t, c.net.NS)

	t.Run("udp_blocked_control", func(t *testing.T) {
		// Userspace mode, so nothing on the client outlives this step.
		p := startProc(t, t, c.net.NS, w.logs, "up-udp-blocked", w.clientEnv(c), w.bin, "up", "--gateway", tcpRegion,
			"--userspace", "--socks", "127.0.0.1:0", "--http-proxy", "127.0.0.1:0", "--quantum-resistant=false")
		if out := p.waitStdout(t, "to disconnect", 30*time.Second); !strings.Contains(out, "has not answered a handshake") {
			t.Fatalf("up over UDP with UDP dropped: got %q, want no handshake", out)
		}
		if after := udpDropped(t, c.net.NS); after <= before {
			t.Fatalf("drop rule: got %d packets before and %d after a UDP attempt, want more", before, after)
		}
		if err := p.stop(10 * time.Second); err != nil && !isSignalExit(err) {
			t.Fatalf("stop up: %v", err)
		}
	})

	t.Run("tcp_transport", func(t *testing.T) {
		w.up(t, t, c, tcpRegion, false, "--transport", "tcp") // `nitronet down` when t ends
		dropped := udpDropped(t, c.net.NS)
		ns := c.net.NS
		if got := w.pollFetch(t, direct(ns), w.pageURL, ""); got != w.uplink {
			t.Errorf("web server saw %s, want the gateway's uplink %s", got, w.uplink)
		}
		if got, err := routeDev(ns, w.tp.ServerAddr.Addr()); err != nil || got != "nitronet0" {
			t.Errorf("route to the server namespace: got device %q (%v), want the tunnel nitronet0", got, err)
		}
		if got := w.pollFetch(t, direct(ns), w.pageURL, canaryHost); got != w.uplink {
			t.Errorf("fetch by name: web server saw %s, want %s", got, w.uplink)
		}
		if got := udpDropped(t, ns); got != dropped {
			t.Errorf("drop rule: got %d packets after the fetches over TCP, want %d (no UDP to the gateway)", got, dropped)
		}
		status := w.nitronet(t, c, "", "status")
		if !strings.Contains(status, "last handshake") {
			t.Errorf("status: got %q, want a handshake", status)
		}
		if conns := tcpConnsTo(t, ns, net.JoinHostPort(endpointIP, tcpPort)); conns != 1 {
			t.Errorf("TCP connections to the gateway's TCP port: got %d, want 1", conns)
		}
	})

	t.Run("nothing_logged", func(t *testing.T) { w.stopAndSearch(t, c) })
}

// stopAndSearch stops the gateways and the control server, and searches
// everything they wrote (data, key files, logs) for c's transit address,
// the web server's address and port, and the name looked up.
func (w *world) stopAndSearch(t *testing.T, c *client) {
	t.Helper()
	var files []string
	for region, gw := range w.gws {
		if err := gw.stop(10 * time.Second); err != nil {
			t.Errorf("stop gateway %s: got %v, want a clean exit", region, err)
		}
		files = append(files, gw.stdout, gw.stderr)
	}
	if err := w.serve.stop(15 * time.Second); err != nil {
		t.Errorf("stop serve: got %v, want a clean exit", err)
	}
	files = append(files, w.serve.stdout, w.serve.stderr)
	files = append(files, collectFiles(t, w.data, w.gwKeys)...) // once they stopped writing
	needles := append(addrNeedles("client's transit address", c.net.Addr.Addr()),
		addrNeedles("web server address", w.tp.ServerAddr.Addr())...)
	needles = append(needles, portNeedle("web server port", httpPort),
		needle{name: "name looked up " + canaryHost, text: strings.ToLower(canaryHost)})
	n, size := searchLeaks(t, files, needles)
	t.Logf("searched %d files (%d bytes) for %d needles", n, size, len(needles))
	if n == 0 || n != len(files) {
		t.Errorf("searched %d of %d files, want all and more than 0", n, len(files))
	}
}

// dropUDP makes ns drop every UDP packet it sends to addr, with a counter
// (nftables table nitronet_e2e_udpdrop, gone with the namespace).
func dropUDP(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	rules := "table inet nitronet_e2e_udpdrop {\n chain out {\n  type filter hook output priority -10; policy accept;\n" +
		"  ip daddr " + addr + " meta l4proto udp counter drop\n }\n}\n"
	cmd := ns.Command(t.Context(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
}

var nftPackets = regexp.MustCompile(`counter packets (\d+)`)

// udpDropped returns the packets dropUDP's rule has dropped.
func udpDropped(t *testing.T, ns *netns.NS) int {
	t.Helper()
	out, err := ns.Command(t.Context(), "nft", "list", "table", "inet", "nitronet_e2e_udpdrop").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	m := nftPackets.FindSubmatch(out)
	if m == nil {
		t.Fatalf("nft list: no counter in %q", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// tcpConnsTo counts the established TCP connections in ns to addr.
func tcpConnsTo(t *testing.T, ns *netns.NS, addr string) int {
	t.Helper()
	out, err := ns.Command(t.Context(), "ss", "-Htn", "state", "established", "dst", addr).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return n
}
