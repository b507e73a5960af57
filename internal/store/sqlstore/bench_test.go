package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store"
)

// benchKey returns a distinct valid public key for n.
func benchKey(n int) string {
	var b [32]byte
	b[0] = 0x42
	binary.BigEndian.PutUint64(b[24:], uint64(n))
	return base64.StdEncoding.EncodeToString(b[:])
}

// preload bulk-inserts accounts and devices (devicesTotal spread evenly over
// accounts), with their feed entries and allocator state, in one
// transaction, as if they had been created one by one.
func preload(tb testing.TB, s *Store, accounts, devicesTotal int) {
	tb.Helper()
	ctx := context.Background()
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	err := s.write(ctx, "preload", func(tx *sql.Tx) error {
		insAcct, err := tx.PrepareContext(ctx, `INSERT INTO accounts
			(id, email_index, mobile_index, password_hash, status, created_at)
			VALUES ($1, $2, $3, 'x', 'active', $4)`)
		if err != nil {
			return err
		}
		defer insAcct.Close()
		for a := range accounts {
			id := fmt.Sprintf("acct-%d", a)
			if _, err := insAcct.ExecContext(ctx, id, []byte("e"+id), []byte("m"+id), created); err != nil {
				return err
			}
		}
		insDev, err := tx.PrepareContext(ctx, `INSERT INTO devices
			(id, account_id, name, public_key, addr_offset, ipv4, ipv6, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`)
		if err != nil {
			return err
		}
		defer insDev.Close()
		insChange, err := tx.PrepareContext(ctx, `INSERT INTO peer_changes
			(version, device_id, public_key, ipv4, ipv6, removed, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`)
		if err != nil {
			return err
		}
		defer insChange.Close()
		for n := range devicesTotal {
			off := int64(firstOffset + n)
			v4, v6 := s.pool.addrs(off)
			id := fmt.Sprintf("dev-%d", n)
			key := benchKey(n)
			if _, err := insDev.ExecContext(ctx, id, fmt.Sprintf("acct-%d", n%accounts), "preloaded",
				key, off, v4.String(), v6.String(), created); err != nil {
				return err
			}
			if _, err := insChange.ExecContext(ctx, int64(n+1), id, key, v4.String(), v6.String(), false, created); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE ipam_state SET next_offset = $1 WHERE id = 1`,
			int64(firstOffset+devicesTotal)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE peer_feed SET version = $1 WHERE id = 1`, int64(devicesTotal))
		return err
	})
	if err != nil {
		tb.Fatalf("preload: %v", err)
	}
}

// BenchmarkCreateDevice measures device registration on SQLite with 100,000
// devices over 20,000 accounts already present.
func BenchmarkCreateDevice(b *testing.B) {
	const accounts, devices = 20_000, 100_000
	ctx := context.Background()
	pool := store.Pool{
		V4: netip.MustParsePrefix("100.64.0.0/10"),
		V6: netip.MustParsePrefix("fd00:6e6e::/48"),
	}
	s, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "bench.db"), pool, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	preload(b, s, accounts, devices)
	b.Logf("preloaded %d devices over %d accounts in %v", devices, accounts, time.Since(start).Round(time.Millisecond))

	created := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for b.Loop() {
		d := &store.Device{
			ID:        fmt.Sprintf("bench-%d", n),
			AccountID: fmt.Sprintf("acct-%d", n%accounts),
			Name:      "bench",
			PublicKey: benchKey(devices + n),
			CreatedAt: created,
		}
		if err := s.CreateDevice(ctx, d, 1000); err != nil {
			b.Fatalf("CreateDevice: %v", err)
		}
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "devices/s")
}
