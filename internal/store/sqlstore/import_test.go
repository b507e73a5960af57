package sqlstore_test

import (
	"fmt"
	"iter"
	"net/netip"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

func importAccounts(n int) iter.Seq[store.Account] {
	return func(yield func(store.Account) bool) {
		for i := range n {
			id := fmt.Sprintf("acct-%d", i)
			if !yield(store.Account{ID: id, EmailIndex: []byte("e-" + id), MobileIndex: []byte("m-" + id),
				PasswordHash: "h", CreatedAt: time.Unix(1e9, 0)}) {
				return
			}
		}
	}
}

func importDevices(from, n, accounts int) iter.Seq[store.Device] {
	return func(yield func(store.Device) bool) {
		for i := from; i < from+n; i++ {
			if !yield(store.Device{ID: fmt.Sprintf("dev-%d", i), AccountID: fmt.Sprintf("acct-%d", i%accounts),
				SealedName: []byte("bulk"), NameIndex: []byte(fmt.Sprintf("ix-%d", i)), PublicKey: storetest.PublicKey(i),
				CreatedAt: time.Unix(1e9+int64(i), 0)}) {
				return
			}
		}
	}
}

// TestImport checks that a bulk import leaves the same state as one
// CreateAccount and CreateDevice per row, across several INSERT batches,
// and that a failing import leaves nothing.
func TestImport(t *testing.T) {
	const accounts, devices = 3, 1234
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := b.OpenSQL(t, storetest.DefaultPool())
			mkAccount(t, s, "acct-first")
			first := &store.Device{ID: "dev-first", AccountID: "acct-first", PublicKey: storetest.PublicKey(100000)}
			if err := s.CreateDevice(ctx, first, 5); err != nil {
				t.Fatal(err)
			}

			na, nd, err := s.Import(ctx, importAccounts(accounts), importDevices(0, devices, accounts))
			if err != nil || na != accounts || nd != devices {
				t.Fatalf("Import: got %d, %d, %v; want %d, %d, nil", na, nd, err, accounts, devices)
			}
			a, err := s.Account(ctx, "acct-2")
			if err != nil || a.Status != store.StatusActive || string(a.MobileIndex) != "m-acct-2" {
				t.Fatalf("imported account: got %+v, %v", a, err)
			}
			ds, err := s.Devices(ctx, "acct-1")
			if err != nil || len(ds) != (devices+1)/accounts {
				t.Fatalf("Devices(acct-1): got %d, %v; want %d", len(ds), err, (devices+1)/accounts)
			}
			// Device i follows the device created before the import.
			want4 := first.IPv4.Next().Next()
			if d := ds[0]; d.ID != "dev-1" || d.IPv4 != want4 || !d.CreatedAt.Equal(time.Unix(1e9+1, 0)) || !d.UpdatedAt.Equal(d.CreatedAt) ||
				string(d.NameIndex) != "ix-1" {
				t.Fatalf("imported device: got %+v, want dev-1 at %v with name index ix-1", d, want4)
			}
			// Imported devices keep their name index: only the device
			// created without one is left to index.
			if ids, err := s.UnindexedDeviceAccounts(ctx, "", 10); err != nil || len(ids) != 1 || ids[0] != "acct-first" {
				t.Fatalf("UnindexedDeviceAccounts: got %v, %v; want [acct-first]", ids, err)
			}

			peers, version, err := storetest.Snapshot(ctx, s)
			if err != nil || len(peers) != devices+1 || version != devices+1 {
				t.Fatalf("snapshot: got %d peers at version %d, %v; want %d at %d", len(peers), version, err, devices+1, devices+1)
			}
			seen := map[netip.Addr]bool{}
			for _, p := range peers {
				if seen[p.IPv4] || seen[p.IPv6] {
					t.Fatalf("address of %s given twice", p.DeviceID)
				}
				seen[p.IPv4], seen[p.IPv6] = true, true
			}
			changes, err := s.PeerChanges(ctx, 1, devices+10)
			if err != nil || len(changes) != devices || changes[0].DeviceID != "dev-0" || changes[devices-1].Version != version {
				t.Fatalf("feed: got %d changes, %v", len(changes), err)
			}
			byID := map[string]store.Peer{}
			for _, p := range peers {
				byID[p.DeviceID] = p
			}
			for _, c := range changes {
				if c.Removed || byID[c.DeviceID] != c.Peer {
					t.Fatalf("feed entry %+v differs from the snapshot's %+v", c, byID[c.DeviceID])
				}
			}

			// The allocator continues after the import.
			next := &store.Device{ID: "dev-next", AccountID: "acct-0", PublicKey: storetest.PublicKey(100001)}
			if err := s.CreateDevice(ctx, next, 10000); err != nil || seen[next.IPv4] {
				t.Fatalf("CreateDevice after import: got %v at %v, want a fresh address", err, next.IPv4)
			}

			// Failing imports store nothing.
			dup := func(yield func(store.Device) bool) {
				for d := range importDevices(devices+10, 600, accounts) {
					if !yield(d) {
						return
					}
				}
				yield(store.Device{ID: "dev-dup", AccountID: "acct-0", PublicKey: storetest.PublicKey(5)})
			}
			cases := []struct {
				name string
				acc  iter.Seq[store.Account]
				dev  iter.Seq[store.Device]
				want errs.Code
			}{
				{"taken key", nil, dup, errs.Conflict},
				{"taken account", importAccounts(1), nil, errs.Conflict},
				{"unknown account", nil, importDevices(devices+10, 1, 1000), errs.NotFound},
				{"bad key", nil, func(yield func(store.Device) bool) {
					yield(store.Device{ID: "dev-bad", AccountID: "acct-0", PublicKey: "bad"})
				}, errs.Invalid},
			}
			for _, tc := range cases {
				_, _, err := s.Import(ctx, tc.acc, tc.dev)
				if got := errs.CodeOf(err); got != tc.want {
					t.Fatalf("%s: got %v (code %q), want code %q", tc.name, err, got, tc.want)
				}
			}
			if _, v, err := storetest.Snapshot(ctx, s); err != nil || v != version+1 {
				t.Fatalf("after failed imports: version %d, %v; want %d", v, err, version+1)
			}
		})
	}
}

// TestImportAnalyzes checks that Import leaves the PostgreSQL tables it
// filled vacuumed and analyzed, so that the planner has statistics and
// autovacuum does not start on them in the middle of what follows.
func TestImportAnalyzes(t *testing.T) {
	url := storetest.PostgresURL(t)
	s := storetest.OpenPostgresAt(t, url, storetest.DefaultPool())
	db := storetest.PostgresDB(t, url)
	accts := func(yield func(store.Account) bool) {
		yield(store.Account{ID: "acct", EmailIndex: []byte("e"), CreatedAt: time.Unix(0, 0)})
	}
	devs := func(yield func(store.Device) bool) {
		yield(store.Device{ID: "dev", AccountID: "acct", PublicKey: storetest.PublicKey(1), CreatedAt: time.Unix(0, 0)})
	}
	if _, _, err := s.Import(t.Context(), accts, devs); err != nil {
		t.Fatalf("Import: %v", err)
	}
	for _, table := range []string{"accounts", "devices", "peer_changes"} {
		var vacuumed, analyzed bool
		if err := db.QueryRowContext(t.Context(), `SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL
			FROM pg_stat_user_tables WHERE relname = $1`, table).Scan(&vacuumed, &analyzed); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if !vacuumed || !analyzed {
			t.Errorf("%s after Import: vacuumed %v, analyzed %v; want both", table, vacuumed, analyzed)
		}
	}
}
