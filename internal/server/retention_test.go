package server_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestRetentionInForce: the composition root applies --retention once, to
// the inventory, and the sweeper deletes by the same figure the inventory
// states: with usage.sessions=30, a 40-day-old session interval goes and a
// 20-day-old one stays, on SQLite and PostgreSQL.
func TestRetentionInForce(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.Retention = []string{"usage.sessions=30"}
			st := b.Open(t)
			srv, err := server.New(context.Background(), cfg, server.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Clock: time.Now, Rand: rand.Reader, Stdout: io.Discard, Store: st})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			c, _ := srv.Inventory.Category(inventory.IDSessions)
			if c.Retention.Days != 30 || c.Retention.DefaultDays != inventory.SessionDays || !strings.Contains(c.Retention.Criteria, "30 days") {
				t.Fatalf("inventory in force: sessions %+v, want 30 days (default %d)", c.Retention, inventory.SessionDays)
			}
			for _, r := range srv.Retention.Rules() {
				if r.Category == inventory.IDSessions && (r.Days != 30 || r.DefaultDays != inventory.SessionDays) {
					t.Fatalf("sweeper rule: %+v, want 30 days", r)
				}
			}

			ctx := t.Context()
			now := time.Now().UTC().Truncate(time.Minute)
			if err := st.CreateAccount(ctx, &store.Account{ID: "acc_ret", EmailIndex: []byte("e-ret"), MobileIndex: []byte("m-ret"),
				PasswordHash: "x", Status: store.StatusActive, CreatedAt: now.Add(-100 * 24 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateDevice(ctx, &store.Device{ID: "dev_ret", AccountID: "acc_ret",
				PublicKey: storetest.PublicKey(77), CreatedAt: now.Add(-100 * 24 * time.Hour)}, 5); err != nil {
				t.Fatal(err)
			}
			var ivs []store.Interval
			for _, age := range []time.Duration{40, 20} {
				start := now.Add(-age * 24 * time.Hour)
				end := start.Add(time.Hour)
				ivs = append(ivs, store.Interval{DeviceID: "dev_ret", Start: start, End: &end})
			}
			if _, err := st.RecordIntervals(ctx, "eu", ivs); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Retention.RunNow(ctx, staff.System()); err != nil {
				t.Fatal(err)
			}
			left, err := st.Usage(ctx, "acc_ret", now.Add(-365*24*time.Hour), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 1 || left[0].Start.Before(now.Add(-21*24*time.Hour)) {
				t.Fatalf("intervals after the sweep: %+v, want only the 20-day-old one", left)
			}
		})
	}
}

// TestRetentionSettingRefused: a bad --retention stops the server from
// being built, with an error naming the setting.
func TestRetentionSettingRefused(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Retention = []string{"account.email=3"}
	_, err := server.New(context.Background(), cfg, server.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Clock: time.Now, Rand: rand.Reader, Stdout: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "--retention") {
		t.Fatalf("server.New with --retention account.email=3: got %v, want an error naming --retention", err)
	}
}
