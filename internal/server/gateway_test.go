package server_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// TestGatewayHello: a gateway's start-up report, authenticated by its
// credential, changes its own record (and so the configurations clients
// get), is validated, and says what changed.
func TestGatewayHello(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b, nil)
			ctx := context.Background()
			_, tok := e.signup("hello@example.com", "+447911100701")
			devID := e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "laptop", "public_key": newKey(t)}, 201)["id"].(string)
			_, enrollTok, err := e.srv.Gateways.Add(ctx, staff.System(), "eu-west", "198.18.0.1:51820")
			if err != nil {
				t.Fatal(err)
			}
			enr := e.want("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": enrollTok, "public_key": newKey(t)}, 201)
			cred, gwID := enr["credential"].(string), enr["id"].(string)
			_, otherTok, err := e.srv.Gateways.Add(ctx, staff.System(), "us-east", "198.18.0.2:51820")
			if err != nil {
				t.Fatal(err)
			}
			e.want("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": otherTok, "public_key": newKey(t)}, 201)

			const path = "/api/v1/gateway/hello"
			e.want("POST", path, "", map[string]any{"listen_port": 51820}, 401)
			e.want("POST", path, tok, map[string]any{"listen_port": 51820}, 401)
			for _, bad := range []map[string]any{
				{"listen_port": 0},
				{"listen_port": 70000},
				{"listen_port": 51820, "endpoint": "198.18.0.9"},
				{"listen_port": 51820, "endpoint": "a b:1"},
				{"listen_port": 51820, "region": "EU WEST"},
				{"listen_port": 51820, "tcp_port": -1},
				{"listen_port": 51820, "tcp_port": 65536},
			} {
				e.want("POST", path, cred, bad, 400)
			}
			// Only the port: nothing changes.
			r := e.want("POST", path, cred, map[string]any{"listen_port": 51820}, 200)
			if r["id"] != gwID || r["region"] != "eu-west" || r["endpoint"] != "198.18.0.1:51820" || r["changed"] != nil {
				t.Fatalf("report of the port alone: got %v, want the record unchanged", r)
			}
			r = e.want("POST", path, cred, map[string]any{"listen_port": 51999, "endpoint": "198.18.0.9:51999", "region": "EU-North"}, 200)
			if r["region"] != "eu-north" || r["endpoint"] != "198.18.0.9:51999" || fmt.Sprint(r["changed"]) != "[region endpoint]" {
				t.Fatalf("report of new settings: got %v", r)
			}
			if logs := e.logs.String(); !regexp.MustCompile(`msg="gateway record updated from its start-up report" gateway=` + gwID +
				` region_was=eu-west region=eu-north endpoint_was=198.18.0.1:51820 endpoint=198.18.0.9:51999`).MatchString(logs) {
				t.Errorf("no log line saying what changed:\n%s", logs)
			}
			if r := e.want("POST", path, cred, map[string]any{"listen_port": 51999, "endpoint": "198.18.0.9:51999", "region": "eu-north"}, 200); r["changed"] != nil {
				t.Errorf("the same report again: got %v, want nothing changed", r)
			}
			// The UDP-over-TCP port is recorded as reported, its absence
			// (0) included, and users see it in the gateway list.
			if r := e.want("POST", path, cred, map[string]any{"listen_port": 51999, "tcp_port": 8443}, 200); fmt.Sprint(r["changed"]) != "[tcp_port]" || r["tcp_port"] != 8443.0 {
				t.Errorf("report of a TCP port: got %v, want tcp_port 8443 changed", r)
			}
			if gws := e.want("GET", "/api/v1/gateways", tok, nil, 200); !strings.Contains(fmt.Sprint(gws), "tcp_port:8443") {
				t.Errorf("gateway list after the TCP port report: got %v, want tcp_port 8443", gws)
			}
			if r := e.want("POST", path, cred, map[string]any{"listen_port": 51999}, 200); fmt.Sprint(r["changed"]) != "[tcp_port]" || r["tcp_port"] != nil {
				t.Errorf("report without a TCP port: got %v, want tcp_port cleared", r)
			}

			gws, err := e.srv.Gateways.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(gws) != 2 || gws[1].Region != "us-east" || gws[1].Endpoint != "198.18.0.2:51820" {
				t.Errorf("the other gateway's record changed: %+v", gws)
			}
			req, _ := http.NewRequest("GET", e.url+"/api/v1/devices/"+devID+"/wireguard?gateway="+gwID, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			conf, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(conf), "\nEndpoint = 198.18.0.9:51999\n") {
				t.Errorf("client configuration after the report: got %d %q, want the new endpoint", resp.StatusCode, conf)
			}
		})
	}
}

