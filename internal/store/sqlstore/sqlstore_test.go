package sqlstore_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestStore runs the shared contract suite, and the tests that inject
// faults into the database, on every engine.
func TestStore(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, b.Open)
			storetest.RunFaults(t, b)
		})
	}
}

func mkAccount(t *testing.T, s store.Store, id string) {
	t.Helper()
	a := &store.Account{ID: id, EmailIndex: []byte("e-" + id), Status: store.StatusActive}
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatalf("CreateAccount: got %v, want nil", err)
	}
}

// TestAddressAllocation checks the exact addresses handed out from a small
// pool: the first device gets .2, the broadcast address is never used, a
// full pool is Unavailable, and a freed address is reused.
func TestAddressAllocation(t *testing.T) {
	pool := store.Pool{
		V4: netip.MustParsePrefix("100.64.0.8/29"),
		V6: netip.MustParsePrefix("fd00:6e6e::/120"),
	}
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := b.OpenSQL(t, pool)
			mkAccount(t, s, "acct")
			create := func(n int) (*store.Device, error) {
				d := &store.Device{ID: fmt.Sprintf("dev-%d", n), AccountID: "acct", PublicKey: storetest.PublicKey(n)}
				return d, s.CreateDevice(ctx, d, 100)
			}
			for n := 2; n <= 6; n++ {
				d, err := create(n)
				if err != nil {
					t.Fatalf("CreateDevice %d: got %v, want nil", n, err)
				}
				want4 := netip.MustParseAddr(fmt.Sprintf("100.64.0.%d", 8+n))
				want6 := netip.MustParseAddr(fmt.Sprintf("fd00:6e6e::%x", n))
				if d.IPv4 != want4 || d.IPv6 != want6 {
					t.Fatalf("device %d: got %v %v, want %v %v", n, d.IPv4, d.IPv6, want4, want6)
				}
			}
			_, err := create(7)
			if got := errs.CodeOf(err); got != errs.Unavailable {
				t.Fatalf("CreateDevice on a full pool: got %v (code %q), want %q", err, got, errs.Unavailable)
			}
			if err := s.DeleteDevice(ctx, "acct", "dev-4"); err != nil {
				t.Fatalf("DeleteDevice: got %v, want nil", err)
			}
			d, err := create(8)
			if err != nil {
				t.Fatalf("CreateDevice after delete: got %v, want nil", err)
			}
			if want := netip.MustParseAddr("100.64.0.12"); d.IPv4 != want {
				t.Fatalf("reused address: got %v, want %v", d.IPv4, want)
			}
			_, err = create(9)
			if got := errs.CodeOf(err); got != errs.Unavailable {
				t.Fatalf("CreateDevice on a full pool again: got %v (code %q), want %q", err, got, errs.Unavailable)
			}
		})
	}
}

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func TestSweepPeerChanges(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			clock := &fakeClock{now: t0}
			s := b.OpenSQL(t, storetest.DefaultPool(), sqlstore.WithClock(clock.Now))
			mkAccount(t, s, "acct")
			for n := 1; n <= 3; n++ {
				if n == 3 {
					clock.Set(t0.Add(time.Hour))
				}
				d := &store.Device{ID: fmt.Sprintf("dev-%d", n), AccountID: "acct", PublicKey: storetest.PublicKey(n)}
				if err := s.CreateDevice(ctx, d, 10); err != nil {
					t.Fatalf("CreateDevice: got %v, want nil", err)
				}
			}
			n, err := s.SweepBatch(ctx, store.SweepPeerChanges, t0.Add(30*time.Minute), t0.Add(2*time.Hour), 100)
			if err != nil || n != 2 {
				t.Fatalf("sweep peer changes: got %d, %v, want 2, nil", n, err)
			}
			steps := []struct {
				since    int64
				want     errs.Code
				wantVers []int64
			}{
				{0, errs.Gone, nil},
				{1, errs.Gone, nil},
				{2, "", []int64{3}},
				{3, "", []int64{}},
				{4, errs.Gone, nil},
			}
			check := func(when string) {
				t.Helper()
				for _, st := range steps {
					changes, err := s.PeerChanges(ctx, st.since, 10)
					if got := errs.CodeOf(err); got != st.want {
						t.Fatalf("%s: PeerChanges(%d): got %v (code %q), want code %q", when, st.since, err, got, st.want)
					}
					if err != nil {
						continue
					}
					vers := []int64{}
					for _, c := range changes {
						vers = append(vers, c.Version)
					}
					if fmt.Sprint(vers) != fmt.Sprint(st.wantVers) {
						t.Fatalf("%s: PeerChanges(%d): got versions %v, want %v", when, st.since, vers, st.wantVers)
					}
				}
			}
			check("after partial prune")

			// Pruning everything keeps the cursor at the head valid.
			n, err = s.SweepBatch(ctx, store.SweepPeerChanges, t0.Add(2*time.Hour), t0.Add(2*time.Hour), 100)
			if err != nil || n != 1 {
				t.Fatalf("sweep all peer changes: got %d, %v, want 1, nil", n, err)
			}
			steps = []struct {
				since    int64
				want     errs.Code
				wantVers []int64
			}{
				{2, errs.Gone, nil},
				{3, "", []int64{}},
			}
			check("after full prune")
			_, v, err := storetest.Snapshot(ctx, s)
			if err != nil || v != 3 {
				t.Fatalf("PeerSnapshot after prune: got version %d, %v, want 3, nil", v, err)
			}
		})
	}
}

