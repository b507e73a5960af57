package tunnel

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/nitronet/nitronet/internal/ephemeral"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// serveEphemeral runs the ephemeral-peer service on the test gateway's
// netstack at gwTunV4:ephemeral.Port. install configures the ephemeral key
// on the gateway's device; corrupt, if set, changes the pre-shared key the
// gateway installs (so that the client's handshake cannot succeed).
func serveEphemeral(t *testing.T, gw *netstackGateway, tnet *netstack.Net, device wgkey.PublicKey, corrupt bool) {
	t.Helper()
	srv, err := ephemeral.NewServer(ephemeral.ServerConfig{
		Gateway: gw.Key.Public(),
		Device: func(a netip.Addr) (wgkey.PublicKey, error) {
			if a != clientTunV4.Addr() {
				return wgkey.PublicKey{}, ephemeral.ErrNotDevice
			}
			return device, nil
		},
		Install: func(device, eph wgkey.PublicKey, psk ephemeral.PSK) error {
			if corrupt {
				psk[0] ^= 1
			}
			// As the gateway's peer manager does: the ephemeral key is
			// configured without addresses, and takes them (the
			// long-term key leaving) once its handshake completes.
			if err := gw.dev.IpcSet("public_key=" + eph.Hex() + "\npreshared_key=" + psk.Hex() + "\n"); err != nil {
				return err
			}
			go func() {
				for range 200 {
					if peerHandshook(gw, eph) {
						_ = gw.dev.IpcSet("public_key=" + device.Hex() + "\nremove=true\n" +
							"public_key=" + eph.Hex() + "\nallowed_ip=" + clientTunV4.String() + "\n")
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tnet.ListenTCPAddrPort(netip.AddrPortFrom(gwTunV4, ephemeral.Port))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
}

// peerHandshook reports whether the gateway's peer key has had a handshake.
func peerHandshook(gw *netstackGateway, key wgkey.PublicKey) bool {
	get, err := gw.dev.IpcGet()
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(get, "public_key="+key.Hex()+"\n")
	if !ok {
		return false
	}
	rest, _, _ = strings.Cut(rest, "public_key=")
	return strings.Contains(rest, "last_handshake_time_sec=") && !strings.Contains(rest, "last_handshake_time_sec=0\n")
}

// clientAllowed returns the allowed IPs the client's device gives the
// gateway.
func clientAllowed(t *testing.T, tun *Tunnel) []string {
	t.Helper()
	get, err := tun.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(line, "allowed_ip="); ok {
			out = append(out, v)
		}
	}
	return out
}

// gatewayPeers returns the gateway device's peers: public key (hex) to
// pre-shared key (hex).
func gatewayPeers(t *testing.T, gw *netstackGateway) map[string]string {
	t.Helper()
	get, err := gw.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var cur string
	for _, line := range strings.Split(get, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "public_key":
			cur = v
			out[cur] = ""
		case "preshared_key":
			out[cur] = v
		}
	}
	return out
}

func getThrough(t *testing.T, tun *Tunnel, timeout time.Duration) error {
	t.Helper()
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: tun.DialContext}}
	resp, err := hc.Get("http://" + gwTunV4.String() + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), "hello from gateway") {
		return errors.New("unexpected answer " + string(b))
	}
	return nil
}

func TestMakeQuantumResistant(t *testing.T) {
	clientKey := testKey(t, 1)
	zero := strings.Repeat("0", 64)
	cases := []struct {
		name    string
		serve   bool
		corrupt bool
		want    error
	}{
		{"switches", true, false, nil},
		{"no service", false, false, ephemeral.ErrUnsupported},
		{"wrong psk", true, true, ErrNoHandshake},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw, tnet := startNetstackGatewayNet(t, clientKey.Public())
			if tc.serve {
				serveEphemeral(t, gw, tnet, clientKey.Public(), tc.corrupt)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tun, err := Up(ctx, Options{Config: gw.ClientConfig(clientKey), Userspace: true, ProxyListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
				QuantumResistant: true})
			if err != nil {
				t.Fatal(err)
			}
			defer tun.Close()
			held := []string{gwTunV4.String() + "/32"}
			if got := clientAllowed(t, tun); !slices.Equal(got, held) {
				t.Fatalf("before the switch the device gives the gateway %v, want only %v", got, held)
			}
			err = tun.MakeQuantumResistant(ctx, QuantumOptions{Timeout: 4 * time.Second})
			if !errors.Is(err, tc.want) {
				t.Fatalf("MakeQuantumResistant: got %v, want %v", err, tc.want)
			}
			if got := tun.Status().QuantumResistant; got != (tc.want == nil) {
				t.Errorf("Status().QuantumResistant: got %v, want %v", got, tc.want == nil)
			}
			peers := gatewayPeers(t, gw)
			switch {
			case tc.want == nil:
				if len(peers) != 1 {
					t.Fatalf("gateway peers: got %v, want only the ephemeral key", peers)
				}
				for k, psk := range peers {
					if k == clientKey.Public().Hex() || psk == "" || psk == zero {
						t.Errorf("gateway peer %s with psk %q: want the ephemeral key with a pre-shared key", k, psk)
					}
				}
				if err := getThrough(t, tun, 5*time.Second); err != nil {
					t.Errorf("after the switch: %v", err)
				}
				if got := clientAllowed(t, tun); slices.Equal(got, held) {
					t.Errorf("after the switch the device still holds the traffic: %v", got)
				}
			case errors.Is(tc.want, ephemeral.ErrUnsupported):
				// Still held on the long-term key, until a downgrade.
				if got := clientAllowed(t, tun); !slices.Equal(got, held) {
					t.Errorf("after a failed exchange the device gives the gateway %v, want only %v", got, held)
				}
				if err := tun.AllowClassical(); err != nil {
					t.Fatal(err)
				}
				if got := clientAllowed(t, tun); len(got) != 2 {
					t.Errorf("after AllowClassical the device gives the gateway %v, want 0.0.0.0/0 and ::/0", got)
				}
				if err := getThrough(t, tun, 5*time.Second); err != nil {
					t.Errorf("after a downgrade: %v", err)
				}
			default:
				if err := getThrough(t, tun, time.Second); err == nil {
					t.Errorf("after a failed switch: traffic flowed, want none")
				}
			}
		})
	}
}

