package gateway_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gateway/admission"
	"github.com/nitronet/nitronet/internal/gwproto"
)

const targetBody = "hello through the tunnel"

// transitAddr is the destination clients dial. A stock netstack client
// drops replies whose source is a loopback address (martian packets), so the
// client cannot dial 127.0.0.1 itself. It dials this benchmark-range address
// instead, and the gateway's test dialer maps it to the target on
// 127.0.0.1.
const transitAddr = "198.18.0.10"

// newTarget starts the HTTP target on 127.0.0.1 and returns the URL a client
// uses through the tunnel, and the target's port.
func newTarget(t *testing.T) (string, string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(targetBody))
	}))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	return "http://" + transitAddr + ":" + port, port
}

// loopbackDialer is the gateway's outbound dialer in tests. It maps
// transitAddr to 127.0.0.1, lets 127.0.0.1 through (the DNS upstream), and
// refuses everything else without sending a packet, so no test traffic can
// leave this machine. It records every address it is asked for, so a test
// can prove the gateway never tried a refused destination.
type loopbackDialer struct {
	mu    sync.Mutex
	asked []string
}

func (d *loopbackDialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, address)
	d.mu.Unlock()
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	switch host {
	case transitAddr:
		host = "127.0.0.1"
	case "127.0.0.1":
	default:
		return nil, errors.New("test dialer: destination outside this machine")
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, net.JoinHostPort(host, port))
}

func (d *loopbackDialer) askedFor() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// udpEcho runs a UDP echo server on 127.0.0.1 and returns its address.
func udpEcho(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return pc.LocalAddr().String()
}

