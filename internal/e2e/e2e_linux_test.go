package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/nitronet/nitronet/internal/netns"
)

// The test network. netns.Topology provides the gateway (uplink
// 198.19.0.1), the server (198.19.0.2) and clients i on 198.18.i.0/24.
const (
	// endpointIP is the gateway's address on its loopback interface. Every
	// client routes it over its own transit link, so one address serves as
	// the WireGuard endpoint and the control server's address for all.
	endpointIP = "198.18.255.1"
	// apiPort is the control server's port on endpointIP.
	apiPort = "8080"
	// dnsIP is the DNS responder's address in the server namespace. It
	// differs from the web server's, so that an operator setting
	// (--dns-upstream) is never mistaken for a destination in the leak
	// search.
	dnsIP = "198.19.0.53"
	// httpPort is the web server's port: distinctive, so the leak search
	// can look for it.
	httpPort = "47913"
	// canaryHost and canaryPath are the name looked up and the path
	// fetched; neither may appear anywhere the system writes.
	canaryHost = "leakcanary-host.e2e.test"
	canaryPath = "/leakcanary-path"

	kernelRegion = "e2e-kernel"
	userRegion   = "e2e-user"
	denyRegion   = "e2e-deny"

	kernelPort = "51820"
	userPort   = "51821"
	denyPort   = "51822"

	password = "correct horse battery staple"
)

// account is a user's sign-up data.
type account struct{ email, mobile string }

var (
	alice = account{"alice@example.com", "+447911100123"}
	bob   = account{"bob@example.com", "+447911100456"}
)

// client is one user machine: a namespace and a nitronet config directory.
type client struct {
	name string
	net  *netns.Client
	conf string // NITRONET_CONFIG_DIR

	devID     string     // the device registered from this machine
	tunAddr   netip.Addr // its IPv4 tunnel address
	httpProxy string     // userspace mode: the HTTP proxy of `nitronet up`
}

// world is everything the steps share.
type world struct {
	t       *testing.T
	tmp     string
	bin     string
	logs    string // captured output of every long-running process
	data    string // the control server's data directory
	gwKeys  string // the gateways' key files
	tp      *netns.Topology
	dns     *dnsResponder
	apiURL  string
	pageURL string           // the page every fetch asks for, by IP
	uplink  string           // what the web server must see: the gateway's uplink address
	clients [5]*client       // c0 … c4; see TestDataPlane
	serve   *proc            // the running control server
	serves  int              // how many times serve was started
	gws     map[string]*proc // running gateways by region
	admin   bool             // whether the operator's admin account exists

	passed map[string]bool
	timing []string
}

// e2eStaffPassword is the password of the operator's admin account.
const e2eStaffPassword = "e2e operator password 1"

