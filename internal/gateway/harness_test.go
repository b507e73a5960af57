package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/nitronet/nitronet/internal/gateway/sessions"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// fakeControl is a control server that speaks gwproto from memory. It can
// be stopped and started again on the same address.
type fakeControl struct {
	t     *testing.T
	token string
	cred  string

	mu        sync.Mutex
	version   int64
	peers     map[string]gwproto.Peer // by public key
	changes   []versionedChange
	changed   chan struct{}
	enrolls   int
	intervals []gwproto.Interval
	hellos    []gwproto.HelloRequest
	record    gwproto.HelloResponse // answered to hellos
	noHello   bool                  // answer hellos 404, as an older server
	srv       *httptest.Server
	addr      string
	quit      chan struct{}
}

type versionedChange struct {
	v int64
	c gwproto.Change
}

func newFakeControl(t *testing.T) *fakeControl {
	f := &fakeControl{
		t:       t,
		token:   "one-time-token",
		cred:    "gateway-credential",
		peers:   map[string]gwproto.Peer{},
		changed: make(chan struct{}),
		version: 1,
		record:  gwproto.HelloResponse{ID: "gw-1", Region: "test-1", Endpoint: "gw.invalid:51820"},
	}
	f.start()
	t.Cleanup(f.stop)
	return f
}

func (f *fakeControl) URL() string { return "http://" + f.addr }

// start serves on the same address as before, or a new loopback port.
func (f *fakeControl) start() {
	f.t.Helper()
	addr := f.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // port still held by the old listener
	}
	if err != nil {
		f.t.Fatalf("fake control listen: %v", err)
	}
	f.mu.Lock()
	f.addr = ln.Addr().String()
	f.quit = make(chan struct{})
	srv := httptest.NewUnstartedServer(f)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	f.srv = srv
	f.mu.Unlock()
}

// stop ends long polls and closes the server. It is idempotent.
func (f *fakeControl) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	if srv != nil {
		close(f.quit)
	}
	f.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

func (f *fakeControl) setPeer(p gwproto.Peer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	f.peers[p.PublicKey] = p
	f.changes = append(f.changes, versionedChange{f.version, gwproto.Change{Peer: p}})
	close(f.changed)
	f.changed = make(chan struct{})
}

// loadPeers adds ps to the snapshot at once, without change entries: for a
// gateway that starts afterwards.
func (f *fakeControl) loadPeers(ps []gwproto.Peer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	for _, p := range ps {
		f.peers[p.PublicKey] = p
	}
}

func (f *fakeControl) removePeer(pub string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	delete(f.peers, pub)
	f.changes = append(f.changes, versionedChange{f.version, gwproto.Change{Peer: gwproto.Peer{PublicKey: pub}, Removed: true}})
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeControl) enrollCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enrolls
}

func (f *fakeControl) reported() []gwproto.Interval {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]gwproto.Interval(nil), f.intervals...)
}

