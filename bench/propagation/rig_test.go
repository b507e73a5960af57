package propagation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gateway/control"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// EnvPeers is the environment variable that sets how many devices are
// registered before the measurement (default defaultPeers).
const EnvPeers = "NITRONET_BENCH_PEERS"

const (
	defaultPeers = 10_000
	// preloadPerAccount spreads the preloaded devices over accounts, as
	// the default --device-limit would.
	preloadPerAccount = 5
	// syncTimeout bounds the initial sync of the preloaded peers.
	syncTimeout = 10 * time.Minute
)

// benchPeers returns the number of devices to preload, from EnvPeers.
func benchPeers(b *testing.B) int {
	v := os.Getenv(EnvPeers)
	if v == "" {
		return defaultPeers
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number of devices", EnvPeers, v)
	}
	return n
}

// rig is an assembled control server serving HTTP on 127.0.0.1 with a
// number of preloaded devices.
type rig struct {
	url   string
	srv   *server.Server
	peers int
	data  string // the data directory
}

// newRig builds a rig on engine ("sqlite" or "postgres"; the latter is
// skipped unless NITRONET_TEST_POSTGRES is set) with peers devices
// bulk-inserted through the store. The server and store are stopped when
// b ends.
func newRig(b *testing.B, engine string, peers int) *rig {
	b.Helper()
	ctx := b.Context()
	quiet := slog.New(slog.DiscardHandler)

	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	if engine == "postgres" {
		cfg.Database = storetest.PostgresURL(b) // skips b without a server
	}
	st, err := server.OpenStore(ctx, cfg, quiet)
	if err != nil {
		b.Fatalf("open %s store: %v", engine, err)
	}
	start := time.Now()
	if err := preload(ctx, st.(*sqlstore.Store), peers); err != nil {
		st.Close()
		b.Fatalf("preload: %v", err)
	}
	b.Logf("%s: preloaded %d devices through the store (sqlstore.Import) in %v", engine, peers, time.Since(start).Round(time.Millisecond))
	return serveRig(b, cfg, st, peers)
}