// TestDataPlane is the end-to-end test of the data plane, in the order of
// its steps. The machines:
//
//	c0  alice, `nitronet up` in TUN mode through the kernel-mode gateway
//	c1  alice, `nitronet up --userspace` through the userspace gateway
//	c2  bob, TUN mode through the kernel-mode gateway (isolation, deletion)
//	c3  alice, stock wireguard-go + wg with the exported config (kernel gateway)
//	c4  bob, userspace, denied by the third gateway's --deny-cidr
func TestDataPlane(t *testing.T) {
	netns.Require(t)
	requireTools(t)
	began := time.Now()
	w := setup(t)
	t.Logf("setup took %v", time.Since(began).Round(time.Millisecond))
	c0, c1, c2, c3, c4 := w.clients[0], w.clients[1], w.clients[2], w.clients[3], w.clients[4]

	w.step("1_signup_and_device", nil, func(t *testing.T) {
		w.signup(t, c0, alice)
		w.addDevice(t, c0, "alice-tun")
	})

	w.step("2_up_through_tunnel", []string{"1_signup_and_device"}, func(t *testing.T) {
		t.Run("kernel_gateway_tun_client", func(t *testing.T) {
			w.assertNoRoute(t, c0)
			w.up(t, w.t, c0, kernelRegion, false)
			ns := c0.net.NS
			if got := w.pollFetch(t, direct(ns), w.pageURL, ""); got != w.uplink {
				t.Errorf("web server saw %s, want the gateway's uplink %s", got, w.uplink)
			}
			if got, err := routeDev(ns, w.tp.ServerAddr.Addr()); err != nil || got != "nitronet0" {
				t.Errorf("route to the server namespace: got device %q (%v), want the tunnel nitronet0", got, err)
			}
			// DNS: the client points resolv.conf at the gateway's tunnel
			// address; the name resolves through the tunnel.
			server := nameserver(t, ns.Name())
			if !netip.MustParsePrefix("100.64.0.0/10").Contains(server) {
				t.Fatalf("resolv.conf nameserver: got %v, want the gateway's tunnel address in 100.64.0.0/10", server)
			}
			addrs := resolve(t, ns, server, canaryHost)
			if want := w.tp.ServerAddr.Addr().String(); !slices.Equal(addrs, []string{want}) {
				t.Fatalf("resolve %s via %v: got %v, want [%s]", canaryHost, server, addrs, want)
			}
			w.assertDNSFromGateway(t)
			if got := w.pollFetch(t, direct(ns), w.pageURL, canaryHost); got != w.uplink {
				t.Errorf("fetch by name: web server saw %s, want %s", got, w.uplink)
			}
		})
		t.Run("userspace_gateway_proxy_client", func(t *testing.T) {
			w.login(t, c1, alice)
			w.addDevice(t, c1, "alice-userspace")
			w.assertNoRoute(t, c1)
			socks, httpProxy := w.up(t, w.t, c1, userRegion, true)
			c1.httpProxy = httpProxy
			ns := c1.net.NS
			if got := w.pollFetch(t, viaProxy(ns, "http://"+httpProxy), w.pageURL, ""); got != w.uplink {
				t.Errorf("HTTP proxy: web server saw %s, want %s", got, w.uplink)
			}
			before := len(w.dns.querySources())
			byName := "http://" + net.JoinHostPort(canaryHost, httpPort) + canaryPath
			if got := w.pollFetch(t, viaProxy(ns, "socks5://"+socks), byName, ""); got != w.uplink {
				t.Errorf("SOCKS5 proxy by name: web server saw %s, want %s", got, w.uplink)
			}
			if after := len(w.dns.querySources()); after <= before {
				t.Errorf("DNS queries for %s: got %d before and %d after the SOCKS5 fetch, want more (resolved through the tunnel)", canaryHost, before, after)
			}
			w.assertDNSFromGateway(t)
		})
	})

	w.step("3_stock_wireguard_client", []string{"1_signup_and_device"}, func(t *testing.T) {
		w.login(t, c3, alice)
		w.addDevice(t, c3, "alice-stock")
		w.assertNoRoute(t, c3)
		w.stockClient(t, c3)
		if got := w.pollFetch(t, direct(c3.net.NS), w.pageURL, ""); got != w.uplink {
			t.Errorf("web server saw %s, want %s", got, w.uplink)
		}
	})

	w.step("4_clients_isolated", []string{"2_up_through_tunnel"}, func(t *testing.T) {
		w.signup(t, c2, bob)
		w.addDevice(t, c2, "bob-tun")
		w.up(t, w.t, c2, kernelRegion, false)
		if got := w.pollFetch(t, direct(c2.net.NS), w.pageURL, ""); got != w.uplink {
			t.Fatalf("bob's tunnel: web server saw %s, want %s", got, w.uplink)
		}
		cases := []struct {
			name     string
			from, to *client
			needs    string
		}{
			{"alice_to_bob", c0, c2, ""},
			{"bob_to_alice", c2, c0, ""},
			{"stock_client_to_bob", c3, c2, "3_stock_wireguard_client"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if tc.needs != "" && !w.passed[tc.needs] {
					t.Skipf("needs step %s", tc.needs)
				}
				target := listenTCP(t, tc.to.net.NS, tc.to.tunAddr)
				// Control: the listener answers inside its own namespace.
				if err := dialRead(tc.to.net.NS, target, 2*time.Second); err != nil {
					t.Fatalf("control: %s cannot reach its own listener %s: %v", tc.to.name, target, err)
				}
				if err := dialRead(tc.from.net.NS, target, time.Second); err == nil {
					t.Errorf("%s reached %s's tunnel address %s: got a connection, want none", tc.from.name, tc.to.name, target)
				} else {
					t.Logf("%s -> %s: %v (as wanted)", tc.from.name, target, err)
				}
			})
		}
		// The attempts did not break the tunnels themselves.
		if got := w.pollFetch(t, direct(c0.net.NS), w.pageURL, ""); got != w.uplink {
			t.Errorf("alice after the attempts: web server saw %s, want %s", got, w.uplink)
		}
	})

	w.step("5_denied_source_no_handshake", []string{"4_clients_isolated"}, func(t *testing.T) {
		w.deniedSource(t, c4)
		// Control for the status check: a client that does have a
		// handshake shows it.
		waitUntil(t, 10*time.Second, "status of "+c0.name+" to show its handshake", func() (bool, error) {
			out, err := runCmd(c0.net.NS, w.clientEnv(c0), "", w.bin, "status")
			return strings.Contains(out, "last handshake"), err
		})
	})

	w.step("6_device_deletion_cuts_tunnel", []string{"4_clients_isolated"}, func(t *testing.T) {
		w.deleteCuts(t, c2)
	})

	w.step("7_tunnel_survives_control_server", []string{"2_up_through_tunnel"}, func(t *testing.T) {
		if err := w.serve.stop(15 * time.Second); err != nil {
			t.Errorf("stop serve: got %v, want a clean exit", err)
		}
		for _, region := range []string{kernelRegion, userRegion} {
			w.gws[region].waitStderr(t, "peer feed unavailable", 20*time.Second)
		}
		cases := []struct {
			name  string
			c     *client
			hc    *http.Client
			needs string
		}{
			{"kernel_tun", c0, direct(c0.net.NS), ""},
			{"userspace_proxy", c1, viaProxy(c1.net.NS, "http://"+c1.httpProxy), ""},
			{"stock_wireguard", c3, direct(c3.net.NS), "3_stock_wireguard_client"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if tc.needs != "" && !w.passed[tc.needs] {
					t.Skipf("needs step %s", tc.needs)
				}
				if got := w.pollFetch(t, tc.hc, w.pageURL, ""); got != w.uplink {
					t.Errorf("with the control server down: web server saw %s, want %s", got, w.uplink)
				}
			})
		}
		w.startServe(t)
	})

	w.step("8_usage_shows_sessions", []string{"2_up_through_tunnel"}, func(t *testing.T) {
		if w.serve.exited() { // step 7 failed before its restart
			w.startServe(t)
		}
		w.usage(t, c0, began, map[*client]string{c0: kernelRegion, c1: userRegion, c3: kernelRegion})
	})

	w.step("9_nothing_logged", nil, func(t *testing.T) {
		w.leakSearch(t)
	})

	t.Logf("timings:\n  %s\n  total %v", strings.Join(w.timing, "\n  "), time.Since(began).Round(time.Millisecond))
}

