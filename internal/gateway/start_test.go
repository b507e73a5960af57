package gateway_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// busyPort holds a UDP port on 127.0.0.1 until the test ends and returns it.
func busyPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// runOnce runs g to its end, which must come by itself within 10 s.
func runOnce(t *testing.T, g *gateway.Gateway) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := g.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Run did not end by itself: %v", err)
	}
	return err
}

// A busy WireGuard port fails Run before anything is saved or asked of the
// control server: the token is not spent, the key file not written, no
// record made.
func TestBusyPortSpendsNothing(t *testing.T) {
	f := newFakeControl(t)
	port := busyPort(t)
	keyFile := filepath.Join(t.TempDir(), "gw.json")
	var hookCalls int
	for _, tc := range []struct {
		name   string
		mutate func(*gateway.Config)
	}{
		{"token", func(c *gateway.Config) {}},
		{"enroll hook", func(c *gateway.Config) {
			c.Token = ""
			c.Enroll = func(context.Context, wgkey.PublicKey) (gwproto.EnrollResponse, error) {
				hookCalls++
				return gwproto.EnrollResponse{ID: "gw-9", Credential: f.cred}, nil
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) {
				c.ListenPort, c.KeyFile, c.Endpoint, c.Region = port, keyFile, "gw.example.net", "eu-2"
				tc.mutate(c)
			})
			err := runOnce(t, g)
			if !errors.Is(err, gateway.ErrPortInUse) || !strings.Contains(err.Error(), strconv.Itoa(port)) {
				t.Fatalf("Run on a busy port: got %v, want ErrPortInUse naming port %d", err, port)
			}
		})
	}
	if n, h, calls := f.enrollCount(), len(f.helloReports()), hookCalls; n+h+calls != 0 {
		t.Errorf("with the port busy: %d enrollments, %d start-up reports, %d Enroll calls; want none", n, h, calls)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file after a busy port: %v, want none", err)
	}
}

// At every start the gateway reports its bound port and its configured
// endpoint (HOST alone taking that port) and region, and takes the record
// the server answers.
func TestStartUpReport(t *testing.T) {
	f := newFakeControl(t)
	keyFile := filepath.Join(t.TempDir(), "gw.json")
	logs := &syncBuffer{}
	g1 := newGateway(t, f, logs, func(c *gateway.Config) { c.KeyFile = keyFile })
	stop := runGateway(t, g1.Run)
	waitReady(t, g1)
	stop()
	first := f.helloReports()
	if len(first) != 1 || first[0].ListenPort != int(g1.ListenPort()) || first[0].Endpoint != "" || first[0].Region != "" {
		t.Fatalf("start-up report without settings: got %+v, want only listen port %d", first, g1.ListenPort())
	}
	if g1.Endpoint() != "gw.invalid:51820" {
		t.Errorf("Endpoint: got %q, want the record's gw.invalid:51820", g1.Endpoint())
	}
	// The recorded port is not the bound one, and this gateway did not ask
	// for it: a warning.
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "port forward") {
		t.Errorf("no port-forward warning for a recorded endpoint on another port:\n%s", out)
	}

	logs2 := &syncBuffer{}
	g2 := newGateway(t, f, logs2, func(c *gateway.Config) {
		c.KeyFile, c.Token, c.Endpoint, c.Region = keyFile, "", "gw.example.net", "eu-2"
	})
	runGateway(t, g2.Run)
	waitReady(t, g2)
	port := int(g2.ListenPort())
	want := gwproto.HelloRequest{ListenPort: port, Endpoint: net.JoinHostPort("gw.example.net", strconv.Itoa(port)), Region: "eu-2"}
	if got := f.helloReports(); len(got) != 2 || !reflect.DeepEqual(got[1], want) {
		t.Fatalf("start-up reports: got %+v, want the second to be %+v", got, want)
	}
	if g2.Endpoint() != want.Endpoint || g2.ID() != "gw-1" {
		t.Errorf("after the report: endpoint %q, id %q; want %s, gw-1", g2.Endpoint(), g2.ID(), want.Endpoint)
	}
	out := logs2.String()
	if !strings.Contains(out, "gateway record updated") || !strings.Contains(out, "[region endpoint]") {
		t.Errorf("logs do not say what changed:\n%s", out)
	}
	if strings.Contains(out, "port forward") || strings.Contains(out, "another port") {
		t.Errorf("port-forward message with the endpoint on the bound port:\n%s", out)
	}
	if n := f.enrollCount(); n != 1 {
		t.Errorf("enrollments: got %d, want 1", n)
	}
}

// An explicit endpoint port other than the listen port is accepted (a port
// forward) and said once at info level.
func TestExplicitPortForward(t *testing.T) {
	f := newFakeControl(t)
	logs := &syncBuffer{}
	g := newGateway(t, f, logs, func(c *gateway.Config) { c.Endpoint = "gw.example.net:443" })
	runGateway(t, g.Run)
	waitReady(t, g)
	if got := f.helloReports(); len(got) != 1 || got[0].Endpoint != "gw.example.net:443" {
		t.Fatalf("start-up reports: got %+v, want endpoint gw.example.net:443", got)
	}
	out := logs.String()
	if !strings.Contains(out, "level=INFO msg=\"clients dial another port") || strings.Contains(out, "level=WARN") {
		t.Errorf("want one info line about the port forward and no warning:\n%s", out)
	}
}

