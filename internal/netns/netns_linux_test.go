package netns

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestCheckRanges(t *testing.T) {
	tests := []struct {
		prefix      string
		wantTransit bool
		wantTunnel  bool
	}{
		{"198.18.0.1/24", true, false},
		{"198.19.255.254/32", true, false},
		{"198.18.0.0/15", true, false},
		{"198.18.0.0/14", false, false},
		{"198.20.0.1/24", false, false},
		{"10.0.0.1/8", false, false},
		{"192.168.1.1/24", false, false},
		{"100.64.0.1/10", false, true},
		{"100.127.255.1/32", false, true},
		{"100.128.0.1/32", false, false},
		{"fd00:6e6e::1/48", false, true},
		{"fd00::/8", false, true},
		{"fc00::1/64", false, false},
		{"2001:db8::1/64", false, false},
		{"::ffff:198.18.0.1/128", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.prefix)
			if got := CheckTransit(p) == nil; got != tt.wantTransit {
				t.Errorf("CheckTransit(%v) ok = %v, want %v", p, got, tt.wantTransit)
			}
			if got := CheckTunnel(p) == nil; got != tt.wantTunnel {
				t.Errorf("CheckTunnel(%v) ok = %v, want %v", p, got, tt.wantTunnel)
			}
		})
	}
}

func TestNewName(t *testing.T) {
	name, err := newName(bytes.NewReader([]byte{0xde, 0xad, 0xbe, 0xef}), 42)
	if err != nil {
		t.Fatal(err)
	}
	if want := "nn-deadbeef-42"; name != want {
		t.Errorf("newName = %q, want %q", name, want)
	}
	if _, err := newName(bytes.NewReader(nil), 1); err == nil {
		t.Error("newName with empty reader: got nil error, want error")
	}
}

