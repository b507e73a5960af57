package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/netns"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// qrRegion is the gateway without the ephemeral-peer service.
const (
	qrOffRegion = "e2e-classical"
	qrOffPort   = "51823"
)

// uapiPeer is one peer of a gateway's device, as its UAPI shows it.
type uapiPeer struct {
	psk        string // hex; "" or zeros for none
	allowedIPs []string
	rx         int64
}

// gatewayPeers reads a gateway's device through its read-only UAPI socket
// (--uapi-socket): its peers by public key (hex).
func gatewayPeers(t *testing.T, sock string) map[string]*uapiPeer {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("get=1\n\n")); err != nil {
		t.Fatal(err)
	}
	peers := map[string]*uapiPeer{}
	var cur *uapiPeer
	sc := bufio.NewScanner(c)
	for sc.Scan() && sc.Text() != "" {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch {
		case k == "errno" && v != "0":
			t.Fatalf("UAPI get: errno %s", v)
		case k == "public_key":
			cur = &uapiPeer{}
			peers[v] = cur
		case cur == nil:
		case k == "preshared_key":
			cur.psk = v
		case k == "allowed_ip":
			cur.allowedIPs = append(cur.allowedIPs, v)
		case k == "rx_bytes":
			cur.rx, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return peers
}

// longTermKey is the public key of c's device, from its key file.
func longTermKey(t *testing.T, c *client) wgkey.PublicKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.conf, "keys", c.devID+".key"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := wgkey.ParsePrivate(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// keyNeedles are needles for a 32-byte key in hex, base64 and binary.
func keyNeedles(what string, k []byte) []needle {
	return []needle{
		{name: what + " (hex)", text: hex.EncodeToString(k)},
		{name: what + " (base64)", text: strings.ToLower(base64.StdEncoding.EncodeToString(k))},
		{name: what + " (binary)", raw: append([]byte(nil), k...)},
	}
}

// TestQuantumResistant: `nitronet up` switches to an ephemeral key with an
// ML-KEM-1024 pre-shared key by default, through a kernel-mode gateway
// (TUN client) and a userspace one (proxy client): the gateway's device
// holds the pre-shared key for the ephemeral key, which carries the
// device's address and its traffic, and the device's long-term key holds
// no address there any more. A gateway without the service makes `up`
// fail closed unless --allow-downgrade. Nothing of it is written.
func TestQuantumResistant(t *testing.T) {
	netns.Require(t)
	requireTools(t)
	var socks map[string]string
	w := setup(t, func(region string) []string {
		if socks == nil {
			socks = map[string]string{}
		}
		socks[region] = filepath.Join(t.TempDir(), "uapi.sock")
		return []string{"--uapi-socket", socks[region]}
	})
	c0, c1, c2 := w.clients[0], w.clients[1], w.clients[2]
	var extra []needle

	w.step("1_signup_and_devices", nil, func(t *testing.T) {
		w.signup(t, c0, alice)
		w.addDevice(t, c0, "alice-tun")
		w.login(t, c1, alice)
		w.addDevice(t, c1, "alice-userspace")
		w.login(t, c2, alice)
		w.addDevice(t, c2, "alice-classical")
	})

	cases := []struct {
		name      string
		c         *client
		region    string
		userspace bool
	}{
		{"QuantumResistantKernelGatewayTUNClient", c0, kernelRegion, false},
		{"QuantumResistantUserspaceGatewayProxyClient", c1, userRegion, true},
	}
	for _, tc := range cases {
		w.step("2_"+tc.name, []string{"1_signup_and_devices"}, func(t *testing.T) {
			_, httpProxy := w.up(t, w.t, tc.c, tc.region, tc.userspace)
			out, _ := w.upOutput(tc.c, tc.region)
			if !strings.Contains(out, "Quantum-resistant: ephemeral key") {
				t.Fatalf("up: got %q, want a quantum-resistant tunnel", out)
			}
			hc := direct(tc.c.net.NS)
			if tc.userspace {
				hc = viaProxy(tc.c.net.NS, "http://"+httpProxy)
			}
			if got := w.pollFetch(t, hc, w.pageURL, ""); got != w.uplink {
				t.Fatalf("web server saw %s, want the gateway's uplink %s", got, w.uplink)
			}

			longTerm := longTermKey(t, tc.c)
			addr := netip32(tc.c)
			peers := gatewayPeers(t, socks[tc.region])
			var eph string
			for k, p := range peers {
				for _, a := range p.allowedIPs {
					if a == addr {
						eph = k
					}
				}
			}
			switch {
			case eph == "":
				t.Fatalf("no peer on the gateway's device holds %s", addr)
			case eph == longTerm.Hex():
				t.Fatalf("the device's long-term key holds %s on the gateway's device, want its ephemeral key", addr)
			case peers[eph].psk == "" || peers[eph].psk == strings.Repeat("0", 64):
				t.Fatalf("the ephemeral key has no pre-shared key on the gateway's device")
			}
			// The long-term key no longer carries traffic: it holds no
			// address on the gateway's device (wireguard-go drops what
			// it would send from there), and the traffic goes to the
			// ephemeral key.
			if p, ok := peers[longTerm.Hex()]; ok && len(p.allowedIPs) > 0 {
				t.Errorf("long-term key still holds %v on the gateway's device", p.allowedIPs)
			}
			before := peers[eph].rx
			if got := w.pollFetch(t, hc, w.pageURL, ""); got != w.uplink {
				t.Fatalf("second fetch: web server saw %s, want %s", got, w.uplink)
			}
			after := gatewayPeers(t, socks[tc.region])
			if after[eph] == nil || after[eph].rx <= before {
				t.Errorf("ephemeral key's received bytes: %d before a fetch, %+v after; want more", before, after[eph])
			}
			if p, ok := after[longTerm.Hex()]; ok && len(p.allowedIPs) > 0 {
				t.Errorf("after a fetch, the long-term key holds %v", p.allowedIPs)
			}
			ek, _ := hex.DecodeString(eph)
			psk, _ := hex.DecodeString(peers[eph].psk)
			extra = append(extra, keyNeedles(tc.c.name+"'s ephemeral key", ek)...)
			extra = append(extra, keyNeedles(tc.c.name+"'s pre-shared key", psk)...)

			st := w.nitronet(t, tc.c, "", "status")
			if !strings.Contains(st, "quantum-resistant") || !strings.Contains(st, "yes") {
				t.Errorf("status: got %q, want quantum-resistant yes", st)
			}
		})
	}

	w.step("3_QuantumResistantFailsClosed", []string{"1_signup_and_devices"}, func(t *testing.T) {
		gw := w.startGateway(t, t, qrOffRegion, qrOffPort, "userspace", "--quantum-resistant=false")
		defer func() {
			if err := gw.stop(10 * time.Second); err != nil {
				t.Errorf("stop %s: %v", qrOffRegion, err)
			}
			delete(w.gws, qrOffRegion)
		}()
		for _, userspace := range []bool{false, true} {
			args := []string{w.bin, "up", "--gateway", qrOffRegion}
			if userspace {
				args = append(args, "--userspace", "--socks", "127.0.0.1:0", "--http-proxy", "127.0.0.1:0")
			}
			out, err := runCmd(c2.net.NS, w.clientEnv(c2), "", args...)
			if err == nil {
				t.Fatalf("up (userspace %v) through a gateway without the service: got success %q, want a failure", userspace, out)
			}
			if !strings.Contains(err.Error(), "does not offer quantum-resistant tunnels") || !strings.Contains(err.Error(), "--allow-downgrade") {
				t.Errorf("up (userspace %v): got %v, want a clear error naming --allow-downgrade", userspace, err)
			}
			// Closed: no route, no tunnel left.
			w.assertNoRoute(t, c2)
			if fileExists(filepath.Join(c2.conf, "run", "pid")) {
				t.Errorf("up left its pid file behind")
			}
			if ok, _ := c2.net.NS.HasLink("nitronet0"); ok {
				t.Errorf("up left its TUN interface behind")
			}
		}
		// With an explicit downgrade the classical tunnel stays up.
		w.up(t, t, c2, qrOffRegion, false, "--allow-downgrade")
		if got := w.pollFetch(t, direct(c2.net.NS), w.pageURL, ""); got != w.uplink {
			t.Errorf("downgraded tunnel: web server saw %s, want %s", got, w.uplink)
		}
		st := w.nitronet(t, c2, "", "status", "--json")
		var got struct {
			Tunnel struct {
				QuantumResistant *bool `json:"quantum_resistant"`
			} `json:"tunnel"`
		}
		if err := json.Unmarshal([]byte(st), &got); err != nil || got.Tunnel.QuantumResistant == nil || *got.Tunnel.QuantumResistant {
			t.Errorf("status --json after a downgrade: got %s (%v), want quantum_resistant false", st, err)
		}
		w.down(t, c2)
	})

	w.step("4_nothing_logged", nil, func(t *testing.T) {
		w.leakSearch(t, extra...)
	})
}

// netip32 returns c's IPv4 tunnel address as a /32, as UAPI prints it.
func netip32(c *client) string { return c.tunAddr.String() + "/32" }

// upOutput returns what the latest `nitronet up` of c through region
// printed.
func (w *world) upOutput(c *client, region string) (string, error) {
	name := fmt.Sprintf("up-%s-%s", c.name, region)
	last := name
	for i := 2; fileExists(filepath.Join(w.logs, fmt.Sprintf("%s-%d.stdout", name, i))); i++ {
		last = fmt.Sprintf("%s-%d", name, i)
	}
	b, err := os.ReadFile(filepath.Join(w.logs, last+".stdout"))
	return string(b), err
}