// A control server that predates start-up reports (404) does not stop the
// gateway.
func TestStartUpReportUnsupported(t *testing.T) {
	f := newFakeControl(t)
	f.mu.Lock()
	f.noHello = true
	f.mu.Unlock()
	logs := &syncBuffer{}
	g := newGateway(t, f, logs, func(c *gateway.Config) { c.Region = "eu-2" })
	runGateway(t, g.Run)
	waitReady(t, g)
	if g.ID() != "gw-1" || !strings.Contains(logs.String(), "does not take start-up reports") {
		t.Errorf("id %q, logs:\n%s\nwant gw-1 and a warning", g.ID(), logs.String())
	}
}

// Config.Enroll replaces the token: it is called once the port is bound,
// with the key that is then saved; an interrupted enrollment is retried at
// the next start with the same key, and an enrolled gateway does not call
// it again.
func TestEnrollHook(t *testing.T) {
	f := newFakeControl(t)
	keyFile := filepath.Join(t.TempDir(), "gw.json")
	var mu sync.Mutex
	var keys []wgkey.PublicKey
	fail := true
	hook := func(_ context.Context, pub wgkey.PublicKey) (gwproto.EnrollResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, pub)
		if fail {
			return gwproto.EnrollResponse{}, errors.New("store unavailable")
		}
		return gwproto.EnrollResponse{ID: "gw-1", Region: "test-1", Credential: f.cred}, nil
	}
	config := func(c *gateway.Config) { c.Token, c.Enroll, c.KeyFile = "", hook, keyFile }

	if err := runOnce(t, newGateway(t, f, &syncBuffer{}, config)); err == nil || !strings.Contains(err.Error(), "store unavailable") {
		t.Fatalf("Run with a failing Enroll: got %v", err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	g := newGateway(t, f, &syncBuffer{}, config)
	stop := runGateway(t, g.Run)
	waitReady(t, g)
	stop()
	mu.Lock()
	if len(keys) != 2 || !keys[0].Equal(keys[1]) || !keys[1].Equal(g.PublicKey()) {
		t.Errorf("Enroll keys: got %v, want the gateway's key %v twice", keys, g.PublicKey())
	}
	mu.Unlock()

	g = newGateway(t, f, &syncBuffer{}, config)
	runGateway(t, g.Run)
	waitReady(t, g)
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || f.enrollCount() != 0 {
		t.Errorf("after enrolling: %d Enroll calls and %d token enrollments, want 2 and 0", len(keys), f.enrollCount())
	}
}

// writeStaleKeyFile writes a key file holding key and a credential the
// fake control server does not know, as a gateway removed from the
// control server has, and returns its contents.
func writeStaleKeyFile(t *testing.T, path string, key wgkey.PrivateKey) []byte {
	t.Helper()
	b := []byte(`{"private_key": "` + key.Base64() + `", "credential": "removed-credential", "gateway_id": "gw-old", "region": "test-1"}` + "\n")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// A credential the control server refuses at start (the gateway was
// removed): with Config.Enroll the gateway enrolls again with the same key
// and says so; with a token it stops with ErrCredentialRefused, changing
// nothing and spending no token.
func TestRefusedCredential(t *testing.T) {
	key, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("enroll hook", func(t *testing.T) {
		f := newFakeControl(t)
		keyFile := filepath.Join(t.TempDir(), "gw.json")
		writeStaleKeyFile(t, keyFile, key)
		var calls []wgkey.PublicKey
		hook := func(_ context.Context, pub wgkey.PublicKey) (gwproto.EnrollResponse, error) {
			calls = append(calls, pub) // Run calls it from its own goroutine only
			return gwproto.EnrollResponse{ID: "gw-2", Region: "test-1", Credential: f.cred}, nil
		}
		logs := &syncBuffer{}
		g := newGateway(t, f, logs, func(c *gateway.Config) { c.Token, c.Enroll, c.KeyFile = "", hook, keyFile })
		stop := runGateway(t, g.Run)
		waitReady(t, g)
		stop()
		if len(calls) != 1 || !calls[0].Equal(key.Public()) || g.ID() != "gw-2" {
			t.Fatalf("Enroll calls %v, id %q; want one with the key file's key %v, then gw-2", calls, g.ID(), key.Public())
		}
		if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "enrolling it again with the same key") ||
			!strings.Contains(out, "gateway_id=gw-old") {
			t.Errorf("no warning that the gateway enrolls again:\n%s", out)
		}
		b, err := os.ReadFile(keyFile)
		if err != nil || !strings.Contains(string(b), `"credential": "`+f.cred+`"`) || !strings.Contains(string(b), key.Base64()) {
			t.Errorf("key file after enrolling again: %s (%v); want the same key and the new credential", b, err)
		}
		if len(f.helloReports()) != 1 {
			t.Errorf("start-up reports accepted: %d, want 1", len(f.helloReports()))
		}
	})
	t.Run("token", func(t *testing.T) {
		f := newFakeControl(t)
		keyFile := filepath.Join(t.TempDir(), "gw.json")
		before := writeStaleKeyFile(t, keyFile, key)
		err := runOnce(t, newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) { c.KeyFile = keyFile }))
		if !errors.Is(err, gateway.ErrCredentialRefused) || !strings.Contains(err.Error(), keyFile) {
			t.Fatalf("Run with a refused credential: got %v, want ErrCredentialRefused naming %s", err, keyFile)
		}
		if after, _ := os.ReadFile(keyFile); string(after) != string(before) || f.enrollCount() != 0 {
			t.Errorf("key file %s, %d enrollments; want the file unchanged and the token unspent", after, f.enrollCount())
		}
	})
}