// serveRig assembles a control server with cfg on st, which it takes
// over, and serves it on 127.0.0.1 until b ends.
func serveRig(b *testing.B, cfg config.Settings, st store.Store, peers int) *rig {
	b.Helper()
	ctx := b.Context()
	quiet := slog.New(slog.DiscardHandler)
	srv, err := server.New(ctx, cfg, server.Deps{Logger: quiet, Clock: time.Now, Rand: rand.Reader, Store: st})
	if err != nil {
		st.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(srvCtx, ln) }()
	b.Cleanup(func() {
		stopSrv()
		if err := <-served; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	return &rig{url: "http://" + ln.Addr().String(), srv: srv, peers: peers, data: cfg.DataDir}
}

// preloadKey returns the public key of preloaded device i: a hash, so
// that keys are spread over the key index as real ones are.
func preloadKey(i int) string {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(i))
	h := sha256.Sum256(append([]byte("nitronet bench key "), n[:]...))
	return base64.StdEncoding.EncodeToString(h[:])
}

// preload bulk-inserts n devices, preloadPerAccount to an account, with
// their accounts, in one sqlstore.Import (multi-row INSERTs in one
// transaction); the accounts' sealed contact fields are placeholders that
// nothing here decrypts. The accounts are verified and each device has
// a name index, as registration through the service would leave them:
// otherwise the server's start-up jobs would compete with the measurement
// for the CPU, the "seal plaintext" job trying to index the names of every
// preloaded account (and failing on its placeholder key), a one-off
// migration of older data, and the retention sweep of unverified accounts
// checking each of them for devices.
func preload(ctx context.Context, st *sqlstore.Store, n int) error {
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	accounts := func(yield func(store.Account) bool) {
		for a := 0; a*preloadPerAccount < n; a++ {
			id := fmt.Sprintf("acc_preload%07d", a)
			if !yield(store.Account{
				ID:           id,
				EmailSealed:  []byte("sealed-email-" + id),
				MobileSealed: []byte("sealed-mobile-" + id),
				WrappedKey:   []byte("wrapped-key-" + id),
				EmailIndex:   []byte("email-index-" + id),
				MobileIndex:  []byte("mobile-index-" + id),
				PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$preloaded",
				// Verified, as an account must be to register a device.
				EmailVerified:  true,
				MobileVerified: true,
				Status:         store.StatusActive,
				CreatedAt:      created,
			}) {
				return
			}
		}
	}
	var devices iter.Seq[store.Device] = func(yield func(store.Device) bool) {
		for i := range n {
			if !yield(store.Device{
				ID:         fmt.Sprintf("dev_preload%07d", i),
				AccountID:  fmt.Sprintf("acc_preload%07d", i/preloadPerAccount),
				SealedName: []byte("preloaded"),
				NameIndex:  []byte(fmt.Sprintf("name-index-%07d", i)),
				PublicKey:  preloadKey(i),
				CreatedAt:  created,
			}) {
				return
			}
		}
	}
	_, _, err := st.Import(ctx, accounts, devices)
	return err
}

// enroll adds a gateway record and returns a control client enrolled as
// it, and its credential.
func (r *rig) enroll(b *testing.B, region string) (*control.Client, string) {
	b.Helper()
	_, token, err := r.srv.Gateways.Add(b.Context(), staff.System(), region, "127.0.0.1:51820")
	if err != nil {
		b.Fatal(err)
	}
	c, err := control.New(r.url, &http.Client{})
	if err != nil {
		b.Fatal(err)
	}
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	enr, err := c.Enroll(b.Context(), token, k.Public())
	if err != nil {
		b.Fatal(err)
	}
	return c, enr.Credential
}

// startGateway runs a real userspace-mode gateway following the rig and
// waits until it has admitted every preloaded peer. It returns the gateway,
// how long that took from the call to Run (enrolment, the device, and the
// snapshot from the server's database into the gateway's index), and the
// CPU time the process (server and gateway) used meanwhile.
func (r *rig) startGateway(b *testing.B, engine string) (*gateway.Gateway, time.Duration, time.Duration) {
	b.Helper()
	_, token, err := r.srv.Gateways.Add(b.Context(), staff.System(), "bench", "127.0.0.1:51820")
	if err != nil {
		b.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{ServerURL: r.url, Token: token, Mode: gateway.ModeUserspace,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	gwCtx, stopGW := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	start, cpu0 := time.Now(), cpuTime()
	go func() { ran <- gw.Run(gwCtx) }()
	b.Cleanup(func() {
		stopGW()
		if err := <-ran; err != nil {
			b.Errorf("gateway: %v", err)
		}
	})
	select {
	case <-gw.Ready():
	case err := <-ran:
		b.Fatalf("gateway stopped before it was ready: %v", err)
	case <-time.After(time.Minute):
		b.Fatal("gateway not ready after a minute")
	}
	ready := time.Since(start)
	took := waitPeers(b, gw, r.peers, syncTimeout).Sub(start)
	cpu := cpuTime() - cpu0
	b.Logf("%s: gateway admitted %d peers %v after Run (ready after %v), %v of CPU", engine, r.peers,
		took.Round(time.Millisecond), ready.Round(time.Millisecond), cpu.Round(time.Millisecond))
	return gw, took, cpu
}

// waitPeers polls gw until it has want peers and returns the time it saw
// them; it fails b after timeout.
func waitPeers(b *testing.B, gw *gateway.Gateway, want int, timeout time.Duration) time.Time {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if gw.Peers() == want {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("gateway has %d peers after %v, want %d", gw.Peers(), timeout, want)
		}
		time.Sleep(pollEvery)
	}
}

// cpuTime returns the CPU time this process has used (user and system):
// on this shared machine it tells a benchmark's own cost apart from time
// spent waiting for a CPU.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// outbox returns the rig's outbox directory.
func (r *rig) outbox() string { return filepath.Join(r.data, "outbox") }