// step runs fn as the subtest name unless a step in deps did not pass.
func (w *world) step(name string, deps []string, fn func(t *testing.T)) {
	w.t.Helper()
	start := time.Now()
	w.t.Run(name, func(t *testing.T) {
		for _, d := range deps {
			if !w.passed[d] {
				t.Skipf("needs step %s, which did not pass", d)
			}
		}
		fn(t)
		w.passed[name] = !t.Failed()
	})
	w.timing = append(w.timing, fmt.Sprintf("%-36s %v", name, time.Since(start).Round(time.Millisecond)))
}

// setup builds the binary and the network, and starts the web server, the
// DNS responder, the control server and the kernel and userspace gateways.
// gwExtra, if given, returns extra arguments for each gateway by region.
func setup(t *testing.T, gwExtra ...func(region string) []string) *world {
	t.Helper()
	w := newWorld(t, len(world{}.clients))
	extra := func(region string) []string {
		if len(gwExtra) == 0 {
			return nil
		}
		return gwExtra[0](region)
	}
	w.startGateway(t, t, kernelRegion, kernelPort, "kernel", extra(kernelRegion)...)
	w.startGateway(t, t, userRegion, userPort, "userspace", extra(userRegion)...)
	return w
}

// newWorld builds the binary and the network with clients c0 … c(n-1), and
// starts the web server, the DNS responder and the control server, but no
// gateway.
func newWorld(t *testing.T, n int) *world {
	t.Helper()
	w := &world{t: t, tmp: t.TempDir(), gws: map[string]*proc{}, passed: map[string]bool{}}
	w.logs = filepath.Join(w.tmp, "logs")
	w.data = filepath.Join(w.tmp, "data")
	w.gwKeys = filepath.Join(w.tmp, "gateway-keys")
	for _, d := range []string{w.logs, w.gwKeys, filepath.Join(w.tmp, "clients")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	w.bin = buildBinary(t, w.tmp)

	w.tp = netns.NewTopology(t)
	w.uplink = w.tp.GatewayUplinkAddr.Addr().String()
	endpoint := netip.MustParsePrefix(endpointIP + "/32")
	if err := w.tp.Gateway.AddAddr("lo", endpoint); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		nc := w.tp.Client
		if i > 0 {
			nc = w.tp.AddClient(t)
		}
		if err := nc.NS.AddRoute(endpoint, nc.GatewayAddr.Addr()); err != nil {
			t.Fatal(err)
		}
		c := &client{name: "c" + strconv.Itoa(i), net: nc, conf: filepath.Join(w.tmp, "clients", "c"+strconv.Itoa(i))}
		if err := os.Mkdir(c.conf, 0o700); err != nil {
			t.Fatal(err)
		}
		w.clients[i] = c
	}
	// `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over
	// /etc/resolv.conf, so nothing run in a namespace reads or rewrites
	// the host's. The nameserver named here exists nowhere.
	all := []*netns.NS{w.tp.Gateway, w.tp.Server}
	for _, c := range w.clients[:n] {
		all = append(all, c.net.NS)
	}
	for _, ns := range all {
		dir := filepath.Join("/etc/netns", ns.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("# nitronet e2e\nnameserver 198.18.255.254\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	server := w.tp.ServerAddr.Addr()
	w.pageURL = "http://" + net.JoinHostPort(server.String(), httpPort) + canaryPath
	netns.Serve(t, w.tp.Server, net.JoinHostPort(server.String(), httpPort), nil, w.pageURL)
	if err := w.tp.Server.AddAddr(netns.ServerIf, netip.MustParsePrefix(dnsIP+"/24")); err != nil {
		t.Fatal(err)
	}
	w.dns = startDNS(t, w.tp.Server, net.JoinHostPort(dnsIP, "53"), canaryHost, server)

	w.apiURL = "http://" + net.JoinHostPort(endpointIP, apiPort)
	w.startServe(t)
	return w
}

// baseEnv is the whole environment of every process the test starts: no
// NITRONET_* or proxy variable of the test's own environment leaks in.
func (w *world) baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.tmp, "LANG=C"}
}

// clientEnv is the environment of nitronet client commands on c.
func (w *world) clientEnv(c *client) []string {
	return append(w.baseEnv(), "NITRONET_CONFIG_DIR="+c.conf, "NITRONET_SERVER="+w.apiURL)
}

// startServe starts (or restarts) the control server in the gateway
// namespace and waits until it listens.
func (w *world) startServe(t *testing.T) {
	t.Helper()
	w.serves++
	w.serve = startProc(t, w.t, w.tp.Gateway, w.logs, fmt.Sprintf("serve-%d", w.serves), w.baseEnv(),
		w.bin, "serve", "--data", w.data, "--listen", net.JoinHostPort(endpointIP, apiPort), "--insecure-http", "--log-level", "debug")
	w.serve.waitStdout(t, "listening on", 30*time.Second)
}

// startGateway creates a gateway record for region, starts `nitronet
// gateway` in the gateway namespace with its token and waits until it
// runs. Its process is stopped when owner ends.
func (w *world) startGateway(t, owner *testing.T, region, port, mode string, extra ...string) *proc {
	t.Helper()
	return w.startGatewayIn(t, owner, w.tp.Gateway, netns.GatewayUplinkIf, endpointIP, region, port, mode, extra...)
}

// startGatewayIn is startGateway in namespace ns, with uplink interface
// uplink (kernel mode) and endpoint host:port.
func (w *world) startGatewayIn(t, owner *testing.T, ns *netns.NS, uplink, host, region, port, mode string, extra ...string) *proc {
	t.Helper()
	// Gateways are added by an admin; the first one needs only the data
	// directory.
	staffEnv := append(w.baseEnv(), "NITRONET_STAFF=ops@example.com", "NITRONET_STAFF_PASSWORD="+e2eStaffPassword)
	if !w.admin {
		if _, err := runCmd(w.tp.Gateway, w.baseEnv(), e2eStaffPassword+"\n", w.bin, "admin", "staff", "add", "--data", w.data,
			"--email", "ops@example.com", "--role", "admin"); err != nil {
			t.Fatalf("admin staff add: %v", err)
		}
		w.admin = true
	}
	tok, err := runCmd(w.tp.Gateway, staffEnv, "", w.bin, "admin", "gateway", "add", "--data", w.data,
		"--region", region, "--endpoint", net.JoinHostPort(host, port))
	if err != nil {
		t.Fatalf("admin gateway add: %v", err)
	}
	args := []string{w.bin, "gateway", "--server", w.apiURL, "--token", strings.TrimSpace(tok),
		"--mode", mode, "--listen-port", port, "--key-file", filepath.Join(w.gwKeys, region+".key"),
		"--dns-upstream", net.JoinHostPort(dnsIP, "53"), "--log-level", "debug"}
	if mode == "kernel" {
		args = append(args, "--uplink", uplink)
	}
	p := startProc(t, owner, ns, w.logs, "gateway-"+region, w.baseEnv(), append(args, extra...)...)
	p.waitStdout(t, "running", 30*time.Second)
	w.gws[region] = p
	return p
}

// nitronet runs a nitronet client command on c and returns its stdout,
// failing t on an error.
func (w *world) nitronet(t *testing.T, c *client, stdin string, args ...string) string {
	t.Helper()
	out, err := runCmd(c.net.NS, w.clientEnv(c), stdin, append([]string{w.bin}, args...)...)
	if err != nil {
		t.Fatalf("on %s: %v", c.name, err)
	}
	return out
}

// outboxFiles returns the names of the files in the outbox.
func (w *world) outboxFiles(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(w.data, "outbox"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names[e.Name()] = true
		}
	}
	return names
}

