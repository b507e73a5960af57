package udptcp

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// node is a wireguard-go device on a netstack.
type node struct {
	key wgkey.PrivateKey
	dev *device.Device
	net *netstack.Net
}

func newNode(t *testing.T, bind conn.Bind, addr string, listenPort int) *node {
	t.Helper()
	key, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tdev, tnet, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr(addr)}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tdev, bind, device.NewLogger(device.LogLevelSilent, ""))
	t.Cleanup(dev.Close)
	if err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", key.Hex(), listenPort)); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	return &node{key: key, dev: dev, net: tnet}
}

func (n *node) addPeer(t *testing.T, pub wgkey.PublicKey, allowed, endpoint string) {
	t.Helper()
	cfg := "public_key=" + pub.Hex() + "\nallowed_ip=" + allowed + "\n"
	if endpoint != "" {
		cfg += "endpoint=" + endpoint + "\npersistent_keepalive_interval=0\n"
	}
	if err := n.dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
}

// echoServer answers each line on 100.64.0.1:7 with the line itself.
func echoServer(t *testing.T, n *node) {
	t.Helper()
	ln, err := n.net.ListenTCP(&net.TCPAddr{IP: net.ParseIP("100.64.0.1"), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
}

// echo sends line through n to the echo server and checks the answer.
func echo(t *testing.T, n *node, line string) {
	t.Helper()
	c, err := n.net.DialTCP(&net.TCPAddr{IP: net.ParseIP("100.64.0.1"), Port: 7})
	if err != nil {
		t.Fatalf("dial through the tunnel: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(got) != line {
		t.Fatalf("echo: got %q, %v; want %q", got, err, line)
	}
}

// TestServerBindCarriesTCPAndUDP: one gateway device on a ServerBind
// serves a client over TCP (ClientBind) and another over plain UDP at
// once, with real WireGuard handshakes and traffic.
func TestServerBindCarriesTCPAndUDP(t *testing.T) {
	sb, err := NewServerBind(ServerConfig{Inner: conn.NewDefaultBind()})
	if err != nil {
		t.Fatal(err)
	}
	gw := newNode(t, sb, "100.64.0.1", 0)
	echoServer(t, gw)
	tcpPort := sb.TCPPort()
	if tcpPort == 0 {
		t.Fatal("TCPPort after Open: got 0")
	}

	overTCP := newNode(t, NewClientBind(ClientConfig{}), "100.64.0.2", 0)
	overUDP := newNode(t, conn.NewDefaultBind(), "100.64.0.3", 0)
	gw.addPeer(t, overTCP.key.Public(), "100.64.0.2/32", "")
	gw.addPeer(t, overUDP.key.Public(), "100.64.0.3/32", "")
	overTCP.addPeer(t, gw.key.Public(), "100.64.0.0/10", fmt.Sprintf("127.0.0.1:%d", tcpPort))
	overUDP.addPeer(t, gw.key.Public(), "100.64.0.0/10", fmt.Sprintf("127.0.0.1:%d", listenPort(t, gw)))

	echo(t, overTCP, "over tcp")
	echo(t, overUDP, "over udp")
	// A bulk transfer over TCP: many frames per write and read.
	c, err := overTCP.net.DialTCP(&net.TCPAddr{IP: net.ParseIP("100.64.0.1"), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	const size = 4 << 20
	go func() {
		buf := make([]byte, 32<<10)
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	if n, err := io.CopyN(io.Discard, c, size); err != nil {
		t.Fatalf("bulk echo over TCP: got %d bytes, %v; want %d", n, err, size)
	}
}

// listenPort returns n's UDP listen port.
func listenPort(t *testing.T, n *node) int {
	t.Helper()
	get, err := n.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			var p int
			fmt.Sscan(v, &p)
			return p
		}
	}
	t.Fatal("no listen_port")
	return 0
}

// TestClientRedials: when the gateway closes an idle connection, the
// client dials again on its next send and the tunnel carries on.
func TestClientRedials(t *testing.T) {
	sb, err := NewServerBind(ServerConfig{Inner: conn.NewDefaultBind(), IdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	gw := newNode(t, sb, "100.64.0.1", 0)
	echoServer(t, gw)
	var dials atomic.Int32
	cb := NewClientBind(ClientConfig{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	cl := newNode(t, cb, "100.64.0.2", 0)
	gw.addPeer(t, cl.key.Public(), "100.64.0.2/32", "")
	cl.addPeer(t, gw.key.Public(), "100.64.0.0/10", fmt.Sprintf("127.0.0.1:%d", sb.TCPPort()))
	echo(t, cl, "first")
	waitFor(t, "the gateway to close the idle connection", func() bool { return openConns(sb) == 0 })
	echo(t, cl, "second")
	if got := dials.Load(); got < 2 {
		t.Fatalf("dials: got %d, want at least 2 (a new connection after the idle close)", got)
	}
}

func openConns(b *ServerBind) int {
	b.mu.Lock()
	r := b.run
	b.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServerBindRefuses: connections from a refused address, beyond
// MaxConns, or sending a bad frame are closed by the gateway.
func TestServerBindRefuses(t *testing.T) {
	open := func(t *testing.T, cfg ServerConfig) *ServerBind {
		cfg.Inner = conn.NewDefaultBind()
		sb, err := NewServerBind(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := sb.Open(0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sb.Close() })
		return sb
	}
	closedByPeer := func(t *testing.T, c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("read: got %v, want the gateway to close the connection", err)
		}
	}
	dial := func(t *testing.T, sb *ServerBind) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", sb.TCPPort()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("admission", func(t *testing.T) {
		sb := open(t, ServerConfig{Admit: func(a netip.Addr) bool { return a != netip.MustParseAddr("127.0.0.1") }})
		closedByPeer(t, dial(t, sb))
	})
	t.Run("max conns", func(t *testing.T) {
		sb := open(t, ServerConfig{MaxConns: 1})
		dial(t, sb)
		waitFor(t, "the first connection", func() bool { return openConns(sb) == 1 })
		closedByPeer(t, dial(t, sb))
	})
	t.Run("oversized frame", func(t *testing.T) {
		sb := open(t, ServerConfig{MaxDatagram: 100})
		c := dial(t, sb)
		c.Write([]byte{0, 101})
		closedByPeer(t, c)
	})
	t.Run("empty frame", func(t *testing.T) {
		sb := open(t, ServerConfig{})
		c := dial(t, sb)
		c.Write([]byte{0, 0})
		closedByPeer(t, c)
	})
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// TestClientCloseAbortsDial: Close does not wait for a dial to a gateway
// that does not answer; the send fails.
func TestClientCloseAbortsDial(t *testing.T) {
	dialing := make(chan struct{})
	cb := NewClientBind(ClientConfig{DialTimeout: time.Minute, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		close(dialing)
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	if _, _, err := cb.Open(0); err != nil {
		t.Fatal(err)
	}
	ep, err := cb.ParseEndpoint("198.18.0.1:443")
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- cb.Send([][]byte{{1}}, ep) }()
	<-dialing
	closed := make(chan struct{})
	go func() { cb.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the dial")
	}
	if err := <-sent; err == nil {
		t.Fatal("Send during Close: got nil, want an error")
	}
}
