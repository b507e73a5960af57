package sqlstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store"
)

// preload bulk-inserts accounts and devices (devicesTotal spread evenly over
// accounts), with their feed entries and allocator state, through Import.
// Accounts are "acct-N", devices "dev-N".
func preload(tb testing.TB, s *Store, accounts, devicesTotal int) {
	tb.Helper()
	preloadWith(tb, s, accounts, devicesTotal, func(n int, d *store.Device) {
		var k [32]byte
		k[0] = 0x42
		k[24], k[25], k[26], k[27] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		d.AccountID = fmt.Sprintf("acct-%d", n%accounts)
		d.PublicKey = base64.StdEncoding.EncodeToString(k[:])
	})
}

// preloadWith bulk-inserts accounts "acct-N" and devices "dev-N" through
// Import, as preload does; device(n, d) gives device n its account and
// public key, and anything else it should have (device may be nil when
// devicesTotal is 0).
func preloadWith(tb testing.TB, s *Store, accounts, devicesTotal int, device func(n int, d *store.Device)) {
	tb.Helper()
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	accts := func(yield func(store.Account) bool) {
		for a := range accounts {
			id := fmt.Sprintf("acct-%d", a)
			if !yield(store.Account{ID: id, EmailIndex: []byte("e" + id), MobileIndex: []byte("m" + id),
				PasswordHash: "x", CreatedAt: created}) {
				return
			}
		}
	}
	devs := func(yield func(store.Device) bool) {
		for n := range devicesTotal {
			d := store.Device{ID: fmt.Sprintf("dev-%d", n), SealedName: []byte("preloaded"), CreatedAt: created}
			device(n, &d)
			if !yield(d) {
				return
			}
		}
	}
	if _, _, err := s.Import(context.Background(), accts, devs); err != nil {
		tb.Fatalf("preload: %v", err)
	}
}
