package gateway_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/nitronet/nitronet/internal/dnsblock"
	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gateway/blocklist"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// dualStackClient is a WireGuard client on netstack with an IPv4 and an
// IPv6 tunnel address, routing everything through the gateway.
func dualStackClient(t *testing.T, key wgkey.PrivateKey, gwPub wgkey.PublicKey, gwPort uint16) *netstack.Net {
	t.Helper()
	tunDev, tnet, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr("100.64.0.2"), netip.MustParseAddr("fd00:6e6e::2")}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tunDev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	cfg := "private_key=" + key.Hex() + "\npublic_key=" + gwPub.Hex() + "\n" +
		fmt.Sprintf("endpoint=127.0.0.1:%d\n", gwPort) + "allowed_ip=0.0.0.0/0\nallowed_ip=::/0\n"
	if err := dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	return tnet
}

// resolver returns the address of set s in the default pool.
func resolver(t *testing.T, s dnsblock.Set) netip.Addr {
	t.Helper()
	a, err := dnsblock.Resolver(netip.MustParsePrefix(gateway.DefaultPool6), s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestDNSBlockingUserspace runs a userspace gateway with an ads list and
// asks its resolvers, through a real tunnel, for names on and off it.
func TestDNSBlockingUserspace(t *testing.T) {
	f := newFakeControl(t)
	answer := netip.MustParseAddr("192.0.2.54")
	upstream := fakeDNS(t, answer)
	dir := t.TempDir()
	adsList := filepath.Join(dir, "ads.txt")
	if err := os.WriteFile(adsList, []byte("# ads\nads-secret.test\n0.0.0.0 banner-secret.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clientKey := mustKey(t)
	f.setPeer(gwproto.Peer{DeviceID: "dev-1", PublicKey: clientKey.Public().String(),
		Addresses: []string{"100.64.0.2/32", "fd00:6e6e::2/128"}})
	logs := &syncBuffer{}
	reload := make(chan struct{})
	g := newGateway(t, f, logs, func(c *gateway.Config) {
		c.DNSUpstreams = []string{upstream}
		c.Blocklists = []blocklist.Source{{Category: dnsblock.Ads, Path: adsList}}
		c.Reload = reload
	})
	stop := runGateway(t, g.Run)
	waitReady(t, g)
	waitFor(t, 10*time.Second, "the client's peer", func() bool { return g.Peers() == 1 })
	tnet := dualStackClient(t, clientKey, g.PublicKey(), g.ListenPort())

	ads := dnsblock.Set(dnsblock.Ads)
	trackers := dnsblock.Set(dnsblock.Trackers)
	ask := func(t *testing.T, network string, server netip.Addr, name string) ([]string, dnsmessage.RCode) {
		t.Helper()
		var c net.Conn
		waitFor(t, 15*time.Second, "a connection to "+server.String(), func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			var err error
			c, err = tnet.DialContext(ctx, network, net.JoinHostPort(server.String(), "53"))
			return err == nil
		})
		defer c.Close()
		return exchange(t, c, name)
	}
	tests := []struct {
		name    string
		network string
		server  netip.Addr
		query   string
		blocked bool
	}{
		{"ads resolver blocks a listed name", "udp", resolver(t, ads), "ads-secret.test.", true},
		{"and its subdomains, over TCP", "tcp", resolver(t, ads), "x.Banner-Secret.test.", true},
		{"ads+trackers resolver blocks it too", "udp", resolver(t, ads|trackers), "ads-secret.test.", true},
		{"ads resolver resolves other names", "udp", resolver(t, ads), "news-secret.test.", false},
		{"trackers resolver has no list: resolves", "udp", resolver(t, trackers), "ads-secret.test.", false},
		{"gateway address blocks nothing", "udp", netip.MustParseAddr("100.64.0.1"), "ads-secret.test.", false},
		{"gateway IPv6 address blocks nothing", "tcp", netip.MustParseAddr("fd00:6e6e::1"), "ads-secret.test.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrs, rcode := ask(t, tt.network, tt.server, tt.query)
			if tt.blocked {
				if rcode != dnsmessage.RCodeNameError || len(addrs) != 0 {
					t.Errorf("got %v %v, want NXDOMAIN", addrs, rcode)
				}
				return
			}
			if rcode != dnsmessage.RCodeSuccess || len(addrs) != 1 || addrs[0] != answer.String() {
				t.Errorf("got %v %v, want [%v]", addrs, rcode, answer)
			}
		})
	}
	if got := g.BlockedTotals(); got["ads"] != 3 || got["trackers"] != 0 {
		t.Errorf("BlockedTotals: got %v, want ads 3, trackers 0", got)
	}

	t.Run("reload", func(t *testing.T) {
		if err := os.WriteFile(adsList, []byte("later-secret.test\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		reload <- struct{}{}
		waitFor(t, 10*time.Second, "the reloaded list", func() bool {
			_, rcode := ask(t, "udp", resolver(t, ads), "later-secret.test.")
			return rcode == dnsmessage.RCodeNameError
		})
		if _, rcode := ask(t, "udp", resolver(t, ads), "ads-secret.test."); rcode != dnsmessage.RCodeSuccess {
			t.Errorf("a name dropped from the list: got %v, want it resolved", rcode)
		}
		// A broken list keeps the one in force.
		os.Remove(adsList)
		reload <- struct{}{}
		waitFor(t, 10*time.Second, "the failed reload's warning", func() bool {
			return strings.Contains(logs.String(), "DNS blocklists not reloaded")
		})
		if _, rcode := ask(t, "udp", resolver(t, ads), "later-secret.test."); rcode != dnsmessage.RCodeNameError {
			t.Errorf("after a failed reload: got %v, want the list in force kept", rcode)
		}
	})

	stop()
	out := logs.String()
	for _, want := range []string{"DNS blocklists loaded", "DNS blocklists reloaded", `dns_blocked="ads=`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"secret", "100.64.0.2", "fd00:6e6e::2", "53:0:", answer.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
}

// TestDNSBlockingBadList checks that a list the gateway cannot use stops it
// at start, naming the file.
func TestDNSBlockingBadList(t *testing.T) {
	f := newFakeControl(t)
	missing := filepath.Join(t.TempDir(), "missing.txt")
	g := newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) {
		c.DNSUpstreams = []string{"127.0.0.1:9"}
		c.Blocklists = []blocklist.Source{{Category: dnsblock.Malware, Path: missing}}
	})
	err := g.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Run: got %v, want an error naming %s", err, missing)
	}
	if f.enrollCount() != 0 {
		t.Error("the gateway enrolled despite the bad list")
	}
}
