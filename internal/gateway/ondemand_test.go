package gateway_test

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/device"

	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// tunnelAddr returns the i-th client address of the IPv4 pool, from
// 100.64.0.2.
func tunnelAddr(i int) string {
	a := netip.MustParseAddr("100.64.0.2").As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) + uint32(i)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String()
}

// TestBeyondWireGuardPeerLimit admits 200,000 devices, three times
// wireguard-go's limit of 65,536 peers, on a userspace gateway, and has a
// few of them connect; then rotates one key.
func TestBeyondWireGuardPeerLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("admits 200,000 peers")
	}
	const admitted = 200_000
	f := newFakeControl(t)
	targetURL, _ := newTarget(t)
	ps := make([]gwproto.Peer, admitted)
	for i := range ps {
		var k wgkey.PublicKey
		rand.Read(k[:])
		ps[i] = gwproto.Peer{DeviceID: fmt.Sprintf("dev-%d", i), PublicKey: k.String(), Addresses: []string{tunnelAddr(i) + "/32"}}
	}
	// Three real clients, spread over the feed.
	slots := []int{7, admitted / 2, admitted - 1}
	keys := make([]wgkey.PrivateKey, len(slots))
	for j, i := range slots {
		keys[j] = mustKey(t)
		ps[i].PublicKey = keys[j].Public().String()
	}
	f.loadPeers(ps)

	g := newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) { c.Dial = (&loopbackDialer{}).dial })
	runGateway(t, g.Run)
	waitReady(t, g)
	waitFor(t, 60*time.Second, "200,000 admitted peers", func() bool { return g.Peers() == admitted })
	if n := g.ConfiguredPeers(); n != 0 {
		t.Fatalf("configured peers before any handshake: got %d, want 0", n)
	}
	if admitted <= device.MaxPeers {
		t.Fatalf("test admits %d, not more than wireguard-go's %d", admitted, device.MaxPeers)
	}

	clients := make([]*wgClient, len(slots))
	var wg sync.WaitGroup
	errs := make([]error, len(slots))
	for j, i := range slots {
		clients[j] = newWGClient(t, tunnelAddr(i), keys[j], g.PublicKey(), g.ListenPort())
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := clients[j].get(targetURL, 10*time.Second)
			if err == nil && body != targetBody {
				err = fmt.Errorf("body %q", body)
			}
			errs[j] = err
		}()
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			t.Errorf("client %d (feed entry %d): %v", j, slots[j], err)
		}
	}
	if n := g.ConfiguredPeers(); n != len(slots) {
		t.Errorf("configured peers: got %d, want %d", n, len(slots))
	}

	t.Run("rotation", func(t *testing.T) {
		old := clients[0]
		newKey := mustKey(t)
		// The store sends the old key's removal and the new key.
		f.removePeer(old.key.Public().String())
		f.setPeer(gwproto.Peer{DeviceID: ps[slots[0]].DeviceID, PublicKey: newKey.Public().String(), Addresses: ps[slots[0]].Addresses})
		// The removal and the new key are two changes, which the gateway
		// may apply in two polls: wait for both.
		waitFor(t, 10*time.Second, "the old key to leave the device and the new key to be admitted", func() bool {
			return g.ConfiguredPeers() == len(slots)-1 && g.Peers() == admitted
		})
		if _, err := old.get(targetURL, 2*time.Second); err == nil {
			t.Errorf("the old key still passes traffic")
		}
		rotated := newWGClient(t, tunnelAddr(slots[0]), newKey, g.PublicKey(), g.ListenPort())
		if body, err := rotated.get(targetURL, 10*time.Second); err != nil || body != targetBody {
			t.Errorf("the new key: got %q, %v", body, err)
		}
	})
}

// testClock is a settable clock for a gateway.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestIdlePeerLeavesTheDevice checks that a peer without a handshake for
// longer than a session lasts is removed from the device, its session
// closed, and that it connects again at its next handshake.
func TestIdlePeerLeavesTheDevice(t *testing.T) {
	f := newFakeControl(t)
	targetURL, _ := newTarget(t)
	clientKey := mustKey(t)
	f.setPeer(gwproto.Peer{DeviceID: "dev-1", PublicKey: clientKey.Public().String(), Addresses: []string{"100.64.0.2/32"}})
	clk := &testClock{t: time.Now()}
	g := newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) {
		c.Dial = (&loopbackDialer{}).dial
		c.Clock = clk.Now
	})
	runGateway(t, g.Run)
	waitReady(t, g)
	waitFor(t, 10*time.Second, "the admitted peer", func() bool { return g.Peers() == 1 })

	client := newWGClient(t, "100.64.0.2", clientKey, g.PublicKey(), g.ListenPort())
	if body, err := client.get(targetURL, 10*time.Second); err != nil || body != targetBody {
		t.Fatalf("first fetch: got %q, %v", body, err)
	}
	if g.ConfiguredPeers() != 1 {
		t.Fatalf("configured peers after the handshake: got %d, want 1", g.ConfiguredPeers())
	}
	waitFor(t, 10*time.Second, "the session to open", func() bool { return g.LiveSessions() == 1 })

	clk.Advance(181 * time.Second)
	waitFor(t, 10*time.Second, "the idle peer to leave the device", func() bool { return g.ConfiguredPeers() == 0 })
	if g.Peers() != 1 {
		t.Errorf("admitted peers after the trim: got %d, want 1", g.Peers())
	}
	waitFor(t, 10*time.Second, "the session to close", func() bool {
		for _, iv := range f.reported() {
			if iv.DeviceID == "dev-1" && iv.End != nil {
				return true
			}
		}
		return false
	})

	// The client's next handshake configures it again. (Its own keys are
	// still fresh, as only the gateway's clock moved: make it start over.)
	if err := client.dev.IpcSet("public_key=" + g.PublicKey().Hex() + "\nremove=true\n"); err != nil {
		t.Fatal(err)
	}
	if err := client.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=0.0.0.0/0\n", g.PublicKey().Hex(), g.ListenPort())); err != nil {
		t.Fatal(err)
	}
	if body, err := client.get(targetURL, 10*time.Second); err != nil || body != targetBody {
		t.Fatalf("fetch after the trim: got %q, %v", body, err)
	}
	if g.ConfiguredPeers() != 1 {
		t.Errorf("configured peers after the new handshake: got %d, want 1", g.ConfiguredPeers())
	}
}
