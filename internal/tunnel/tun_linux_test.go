package tunnel

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// The TUN-mode test builds two network namespaces joined by a veth pair
// (transit 198.18.0.1/30 <-> 198.18.0.2/30): a gateway namespace running a
// wireguard-go gateway on a TUN with an HTTP server on its tunnel addresses
// (100.64.0.1, fd00::1), and a client namespace where Up runs. Both run in
// helper processes started with "ip netns exec", so every thread of the
// process is in the namespace and /etc/netns/NAME/resolv.conf is
// bind-mounted over /etc/resolv.conf. No packet leaves these namespaces.

const (
	helperEnv      = "NITRONET_TUN_HELPER"
	clientTransit  = "198.18.0.1/30"
	gatewayTransit = "198.18.0.2/30"
	gatewayPort    = 51820
	origResolvConf = "# original resolv.conf of the test namespace\nnameserver 198.18.0.2\n"
)

// requireNetns skips the test unless it can create namespaces and TUN
// devices; with NITRONET_REQUIRE_NETNS=1 it fails instead.
func requireNetns(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs the ip command"
	} else if _, err := os.Stat("/dev/net/tun"); err != nil {
		why = "needs /dev/net/tun"
	}
	if why == "" {
		return
	}
	if os.Getenv("NITRONET_REQUIRE_NETNS") == "1" {
		t.Fatalf("NITRONET_REQUIRE_NETNS=1 but the TUN test %s", why)
	}
	t.Skip(why)
}

type netnsEnv struct {
	client, gateway string // namespace names
	stateDir        string
	configPath      string
	clientKey       wgkey.PrivateKey
	gatewayKey      wgkey.PrivateKey
}