// code returns the six-digit code of the one outbox message on channel
// ("email" or "sms") that is not in before, waiting for it to appear.
func (w *world) code(t *testing.T, before map[string]bool, channel string, acct account) string {
	t.Helper()
	var code string
	waitUntil(t, 10*time.Second, "a "+channel+" code in the outbox", func() (bool, error) {
		var found []string
		for name := range w.outboxFiles(t) {
			if before[name] {
				continue
			}
			b, err := os.ReadFile(filepath.Join(w.data, "outbox", name))
			if err != nil {
				return false, err
			}
			head, body, _ := strings.Cut(string(b), "\n\n")
			if !strings.Contains(head+"\n", "Channel: "+channel+"\n") {
				continue
			}
			if strings.Contains(head, acct.email) || strings.Contains(head, acct.mobile) {
				return false, fmt.Errorf("outbox message %s names its recipient unmasked: %q", name, head)
			}
			found = append(found, regexp.MustCompile(`\b\d{6}\b`).FindString(body))
		}
		if len(found) > 1 {
			return false, fmt.Errorf("got %d new %s messages, want 1", len(found), channel)
		}
		if len(found) == 1 && found[0] != "" {
			code = found[0]
			return true, nil
		}
		return false, nil
	})
	return code
}

// signup creates acct from c, verifies both contacts with the codes from
// the outbox, and leaves c logged in.
func (w *world) signup(t *testing.T, c *client, acct account) {
	t.Helper()
	before := w.outboxFiles(t)
	out := w.nitronet(t, c, password+"\n", "signup", "--email", acct.email, "--mobile", acct.mobile)
	if !strings.Contains(out, "created and logged in") {
		t.Fatalf("signup: got %q, want an account created and logged in", out)
	}
	w.nitronet(t, c, "", "verify", "email", w.code(t, before, "email", acct))
	out = w.nitronet(t, c, "", "verify", "mobile", w.code(t, before, "sms", acct))
	if !strings.Contains(out, "Both contacts are verified") {
		t.Fatalf("verify mobile: got %q, want both contacts verified", out)
	}
}

// login logs c in to acct.
func (w *world) login(t *testing.T, c *client, acct account) {
	t.Helper()
	if out := w.nitronet(t, c, password+"\n", "login", "--email", acct.email); !strings.Contains(out, "Logged in") {
		t.Fatalf("login: got %q", out)
	}
}