func newGateway(t *testing.T, f *fakeControl, logs *syncBuffer, mutate func(*gateway.Config)) *gateway.Gateway {
	t.Helper()
	cfg := gateway.Config{
		ServerURL:    f.URL(),
		Token:        f.token,
		AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:       captureLogger(logs),
		SessionPoll:  100 * time.Millisecond,
		PeerWait:     2 * time.Second,
		MaxBackoff:   500 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func waitReady(t *testing.T, g *gateway.Gateway) {
	t.Helper()
	select {
	case <-g.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("gateway not ready within 10s")
	}
}

func TestEndToEndUserspace(t *testing.T) {
	f := newFakeControl(t)
	targetURL, targetPort := newTarget(t)
	dnsAnswer := netip.MustParseAddr("192.0.2.53")
	dnsUpstream := fakeDNS(t, dnsAnswer)
	keyDir := t.TempDir()
	logs := &syncBuffer{}

	clientKey := mustKey(t)
	f.setPeer(gwproto.Peer{DeviceID: "dev-1", PublicKey: clientKey.Public().String(), Addresses: []string{"100.64.0.2/32"}})

	dialer := &loopbackDialer{}
	g := newGateway(t, f, logs, func(c *gateway.Config) {
		c.Dial = dialer.dial
		c.DNSUpstreams = []string{dnsUpstream}
		c.KeyFile = filepath.Join(keyDir, "gateway.key")
	})
	if got, want := g.Addresses(), []netip.Prefix{netip.MustParsePrefix("100.64.0.1/10"), netip.MustParsePrefix("fd00:6e6e::1/48")}; got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Addresses: got %v, want %v", got, want)
	}
	stopGateway := runGateway(t, g.Run)
	waitReady(t, g)
	waitFor(t, 10*time.Second, "peer from the full snapshot", func() bool { return g.Peers() == 1 })

	client := newWGClient(t, "100.64.0.2", clientKey, g.PublicKey(), g.ListenPort())

	t.Run("fetch through the tunnel", func(t *testing.T) {
		var body string
		waitFor(t, 15*time.Second, "first page through the tunnel", func() bool {
			b, err := client.get(targetURL, 2*time.Second)
			body = b
			return err == nil
		})
		if body != targetBody {
			t.Errorf("body: got %q, want %q", body, targetBody)
		}
	})

	t.Run("dns through the gateway", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		addrs, err := client.tnet.LookupContextHost(ctx, "secret-site.test")
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if len(addrs) != 1 || addrs[0] != dnsAnswer.String() {
			t.Errorf("lookup: got %v, want [%v]", addrs, dnsAnswer)
		}
	})

	t.Run("udp through the tunnel", func(t *testing.T) {
		echo := udpEcho(t)
		_, port, _ := net.SplitHostPort(echo)
		c, err := client.tnet.Dial("udp", net.JoinHostPort(transitAddr, port))
		if err != nil {
			t.Fatalf("dial udp: %v", err)
		}
		defer c.Close()
		buf := make([]byte, 64)
		for i := 0; i < 3; i++ {
			msg := "ping " + strconv.Itoa(i)
			c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatalf("write: %v", err)
			}
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if got := string(buf[:n]); got != msg {
				t.Errorf("echo: got %q, want %q", got, msg)
			}
		}
	})

	t.Run("isolation", func(t *testing.T) {
		// Each destination is refused by the gateway's policy before any
		// dial, so no packet leaves this machine: the test dialer must never
		// be asked for them. (A stock netstack client drops replies from
		// loopback sources, so for 127.0.0.2 only that check is meaningful.)
		refused := []string{
			"100.64.0.1:80",           // the gateway itself, not DNS
			"100.64.0.3:80",           // another client
			"127.0.0.2:" + targetPort, // loopback not in AllowPrivate
			"10.0.0.1:80",             // private range
			"169.254.169.254:80",      // link-local metadata
		}
		for _, dst := range refused {
			t.Run(dst, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
				defer cancel()
				c, err := client.tnet.DialContext(ctx, "tcp", dst)
				if err == nil {
					c.Close()
					t.Errorf("dial %s: got a connection, want refusal", dst)
				}
			})
		}
		for _, asked := range dialer.askedFor() {
			for _, dst := range refused {
				if asked == dst {
					t.Errorf("gateway tried to dial refused destination %s", dst)
				}
			}
		}
	})

	t.Run("session opened and reported", func(t *testing.T) {
		waitFor(t, 10*time.Second, "open interval for dev-1", func() bool {
			for _, iv := range f.reported() {
				if iv.DeviceID == "dev-1" && iv.End == nil {
					if iv.Start.Truncate(time.Minute) != iv.Start {
						t.Errorf("start %v is not truncated to the minute", iv.Start)
					}
					return true
				}
			}
			return false
		})
		if got := g.LiveSessions(); got != 1 {
			t.Errorf("LiveSessions: got %d, want 1", got)
		}
	})

	t.Run("control server down, tunnel keeps working", func(t *testing.T) {
		f.stop()
		for i := 0; i < 3; i++ {
			body, err := client.get(targetURL, 5*time.Second)
			if err != nil || body != targetBody {
				t.Fatalf("request %d with control down: got %q, %v; want %q", i, body, err, targetBody)
			}
		}
		f.start()
		other := mustKey(t)
		f.setPeer(gwproto.Peer{DeviceID: "dev-2", PublicKey: other.Public().String(), Addresses: []string{"100.64.0.3/32"}})
		waitFor(t, 15*time.Second, "feed resumed after restart", func() bool { return g.Peers() == 2 })
		if body, err := client.get(targetURL, 5*time.Second); err != nil || body != targetBody {
			t.Fatalf("after restart: got %q, %v; want %q", body, err, targetBody)
		}
	})

	t.Run("removed peer is cut off", func(t *testing.T) {
		f.removePeer(clientKey.Public().String())
		waitFor(t, 10*time.Second, "peer removal applied", func() bool { return g.Peers() == 1 })
		start := time.Now()
		if _, err := client.get(targetURL, 3*time.Second); err == nil {
			t.Fatalf("request after removal: got success, want failure")
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("failure took %v, want within the 3s client timeout", d)
		}
		waitFor(t, 10*time.Second, "closed interval for dev-1", func() bool {
			for _, iv := range f.reported() {
				if iv.DeviceID == "dev-1" && iv.End != nil {
					return !iv.End.Before(iv.Start) && iv.End.Truncate(time.Minute) == *iv.End
				}
			}
			return false
		})
	})

	stopGateway()

	t.Run("no client data in logs", func(t *testing.T) {
		out := logs.String()
		t.Logf("captured gateway logs:\n%s", out)
		if !strings.Contains(out, "gateway up") {
			t.Fatalf("log capture is empty or broken: %q", out)
		}
		forbidden := []string{
			"127.0.0.1",                   // client endpoint and target host
			"100.64.0.2",                  // client tunnel address
			"secret-site",                 // DNS name
			dnsAnswer.String(),            // DNS answer
			"169.254.169.254", "10.0.0.1", // refused destinations
			clientKey.Public().String(), // client key (device IDs only)
			clientKey.Public().Hex(),
		}
		if targetPort != strconv.Itoa(int(g.ListenPort())) {
			forbidden = append(forbidden, targetPort)
		}
		if p := client.listenPort(t); p != strconv.Itoa(int(g.ListenPort())) {
			forbidden = append(forbidden, p)
		}
		for _, s := range forbidden {
			if strings.Contains(out, s) {
				t.Errorf("logs contain %q:\n%s", s, out)
			}
		}
	})

	t.Run("key file is the only file written", func(t *testing.T) {
		var files []string
		filepath.WalkDir(keyDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, filepath.Base(p))
			}
			return nil
		})
		if len(files) != 1 || files[0] != "gateway.key" {
			t.Fatalf("files: got %v, want [gateway.key]", files)
		}
		st, err := os.Stat(filepath.Join(keyDir, "gateway.key"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("key file mode: got %v, want 0600", st.Mode().Perm())
		}
		b, _ := os.ReadFile(filepath.Join(keyDir, "gateway.key"))
		for _, s := range []string{"127.0.0.1", "100.64.0.2", "dev-1", clientKey.Public().String()} {
			if strings.Contains(string(b), s) {
				t.Errorf("key file contains %q", s)
			}
		}
	})
}

