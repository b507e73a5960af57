package sqlstore_test

import (
	"fmt"
	"net/netip"
	"testing"

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
