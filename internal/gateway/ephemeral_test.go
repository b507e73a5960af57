package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/ephemeral"
	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gwproto"
)

// uapiPeers reads the gateway's device through its read-only UAPI socket
// and returns, by public key (hex), each peer's UAPI lines.
func uapiPeers(t *testing.T, path string) map[string][]string {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("get=1\n\n")); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	var cur string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, "=")
		switch {
		case k == "errno" && v != "0":
			t.Fatalf("UAPI get: errno %s", v)
		case k == "public_key":
			cur = v
			out[cur] = nil
		case cur != "":
			out[cur] = append(out[cur], line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// TestEphemeralPeerUserspace runs a quantum-resistant switch against a
// userspace gateway: the client's exchange through the tunnel, the
// gateway's device holding the ephemeral key with the derived pre-shared
// key and the device's address, the long-term key gone from it, traffic on
// the ephemeral key, one session for the device, and nothing of it logged.
func TestEphemeralPeerUserspace(t *testing.T) {
	f := newFakeControl(t)
	targetURL, _ := newTarget(t)
	logs := &syncBuffer{}
	clientKey := mustKey(t)
	f.setPeer(gwproto.Peer{DeviceID: "dev-1", PublicKey: clientKey.Public().String(), Addresses: []string{"100.64.0.2/32"}})
	sock := filepath.Join(t.TempDir(), "uapi.sock")
	g := newGateway(t, f, logs, func(c *gateway.Config) {
		c.Dial = (&loopbackDialer{}).dial
		c.UAPISocket = sock
	})
	stop := runGateway(t, g.Run)
	waitReady(t, g)
	waitFor(t, 10*time.Second, "peer from the snapshot", func() bool { return g.Peers() == 1 })
	client := newWGClient(t, "100.64.0.2", clientKey, g.PublicKey(), g.ListenPort())
	waitFor(t, 15*time.Second, "a page on the long-term key", func() bool {
		_, err := client.get(targetURL, 2*time.Second)
		return err == nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := ephemeral.Exchange(ctx, ephemeral.ClientConfig{
		Dial: client.tnet.DialContext, Address: "100.64.0.1:1337", Device: clientKey.Public(), Gateway: g.PublicKey(),
	})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	eph := res.Key.Public()
	if err := client.dev.IpcSet("private_key=" + res.Key.Hex() + "\npublic_key=" + g.PublicKey().Hex() +
		"\nupdate_only=true\npreshared_key=" + res.PSK.Hex() + "\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "a page on the ephemeral key", func() bool {
		body, err := client.get(targetURL, 2*time.Second)
		return err == nil && body == targetBody
	})

	peers := uapiPeers(t, sock)
	lines, ok := peers[eph.Hex()]
	if !ok {
		t.Fatalf("gateway device peers: %d, none with the ephemeral key", len(peers))
	}
	if !hasLine(lines, "preshared_key="+res.PSK.Hex()) {
		t.Errorf("ephemeral peer: want the derived pre-shared key on the gateway's device")
	}
	if !hasLine(lines, "allowed_ip=100.64.0.2/32") {
		t.Errorf("ephemeral peer: got %q, want the device's address", lines)
	}
	if lt, ok := peers[clientKey.Public().Hex()]; ok && slicesHasPrefix(lt, "allowed_ip=") {
		t.Errorf("long-term key still holds addresses on the gateway's device: %q", lt)
	}
	if n := len(peers); n != 1 {
		t.Errorf("gateway device peers: got %d, want 1 (the ephemeral key only)", n)
	}
	if got := g.Peers(); got != 1 {
		t.Errorf("Peers: got %d, want 1 (an alias is no device)", got)
	}
	waitFor(t, 10*time.Second, "an open interval for dev-1", func() bool {
		for _, iv := range f.reported() {
			if iv.DeviceID == "dev-1" && iv.End == nil {
				return true
			}
		}
		return false
	})
	for _, iv := range f.reported() {
		if iv.DeviceID != "dev-1" {
			t.Errorf("interval for %q, want dev-1 only", iv.DeviceID)
		}
	}

	// The device's removal takes its ephemeral key with it.
	f.removePeer(clientKey.Public().String())
	waitFor(t, 10*time.Second, "the device's removal", func() bool { return g.Peers() == 0 })
	waitFor(t, 10*time.Second, "the ephemeral key gone from the device", func() bool {
		_, ok := uapiPeers(t, sock)[eph.Hex()]
		return !ok
	})
	if _, err := client.get(targetURL, 2*time.Second); err == nil {
		t.Errorf("after the device's removal: a page through its ephemeral key, want none")
	}
	stop()

	out := logs.String()
	if !strings.Contains(out, "ephemeral-peer service stopped") || !strings.Contains(out, "installed=1") {
		t.Errorf("want the service's counts in the log:\n%s", out)
	}
	for _, s := range []string{eph.String(), eph.Hex(), res.PSK.Hex(), clientKey.Public().String(), "100.64.0.2"} {
		if strings.Contains(out, s) {
			t.Errorf("logs contain %q:\n%s", s, out)
		}
	}
}

func slicesHasPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// TestEphemeralPeerDisabled: a gateway with the service off gives a client
// that asks ErrUnsupported, which makes it fail closed.
func TestEphemeralPeerDisabled(t *testing.T) {
	f := newFakeControl(t)
	clientKey := mustKey(t)
	f.setPeer(gwproto.Peer{DeviceID: "dev-1", PublicKey: clientKey.Public().String(), Addresses: []string{"100.64.0.2/32"}})
	g := newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) {
		c.Dial = (&loopbackDialer{}).dial
		c.DisableEphemeralPeers = true
	})
	runGateway(t, g.Run)
	waitReady(t, g)
	waitFor(t, 10*time.Second, "peer from the snapshot", func() bool { return g.Peers() == 1 })
	client := newWGClient(t, "100.64.0.2", clientKey, g.PublicKey(), g.ListenPort())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := ephemeral.Exchange(ctx, ephemeral.ClientConfig{
		Dial: client.tnet.DialContext, Address: "100.64.0.1:1337", Device: clientKey.Public(), Gateway: g.PublicKey(),
	})
	if !errors.Is(err, ephemeral.ErrUnsupported) {
		t.Fatalf("Exchange with the service off: got %v, want ErrUnsupported", err)
	}
}
