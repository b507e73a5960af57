package wgconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/wgkey"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// testKey returns a deterministic private key derived from seed.
func testKey(t testing.TB, seed byte) wgkey.PrivateKey {
	t.Helper()
	k, err := wgkey.Generate(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sampleConfig(t testing.TB) Config {
	k := testKey(t, 1)
	return Config{
		Interface: Interface{
			PrivateKey: &k,
			Addresses:  []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32"), netip.MustParsePrefix("fd00::2/128")},
			DNS:        []netip.Addr{netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("fd00::1")},
			MTU:        1420,
		},
		Peers: []Peer{{
			PublicKey:           testKey(t, 2).Public(),
			Endpoint:            "198.18.0.1:51820",
			AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
			PersistentKeepalive: 25,
		}},
	}
}

func TestRender(t *testing.T) {
	c := sampleConfig(t)
	want := "[Interface]\n" +
		"PrivateKey = " + c.Interface.PrivateKey.Base64() + "\n" +
		"Address = 100.64.0.2/32, fd00::2/128\n" +
		"DNS = 100.64.0.1, fd00::1\n" +
		"MTU = 1420\n" +
		"\n[Peer]\n" +
		"PublicKey = " + c.Peers[0].PublicKey.String() + "\n" +
		"Endpoint = 198.18.0.1:51820\n" +
		"AllowedIPs = 0.0.0.0/0, ::/0\n" +
		"PersistentKeepalive = 25\n"
	if got := c.Render(); got != want {
		t.Errorf("Render:\ngot  %q\nwant %q", got, want)
	}

	c.Interface.PrivateKey = nil
	if got := c.Render(); !strings.Contains(got, "\nPrivateKey = \n") {
		t.Errorf("Render with nil key: got %q, want an empty PrivateKey line", got)
	}
	if got := c.Render(); strings.Contains(got, testKey(t, 1).Base64()) {
		t.Errorf("Render with nil key leaked the key")
	}
}

func TestParse(t *testing.T) {
	c := sampleConfig(t)
	priv := c.Interface.PrivateKey.Base64()
	pub := c.Peers[0].PublicKey.String()
	tests := []struct {
		name    string
		in      string
		want    *Config // nil: only check the error
		wantErr string  // substring; "" means success
	}{
		{name: "rendered", in: c.Render(), want: &c},
		{
			name: "case, comments, repeats, CRLF, bare addresses",
			in: "# exported\r\n[interface]\r\nprivatekey=" + priv + " # mine\r\naddress = 100.64.0.2\r\nADDRESS = fd00::2/128\r\n" +
				"dns=100.64.0.1\r\nDns = fd00::1\r\nmtu = 1420\r\n\r\n[PEER]\r\npublickey = " + pub +
				"\r\nendpoint = 198.18.0.1:51820\r\nallowedips = 0.0.0.0/0\r\nAllowedIPs = ::/0\r\npersistentkeepalive = 25\r\n",
			want: &c,
		},
		{
			name: "empty private key, keepalive off, masked allowed ips",
			in:   "[Interface]\nPrivateKey =\n[Peer]\nPublicKey = " + pub + "\nAllowedIPs = 100.64.1.7/10\nPersistentKeepalive = off\n",
			want: &Config{Peers: []Peer{{PublicKey: c.Peers[0].PublicKey, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")}}}},
		},
		{name: "hostname endpoint", in: "[Interface]\n[Peer]\nPublicKey = " + pub + "\nEndpoint = gw-1.example.net:443\n",
			want: &Config{Peers: []Peer{{PublicKey: c.Peers[0].PublicKey, Endpoint: "gw-1.example.net:443"}}}},
		{name: "ipv6 endpoint", in: "[Interface]\n[Peer]\nPublicKey = " + pub + "\nEndpoint = [fd00::1]:51820\n",
			want: &Config{Peers: []Peer{{PublicKey: c.Peers[0].PublicKey, Endpoint: "[fd00::1]:51820"}}}},
		{name: "empty", in: "", wantErr: "missing [Interface]"},
		{name: "too big", in: strings.Repeat("#", MaxSize+1), wantErr: "larger than"},
		{name: "long line", in: "[Interface]\n#" + strings.Repeat("x", MaxLineLen), wantErr: "line 2: line is longer"},
		{name: "not utf8", in: "[Interface]\n\xff", wantErr: "UTF-8"},
		{name: "key before section", in: "MTU = 1420\n", wantErr: "line 1: key outside"},
		{name: "unknown section", in: "[Interface]\n[Server]\n", wantErr: "line 2: unknown section"},
		{name: "duplicate interface", in: "[Interface]\n[Interface]\n", wantErr: "line 2: duplicate [Interface]"},
		{name: "peer first", in: "[Peer]\nPublicKey = " + pub + "\n", wantErr: "line 1: [Peer] before [Interface]"},
		{name: "interface after peer", in: "[Interface]\n[Peer]\nPublicKey = " + pub + "\n[Interface]\n", wantErr: "line 4: duplicate [Interface]"},
		{name: "no equals", in: "[Interface]\nMTU 1420\n", wantErr: `line 2: expected "Key = Value"`},
		{name: "unknown key", in: "[Interface]\nListenPort = 51820\n", wantErr: `line 2: unknown or unsupported key "ListenPort" in [Interface]`},
		{name: "peer key in interface", in: "[Interface]\nEndpoint = 198.18.0.1:1\n", wantErr: `line 2: unknown or unsupported key "Endpoint"`},
		{name: "preshared key", in: "[Interface]\n[Peer]\nPublicKey = " + pub + "\nPresharedKey = " + priv + "\n", wantErr: `line 4: unknown or unsupported key "PresharedKey" in [Peer]`},
		{name: "duplicate key", in: "[Interface]\nMTU = 1420\nmtu = 1280\n", wantErr: `line 3: duplicate key "mtu"`},
		{name: "bad private key", in: "[Interface]\nPrivateKey = abc\n", wantErr: "line 2: PrivateKey must be 44"},
		{name: "bad private key base64", in: "[Interface]\nPrivateKey = " + strings.Repeat("!", 44) + "\n", wantErr: "line 2: PrivateKey is not valid"},
		{name: "bad address", in: "[Interface]\nAddress = 100.64.0.300/32\n", wantErr: "line 2: invalid CIDR"},
		{name: "zoned address", in: "[Interface]\nAddress = fe80::1%eth0\n", wantErr: "line 2: invalid IP address"},
		{name: "dns search domain", in: "[Interface]\nDNS = 100.64.0.1, corp.example\n", wantErr: "line 2: DNS must be a list of IP"},
		{name: "mtu too small", in: "[Interface]\nMTU = 100\n", wantErr: "line 2: MTU must be an integer between 576 and 65535"},
		{name: "mtu sign", in: "[Interface]\nMTU = +1420\n", wantErr: "line 2: MTU must be"},
		{name: "peer without key", in: "[Interface]\n[Peer]\nEndpoint = 198.18.0.1:1\n", wantErr: "line 2: [Peer] section has no PublicKey"},
		{name: "bad public key", in: "[Interface]\n[Peer]\nPublicKey = AAAA\n", wantErr: "line 3: PublicKey: public key must be 44"},
		{name: "zero public key", in: "[Interface]\n[Peer]\nPublicKey = " + strings.Repeat("A", 43) + "=\n", wantErr: "line 3: PublicKey: public key must not be zero"},
		{name: "endpoint no port", in: "[Interface]\n[Peer]\nPublicKey = " + pub + "\nEndpoint = 198.18.0.1\n", wantErr: "line 4: endpoint must be host:port"},
		{name: "endpoint port 0", in: "[Interface]\n[Peer]\nPublicKey = " + pub + "\nEndpoint = 198.18.0.1:0\n", wantErr: "line 4: endpoint port"},
		{name: "endpoint bare v6", in: "[Interface]\n[Peer]\nPublicKey = " + pub + "\nEndpoint = fd00::1:51820\n", wantErr: "line 4: endpoint must be host:port"},
		{name: "endpoint junk host", in: "[Interface]\n[Peer]\nPublicKey = " + pub + "\nEndpoint = a b:1\n", wantErr: "line 4: endpoint host is neither"},
		{name: "keepalive too big", in: "[Interface]\n[Peer]\nPublicKey = " + pub + "\nPersistentKeepalive = 65536\n", wantErr: "line 4: PersistentKeepalive must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse: got nil error, want one containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error: got %q, want it to contain %q", err, tt.wantErr)
				}
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Errorf("Parse error: got %T, want *ParseError", err)
				}
				if strings.Contains(err.Error(), priv) {
					t.Errorf("Parse error leaks the private key: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: got error %v, want nil", err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, *tt.want) {
				t.Errorf("Parse:\ngot  %+v\nwant %+v", got, *tt.want)
			}
		})
	}
}

func TestParseErrorDoesNotEchoValues(t *testing.T) {
	secretish := "198.18.77.77"
	_, err := Parse("[Interface]\n[Peer]\nPublicKey = x\nEndpoint = " + secretish + "\n")
	if err == nil || strings.Contains(err.Error(), secretish) {
		t.Errorf("got error %v, want an error without the endpoint", err)
	}
	_, err = Parse("[Interface]\n[Peer]\nPublicKey = " + testKey(t, 2).Public().String() + "\nEndpoint = " + secretish + "\n")
	if err == nil || strings.Contains(err.Error(), secretish) {
		t.Errorf("got error %v, want an error without the endpoint", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "ok", mutate: func(*Config) {}},
		{name: "mtu", mutate: func(c *Config) { c.Interface.MTU = 10 }, wantErr: "MTU"},
		{name: "zero peer key", mutate: func(c *Config) { c.Peers[0].PublicKey = wgkey.PublicKey{} }, wantErr: "public key is missing"},
		{name: "unmasked allowed ip", mutate: func(c *Config) { c.Peers[0].AllowedIPs[0] = netip.MustParsePrefix("10.1.2.3/8") }, wantErr: "not masked"},
		{name: "bad endpoint", mutate: func(c *Config) { c.Peers[0].Endpoint = "x\ny:1" }, wantErr: "endpoint"},
		{name: "keepalive", mutate: func(c *Config) { c.Peers[0].PersistentKeepalive = -1 }, wantErr: "keepalive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sampleConfig(t)
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: got %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestUAPI(t *testing.T) {
	c := sampleConfig(t)
	c.Peers = append(c.Peers, Peer{
		PublicKey:  testKey(t, 3).Public(),
		Endpoint:   "gw.example.test:443",
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")},
	})
	resolve := func(ctx context.Context, host string) ([]netip.Addr, error) {
		if host != "gw.example.test" {
			t.Errorf("resolve: got host %q, want gw.example.test", host)
		}
		return []netip.Addr{netip.MustParseAddr("fd00::9"), netip.MustParseAddr("::ffff:198.18.0.9")}, nil
	}
	got, err := c.UAPIContext(context.Background(), resolve)
	if err != nil {
		t.Fatal(err)
	}
	want := "private_key=" + c.Interface.PrivateKey.Hex() + "\n" +
		"replace_peers=true\n" +
		"public_key=" + c.Peers[0].PublicKey.Hex() + "\n" +
		"endpoint=198.18.0.1:51820\n" +
		"persistent_keepalive_interval=25\n" +
		"replace_allowed_ips=true\n" +
		"allowed_ip=0.0.0.0/0\n" +
		"allowed_ip=::/0\n" +
		"public_key=" + c.Peers[1].PublicKey.Hex() + "\n" +
		"endpoint=198.18.0.9:443\n" +
		"persistent_keepalive_interval=0\n" +
		"replace_allowed_ips=true\n" +
		"allowed_ip=100.64.0.0/10\n"
	if got != want {
		t.Errorf("UAPI:\ngot  %q\nwant %q", got, want)
	}

	t.Run("no private key", func(t *testing.T) {
		c := sampleConfig(t)
		c.Interface.PrivateKey = nil
		if _, err := c.UAPI(); err == nil {
			t.Errorf("UAPI: got nil error, want one for a missing private key")
		}
	})
	t.Run("resolve failure", func(t *testing.T) {
		c := sampleConfig(t)
		c.Peers[0].Endpoint = "gw.example.test:1"
		_, err := c.UAPIContext(context.Background(), func(context.Context, string) ([]netip.Addr, error) {
			return nil, errors.New("no such host gw.example.test")
		})
		if err == nil || strings.Contains(err.Error(), "gw.example.test") {
			t.Errorf("UAPI: got %v, want an error that does not name the host", err)
		}
	})
}

func TestQR(t *testing.T) {
	c := sampleConfig(t)
	s, err := QR(c.Render())
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(s, "\n"); lines < 20 {
		t.Errorf("QR: got %d lines, want at least 20", lines)
	}
	if _, err := QR(strings.Repeat("x", 8000)); err == nil {
		t.Errorf("QR of 8000 bytes: got nil error, want one (too long for a QR code)")
	}
}

// TestWireGuardTools checks that a rendered config is accepted by the real
// wg-quick and wg tools: "wg-quick strip" must succeed and "wg setconf" must
// accept its output. The interface wg configures is a wireguard-go device on
// netstack exposed on the standard UAPI socket, so no kernel module or
// network change is needed (only write access to /var/run/wireguard). It is
// skipped if the tools or that access are missing, unless
// NITRONET_REQUIRE_NETNS=1.
func TestWireGuardTools(t *testing.T) {
	require := os.Getenv("NITRONET_REQUIRE_NETNS") == "1"
	skip := func(why string) {
		t.Helper()
		if require {
			t.Fatalf("NITRONET_REQUIRE_NETNS=1 but %s", why)
		}
		t.Skip(why)
	}
	wg, err1 := exec.LookPath("wg")
	wgQuick, err2 := exec.LookPath("wg-quick")
	if err1 != nil || err2 != nil {
		skip("wg or wg-quick not installed")
	}
	c := sampleConfig(t)
	c.Peers = append(c.Peers, Peer{PublicKey: testKey(t, 3).Public(), Endpoint: "[fd00::9]:443", AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")}})
	dir := t.TempDir()
	path := filepath.Join(dir, "nt0.conf")
	if err := os.WriteFile(path, []byte(c.Render()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(wgQuick, "strip", path).CombinedOutput()
	if err != nil {
		t.Fatalf("wg-quick strip: %v\n%s", err, out)
	}
	stripped := string(out)
	for _, k := range []string{"Address", "DNS", "MTU"} {
		if strings.Contains(stripped, k) {
			t.Errorf("wg-quick strip: got %q, want %s removed", stripped, k)
		}
	}
	strippedPath := filepath.Join(dir, "stripped.conf")
	if err := os.WriteFile(strippedPath, out, 0o600); err != nil {
		t.Fatal(err)
	}

	name := fmt.Sprintf("ntwg%d", os.Getpid()%100000)
	tdev, _, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr("100.64.0.2")}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	t.Cleanup(dev.Close)
	f, err := ipc.UAPIOpen(name)
	if err != nil {
		skip("cannot open a WireGuard UAPI socket: " + err.Error())
	}
	ln, err := ipc.UAPIListen(name, f)
	if err != nil {
		skip("cannot listen on a WireGuard UAPI socket: " + err.Error())
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	if out, err := exec.Command(wg, "setconf", name, strippedPath).CombinedOutput(); err != nil {
		t.Fatalf("wg setconf: %v\n%s", err, out)
	}
	got, err := dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.UAPI()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"private_key=" + c.Interface.PrivateKey.Hex(),
		"public_key=" + c.Peers[0].PublicKey.Hex(),
		"endpoint=198.18.0.1:51820",
		"persistent_keepalive_interval=25",
		"allowed_ip=::/0",
		"public_key=" + c.Peers[1].PublicKey.Hex(),
		"endpoint=[fd00::9]:443",
		"allowed_ip=100.64.0.0/10",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("device after wg setconf: got no line %q", line)
		}
		if !strings.Contains(want, line+"\n") {
			t.Errorf("UAPI(): got no line %q, want the same as wg setconf", line)
		}
	}
}
