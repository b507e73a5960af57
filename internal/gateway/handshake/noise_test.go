package handshake

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/nitronet/nitronet/internal/wgkey"
)

func mustKey(t testing.TB) wgkey.PrivateKey {
	t.Helper()
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newStockDevice returns a stock wireguard-go device with key on a channel
// TUN and the default bind on an ephemeral port, up. It is closed when the
// test ends.
func newStockDevice(t testing.TB, key wgkey.PrivateKey, bind conn.Bind) *device.Device {
	t.Helper()
	if bind == nil {
		bind = conn.NewDefaultBind()
	}
	dev := device.NewDevice(tuntest.NewChannelTUN().TUN(), bind, device.NewLogger(device.LogLevelSilent, ""))
	if err := dev.IpcSet("private_key=" + key.Hex() + "\nlisten_port=0\n"); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	return dev
}

// dialPeer configures the responder pub at 127.0.0.1:port on dev with a
// persistent keepalive, which makes wireguard-go send a handshake
// initiation at once.
func dialPeer(t testing.TB, dev *device.Device, pub wgkey.PublicKey, port int) {
	t.Helper()
	cfg := fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\npersistent_keepalive_interval=25\nallowed_ip=100.64.0.1/32\n", pub.Hex(), port)
	if err := dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
}

// realInitiation returns a handshake initiation from a stock wireguard-go
// device with key client, addressed to the responder key server.
func realInitiation(t testing.TB, client wgkey.PrivateKey, server wgkey.PublicKey) []byte {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dev := newStockDevice(t, client, nil)
	defer dev.Close()
	dialPeer(t, dev, server, pc.LocalAddr().(*net.UDPAddr).Port)
	buf := make([]byte, 2048)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, _, err := pc.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("waiting for an initiation: %v", err)
		}
		if IsInitiation(buf[:n]) {
			return append([]byte(nil), buf[:n]...)
		}
	}
}

func TestOpenStaticRealInitiation(t *testing.T) {
	server, client := mustKey(t), mustKey(t)
	msg := realInitiation(t, client, server.Public())
	r := NewResponder(server)

	got, ok := r.OpenStatic(msg)
	if !ok || got != client.Public() {
		t.Fatalf("OpenStatic: got %v, %v; want %v, true", got, ok, client.Public())
	}

	var cc device.CookieChecker
	cc.Init(device.NoisePublicKey(server.Public()))
	if !cc.CheckMAC1(msg) {
		t.Errorf("CheckMAC1 on a real initiation: got false, want true")
	}
	if HasMAC2(msg) {
		t.Errorf("HasMAC2 on a first initiation: got true, want false")
	}

	t.Run("other responder key", func(t *testing.T) {
		if _, ok := NewResponder(mustKey(t)).OpenStatic(msg); ok {
			t.Errorf("OpenStatic with another key: got ok, want failure")
		}
	})
	t.Run("any flipped bit before the timestamp", func(t *testing.T) {
		for i := offEphemeral * 8; i < offTimestamp*8; i++ {
			m := bytes.Clone(msg)
			m[i/8] ^= 1 << (i % 8)
			if pub, ok := r.OpenStatic(m); ok {
				t.Fatalf("bit %d flipped: got %v, ok; want failure", i, pub)
			}
		}
	})
	t.Run("timestamp and macs are not read", func(t *testing.T) {
		m := bytes.Clone(msg)
		for i := offTimestamp; i < InitiationSize; i++ {
			m[i] = 0xff
		}
		if got, ok := r.OpenStatic(m); !ok || got != client.Public() {
			t.Errorf("got %v, %v; want %v, true", got, ok, client.Public())
		}
	})
	t.Run("wrong type or size", func(t *testing.T) {
		for _, m := range [][]byte{msg[:InitiationSize-1], append(bytes.Clone(msg), 0), nil} {
			if _, ok := r.OpenStatic(m); ok {
				t.Errorf("OpenStatic(%d bytes): got ok, want failure", len(m))
			}
		}
		m := bytes.Clone(msg)
		m[1] = 1 // type 0x0101
		if _, ok := r.OpenStatic(m); ok {
			t.Errorf("OpenStatic with type 257: got ok, want failure")
		}
	})
	t.Run("low-order ephemeral", func(t *testing.T) {
		m := bytes.Clone(msg)
		clear(m[offEphemeral:offStatic]) // the point 0
		if _, ok := r.OpenStatic(m); ok {
			t.Errorf("OpenStatic with a zero ephemeral: got ok, want failure")
		}
	})
}

func FuzzOpenStatic(f *testing.F) {
	server, client := mustKey(f), mustKey(f)
	msg := realInitiation(f, client, server.Public())
	f.Add(msg)
	f.Add(msg[:100])
	f.Add([]byte{1, 0, 0, 0})
	f.Add(make([]byte, InitiationSize))
	r := NewResponder(server)
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, ok := r.OpenStatic(b)
		if ok && !IsInitiation(b) {
			t.Fatalf("opened %d bytes that are not an initiation", len(b))
		}
		if !ok && pub != (wgkey.PublicKey{}) {
			t.Fatalf("failed open returned a key")
		}
		if IsInitiation(b) {
			Sender(b)
			HasMAC2(b)
		}
	})
}

func BenchmarkOpenStatic(b *testing.B) {
	server, client := mustKey(b), mustKey(b)
	msg := realInitiation(b, client, server.Public())
	r := NewResponder(server)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.OpenStatic(msg); !ok {
			b.Fatal("OpenStatic failed")
		}
	}
}