// newNetnsEnv creates the two namespaces and the veth pair, removed again
// in t.Cleanup.
func newNetnsEnv(t *testing.T) *netnsEnv {
	t.Helper()
	var rb [4]byte
	if _, err := rand.Read(rb[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(rb[:])
	e := &netnsEnv{
		client:     "nt-c-" + id,
		gateway:    "nt-g-" + id,
		stateDir:   filepath.Join(t.TempDir(), "state"),
		clientKey:  testKey(t, 1),
		gatewayKey: testKey(t, 9),
	}
	for _, name := range []string{e.client, e.gateway} {
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", name, err, out)
			}
			os.RemoveAll(filepath.Join("/etc/netns", name))
		})
	}
	// "ip netns exec" bind-mounts this file over /etc/resolv.conf.
	dir := filepath.Join("/etc/netns", e.client)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(origResolvConf), 0o644); err != nil {
		t.Fatal(err)
	}

	cns := e.handle(t, e.client)
	gns := e.handle(t, e.gateway)
	gnsFd, err := netns.GetFromName(e.gateway)
	if err != nil {
		t.Fatal(err)
	}
	defer gnsFd.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth-c"}, PeerName: "veth-g", PeerNamespace: netlink.NsFd(int(gnsFd))}
	if err := cns.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, side := range []struct {
		h    *netlink.Handle
		link string
		addr string
	}{{cns, "veth-c", clientTransit}, {gns, "veth-g", gatewayTransit}} {
		lo, err := side.h.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		if err := side.h.LinkSetUp(lo); err != nil {
			t.Fatal(err)
		}
		l, err := side.h.LinkByName(side.link)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr(side.addr)
		if err := side.h.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// handle returns a netlink handle inside namespace name.
func (e *netnsEnv) handle(t *testing.T, name string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// writeConfig writes the client's wg-quick config for the helper.
func (e *netnsEnv) writeConfig(t *testing.T, v6 bool) {
	t.Helper()
	c := wgconf.Config{
		Interface: wgconf.Interface{
			PrivateKey: &e.clientKey,
			Addresses:  []netip.Prefix{clientTunV4},
			DNS:        []netip.Addr{gwTunV4},
		},
		Peers: []wgconf.Peer{{
			PublicKey:  e.gatewayKey.Public(),
			Endpoint:   fmt.Sprintf("198.18.0.2:%d", gatewayPort),
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		}},
	}
	if v6 {
		c.Interface.Addresses = append(c.Interface.Addresses, clientTunV6)
	}
	e.configPath = filepath.Join(t.TempDir(), "client.conf")
	if err := os.WriteFile(e.configPath, []byte(c.Render()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// helper starts this test binary as helper mode in namespace ns.
func (e *netnsEnv) helper(t *testing.T, ns, mode string, extra ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestTUNHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(),
		helperEnv+"="+mode,
		"NT_STATE_DIR="+e.stateDir,
		"NT_CONFIG="+e.configPath,
		"NT_GATEWAY_KEY="+e.gatewayKey.Hex(),
		"NT_CLIENT_PUB="+e.clientKey.Public().Hex(),
	)
	cmd.Env = append(cmd.Env, extra...)
	return cmd
}

// startUntilReady starts cmd and waits until it prints a "READY" line. The
// process is killed in t.Cleanup if still running.
func startUntilReady(t *testing.T, cmd *exec.Cmd) (stdin io.WriteCloser, output *syncBuffer) {
	t.Helper()
	output = &syncBuffer{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = output
	stdin, err = cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			output.Write([]byte(sc.Text() + "\n"))
			if sc.Text() == "READY" && !sent {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("helper exited before READY:\n%s", output)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("helper not READY after 30s:\n%s", output)
	}
	return stdin, output
}

func TestTUNMode(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in helper process")
	}
	requireNetns(t)
	e := newNetnsEnv(t)
	gwStdin, gwOut := startUntilReady(t, e.helper(t, e.gateway, "gateway"))
	defer gwStdin.Close()
	cns := e.handle(t, e.client)
	nsFd, err := netns.GetFromName(e.client)
	if err != nil {
		t.Fatal(err)
	}
	defer nsFd.Close()
	nft, err := nftables.New(nftables.WithNetNSFd(int(nsFd)))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		v6         bool
		killSwitch bool
	}{
		{name: "dual stack", v6: true},
		{name: "ipv4 only with kill switch", v6: false, killSwitch: true},
		{name: "ipv4 only", v6: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.writeConfig(t, tt.v6)
			cmd := e.helper(t, e.client, "client", fmt.Sprintf("NT_V6=%t", tt.v6), fmt.Sprintf("NT_KILLSWITCH=%t", tt.killSwitch))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("client helper: %v\n%s\ngateway:\n%s", err, out, gwOut)
			}
			t.Logf("client helper:\n%s", out)
			checkRestored(t, e, cns, nft)
		})
	}

	t.Run("recover after crash", func(t *testing.T) {
		e.writeConfig(t, false)
		cmd := e.helper(t, e.client, "crash", "NT_KILLSWITCH=true")
		startUntilReady(t, cmd)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		// The crash left rules, the kill switch and DNS behind.
		if got := tunnelRuleCount(t, cns); got != 2 {
			t.Errorf("rules after crash: got %d, want 2", got)
		}
		if !nftHasTable(t, nft) {
			t.Errorf("nftables table after crash: got none, want %s", NftTableName)
		}
		if got := readNetnsResolvConf(t, e); got == origResolvConf {
			t.Errorf("resolv.conf after crash: got the original, want the tunnel's")
		}
		if out, err := e.helper(t, e.client, "recover").CombinedOutput(); err != nil {
			t.Fatalf("recover helper: %v\n%s", err, out)
		}
		checkRestored(t, e, cns, nft)
	})
}

// checkRestored checks from outside the client namespace that nothing of
// the tunnel is left.
func checkRestored(t *testing.T, e *netnsEnv, cns *netlink.Handle, nft *nftables.Conn) {
	t.Helper()
	if got := tunnelRuleCount(t, cns); got != 0 {
		t.Errorf("tunnel rules left: got %d, want 0", got)
	}
	if nftHasTable(t, nft) {
		t.Errorf("nftables table %s left, want none", NftTableName)
	}
	if got := readNetnsResolvConf(t, e); got != origResolvConf {
		t.Errorf("resolv.conf: got %q, want %q", got, origResolvConf)
	}
	if _, err := cns.LinkByName("ntc0"); err == nil {
		t.Errorf("link ntc0 left, want none")
	}
	if routes, err := cns.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: RouteTable}, netlink.RT_FILTER_TABLE); err != nil || len(routes) != 0 {
		t.Errorf("routes in table %d: got %d (%v), want 0", RouteTable, len(routes), err)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, stateFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file: got %v, want it removed", err)
	}
}

func tunnelRuleCount(t *testing.T, h *netlink.Handle) int {
	t.Helper()
	rules, err := h.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rules {
		if r.Priority == prioSuppress || r.Priority == prioFwMark {
			n++
		}
	}
	return n
}

func nftHasTable(t *testing.T, c *nftables.Conn) bool {
	t.Helper()
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range ts {
		if tb.Name == NftTableName {
			return true
		}
	}
	return false
}

func readNetnsResolvConf(t *testing.T, e *netnsEnv) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/etc/netns", e.client, "resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTUNHelperProcess is not a test: it is the body of the helper
// processes that TestTUNMode starts inside the namespaces.
func TestTUNHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("only runs as a helper process of TestTUNMode")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	switch mode {
	case "gateway":
		helperGateway(t)
	case "client":
		helperClient(t, log)
	case "crash":
		helperUp(t, log, os.Getenv("NT_KILLSWITCH") == "true")
		fmt.Println("READY")
		io.Copy(io.Discard, os.Stdin) // killed here
	case "recover":
		mustBeInTestNetns(t)
		if err := Recover(os.Getenv("NT_STATE_DIR"), log); err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if err := Recover(os.Getenv("NT_STATE_DIR"), log); err != nil {
			t.Fatalf("second Recover: got %v, want nil", err)
		}
	default:
		t.Fatalf("unknown helper mode %q", mode)
	}
}