func TestAdmissionDenied(t *testing.T) {
	f := newFakeControl(t)
	targetURL, _ := newTarget(t)
	logs := &syncBuffer{}
	clientKey := mustKey(t)
	f.setPeer(gwproto.Peer{DeviceID: "dev-1", PublicKey: clientKey.Public().String(), Addresses: []string{"100.64.0.2/32"}})

	g := newGateway(t, f, logs, func(c *gateway.Config) {
		c.Dial = (&loopbackDialer{}).dial
		c.Admission = admission.Policy{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	})
	runGateway(t, g.Run)
	waitReady(t, g)
	waitFor(t, 10*time.Second, "peer from the full snapshot", func() bool { return g.Peers() == 1 })

	client := newWGClient(t, "100.64.0.2", clientKey, g.PublicKey(), g.ListenPort())
	if _, err := client.get(targetURL, 2*time.Second); err == nil {
		t.Fatalf("request from a denied source: got success, want failure")
	}
	waitFor(t, 10*time.Second, "admission drops", func() bool { return g.AdmissionDropped() > 0 })
	if hs := client.lastHandshake(t); !hs.IsZero() {
		t.Errorf("client handshake: got %v, want none", hs)
	}
	if out := logs.String(); strings.Contains(out, "127.0.0.1") {
		t.Errorf("logs name the denied source:\n%s", out)
	}
}

func TestKeyFileRestartNeedsNoToken(t *testing.T) {
	f := newFakeControl(t)
	keyFile := filepath.Join(t.TempDir(), "gw.json")
	logs := &syncBuffer{}

	g1 := newGateway(t, f, logs, func(c *gateway.Config) { c.KeyFile = keyFile })
	stop1 := runGateway(t, g1.Run)
	waitReady(t, g1)
	pub := g1.PublicKey()
	stop1()

	g2 := newGateway(t, f, logs, func(c *gateway.Config) { c.KeyFile = keyFile; c.Token = "" })
	runGateway(t, g2.Run)
	waitReady(t, g2)
	if !g2.PublicKey().Equal(pub) {
		t.Errorf("public key after restart: got %v, want %v", g2.PublicKey(), pub)
	}
	if g2.ID() != "gw-1" {
		t.Errorf("ID after restart: got %q, want gw-1", g2.ID())
	}
	if n := f.enrollCount(); n != 1 {
		t.Errorf("enrollments: got %d, want 1", n)
	}
	if out := logs.String(); strings.Contains(out, f.cred) || strings.Contains(out, f.token) {
		t.Errorf("logs contain the credential or token:\n%s", out)
	}
}

func TestEnrollRefused(t *testing.T) {
	f := newFakeControl(t)
	g := newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) { c.Token = "wrong" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Run(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("Run with a bad token: got %v (ctx %v), want an enrollment error", err, ctx.Err())
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  gateway.Config
	}{
		{"no server", gateway.Config{}},
		{"bad mode", gateway.Config{ServerURL: "http://x", Mode: "magic"}},
		{"kernel without network", gateway.Config{ServerURL: "http://x", Mode: gateway.ModeKernel}},
		{"address outside pool", gateway.Config{ServerURL: "http://x", Addr4: netip.MustParseAddr("10.0.0.1")}},
		{"relative URL", gateway.Config{ServerURL: "/api"}},
		{"negative DNS port", gateway.Config{ServerURL: "http://x", DNSPort: -1}},
		{"DNS port too high", gateway.Config{ServerURL: "http://x", DNSPort: 65536}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := gateway.New(tt.cfg); err == nil {
				t.Errorf("New: got nil error, want an error")
			}
		})
	}
}
