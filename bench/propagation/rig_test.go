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
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gateway/control"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Environment variables read by the benchmarks.
const (
	// EnvPeers is how many devices are registered before the measurement
	// (default defaultPeers).
	EnvPeers = "NITRONET_BENCH_PEERS"
	// EnvGateway, if "off", runs BenchmarkPeerPropagation without the
	// userspace gateway, measuring with the feed follower only (for sizes
	// a gateway that configures every key on wireguard-go cannot hold).
	EnvGateway = "NITRONET_BENCH_GATEWAY"
)

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
// nothing here decrypts.
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
				Status:       store.StatusActive,
				CreatedAt:    created,
			}) {
				return
			}
		}
	}
	var devices iter.Seq[store.Device] = func(yield func(store.Device) bool) {
		for i := range n {
			if !yield(store.Device{
				ID:        fmt.Sprintf("dev_preload%07d", i),
				AccountID: fmt.Sprintf("acc_preload%07d", i/preloadPerAccount),
				Name:      "preloaded",
				PublicKey: preloadKey(i),
				CreatedAt: created,
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
// waits until it holds every preloaded peer.
func (r *rig) startGateway(b *testing.B, engine string) *gateway.Gateway {
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
	start := time.Now()
	waitPeers(b, gw, r.peers, syncTimeout)
	b.Logf("%s: gateway synced %d peers in %v", engine, r.peers, time.Since(start).Round(time.Millisecond))
	return gw
}

// entry is what a gateway's index of admitted keys holds per key.
type entry struct {
	deviceID string
	v4, v6   [16]byte
}

func entryOf(p gwproto.PeerRecord) entry {
	return entry{deviceID: p.DeviceID, v4: p.IPv4.As16(), v6: p.IPv6.As16()}
}

// follower follows the peer feed exactly as a gateway's control loop does
// (control.Client over HTTP: a binary snapshot, then JSON change polls) and
// keeps the admitted keys in a map, as a gateway's index would. It
// timestamps each key's arrival and departure for waiters. It is the
// gateway minus wireguard-go.
type follower struct {
	c *control.Client

	mu      sync.Mutex
	index   map[wgkey.PublicKey]entry
	waiters map[wgkey.PublicKey]waiter
	loaded  chan struct{} // closed once the first snapshot is in
	took    time.Duration // how long the first snapshot took
}

type waiter struct {
	present bool
	at      chan time.Time
}

// follow starts a follower on c; it stops when b ends.
func follow(b *testing.B, c *control.Client) *follower {
	f := &follower{c: c, waiters: map[wgkey.PublicKey]waiter{}, loaded: make(chan struct{})}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx) }()
	b.Cleanup(func() { stop(); <-done })
	return f
}

func (f *follower) run(ctx context.Context) {
	var since int64
	first := true
	for ctx.Err() == nil {
		start := time.Now()
		var next map[wgkey.PublicKey]entry
		upd, err := f.c.Peers(ctx, since, 25*time.Second, func(p gwproto.PeerRecord) error {
			if next == nil {
				next = make(map[wgkey.PublicKey]entry)
			}
			next[p.Key] = entryOf(p)
			return nil
		})
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond) // as a gateway backs off
			}
			continue
		}
		now := time.Now()
		f.mu.Lock()
		if upd.Full {
			if next == nil {
				next = make(map[wgkey.PublicKey]entry)
			}
			f.index = next
			if first {
				f.took, first = now.Sub(start), false
				close(f.loaded)
			}
		}
		for _, c := range upd.Changes {
			k, err := wgkey.ParsePublic(c.PublicKey)
			if err != nil {
				continue
			}
			if c.Removed {
				delete(f.index, k)
			} else if r, err := gwproto.ParsePeerRecord(c.Peer); err == nil {
				f.index[k] = entryOf(r)
			}
		}
		for k, w := range f.waiters {
			if _, ok := f.index[k]; ok == w.present {
				w.at <- now
				delete(f.waiters, k)
			}
		}
		f.mu.Unlock()
		since = upd.Version
	}
}

// await returns a channel that receives the time the follower applied the
// answer in which k became present (or absent); call it before the
// change.
func (f *follower) await(k wgkey.PublicKey, present bool) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.index[k]; ok == present {
		ch <- time.Now()
		return ch
	}
	f.waiters[k] = waiter{present: present, at: ch}
	return ch
}

// len returns the number of admitted keys.
func (f *follower) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.index)
}

// waitLoaded waits for the first snapshot and checks its size.
func (f *follower) waitLoaded(b *testing.B, want int) {
	b.Helper()
	select {
	case <-f.loaded:
	case <-time.After(syncTimeout):
		b.Fatalf("feed follower has no snapshot after %v", syncTimeout)
	}
	if n := f.len(); n < want {
		b.Fatalf("feed follower holds %d keys, want at least %d", n, want)
	}
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

// outbox returns the rig's outbox directory.
func (r *rig) outbox() string { return filepath.Join(r.data, "outbox") }