// freeUDPPort returns a UDP port that was free on 127.0.0.1 a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// TestShutdownReportsFinalSessions: when serve with an in-process gateway
// is cancelled while a client is connected, the gateway ends the session
// and reports it to a server that still answers; no failure is logged.
func TestShutdownReportsFinalSessions(t *testing.T) {
	t.Parallel() // about 10 s, most of it the gateway's 5 s session poll
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	cfg.Transport.MetricsListen = "127.0.0.1:0" // not the default port, which parallel tests would share
	cfg.Gateway.Mode, cfg.Gateway.ListenPort = config.GatewayUserspace, freeUDPPort(t)
	cfg.Gateway.DNSUpstreams = []string{"127.0.0.1:9"} // not /etc/resolv.conf: nothing is looked up
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs, stdout := &lockedBuffer{}, &lockedBuffer{}
	srv, err := server.New(context.Background(), cfg, server.Deps{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:  time.Now, Rand: rand.Reader, Stdout: stdout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	waitUntil(t, 20*time.Second, "the in-process gateway", func() bool { return strings.Contains(stdout.String(), "running in this process") })
	url := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(stdout.String())[1]
	e := &env{t: t, url: url, dir: dir, logs: logs, srv: srv}

	// The in-process gateway's DNS blocking totals, per category only.
	metricsURL := regexp.MustCompile(`Metrics on (http://\S+)`).FindStringSubmatch(stdout.String())[1]
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range []string{"ads", "trackers", "malware", "adult", "gambling"} {
		if want := `nitronet_dns_blocked{category="` + c + `"} 0`; !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}

	accountID, tok := e.signup("bye@example.com", "+447911100702")
	key, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "laptop", "public_key": key.Public().String()}, 201)
	gws, err := srv.Gateways.Enrolled(ctx)
	if err != nil || len(gws) != 1 {
		t.Fatalf("enrolled gateways: %v, %v; want the in-process one", gws, err)
	}
	gwPub, err := wgkey.ParsePublic(gws[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	connectClient(t, key, gwPub, cfg.Gateway.ListenPort)
	waitUntil(t, 30*time.Second, "the open session reported", func() bool { return srv.Usage.Live()[gws[0].ID] == 1 })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20 s of cancel")
	}
	out := logs.String()
	if strings.Contains(out, "final session report failed") || !strings.Contains(out, "session_intervals_lost=0") {
		t.Errorf("shutdown logs a failed final report or lost intervals:\n%s", out)
	}
	sessions, err := srv.Usage.ForAccount(context.Background(), accountID, 1)
	if err != nil || len(sessions) != 1 || sessions[0].EndedAt == nil {
		t.Errorf("sessions after shutdown: %+v, %v; want one, ended by the final report", sessions, err)
	}
}

// connectClient brings up a WireGuard client on a netstack that keeps its
// tunnel to the gateway alive (so it handshakes at once), until the test
// ends.
func connectClient(t *testing.T, key wgkey.PrivateKey, gw wgkey.PublicKey, port int) {
	t.Helper()
	tunDev, _, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr("100.64.0.2")}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tunDev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	t.Cleanup(dev.Close)
	if err := dev.IpcSet("private_key=" + key.Hex() + "\npublic_key=" + gw.Hex() +
		fmt.Sprintf("\nendpoint=127.0.0.1:%d\n", port) + "persistent_keepalive_interval=1\nallowed_ip=0.0.0.0/0\n"); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond until it holds, failing t after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}