var deviceAdded = regexp.MustCompile(`Device (dev_[a-z2-7]+) \(.*\) added with addresses ([0-9.]+)/32`)

// addDevice registers a device from c and records its id and address.
func (w *world) addDevice(t *testing.T, c *client, name string) {
	t.Helper()
	out := w.nitronet(t, c, "", "device", "add", name)
	m := deviceAdded.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("device add: got %q, want the device id and an IPv4 /32", out)
	}
	c.devID = m[1]
	c.tunAddr = netip.MustParseAddr(m[2])
	if _, err := os.Stat(filepath.Join(c.conf, "keys", c.devID+".key")); err != nil {
		t.Fatalf("device key on the client: %v", err)
	}
}

var proxiesLine = regexp.MustCompile(`SOCKS5 proxy on (\S+), HTTP proxy on (\S+?)\.\n`)

// up runs `nitronet up` on c through region until owner ends and waits
// until it is connected. In userspace mode it returns the SOCKS5 and HTTP
// proxy addresses. In TUN mode `nitronet down` runs when owner ends.
// extra are further flags of `up`; region "" leaves --gateway out.
func (w *world) up(t, owner *testing.T, c *client, region string, userspace bool, extra ...string) (socks, httpProxy string) {
	t.Helper()
	args := []string{w.bin, "up"}
	if region != "" {
		args = append(args, "--gateway", region)
	}
	if userspace {
		args = append(args, "--userspace")
	}
	args = append(args, extra...)
	name := fmt.Sprintf("up-%s-%s", c.name, region)
	for i := 2; fileExists(filepath.Join(w.logs, name+".stdout")); i++ {
		name = fmt.Sprintf("up-%s-%s-%d", c.name, region, i)
	}
	p := startProc(t, owner, c.net.NS, w.logs, name, w.clientEnv(c), args...)
	if !userspace {
		owner.Cleanup(func() {
			if _, err := runCmd(c.net.NS, w.clientEnv(c), "", w.bin, "down"); err != nil {
				owner.Logf("cleanup: nitronet down on %s: %v", c.name, err)
			}
		})
	}
	// `up` prints its last line once the tunnel is up and it has waited
	// for the first handshake; whether one came is checked by the callers
	// (a denied client must not get one).
	out := p.waitStdout(t, "to disconnect", 30*time.Second)
	if !userspace {
		return "", ""
	}
	m := proxiesLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("up --userspace: got %q, want the proxy addresses", out)
	}
	return m[1], m[2]
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// down runs `nitronet down` on c.
func (w *world) down(t *testing.T, c *client) {
	t.Helper()
	w.nitronet(t, c, "", "down")
}

// assertNoRoute checks that c cannot reach the web server without a
// tunnel: there is no route at all.
func (w *world) assertNoRoute(t *testing.T, c *client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := c.net.NS.DialContext(ctx, "tcp", net.JoinHostPort(w.tp.ServerAddr.Addr().String(), httpPort))
	if err == nil {
		conn.Close()
		t.Fatalf("%s reached the web server without a tunnel", c.name)
	}
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("%s dialling the web server without a tunnel: got %v, want %v", c.name, err, syscall.ENETUNREACH)
	}
}

// routeDev returns the name of the device the kernel of ns would use to
// reach dst (policy routing included).
func routeDev(ns *netns.NS, dst netip.Addr) (string, error) {
	var name string
	err := ns.Netlink(func(h *netlink.Handle) error {
		routes, err := h.RouteGet(dst.AsSlice())
		if err != nil {
			return err
		}
		if len(routes) == 0 {
			return errors.New("no route")
		}
		l, err := h.LinkByIndex(routes[0].LinkIndex)
		if err != nil {
			return err
		}
		name = l.Attrs().Name
		return nil
	})
	return name, err
}

// direct returns an HTTP client that dials from ns with no proxy, a new
// connection per request.
func direct(ns *netns.NS) *http.Client { return ns.HTTPClient() }

// viaProxy returns an HTTP client that reaches proxyURL (http:// or
// socks5://, on the namespace's loopback) from ns.
func viaProxy(ns *netns.NS, proxyURL string) *http.Client {
	u, err := url.Parse(proxyURL)
	if err != nil {
		panic(err)
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:             http.ProxyURL(u),
		DialContext:       ns.DialContext,
		DisableKeepAlives: true,
	}}
}

// fetch GETs rawURL with hc (with Host header host, if set) within
// timeout and returns the body of a 200 answer.
func fetch(hc *http.Client, rawURL, host string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %q", resp.Status, b)
	}
	return string(b), nil
}

// pollFetch fetches until one succeeds (the first handshake may still be
// on its way) and returns the body, failing t after 15 s.
func (w *world) pollFetch(t *testing.T, hc *http.Client, rawURL, host string) string {
	t.Helper()
	var body string
	waitUntil(t, 15*time.Second, "a fetch of "+rawURL, func() (bool, error) {
		var err error
		body, err = fetch(hc, rawURL, host, 2*time.Second)
		return err == nil, err
	})
	return body
}