func (f *fakeControl) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v1/gateway/enroll" && r.Method == http.MethodPost {
		var req gwproto.EnrollRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		ok := req.Token == f.token && f.enrolls == 0
		if ok {
			f.enrolls++
		}
		f.mu.Unlock()
		if _, err := wgkey.ParsePublic(req.PublicKey); err != nil || !ok {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		writeJSON(w, gwproto.EnrollResponse{ID: "gw-1", Region: "test-1", Endpoint: "gw.invalid:51820", Credential: f.cred})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.cred {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	switch {
	case r.URL.Path == "/api/v1/gateway/hello" && r.Method == http.MethodPost:
		f.serveHello(w, r)
	case r.URL.Path == "/api/v1/gateway/peers" && r.Method == http.MethodGet:
		f.servePeers(w, r)
	case r.URL.Path == "/api/v1/gateway/sessions" && r.Method == http.MethodPost:
		var rep gwproto.SessionReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.intervals = append(f.intervals, rep.Intervals...)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// serveHello records a start-up report and applies it to f.record.
func (f *fakeControl) serveHello(w http.ResponseWriter, r *http.Request) {
	var req gwproto.HelloRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	if f.noHello {
		f.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	f.hellos = append(f.hellos, req)
	rec := f.record
	rec.Changed = nil
	if req.Region != "" && req.Region != rec.Region {
		rec.Region, rec.Changed = req.Region, append(rec.Changed, "region")
	}
	if req.Endpoint != "" && req.Endpoint != rec.Endpoint {
		rec.Endpoint, rec.Changed = req.Endpoint, append(rec.Changed, "endpoint")
	}
	f.record = rec
	f.mu.Unlock()
	writeJSON(w, rec)
}

func (f *fakeControl) helloReports() []gwproto.HelloRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]gwproto.HelloRequest(nil), f.hellos...)
}

func (f *fakeControl) servePeers(w http.ResponseWriter, r *http.Request) {
	since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
	if wait <= 0 || wait > 60 {
		wait = 25
	}
	timeout := time.After(time.Duration(wait) * time.Second)
	for {
		f.mu.Lock()
		if since == 0 {
			upd := gwproto.PeerUpdate{Version: f.version, Full: true}
			for _, p := range f.peers {
				upd.Peers = append(upd.Peers, p)
			}
			f.mu.Unlock()
			writeJSON(w, upd)
			return
		}
		upd := gwproto.PeerUpdate{Version: f.version}
		for _, c := range f.changes {
			if c.v > since {
				upd.Changes = append(upd.Changes, c.c)
			}
		}
		changed, quit := f.changed, f.quit
		f.mu.Unlock()
		if len(upd.Changes) > 0 {
			writeJSON(w, upd)
			return
		}
		select {
		case <-changed:
		case <-timeout:
			writeJSON(w, upd)
			return
		case <-quit:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// wgClient is a stock wireguard-go device on a netstack TUN: a VPN client.
type wgClient struct {
	key  wgkey.PrivateKey
	dev  *device.Device
	tnet *netstack.Net
}

func newWGClient(t *testing.T, addr string, key wgkey.PrivateKey, gwPub wgkey.PublicKey, gwPort uint16) *wgClient {
	t.Helper()
	return newWGClientOn(t, conn.NewDefaultBind(), addr, key, gwPub, gwPort)
}

// newWGClientOn is newWGClient on bind, whose endpoint is 127.0.0.1:gwPort.
func newWGClientOn(t *testing.T, bind conn.Bind, addr string, key wgkey.PrivateKey, gwPub wgkey.PublicKey, gwPort uint16) *wgClient {
	t.Helper()
	tunDev, tnet, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr(addr)}, []netip.Addr{netip.MustParseAddr("100.64.0.1")}, 1420)
	if err != nil {
		t.Fatalf("client netstack: %v", err)
	}
	dev := device.NewDevice(tunDev, bind, device.NewLogger(device.LogLevelSilent, ""))
	cfg := "private_key=" + key.Hex() + "\n" +
		"public_key=" + gwPub.Hex() + "\n" +
		fmt.Sprintf("endpoint=127.0.0.1:%d\n", gwPort) +
		"allowed_ip=0.0.0.0/0\n"
	if err := dev.IpcSet(cfg); err != nil {
		t.Fatalf("client config: %v", err)
	}
	if err := dev.Up(); err != nil {
		t.Fatalf("client up: %v", err)
	}
	t.Cleanup(dev.Close)
	return &wgClient{key: key, dev: dev, tnet: tnet}
}

// get fetches url through the tunnel on a fresh connection.
func (c *wgClient) get(url string, timeout time.Duration) (string, error) {
	hc := &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: c.tnet.DialContext, DisableKeepAlives: true},
	}
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// lastHandshake returns the client's view of its handshake with the gateway.
func (c *wgClient) lastHandshake(t *testing.T) time.Time {
	t.Helper()
	s, err := c.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := sessions.ParseUAPI(s)
	if err != nil || len(hs) != 1 {
		t.Fatalf("client uapi: got %d peers, err %v", len(hs), err)
	}
	return hs[0].Last
}

// listenPort returns the client's own UDP port: its endpoint as the gateway
// sees it.
func (c *wgClient) listenPort(t *testing.T) string {
	s, err := c.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			return v
		}
	}
	t.Fatal("client has no listen_port")
	return ""
}

// fakeDNS answers every A question on 127.0.0.1 UDP with one address.
func fakeDNS(t *testing.T, answer netip.Addr) string {
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
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			m.Header.Response = true
			m.Header.RecursionAvailable = true
			q := m.Questions[0]
			if q.Type == dnsmessage.TypeA {
				m.Answers = []dnsmessage.Resource{{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
					Body:   &dnsmessage.AResource{A: answer.As4()},
				}}
			}
			out, err := m.Pack()
			if err == nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureLogger returns a debug-level logger writing to buf, without
// timestamps so digits in them cannot match a port number.
func captureLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

func mustKey(t *testing.T) wgkey.PrivateKey {
	t.Helper()
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// runGateway runs g until the test ends, failing the test if Run errors.
func runGateway(t *testing.T, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: got %v, want nil", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Run did not return within 15s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
