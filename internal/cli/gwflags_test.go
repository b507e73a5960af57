package cli_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/cli"
	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// syncBuffer is a goroutine-safe output sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cliRun is a long-running `nitronet …` started in the background.
type cliRun struct {
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan error
}

func startCLI(t *testing.T, args ...string) *cliRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &cliRun{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- cli.Run(ctx, args, func(string) string { return "" }, strings.NewReader(""), &r.stdout, &r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		r.wait(t)
	})
	return r
}

// waitOut waits for want on stdout, failing t if the command ends first.
func (r *cliRun) waitOut(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(r.stdout.String(), want) {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("ended (%v) before printing %q; stdout %q, stderr:\n%s", err, want, r.stdout.String(), r.stderr.String())
		case <-time.After(20 * time.Millisecond): // polling interval
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stdout within 20 s; stdout %q, stderr:\n%s", want, r.stdout.String(), r.stderr.String())
		}
	}
	return r.stdout.String()
}

// wait returns the command's error once it ends by itself.
func (r *cliRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("still running after 20 s; stderr:\n%s", r.stderr.String())
		return nil
	}
}

// stop cancels the command and waits for it; it must end cleanly.
func (r *cliRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := r.wait(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v", err)
	}
}

// holdUDP keeps a UDP port on 127.0.0.1 busy until the test ends.
func holdUDP(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// freeUDP returns a UDP port that was free a moment ago.
func freeUDP(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// gatewayRecords returns the gateway rows in the SQLite data directory.
func gatewayRecords(t *testing.T, dataDir string) []store.Gateway {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := server.OpenStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gs, err := st.Gateways(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

// serveArgs runs serve with a userspace gateway on port, and no DNS
// lookups of the host's resolvers.
func serveArgs(dataDir string, port int, extra ...string) []string {
	return append([]string{"serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--metrics-listen", "", "--gateway", "userspace",
		"--gateway-listen-port", strconv.Itoa(port), "--gateway-dns-upstream", "127.0.0.1:9"}, extra...)
}

// `serve --gateway foo` is refused by validation: before the listening
// line, before the HTTP port is bound (the error would name --listen,
// whose port is held here) and before the data directory is made.
func TestServeBadGatewayModeRefusedFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	var out bytes.Buffer
	err = cli.Run(context.Background(), []string{"serve", "--data", dataDir, "--listen", ln.Addr().String(), "--gateway", "foo"},
		func(string) string { return "" }, strings.NewReader(""), &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--gateway ") || strings.Contains(err.Error(), "--listen") {
		t.Fatalf("serve --gateway foo: got %v, want an error naming --gateway", err)
	}
	if strings.Contains(out.String(), "listening on") {
		t.Errorf("stdout %q: listening line printed before the refusal", out.String())
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory after the refusal: %v, want none", err)
	}
}

// A busy gateway port fails serve with an error naming
// --gateway-listen-port, leaving no gateway record and no key file; once
// the port is free the same command works.
func TestServeBusyGatewayPort(t *testing.T) {
	dataDir := t.TempDir()
	port := holdUDP(t)
	r := startCLI(t, serveArgs(dataDir, port)...)
	err := r.wait(t)
	if err == nil || !strings.Contains(err.Error(), "--gateway-listen-port "+strconv.Itoa(port)) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("serve with the gateway port busy: got %v, want an error naming --gateway-listen-port %d", err, port)
	}
	if gs := gatewayRecords(t, dataDir); len(gs) != 0 {
		t.Errorf("gateway records after the failure: %+v, want none", gs)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "gateway.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gateway.key after the failure: %v, want none", err)
	}

	r = startCLI(t, serveArgs(dataDir, freeUDP(t))...)
	r.waitOut(t, "running in this process")
	r.stop(t)
	if gs := gatewayRecords(t, dataDir); len(gs) != 1 || gs[0].PublicKey == "" {
		t.Errorf("gateway records after a good start: %+v, want one, enrolled", gs)
	}
}

// The in-process gateway's record follows --gateway-region,
// --gateway-endpoint and --gateway-listen-port at every start, and the log
// says what changed.
func TestServeGatewayFollowsFlags(t *testing.T) {
	dataDir := t.TempDir()
	p1, p2 := freeUDP(t), freeUDP(t)
	r := startCLI(t, serveArgs(dataDir, p1)...)
	if out := r.waitOut(t, "running in this process"); !strings.Contains(out, "endpoint 127.0.0.1:"+strconv.Itoa(p1)+"\n") {
		t.Errorf("first start: got %q, want endpoint 127.0.0.1:%d (the default host and the listen port)", out, p1)
	}
	r.stop(t)
	first := gatewayRecords(t, dataDir)

	r = startCLI(t, serveArgs(dataDir, p2, "--gateway-endpoint", "198.18.0.7", "--gateway-region", "eu-2")...)
	ep := "198.18.0.7:" + strconv.Itoa(p2)
	if out := r.waitOut(t, "running in this process"); !strings.Contains(out, "endpoint "+ep+"\n") {
		t.Errorf("second start: got %q, want endpoint %s", out, ep)
	}
	r.stop(t)
	if logs := r.stderr.String(); !strings.Contains(logs, "gateway record updated from its start-up report") ||
		!strings.Contains(logs, "region_was=local region=eu-2 endpoint_was=127.0.0.1:"+strconv.Itoa(p1)+" endpoint="+ep) {
		t.Errorf("no log line saying what changed:\n%s", logs)
	}
	gs := gatewayRecords(t, dataDir)
	if len(first) != 1 || len(gs) != 1 || gs[0].ID != first[0].ID || gs[0].Region != "eu-2" || gs[0].Endpoint != ep {
		t.Fatalf("records: first %+v, then %+v; want one record, now eu-2 at %s", first, gs, ep)
	}

	// An explicit endpoint port other than the listen port is a port
	// forward: recorded, and said at start.
	r = startCLI(t, serveArgs(dataDir, p2, "--gateway-endpoint", "vpn.example.net:443", "--gateway-region", "eu-2")...)
	r.waitOut(t, "endpoint vpn.example.net:443\n")
	r.stop(t)
	if logs := r.stderr.String(); !strings.Contains(logs, "expecting a port forward") {
		t.Errorf("no port-forward line:\n%s", logs)
	}
	if gs := gatewayRecords(t, dataDir); len(gs) != 1 || gs[0].Endpoint != "vpn.example.net:443" {
		t.Errorf("records: %+v, want one at vpn.example.net:443", gs)
	}
}

// A standalone gateway: a busy --listen-port fails without spending the
// token; then its --endpoint and --region reach its record at start, and a
// restart without them keeps the record (and warns that the recorded port
// is not the one bound).
func TestGatewayFollowsFlags(t *testing.T) {
	h, srv := newHarness(t, nil)
	ctx := context.Background()
	_, tok, err := srv.Gateways.Add(ctx, staff.System(), "eu-west", "198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "gateway.key")
	gatewayArgs := func(port int, extra ...string) []string {
		return append([]string{"gateway", "--server", h.url, "--mode", "userspace", "--key-file", keyFile,
			"--listen-port", strconv.Itoa(port), "--dns-upstream", "127.0.0.1:9"}, extra...)
	}
	busy := holdUDP(t)
	r := startCLI(t, gatewayArgs(busy, "--token", tok)...)
	if err := r.wait(t); err == nil || !strings.Contains(err.Error(), "--listen-port "+strconv.Itoa(busy)) {
		t.Fatalf("gateway on a busy port: got %v, want an error naming --listen-port %d", err, busy)
	}
	if gs, _ := srv.Gateways.List(ctx); len(gs) != 1 || gs[0].PublicKey != "" {
		t.Fatalf("records after the busy port: %+v, want the one record, not enrolled", gs)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file after the busy port: %v, want none", err)
	}

	port := freeUDP(t)
	ep := "vpn.example.net:" + strconv.Itoa(port)
	r = startCLI(t, gatewayArgs(port, "--token", tok, "--endpoint", "vpn.example.net", "--region", "eu-north")...)
	if out := r.waitOut(t, "running (userspace mode)"); !strings.Contains(out, "endpoint "+ep+"\n") {
		t.Errorf("stdout %q, want endpoint %s", out, ep)
	}
	r.stop(t)
	gs, err := srv.Gateways.List(ctx)
	if err != nil || len(gs) != 1 || gs[0].Region != "eu-north" || gs[0].Endpoint != ep || gs[0].PublicKey == "" {
		t.Fatalf("records: %+v, %v; want one, enrolled, eu-north at %s", gs, err, ep)
	}

	r = startCLI(t, gatewayArgs(freeUDP(t))...)
	r.waitOut(t, "endpoint "+ep+"\n")
	r.stop(t)
	if logs := r.stderr.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "port forward") {
		t.Errorf("no warning that the recorded port is not the bound one:\n%s", logs)
	}
	if gs, _ := srv.Gateways.List(ctx); len(gs) != 1 || gs[0].Region != "eu-north" || gs[0].Endpoint != ep {
		t.Errorf("records after a restart without --endpoint/--region: %+v, want them kept", gs)
	}
}

// serve's own gateway, removed by an operator, is provisioned again at the
// next start with the same key, and the log says so.
func TestServeGatewayRemovedRecovers(t *testing.T) {
	dataDir := t.TempDir()
	op := &admin{t: t, data: dataDir}
	op.must("correct horse battery staple\n", "admin", "staff", "add", "--data", dataDir, "--email", "ops@example.com", "--role", "admin")
	gwID := regexp.MustCompile(`Gateway (gw_[a-z2-7]+) running in this process`)

	r := startCLI(t, serveArgs(dataDir, freeUDP(t))...)
	first := gwID.FindStringSubmatch(r.waitOut(t, "running in this process"))
	r.stop(t)
	before := gatewayRecords(t, dataDir)
	if first == nil || len(before) != 1 || before[0].ID != first[1] {
		t.Fatalf("first start: gateway %v, records %+v", first, before)
	}
	op.as("ops@example.com").must("", "admin", "gateway", "remove", first[1], "--data", dataDir)

	r = startCLI(t, serveArgs(dataDir, freeUDP(t))...)
	second := gwID.FindStringSubmatch(r.waitOut(t, "running in this process"))
	r.stop(t)
	after := gatewayRecords(t, dataDir)
	if second == nil || second[1] == first[1] || len(after) != 1 || after[0].ID != second[1] || after[0].PublicKey != before[0].PublicKey {
		t.Fatalf("after removal: gateway %v, records %+v; want a new record for the same key %s", second, after, before[0].PublicKey)
	}
	if logs := r.stderr.String(); !strings.Contains(logs, "refused this gateway's credential") || !strings.Contains(logs, "in-process gateway added") {
		t.Errorf("no log line saying the gateway enrolled again:\n%s", logs)
	}
}

// A standalone gateway whose record was removed stops at start with an
// error saying how to enroll it again, and leaves its key file alone.
func TestGatewayRemovedStops(t *testing.T) {
	h, srv := newHarness(t, nil)
	ctx := context.Background()
	g, tok, err := srv.Gateways.Add(ctx, staff.System(), "eu-west", "198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "gateway.key")
	args := []string{"gateway", "--server", h.url, "--mode", "userspace", "--key-file", keyFile, "--dns-upstream", "127.0.0.1:9"}
	r := startCLI(t, append(args, "--listen-port", strconv.Itoa(freeUDP(t)), "--token", tok)...)
	r.waitOut(t, "running (userspace mode)")
	r.stop(t)
	if _, err := srv.Gateways.Remove(ctx, staff.System(), g.ID); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	r = startCLI(t, append(args, "--listen-port", strconv.Itoa(freeUDP(t)))...)
	err = r.wait(t)
	for _, want := range []string{"refused the credential in --key-file " + keyFile, "nitronet admin gateway add", "remove " + keyFile, "--token TOKEN"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("removed gateway: got %v, want an error containing %q", err, want)
		}
	}
	if now, _ := os.ReadFile(keyFile); string(now) != string(key) {
		t.Error("the key file changed")
	}
	if status, _ := cli.Exit(err); status != cli.ExitError {
		t.Errorf("exit status %d, want %d", status, cli.ExitError)
	}
}