// nameserver returns the first nameserver of the resolv.conf that
// processes in namespace name see.
func nameserver(t *testing.T, name string) netip.Addr {
	t.Helper()
	f, err := os.Open(filepath.Join("/etc/netns", name, "resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) == 2 && fs[0] == "nameserver" {
			if a, err := netip.ParseAddr(fs[1]); err == nil {
				return a
			}
		}
	}
	t.Fatalf("no nameserver in the resolv.conf of %s", name)
	return netip.Addr{}
}

// resolve looks host up from inside ns, asking only server.
func resolve(t *testing.T, ns *netns.NS, server netip.Addr, host string) []string {
	t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return ns.DialContext(ctx, network, net.JoinHostPort(server.String(), "53"))
	}}
	var addrs []string
	waitUntil(t, 15*time.Second, "a DNS answer for "+host, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		addrs, err = r.LookupHost(ctx, host+".") // absolute: no search list
		return err == nil, err
	})
	sort.Strings(addrs)
	return addrs
}

// assertDNSFromGateway checks that every query the DNS responder saw came
// from the gateway's uplink address, and that there was at least one.
func (w *world) assertDNSFromGateway(t *testing.T) {
	t.Helper()
	srcs := w.dns.querySources()
	if len(srcs) == 0 {
		t.Fatalf("the upstream DNS responder got no query for %s", canaryHost)
	}
	for _, s := range srcs {
		if s.String() != w.uplink {
			t.Errorf("upstream DNS query from %v, want only from the gateway's uplink %s", s, w.uplink)
		}
	}
}

// stockClient brings c up with the stock tools and the exported config:
// `nitronet device config`, `wg-quick strip`, wireguard-go, `wg setconf`,
// and the address and routes set with ip (netlink).
func (w *world) stockClient(t *testing.T, c *client) {
	t.Helper()
	conf := w.nitronet(t, c, "", "device", "config", c.devID, "--gateway", kernelRegion)
	if !strings.Contains(conf, "PrivateKey = ") || !strings.Contains(conf, "Endpoint = "+net.JoinHostPort(endpointIP, kernelPort)) {
		t.Fatalf("device config: got %q, want a private key and endpoint %s:%s", redactKeys(conf), endpointIP, kernelPort)
	}
	w.stockTunnel(t, c, conf, fmt.Sprintf("e2ewg%d", os.Getpid()%100000))
}

