package sqlstore_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestCreateDeviceAddressText checks, on PostgreSQL, that a registration
// stores its addresses, in devices and in the peer feed, in netip's text
// form, including where the function of migration 00029 renders them
// (PostgreSQL's inet output): across 16-bit group boundaries of the IPv6
// address, and in a pool with 96 leading zero bits, which PostgreSQL would
// write as "::0.1.0.0".
func TestCreateDeviceAddressText(t *testing.T) {
	pools := []store.Pool{
		storetest.DefaultPool(),
		{V4: netip.MustParsePrefix("100.64.0.0/10"), V6: netip.MustParsePrefix("::/64")},
	}
	for _, pool := range pools {
		t.Run(pool.V6.String(), func(t *testing.T) {
			url := storetest.PostgresURL(t)
			s := storetest.OpenPostgresAt(t, url, pool)
			db := storetest.PostgresDB(t, url)
			ctx := t.Context()
			mkAccount(t, s, "acct")
			// Start just below a boundary of the last two IPv6 groups.
			if _, err := db.ExecContext(ctx, `UPDATE ipam_state SET next_offset = 65534 WHERE id = 1`); err != nil {
				t.Fatal(err)
			}
			for n := range 4 {
				d := &store.Device{ID: fmt.Sprintf("dev-%d", n), AccountID: "acct", PublicKey: storetest.PublicKey(n)}
				if err := s.CreateDevice(ctx, d, 100); err != nil {
					t.Fatalf("CreateDevice: got %v, want nil", err)
				}
				for _, q := range []string{
					`SELECT ipv4, ipv6 FROM devices WHERE id = $1`,
					`SELECT ipv4, ipv6 FROM peer_changes WHERE device_id = $1`,
				} {
					var v4, v6 string
					if err := db.QueryRowContext(ctx, q, d.ID).Scan(&v4, &v6); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
					if v4 != d.IPv4.String() || v6 != d.IPv6.String() {
						t.Errorf("%s for %s: got %q %q, want %q %q", q, d.ID, v4, v6, d.IPv4, d.IPv6)
					}
				}
			}
		})
	}
}

// TestCreateDeviceFunctionPlans is TestQueryPlans for the statements
// inside nitronet_create_device (migration 00029), which EXPLAIN cannot
// reach: auto_explain sends each nested statement's plan to the client,
// with sorts and sequential scans disabled, for a registration that takes
// the allocator's next offset and one that pops a released offset. The
// PostgreSQL role must be allowed to LOAD auto_explain (a superuser, as
// scripts/pg-throwaway.sh gives).
func TestCreateDeviceFunctionPlans(t *testing.T) {
	url := storetest.PostgresURL(t)
	s := storetest.OpenPostgresAt(t, url, storetest.DefaultPool())
	ctx := t.Context()
	if _, _, err := s.Import(ctx, importAccounts(20), importDevices(0, 100, 20)); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var plans []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, n.Message)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	for _, q := range []string{
		`LOAD 'auto_explain'`,
		`SET LOCAL enable_sort = off`,
		`SET LOCAL enable_seqscan = off`,
		`SET LOCAL auto_explain.log_min_duration = 0`,
		`SET LOCAL auto_explain.log_nested_statements = on`,
		`SET LOCAL auto_explain.log_level = notice`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	call := `SELECT nitronet_create_device($1, 'acct-1', '\x00'::bytea, $2, 1, 1, 1000, 0, $3, 1000, '100.64.0.0', 'fd00:6e6e::', 1)`
	var off int64
	if err := tx.QueryRow(ctx, call, "dev-x", storetest.PublicKey(5000), []byte("ix-x")).Scan(&off); err != nil {
		t.Fatalf("register from the next offset: %v", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ipam_free (addr_offset) VALUES (500)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, call, "dev-y", storetest.PublicKey(5001), []byte("ix-y")).Scan(&off); err != nil {
		t.Fatalf("register from the free list: %v", err)
	}
	if off != 500 {
		t.Fatalf("register from the free list: got offset %d, want 500", off)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for _, p := range plans {
		for _, line := range strings.Split(p, "\n") {
			line = strings.TrimSpace(line)
			if strings.Contains(line, "Sort") || strings.Contains(line, "Seq Scan") {
				t.Errorf("plan reads a table whole or sorts (%q):\n%s", line, p)
			}
			for _, node := range []string{"Update on peer_feed", "Delete on ipam_free", "Update on ipam_state", "Insert on devices", "Insert on peer_changes"} {
				if strings.HasPrefix(line, node) {
					seen[node] = true
				}
			}
		}
	}
	if len(seen) != 5 {
		t.Errorf("plans of %v, want all five statements; got %d plans:\n%s", seen, len(plans), strings.Join(plans, "\n"))
	}
}