// TestReopen checks that data and the feed survive a reopen, migrations are
// idempotent, and a changed address pool is refused.
func TestReopen(t *testing.T) {
	other := store.Pool{V4: netip.MustParsePrefix("100.96.0.0/12"), V6: storetest.DefaultPool().V6}
	type opener func(ctx context.Context, pool store.Pool) (*sqlstore.Store, error)
	cases := []struct {
		name string
		// setup returns an opener for one persistent database.
		setup func(t *testing.T) opener
	}{
		{"sqlite", func(t *testing.T) opener {
			path := filepath.Join(t.TempDir(), "nitronet.db")
			return func(ctx context.Context, pool store.Pool) (*sqlstore.Store, error) {
				return sqlstore.OpenSQLite(ctx, path, pool, storetest.Logger(t))
			}
		}},
		{"postgres", func(t *testing.T) opener {
			url := storetest.PostgresURL(t)
			return func(ctx context.Context, pool store.Pool) (*sqlstore.Store, error) {
				return sqlstore.OpenPostgres(ctx, url, pool, storetest.Logger(t))
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			open := tc.setup(t)
			s, err := open(ctx, storetest.DefaultPool())
			if err != nil {
				t.Fatalf("open: got %v, want nil", err)
			}
			mkAccount(t, s, "acct")
			d := &store.Device{ID: "dev", AccountID: "acct", PublicKey: storetest.PublicKey(1)}
			if err := s.CreateDevice(ctx, d, 10); err != nil {
				t.Fatalf("CreateDevice: got %v, want nil", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: got %v, want nil", err)
			}

			_, err = open(ctx, other)
			if got := errs.CodeOf(err); got != errs.Invalid {
				t.Fatalf("reopen with another pool: got %v (code %q), want %q", err, got, errs.Invalid)
			}

			s, err = open(ctx, storetest.DefaultPool())
			if err != nil {
				t.Fatalf("reopen: got %v, want nil", err)
			}
			defer s.Close()
			got, err := s.Device(ctx, "acct", "dev")
			if err != nil || got.IPv4 != d.IPv4 {
				t.Fatalf("Device after reopen: got %+v, %v, want %v", got, err, d.IPv4)
			}
			d2 := &store.Device{ID: "dev2", AccountID: "acct", PublicKey: storetest.PublicKey(2)}
			if err := s.CreateDevice(ctx, d2, 10); err != nil {
				t.Fatalf("CreateDevice after reopen: got %v, want nil", err)
			}
			if d2.IPv4 == d.IPv4 {
				t.Fatalf("CreateDevice after reopen: got %v again, want a new address", d2.IPv4)
			}
			_, v, err := storetest.Snapshot(ctx, s)
			if err != nil || v != 2 {
				t.Fatalf("PeerSnapshot after reopen: got version %d, %v, want 2, nil", v, err)
			}
		})
	}
}

func TestSQLiteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nitronet.db")
	s := storetest.OpenSQLiteAt(t, path, storetest.DefaultPool())
	mkAccount(t, s, "acct")
	for _, name := range []string{path, path + "-wal"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Fatalf("%s mode: got %v, want %v", filepath.Base(name), got, os.FileMode(0o600))
		}
	}
}

func TestOpenInvalid(t *testing.T) {
	good := storetest.DefaultPool()
	cases := []struct {
		name string
		path string
		pool store.Pool
	}{
		{"no v4 pool", "x.db", store.Pool{V6: good.V6}},
		{"no v6 pool", "x.db", store.Pool{V4: good.V4}},
		{"v6 as v4", "x.db", store.Pool{V4: good.V6, V6: good.V6}},
		{"v4 as v6", "x.db", store.Pool{V4: good.V4, V6: good.V4}},
		{"v4 pool too small", "x.db", store.Pool{V4: netip.MustParsePrefix("100.64.0.0/31"), V6: good.V6}},
		{"v6 pool smaller than v4", "x.db", store.Pool{V4: good.V4, V6: netip.MustParsePrefix("fd00::/112")}},
		{"memory", ":memory:", good},
		{"empty path", "", good},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path != "" && path != ":memory:" {
				path = filepath.Join(t.TempDir(), path)
			}
			s, err := sqlstore.OpenSQLite(t.Context(), path, tc.pool, storetest.Logger(t))
			if err == nil {
				s.Close()
			}
			if got := errs.CodeOf(err); got != errs.Invalid {
				t.Fatalf("OpenSQLite: got %v (code %q), want %q", err, got, errs.Invalid)
			}
		})
	}
	_, err := sqlstore.OpenPostgres(t.Context(), "postgres://user:secret@[bad", good, storetest.Logger(t))
	if got := errs.CodeOf(err); got != errs.Invalid {
		t.Fatalf("OpenPostgres bad URL: got %v (code %q), want %q", err, got, errs.Invalid)
	}
}
