package relay

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// echo listens on loopback and answers every datagram with "re:" and the
// datagram, recording the source addresses it saw.
type echo struct {
	conn *net.UDPConn
	mu   sync.Mutex
	srcs map[string]bool
}

func startEcho(t *testing.T) *echo {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{conn: c, srcs: map[string]bool{}}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, src, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.srcs[src.String()] = true
			e.mu.Unlock()
			_, _ = c.WriteToUDP(append([]byte("re:"), buf[:n]...), src)
		}
	}()
	t.Cleanup(func() { c.Close() })
	return e
}

func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func roundTrip(t *testing.T, c *net.UDPConn, msg string) (string, error) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

func dial(t *testing.T, port int) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRelay: each client source gets its own upstream socket, replies
// reach the right client, the upstream never sees a client's address, a
// source beyond MaxFlows is dropped, and idle sources expire.
func TestRelay(t *testing.T) {
	up := startEcho(t)
	port := freePort(t)
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r, err := Start(Config{Host: "127.0.0.1", Routes: []Route{{Exit: "gw-x", Port: port, Upstream: up.conn.LocalAddr().String()}},
		MaxFlows: 2, Idle: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Ports(); got["gw-x"] != port {
		t.Fatalf("Ports: got %v, want gw-x: %d", got, port)
	}
	a, b, c := dial(t, port), dial(t, port), dial(t, port)
	for i, cl := range []*net.UDPConn{a, b} {
		msg := "hello " + strconv.Itoa(i)
		got, err := roundTrip(t, cl, msg)
		if err != nil || got != "re:"+msg {
			t.Fatalf("client %d: got %q, %v; want %q", i, got, err, "re:"+msg)
		}
	}
	if _, err := roundTrip(t, c, "third"); err == nil {
		t.Errorf("a third source beyond MaxFlows 2 got an answer")
	}
	if n := r.Flows(); n != 2 {
		t.Errorf("Flows: got %d, want 2", n)
	}
	up.mu.Lock()
	for s := range up.srcs {
		if s == a.LocalAddr().String() || s == b.LocalAddr().String() {
			t.Errorf("the upstream saw a client's address %s", s)
		}
	}
	if len(up.srcs) != 2 {
		t.Errorf("the upstream saw %d sources, want 2 (one socket per client)", len(up.srcs))
	}
	up.mu.Unlock()

	// Not yet idle: nothing expires. Then a passes the idle time.
	r.Sweep()
	if n := r.Flows(); n != 2 {
		t.Fatalf("Flows after an early sweep: got %d, want 2", n)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	r.Sweep()
	if n := r.Flows(); n != 0 {
		t.Fatalf("Flows after the idle time: got %d, want 0", n)
	}
	if got, err := roundTrip(t, c, "room now"); err != nil || got != "re:room now" {
		t.Errorf("after expiry, a new source: got %q, %v", got, err)
	}
	big := bytes.Repeat([]byte("x"), 1400)
	if got, err := roundTrip(t, a, string(big)); err != nil || got != "re:"+string(big) {
		t.Errorf("a full-size datagram: got %d bytes, %v", len(got), err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := r.Flows(); n != 0 {
		t.Errorf("Flows after Close: got %d", n)
	}
}

func TestParse(t *testing.T) {
	got, err := Parse("51830=gw-b@198.19.1.1:51825, 51831=gw-c@[fd00::1]:51820")
	if err != nil || len(got) != 2 || got[0] != (Route{Exit: "gw-b", Port: 51830, Upstream: "198.19.1.1:51825"}) ||
		got[1] != (Route{Exit: "gw-c", Port: 51831, Upstream: "[fd00::1]:51820"}) {
		t.Fatalf("Parse: got %+v, %v", got, err)
	}
	for _, bad := range []string{"51830", "51830=gw-b", "x=gw-b@h:1", "0=gw@h:1", "70000=gw@h:1", "1=@h:1", "1=gw@nohost", "1=a@h:1,1=b@h:2"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("51830=gw-b@198.19.1.1:51825")
	f.Add("1=a@[::1]:2,,3=b@h:4")
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := Parse(s)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Port < 1 || r.Port > 65535 || r.Exit == "" {
				t.Fatalf("Parse(%q) accepted %+v", s, r)
			}
		}
	})
}