// mustBeInTestNetns refuses to touch /etc/resolv.conf unless it is the
// namespace's bind mount.
func mustBeInTestNetns(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), " /etc/resolv.conf ") {
		t.Fatal("/etc/resolv.conf is not a bind mount: not running under ip netns exec with /etc/netns/NAME/resolv.conf")
	}
}

func helperUp(t *testing.T, log *slog.Logger, killSwitch bool) *Tunnel {
	t.Helper()
	mustBeInTestNetns(t)
	b, err := os.ReadFile(os.Getenv("NT_CONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := wgconf.Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tun, err := Up(ctx, Options{Config: c, IfName: "ntc0", StateDir: os.Getenv("NT_STATE_DIR"), KillSwitch: killSwitch, Logger: log})
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	return tun
}

func helperClient(t *testing.T, log *slog.Logger) {
	v6 := os.Getenv("NT_V6") == "true"
	killSwitch := os.Getenv("NT_KILLSWITCH") == "true"
	srcValidMark, _ := os.ReadFile(srcValidMarkPath)
	tun := helperUp(t, log, killSwitch)
	defer tun.Close()

	// Rules and routes like wg-quick's.
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		want := fam == netlink.FAMILY_V4 || v6
		rules, err := netlink.RuleList(fam)
		if err != nil {
			t.Fatal(err)
		}
		var sup, mark bool
		for _, r := range rules {
			sup = sup || (r.Priority == prioSuppress && r.Table == unix.RT_TABLE_MAIN && r.SuppressPrefixlen == 0)
			mark = mark || (r.Priority == prioFwMark && r.Table == RouteTable && r.Mark == FwMark && r.Invert)
		}
		if sup != want || mark != want {
			t.Errorf("family %d rules: got suppress %v fwmark %v, want %v", fam, sup, mark, want)
		}
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: RouteTable}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(routes) == 1 && routes[0].Dst != nil; got != want {
			t.Errorf("family %d default route in table %d: got %v (%v), want %v", fam, RouteTable, got, routes, want)
		}
	}
	if b, _ := os.ReadFile(resolvConfPath); !strings.Contains(string(b), "nameserver 100.64.0.1\n") {
		t.Errorf("resolv.conf: got %q, want nameserver 100.64.0.1", b)
	}
	if b, _ := os.ReadFile(srcValidMarkPath); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("src_valid_mark: got %q, want 1", b)
	}
	exists, err := nftTableExists(NftTableName)
	if err != nil {
		t.Fatal(err)
	}
	if want := killSwitch || !v6; exists != want {
		t.Errorf("nftables table: got %v, want %v", exists, want)
	}

	// Traffic to the gateway's tunnel addresses goes through the tunnel.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	urls := []string{"http://100.64.0.1/"}
	if v6 {
		urls = append(urls, "http://[fd00::1]/")
	}
	for _, u := range urls {
		resp, err := client.Get(u)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "hello from gateway") {
			t.Errorf("GET %s: got %q, want the gateway's page", u, body)
		}
	}
	if tun.Status().LastHandshake.IsZero() {
		t.Errorf("Status.LastHandshake: got zero after traffic, want a time")
	}
	// The gateway's transit address is on-link, so it is reached around the
	// tunnel (suppress_prefixlength keeps non-default main routes) unless
	// the kill switch drops it.
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", "198.18.0.2:80")
	if err == nil {
		c.Close()
	}
	if blocked := err != nil; blocked != killSwitch {
		t.Errorf("direct connection around the tunnel: got blocked %v (%v), want %v", blocked, err, killSwitch)
	}

	if err := tun.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if b, _ := os.ReadFile(resolvConfPath); string(b) != origResolvConf {
		t.Errorf("resolv.conf after Close: got %q, want %q", b, origResolvConf)
	}
	if b, _ := os.ReadFile(srcValidMarkPath); string(b) != string(srcValidMark) {
		t.Errorf("src_valid_mark after Close: got %q, want %q", b, srcValidMark)
	}
	if _, err := netlink.LinkByName("ntc0"); err == nil {
		t.Errorf("link after Close: still there")
	}
}

// helperGateway runs a wireguard-go gateway on a TUN with an HTTP server on
// port 80 until stdin closes.
func helperGateway(t *testing.T) {
	tdev, err := tun.CreateTUN("ntgw0", 1420)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "gateway: "))
	defer dev.Close()
	uapi := fmt.Sprintf("private_key=%s\nlisten_port=%d\nreplace_peers=true\npublic_key=%s\nallowed_ip=100.64.0.2/32\nallowed_ip=fd00::2/128\n",
		os.Getenv("NT_GATEWAY_KEY"), gatewayPort, os.Getenv("NT_CLIENT_PUB"))
	if err := dev.IpcSet(uapi); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	link, err := netlink.LinkByName("ntgw0")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"100.64.0.1/24", "fd00::1/64"} {
		na, _ := netlink.ParseAddr(a)
		na.Flags = unix.IFA_F_NODAD
		if err := netlink.AddrAdd(link, na); err != nil {
			t.Fatal(err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from gateway, host %s", r.Host)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
}