// TestMakeQuantumResistantRenews: when the gateway forgot the ephemeral key
// (a restart), a second call goes back to the long-term key, runs a new
// exchange and switches to a new ephemeral key.
func TestMakeQuantumResistantRenews(t *testing.T) {
	clientKey := testKey(t, 1)
	gw, tnet := startNetstackGatewayNet(t, clientKey.Public())
	serveEphemeral(t, gw, tnet, clientKey.Public(), false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tun, err := Up(ctx, Options{Config: gw.ClientConfig(clientKey), Userspace: true, ProxyListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		QuantumResistant: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	if err := tun.MakeQuantumResistant(ctx, QuantumOptions{Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	first := gatewayPeers(t, gw)
	// The gateway restarts: it knows the device's long-term key only.
	if err := gw.dev.IpcSet("replace_peers=true\npublic_key=" + clientKey.Public().Hex() + "\nallowed_ip=" + clientTunV4.String() + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := tun.MakeQuantumResistant(ctx, QuantumOptions{Timeout: 10 * time.Second}); err != nil {
		t.Fatalf("renewal: %v", err)
	}
	second := gatewayPeers(t, gw)
	if len(second) != 1 {
		t.Fatalf("gateway peers after the renewal: got %v, want one ephemeral key", second)
	}
	for k := range second {
		if _, old := first[k]; old || k == clientKey.Public().Hex() {
			t.Errorf("gateway peer after the renewal is %s, want a new ephemeral key", k)
		}
	}
	if err := getThrough(t, tun, 5*time.Second); err != nil {
		t.Errorf("after the renewal: %v", err)
	}
}