// stockTunnel brings c up with wireguard-go and wg(8) from the wg-quick
// config conf, on interface iface (its UAPI socket is host-wide: a name
// of its own per caller), with routes for the web server and the tunnel
// pool.
func (w *world) stockTunnel(t *testing.T, c *client, conf, iface string) {
	t.Helper()
	dir := filepath.Join(w.tmp, "stock-"+iface)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, iface+".conf")
	if err := os.WriteFile(full, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	stripped, err := exec.Command("wg-quick", "strip", full).Output()
	if err != nil {
		t.Fatalf("wg-quick strip: %v", err)
	}
	if strings.Contains(string(stripped), "Address") || !strings.Contains(string(stripped), "[Peer]") {
		t.Fatalf("wg-quick strip: got %q, want a wg(8) config", redactKeys(string(stripped)))
	}
	strippedPath := filepath.Join(dir, iface+".stripped.conf")
	if err := os.WriteFile(strippedPath, stripped, 0o600); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Address = (.*)$`).FindStringSubmatch(conf)
	if m == nil {
		t.Fatalf("device config has no Address line: %q", redactKeys(conf))
	}
	var addr netip.Prefix
	for _, s := range strings.Split(m[1], ",") {
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil && p.Addr().Is4() {
			addr = p
		}
	}
	if addr.Addr() != c.tunAddr {
		t.Fatalf("device config address: got %v, want %v", addr, c.tunAddr)
	}

	env := append(w.baseEnv(), "WG_PROCESS_FOREGROUND=1", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1")
	wg := startProc(t, w.t, c.net.NS, w.logs, "wireguard-go-"+c.name, env, "wireguard-go", "-f", iface)
	sock := filepath.Join("/var/run/wireguard", iface+".sock")
	waitUntil(t, 10*time.Second, "wireguard-go to create "+iface, func() (bool, error) {
		if wg.exited() {
			return false, fmt.Errorf("wireguard-go exited: %s", wg.describe())
		}
		ok, err := c.net.NS.HasLink(iface)
		return ok && fileExists(sock), err
	})
	if _, err := runCmd(c.net.NS, w.baseEnv(), "", "wg", "setconf", iface, strippedPath); err != nil {
		t.Fatalf("wg setconf: %v", err)
	}
	if err := c.net.NS.AddTunnelAddr(iface, addr); err != nil {
		t.Fatal(err)
	}
	if err := c.net.NS.LinkUp(iface); err != nil {
		t.Fatal(err)
	}
	// Routes: the web server, and the tunnel pool (as AllowedIPs 0.0.0.0/0
	// would); the endpoint keeps its transit route.
	for _, dst := range []netip.Prefix{netip.PrefixFrom(w.tp.ServerAddr.Addr(), 32), netip.MustParsePrefix("100.64.0.0/10")} {
		if err := c.net.NS.AddDeviceRoute(dst, iface); err != nil {
			t.Fatal(err)
		}
	}
}

// redactKeys hides the private key of a config in failure messages.
func redactKeys(conf string) string {
	return regexp.MustCompile(`(?m)^PrivateKey = .*$`).ReplaceAllString(conf, "PrivateKey = (redacted)")
}

// listenTCP listens on a free port of addr inside ns until the test ends;
// every connection is greeted with "hello\n". It returns HOST:PORT.
func listenTCP(t *testing.T, ns *netns.NS, addr netip.Addr) string {
	t.Helper()
	ln, err := ns.Listen("tcp", net.JoinHostPort(addr.String(), "0"))
	if err != nil {
		t.Fatalf("listen on %v: %v", addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("hello\n"))
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// dialRead connects from ns to target and reads the greeting, within
// timeout.
func dialRead(ns *netns.NS, target string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := ns.DialContext(ctx, "tcp", target)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "hello\n" {
		return fmt.Errorf("got greeting %q, want %q", line, "hello\n")
	}
	return nil
}

// deniedSource checks that a gateway started with --deny-cidr covering
// c's transit address never answers c: no traffic passes, `status` shows
// no handshake, and the gateway counts dropped packets. As a control, the
// same machine and device connect through another gateway.
func (w *world) deniedSource(t *testing.T, c *client) {
	t.Helper()
	denied := netip.PrefixFrom(c.net.Addr.Addr(), 32)
	gw := w.startGateway(t, t, denyRegion, denyPort, "userspace", "--deny-cidr", denied.String())
	w.login(t, c, bob)
	w.addDevice(t, c, "bob-denied")

	// A quantum-resistant `up` fails closed without a handshake; the
	// classical one stays up to show that it has none.
	_, httpProxy := w.up(t, t, c, denyRegion, true, "--quantum-resistant=false")
	statusFile := filepath.Join(c.conf, "run", "status.json")
	first, err := os.Stat(statusFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := viaProxy(c.net.NS, "http://"+httpProxy)
	for i := range 3 {
		if body, err := fetch(hc, w.pageURL, "", time.Second); err == nil {
			t.Fatalf("fetch %d through the denying gateway: got %q, want a failure", i+1, body)
		}
	}
	// `up` refreshes the handshake time in its status every 5 s; wait for
	// one refresh so that "no handshake" is a measurement.
	waitUntil(t, 10*time.Second, "up to refresh its status", func() (bool, error) {
		fi, err := os.Stat(statusFile)
		return err == nil && fi.ModTime().After(first.ModTime()), err
	})
	// Not connected: `status` says so and exits 3.
	st, err := runCmd(c.net.NS, w.clientEnv(c), "", w.bin, "status")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("status through the denying gateway: got %v, want exit status 3", err)
	}
	if !strings.Contains(st, "no handshake yet") || strings.Contains(st, "last handshake") {
		t.Errorf("status through the denying gateway: got %q, want a tunnel with no handshake yet", st)
	}
	w.down(t, c)

	// Control: the same machine and device get through another gateway.
	_, httpProxy = w.up(t, t, c, userRegion, true)
	if got := w.pollFetch(t, viaProxy(c.net.NS, "http://"+httpProxy), w.pageURL, ""); got != w.uplink {
		t.Errorf("control through %s: web server saw %s, want %s", userRegion, got, w.uplink)
	}
	w.down(t, c)

	if err := gw.stop(10 * time.Second); err != nil {
		t.Errorf("stop the denying gateway: got %v, want a clean exit", err)
	}
	_, logs := gw.output()
	m := regexp.MustCompile(`dropped_by_admission=(\d+)`).FindStringSubmatch(logs)
	if m == nil || m[1] == "0" {
		t.Errorf("denying gateway's shutdown log: got %v, want dropped_by_admission > 0\n%s", m, logs)
	}
	delete(w.gws, denyRegion)
}

// token returns the session token saved on c.
func token(t *testing.T, c *client) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.conf, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Token == "" {
		t.Fatalf("state.json of %s: no token (%v)", c.name, err)
	}
	return st.Token
}

// api calls the control server from c's namespace with c's token.
func (w *world) api(c *client, token, method, path string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, w.apiURL+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := direct(c.net.NS).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// deleteCuts deletes c's device through the API while c's tunnel is up and
// measures the time from the DELETE's answer to the first fetch that
// fails. Each fetch has a 200 ms timeout, and the time counted is to the
// end of the failed fetch, so the measurement errs on the long side.
func (w *world) deleteCuts(t *testing.T, c *client) {
	t.Helper()
	const (
		limit   = time.Second
		timeout = 200 * time.Millisecond
	)
	hc := direct(c.net.NS)
	if got := w.pollFetch(t, hc, w.pageURL, ""); got != w.uplink {
		t.Fatalf("before the deletion: web server saw %s, want %s", got, w.uplink)
	}
	// Control: fetches with this short timeout do succeed here, so a
	// failure below is the cut and not the timeout.
	for i := range 3 {
		if _, err := fetch(hc, w.pageURL, "", timeout); err != nil {
			t.Fatalf("control fetch %d with a %v timeout before the deletion: %v", i+1, timeout, err)
		}
	}
	tok := token(t, c)
	resp, body, err := w.api(c, tok, http.MethodDelete, "/api/v1/devices/"+c.devID)
	deleted := time.Now()
	if err != nil {
		t.Fatalf("DELETE device: %v", err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("DELETE device: got %s %q, want 2xx", resp.Status, body)
	}
	var cutAfter, cut time.Duration // the failed fetch's start and end
	ok := 0
	for {
		started := time.Since(deleted)
		_, err := fetch(hc, w.pageURL, "", timeout)
		if err != nil {
			cutAfter, cut = started, time.Since(deleted)
			break
		}
		ok++
		if time.Since(deleted) > 5*time.Second {
			t.Fatalf("tunnel still passing traffic %v after the device was deleted (%d fetches)", time.Since(deleted), ok)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("tunnel cut within %v of the DELETE returning: the first failed fetch ran from %v to %v (%d fetches succeeded before it)",
		cut.Round(time.Millisecond), cutAfter.Round(time.Millisecond), cut.Round(time.Millisecond), ok)
	if cut >= limit {
		t.Errorf("tunnel cut %v after the DELETE returned, want < %v", cut.Round(time.Millisecond), limit)
	}
	for i := range 2 {
		if body, err := fetch(hc, w.pageURL, "", 500*time.Millisecond); err == nil {
			t.Errorf("fetch %d after the cut: got %q, want a failure", i+1, body)
		}
	}
}

// usage polls GET /api/v1/me/usage with c's token until it lists a session
// through the wanted region for each device, started no earlier than the
// minute the test began.
func (w *world) usage(t *testing.T, c *client, began time.Time, want map[*client]string) {
	t.Helper()
	tok := token(t, c)
	type session struct {
		DeviceID  string     `json:"device_id"`
		Region    string     `json:"region"`
		StartedAt time.Time  `json:"started_at"`
		EndedAt   *time.Time `json:"ended_at"`
	}
	var got struct {
		Recording string    `json:"recording"`
		Sessions  []session `json:"sessions"`
	}
	var missing []string
	waitUntil(t, 30*time.Second, "the sessions in /me/usage", func() (bool, error) {
		resp, body, err := w.api(c, tok, http.MethodGet, "/api/v1/me/usage")
		if err != nil {
			return false, err
		}
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("got %s %q, want 200", resp.Status, body)
		}
		got.Sessions = nil
		if err := json.Unmarshal(body, &got); err != nil {
			return false, err
		}
		missing = missing[:0]
		for d, region := range want {
			found := slices.ContainsFunc(got.Sessions, func(s session) bool {
				return s.DeviceID == d.devID && s.Region == region &&
					!s.StartedAt.Before(began.Truncate(time.Minute)) && !s.StartedAt.After(time.Now())
			})
			if !found {
				missing = append(missing, d.devID+"@"+region)
			}
		}
		if len(missing) > 0 {
			return false, fmt.Errorf("missing %v in %s", missing, body)
		}
		return true, nil
	})
	if got.Recording != "intervals" {
		t.Errorf("recording: got %q, want %q", got.Recording, "intervals")
	}
	t.Logf("usage: %d sessions", len(got.Sessions))
}

// leakSearch stops the control server and the gateways (so that every
// last log line and database page is written) and searches everything
// they wrote for the clients' transit addresses, the web server's address
// and port, the name looked up and the path fetched.
func (w *world) leakSearch(t *testing.T, extra ...needle) {
	t.Helper()
	for region, gw := range w.gws {
		if err := gw.stop(10 * time.Second); err != nil {
			t.Errorf("stop gateway %s: got %v, want a clean exit", region, err)
		}
	}
	if err := w.serve.stop(15 * time.Second); err != nil {
		t.Errorf("stop serve: got %v, want a clean exit", err)
	}

	logs, err := filepath.Glob(filepath.Join(w.logs, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var written []string // the logs of the control server and the gateways
	for _, l := range logs {
		base := filepath.Base(l)
		if strings.HasPrefix(base, "serve-") || strings.HasPrefix(base, "gateway-") {
			written = append(written, l)
		}
	}
	files := append(collectFiles(t, w.data, w.gwKeys), written...)

	// The search must have something to search.
	for _, f := range []string{
		filepath.Join(w.data, "nitronet.db"),
		filepath.Join(w.gwKeys, kernelRegion+".key"),
		filepath.Join(w.logs, "serve-1.stderr"),
		filepath.Join(w.logs, "gateway-"+kernelRegion+".stderr"),
		filepath.Join(w.logs, "gateway-"+userRegion+".stderr"),
	} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("%s: want a non-empty file to search (%v)", f, err)
		}
	}

	var needles []needle
	for _, c := range w.clients {
		needles = append(needles, addrNeedles(c.name+"'s transit address", c.net.Addr.Addr())...)
	}
	needles = append(needles, addrNeedles("web server address", w.tp.ServerAddr.Addr())...)
	needles = append(needles,
		portNeedle("web server port", httpPort),
		needle{name: "name looked up " + canaryHost, text: strings.ToLower(canaryHost)},
		needle{name: "first label of the name looked up", text: strings.ToLower(strings.Split(canaryHost, ".")[0])},
		needle{name: "path fetched " + canaryPath, text: strings.TrimPrefix(canaryPath, "/")},
	)
	needles = append(needles, extra...)
	n, size := searchLeaks(t, files, needles)
	t.Logf("searched %d files (%d bytes) for %d needles", n, size, len(needles))
	if n == 0 || n != len(files) {
		t.Errorf("searched %d of %d files, want all and more than 0", n, len(files))
	}
}