func TestOwnerAlive(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"nn-00000000-" + strconv.Itoa(os.Getpid()), true},
		{"nn-00000000-999999999", false}, // above any pid_max
		{"nn-00000000-x", false},
		{"nn-nopid", false},
	}
	for _, tt := range tests {
		if got := ownerAlive(tt.name); got != tt.want {
			t.Errorf("ownerAlive(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCreateAndClose(t *testing.T) {
	Require(t)
	n, err := Create()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	if !strings.HasPrefix(n.Name(), DefaultPrefix) {
		t.Errorf("Name() = %q, want prefix %q", n.Name(), DefaultPrefix)
	}
	if _, err := os.Stat(n.Path()); err != nil {
		t.Fatalf("stat %s: %v", n.Path(), err)
	}
	// Compare with the namespace of this goroutine's own thread: Create
	// promises not to change the caller's namespace. (The main thread's
	// /proc/PID/ns/net is not a stable reference: any goroutine the runtime
	// schedules there may be inside a namespace for a moment.)
	runtime.LockOSThread()
	host, err := vnetns.Get()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if n.Handle().Equal(host) {
		t.Fatal("namespace handle equals the caller's namespace")
	}
	up, err := n.HasLink("lo")
	if err != nil || !up {
		t.Fatalf("HasLink(lo) = %v, %v; want true, nil", up, err)
	}

	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(n.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close, stat %s: err = %v, want not exist", n.Path(), err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if err := n.Do(func() error { return nil }); err == nil {
		t.Error("Do after Close: got nil error, want error")
	}
}

func TestCleanupRegistered(t *testing.T) {
	Require(t)
	var path string
	t.Run("inner", func(t *testing.T) {
		path = New(t).Path()
		if _, err := os.Stat(path); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after subtest, stat %s: err = %v, want not exist", path, err)
	}
}

func TestDoRunsInNamespace(t *testing.T) {
	n := New(t)
	var inside []string
	err := n.Do(func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			inside = append(inside, i.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inside) != 1 || inside[0] != "lo" {
		t.Errorf("interfaces inside fresh namespace = %v, want [lo]", inside)
	}

	// The caller's thread is untouched.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := vnetns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	if err := n.Do(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	after, err := vnetns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !before.Equal(after) {
		t.Error("Do changed the calling thread's namespace")
	}
}

func TestDoErrorPanicGoexit(t *testing.T) {
	n := New(t)
	want := errors.New("boom")
	if err := n.Do(func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do error = %v, want %v", err, want)
	}
	if err := n.Do(func() error { runtime.Goexit(); return nil }); err == nil {
		t.Error("Do with Goexit: got nil error, want error")
	}
	func() {
		defer func() {
			if r := recover(); r != "kaboom" {
				t.Errorf("recovered %v, want kaboom", r)
			}
		}()
		_ = n.Do(func() error { panic("kaboom") })
	}()
}

func TestAddressPolicy(t *testing.T) {
	a, b := New(t), New(t)
	if err := Connect(End{NS: a, IfName: "v0"}, End{NS: b, IfName: "v1"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		do      func() error
		wantErr bool
	}{
		{"transit addr", func() error { return a.AddAddr("v0", netip.MustParsePrefix("198.18.7.1/24")) }, false},
		{"private addr", func() error { return a.AddAddr("v0", netip.MustParsePrefix("10.0.0.1/24")) }, true},
		{"tunnel as transit", func() error { return a.AddAddr("v0", netip.MustParsePrefix("100.64.0.1/10")) }, true},
		{"tunnel addr", func() error { return a.AddTunnelAddr("v0", netip.MustParsePrefix("100.64.0.1/10")) }, false},
		{"tunnel v6 addr", func() error { return a.AddTunnelAddr("v0", netip.MustParsePrefix("fd00:1::1/64")) }, false},
		{"public as tunnel", func() error { return a.AddTunnelAddr("v0", netip.MustParsePrefix("2001:db8::1/64")) }, true},
		{"default via transit", func() error {
			return a.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("198.18.7.2"))
		}, false},
		{"default via private", func() error {
			return a.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.0.0.2"))
		}, true},
		{"route to private", func() error {
			return a.AddRoute(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParseAddr("198.18.7.2"))
		}, true},
		{"device route tunnel", func() error {
			return a.AddDeviceRoute(netip.MustParsePrefix("100.64.0.0/10"), "v0")
		}, false},
		{"connect private", func() error {
			return Connect(End{NS: a, IfName: "x0", Addr: netip.MustParsePrefix("192.168.0.1/24")}, End{NS: b, IfName: "x1"})
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestTCPAcrossVeth(t *testing.T) {
	a, b := New(t), New(t)
	err := Connect(
		End{NS: a, IfName: "a0", Addr: netip.MustParsePrefix("198.18.0.1/24")},
		End{NS: b, IfName: "b0", Addr: netip.MustParsePrefix("198.18.0.2/24")},
	)
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.Listen("tcp", "198.18.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// Served from an ordinary goroutine: the socket keeps its namespace.
	accepted := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- err.Error()
			return
		}
		defer c.Close()
		accepted <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		_, _ = io.WriteString(c, "hello")
	}()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := b.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello" {
		t.Errorf("read %q, want hello", got)
	}
	if from := <-accepted; from != "198.18.0.2" {
		t.Errorf("accepted from %s, want 198.18.0.2", from)
	}

	// Host names are refused: resolution would run outside the namespace.
	if _, err := b.DialContext(ctx, "tcp", "localhost:80"); err == nil {
		t.Error("DialContext with host name: got nil error, want error")
	}
}

func TestCommand(t *testing.T) {
	n := New(t)
	other := New(t)
	if err := Connect(End{NS: n, IfName: "c0", Addr: netip.MustParsePrefix("198.18.3.1/24")}, End{NS: other, IfName: "c1"}); err != nil {
		t.Fatal(err)
	}
	out, err := n.Command(t.Context(), "ip", "-o", "addr", "show", "dev", "c0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "198.18.3.1/24") {
		t.Errorf("ip addr output = %q, want it to contain 198.18.3.1/24", out)
	}
}

func TestCleanupStale(t *testing.T) {
	live := New(t)
	stale := DefaultPrefix + "stale" + live.Name()[len(DefaultPrefix):len(DefaultPrefix)+8] + "-999999999"
	err := onThread(func() error {
		h, err := vnetns.NewNamed(stale)
		if err == nil {
			h.Close()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deleteNamed(stale) })

	if _, err := CleanupStale("x-"); err == nil {
		t.Error("CleanupStale with foreign prefix: got nil error, want error")
	}
	removed, err := CleanupStale(DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range removed {
		if r == stale {
			found = true
		}
		if r == live.Name() {
			t.Errorf("CleanupStale removed live namespace %s", r)
		}
	}
	if !found {
		t.Errorf("CleanupStale removed %v, want it to include %s", removed, stale)
	}
	if _, err := os.Stat(filepath.Join(runDir, stale)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale namespace still present: %v", err)
	}
	if _, err := os.Stat(live.Path()); err != nil {
		t.Errorf("live namespace gone: %v", err)
	}
}

func TestTopology(t *testing.T) {
	tp := NewTopology(t)
	url := tp.ServeHTTP(t, nil)
	if url != "http://198.19.0.2" {
		t.Errorf("url = %q", url)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	// The gateway reaches the server directly.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tp.Gateway.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "198.19.0.1" {
		t.Errorf("server saw %q, want 198.19.0.1", body)
	}

	// A client has no route to the server without a tunnel.
	_, err = tp.Client.NS.DialContext(ctx, "tcp", "198.19.0.2:80")
	if !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("client dial server: err = %v, want ENETUNREACH", err)
	}

	// A client reaches the gateway over its transit link.
	l, err := tp.Gateway.Listen("tcp", tp.Client.GatewayAddr.Addr().String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := tp.Client.NS.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("client dial gateway: %v", err)
	}
	c.Close()

	second := tp.AddClient(t)
	if got, want := second.Addr, netip.MustParsePrefix("198.18.1.2/24"); got != want {
		t.Errorf("second client Addr = %v, want %v", got, want)
	}
	if second.GatewayIf != "cl1" {
		t.Errorf("second client GatewayIf = %q, want cl1", second.GatewayIf)
	}
	if ok, err := tp.Gateway.HasLink("cl1"); err != nil || !ok {
		t.Errorf("gateway HasLink(cl1) = %v, %v; want true, nil", ok, err)
	}
}
