package e2e

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/nitronet/nitronet/internal/netns"
)

// The names of the DNS blocking test. Both resolve upstream; only
// blockedHost is on the operator's ads list from the start, and
// laterHost joins it on a reload. Neither may appear anywhere the system
// writes.
const (
	blockedHost = "blockcanary-ads.e2e.test"
	laterHost   = "blockcanary-later.e2e.test"

	blockKernelRegion = "e2e-block-kernel"
	blockUserRegion   = "e2e-block-user"
	blockKernelPort   = "51831"
	blockUserPort     = "51832"
)

// TestDNSBlocking runs a kernel-mode and a userspace gateway with an ads
// blocklist, and two TUN clients in their own namespaces: c0's device
// chose ads (in the CLI, stored on the device), c1's chose nothing. Through
// each gateway a listed name answers NXDOMAIN to c0 without reaching the
// upstream and resolves for c1; an unlisted name resolves for both. A
// SIGHUP reloads the list. Afterwards neither name is in anything the
// control server or the gateways wrote (database, key files, logs), nor
// in the clients' state.
func TestDNSBlocking(t *testing.T) {
	netns.Require(t)
	requireTools(t)
	w, upstream := setupDNSBlocking(t)
	c0, c1 := w.clients[0], w.clients[1]

	lists := filepath.Join(t.TempDir(), "lists") // the operator's, not written by the system
	if err := os.Mkdir(lists, 0o700); err != nil {
		t.Fatal(err)
	}
	adsList := filepath.Join(lists, "ads.hosts")
	writeList := func(names ...string) {
		t.Helper()
		var b strings.Builder
		b.WriteString("# e2e ads list, hosts format\n127.0.0.1 localhost\n")
		for _, n := range names {
			b.WriteString("0.0.0.0 " + n + "\n")
		}
		if err := os.WriteFile(adsList, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeList(blockedHost)
	gws := map[string]*proc{
		blockKernelRegion: w.startGateway(t, t, blockKernelRegion, blockKernelPort, "kernel", "--blocklist", "ads="+adsList),
		blockUserRegion:   w.startGateway(t, t, blockUserRegion, blockUserPort, "userspace", "--blocklist", "ads="+adsList),
	}

	w.signup(t, c0, alice)
	w.addDevice(t, c0, "alice-blocking")
	if out := w.nitronet(t, c0, "", "device", "dns-blocking", c0.devID, "ads"); !strings.Contains(out, "now blocks: ads") {
		t.Fatalf("device dns-blocking: got %q", out)
	}
	w.signup(t, c1, bob)
	w.addDevice(t, c1, "bob-plain")

	server := w.tp.ServerAddr.Addr()
	for _, region := range []string{blockKernelRegion, blockUserRegion} {
		t.Run(region, func(t *testing.T) {
			// Both come down (nitronet down) when this subtest ends.
			for _, c := range []*client{c0, c1} {
				w.up(t, t, c, region, false)
			}
			// The blocking device's tunnel is quantum-resistant too: it asks
			// the ephemeral-peer service at its resolver address.
			if out := w.nitronet(t, c0, "", "status"); !regexp.MustCompile(`quantum-resistant\s+yes`).MatchString(out) {
				t.Errorf("status of c0 (ads): got %q, want a quantum-resistant tunnel", out)
			}
			ns0, ns1 := nameserver(t, c0.net.NS.Name()), nameserver(t, c1.net.NS.Name())
			if want := netip.MustParseAddr("fd00:6e6e::53:0:1"); ns0 != want {
				t.Fatalf("c0 (ads) resolv.conf nameserver: got %v, want the ads resolver %v", ns0, want)
			}
			if !netip.MustParsePrefix("100.64.0.0/10").Contains(ns1) {
				t.Fatalf("c1 (no blocking) resolv.conf nameserver: got %v, want the gateway's tunnel address", ns1)
			}

			before := upstream.count(blockedHost)
			if rcode, addrs := queryA(t, c0.net.NS, ns0, blockedHost); rcode != dnsmessage.RCodeNameError || len(addrs) != 0 {
				t.Errorf("c0 (ads) asks for %s: got %v %v, want NXDOMAIN", blockedHost, rcode, addrs)
			}
			if got := upstream.count(blockedHost); got != before {
				t.Errorf("the blocked query reached the upstream (%d queries, want %d)", got, before)
			}
			if rcode, addrs := queryA(t, c1.net.NS, ns1, blockedHost); rcode != dnsmessage.RCodeSuccess || len(addrs) != 1 || addrs[0] != server {
				t.Errorf("c1 (no blocking) asks for %s: got %v %v, want [%v]", blockedHost, rcode, addrs, server)
			}
			for _, c := range []struct {
				c  *client
				ns netip.Addr
			}{{c0, ns0}, {c1, ns1}} {
				if rcode, addrs := queryA(t, c.c.net.NS, c.ns, laterHost); rcode != dnsmessage.RCodeSuccess || len(addrs) != 1 || addrs[0] != server {
					t.Errorf("%s asks for %s (not listed): got %v %v, want [%v]", c.c.name, laterHost, rcode, addrs, server)
				}
			}

			// SIGHUP reloads the list; a broken list keeps the old one.
			gw := gws[region]
			writeList(blockedHost, laterHost)
			if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, 15*time.Second, "the reloaded list to block "+laterHost, func() (bool, error) {
				rcode, _ := queryA(t, c0.net.NS, ns0, laterHost)
				return rcode == dnsmessage.RCodeNameError, nil
			})
			if rcode, _ := queryA(t, c1.net.NS, ns1, laterHost); rcode != dnsmessage.RCodeSuccess {
				t.Errorf("c1 after the reload asks for %s: got %v, want it resolved", laterHost, rcode)
			}
			if err := os.WriteFile(adsList, []byte("not a domain!\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			gw.waitStderr(t, "DNS blocklists not reloaded", 15*time.Second)
			if rcode, _ := queryA(t, c0.net.NS, ns0, laterHost); rcode != dnsmessage.RCodeNameError {
				t.Errorf("after a failed reload c0 asks for %s: got %v, want the list in force kept", laterHost, rcode)
			}
			writeList(blockedHost)
		})
	}

	t.Run("nothing_written", func(t *testing.T) {
		for region, gw := range gws {
			if err := gw.stop(10 * time.Second); err != nil {
				t.Errorf("stop gateway %s: got %v, want a clean exit", region, err)
			}
			stdout, stderr := gw.output()
			if !strings.Contains(stderr, "DNS blocklists reloaded") || !strings.Contains(stderr, `dns_blocked="ads=`) {
				t.Errorf("gateway %s logs lack the reload and the blocked totals:\n%s%s", region, stdout, stderr)
			}
		}
		if err := w.serve.stop(15 * time.Second); err != nil {
			t.Errorf("stop serve: got %v, want a clean exit", err)
		}
		// The control server's data (database, outbox), the gateways'
		// key files, every process's output, the clients' state.
		files := collectFiles(t, w.data, w.gwKeys, w.logs, c0.conf, c1.conf)
		needles := []needle{
			{name: "blocked name " + blockedHost, text: blockedHost},
			{name: "first label of the blocked name", text: strings.Split(blockedHost, ".")[0]},
			{name: "name blocked on reload " + laterHost, text: laterHost},
			{name: "first label of the name blocked on reload", text: strings.Split(laterHost, ".")[0]},
		}
		n, size := searchLeaks(t, files, needles)
		t.Logf("searched %d files (%d bytes) for %d needles", n, size, len(needles))
		if n < 5 || n != len(files) {
			t.Errorf("searched %d of %d files, want all (the database, key files and logs)", n, len(files))
		}
	})
}

// setupDNSBlocking builds the binary and the network (two clients), and
// starts the control server and an upstream DNS responder
// that answers blockedHost and laterHost with the server namespace's
// address.
func setupDNSBlocking(t *testing.T) (*world, *namesResponder) {
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
	for i := range 2 {
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
	for _, ns := range []*netns.NS{w.tp.Gateway, w.tp.Server, w.clients[0].net.NS, w.clients[1].net.NS} {
		dir := filepath.Join("/etc/netns", ns.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("# nitronet e2e\nnameserver 198.18.255.254\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.tp.Server.AddAddr(netns.ServerIf, netip.MustParsePrefix(dnsIP+"/24")); err != nil {
		t.Fatal(err)
	}
	upstream := startNamesDNS(t, w.tp.Server, net.JoinHostPort(dnsIP, "53"), w.tp.ServerAddr.Addr(), blockedHost, laterHost)
	w.apiURL = "http://" + net.JoinHostPort(endpointIP, apiPort)
	w.startServe(t)
	return w, upstream
}

// namesResponder is an upstream DNS server over UDP that answers A
// queries for a few names with one address, AAAA queries for them with no
// records, and anything else NXDOMAIN; it counts the queries per name. It
// is safe for concurrent use.
type namesResponder struct {
	pc   net.PacketConn
	addr netip.Addr

	mu     sync.Mutex
	counts map[string]int // by lower-case name without the final dot
}

// startNamesDNS serves on the UDP address listen inside ns until the test
// ends.
func startNamesDNS(t *testing.T, ns *netns.NS, listen string, addr netip.Addr, names ...string) *namesResponder {
	t.Helper()
	pc, err := ns.ListenPacket("udp", listen)
	if err != nil {
		t.Fatalf("DNS responder: %v", err)
	}
	d := &namesResponder{pc: pc, addr: addr, counts: map[string]int{}}
	for _, n := range names {
		d.counts[strings.ToLower(n)] = 0
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			if resp, ok := d.answer(buf[:n]); ok {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return d
}

// count returns how many queries for name the responder has had.
func (d *namesResponder) count(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts[strings.ToLower(name)]
}

func (d *namesResponder) answer(msg []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
	d.mu.Lock()
	_, known := d.counts[name]
	if known {
		d.counts[name]++
	}
	d.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	if known && q.Type == dnsmessage.TypeA {
		rr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60}
		if b.AResource(rr, dnsmessage.AResource{A: d.addr.As4()}) != nil {
			return nil, false
		}
	}
	out, err := b.Finish()
	return out, err == nil
}

// queryA asks server (port 53, UDP) from inside ns for the A records of
// host, retrying until an answer comes (the first handshake may still be
// on its way), and returns its rcode and addresses. It fails t after 15 s
// without an answer.
func queryA(t *testing.T, ns *netns.NS, server netip.Addr, host string) (dnsmessage.RCode, []netip.Addr) {
	t.Helper()
	name := dnsmessage.MustNewName(host + ".")
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: 0x4242, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	query, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var (
		rcode dnsmessage.RCode
		addrs []netip.Addr
	)
	waitUntil(t, 15*time.Second, "a DNS answer for "+host+" from "+server.String(), func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := ns.DialContext(ctx, "udp", net.JoinHostPort(server.String(), "53"))
		if err != nil {
			return false, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(query); err != nil {
			return false, err
		}
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			return false, err
		}
		var m dnsmessage.Message
		if err := m.Unpack(buf[:n]); err != nil || m.ID != q.ID || !m.Response {
			return false, errors.New("not an answer to the query")
		}
		rcode, addrs = m.RCode, nil
		for _, a := range m.Answers {
			if r, ok := a.Body.(*dnsmessage.AResource); ok {
				addrs = append(addrs, netip.AddrFrom4(r.A))
			}
		}
		return true, nil
	})
	return rcode, addrs
}
