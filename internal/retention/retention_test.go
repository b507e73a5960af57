package retention_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/retention"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

func TestParseOverrides(t *testing.T) {
	inv := inventory.Default()
	for _, tc := range []struct {
		in   []string
		want map[string]int
		code errs.Code
	}{
		{[]string{"usage.sessions=30", "auth.codes=0"}, map[string]int{"usage.sessions": 30, "auth.codes": 0}, ""},
		{[]string{"usage.sessions=30", "usage.sessions=60"}, map[string]int{"usage.sessions": 60}, ""},
		{[]string{"usage.sessions"}, nil, errs.Invalid},
		{[]string{"usage.sessions=-1"}, nil, errs.Invalid},
		{[]string{"usage.sessions=ten"}, nil, errs.Invalid},
		{[]string{"nope=3"}, nil, errs.Invalid},
		{[]string{"account.email=3"}, nil, errs.Invalid}, // covered by account.record
	} {
		got, err := retention.ParseOverrides(tc.in, inv)
		if errs.CodeOf(err) != tc.code {
			t.Errorf("ParseOverrides(%q): got error %v, want code %q", tc.in, err, tc.code)
			continue
		}
		if tc.code == "" && fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseOverrides(%q): got %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRulesCoverInventory(t *testing.T) {
	inv, err := retention.Effective(inventory.Default(), []string{"usage.sessions=30"})
	if err != nil {
		t.Fatal(err)
	}
	rules := retention.Rules(inv)
	seen := map[string]bool{}
	for _, r := range rules {
		seen[r.Category] = true
		for _, c := range r.Covers {
			seen[c] = true
			// Covered records go with the rule's: the inventory must say
			// so, or an override would leave their stated period behind.
			if cc, _ := inv.Category(c); cc.Retention.Follows != r.Category {
				t.Errorf("rule %s covers %s, but %s follows %q", r.Category, c, c, cc.Retention.Follows)
			}
		}
		if r.Category == inventory.IDSessions && (r.Days != 30 || r.DefaultDays != inventory.SessionDays || r.Rule != "30 days after the session ended") {
			t.Errorf("sessions rule: got %d days (default %d) %q, want 30 (default %d)", r.Days, r.DefaultDays, r.Rule, inventory.SessionDays)
		}
	}
	for _, c := range inv {
		if !seen[c.ID] {
			t.Errorf("category %s has no retention rule", c.ID)
		}
	}
}

// TestEffective: the settings are applied to the inventory itself, so
// what it states (rule, criteria) is what the sweeper enforces.
func TestEffective(t *testing.T) {
	inv, err := retention.Effective(inventory.Default(), []string{"usage.sessions=30", "account.record=45"})
	if err != nil {
		t.Fatal(err)
	}
	for id, days := range map[string]int{inventory.IDSessions: 30, inventory.IDAccount: 45, inventory.IDEmail: 45,
		inventory.IDMobile: 45, inventory.IDPassword: 45, inventory.IDTokens: inventory.ExpiredTokenDays} {
		c, _ := inv.Category(id)
		if c.Retention.Days != days || !strings.Contains(c.Retention.Criteria, fmt.Sprintf("%d days after", days)) {
			t.Errorf("%s: got %d days, criteria %q; want %d days stated", id, c.Retention.Days, c.Retention.Criteria, days)
		}
	}
	if _, err := retention.Effective(inventory.Default(), []string{"account.email=3"}); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("Effective(account.email=3) = %v, want Invalid (it goes with account.record)", err)
	}
}

// TestSweeper sweeps with an injected clock: expired intervals go in
// bounded batches, a held account's stay, the run is recorded, and an
// on-demand run is authorised and audited.
func TestSweeper(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := t.Context()
			now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			for _, id := range []string{"acc_a", "acc_h"} {
				if err := st.CreateAccount(ctx, &store.Account{ID: id, EmailIndex: []byte("e" + id), MobileIndex: []byte("m" + id),
					PasswordHash: "x", CreatedAt: now.Add(-400 * 24 * time.Hour)}); err != nil {
					t.Fatal(err)
				}
				if err := st.CreateDevice(ctx, &store.Device{ID: "dev_" + id, AccountID: id, PublicKey: storetest.PublicKey(len(id) + int(id[4])), CreatedAt: now}, 5); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.CreateHold(ctx, &store.Hold{ID: "hold_1", AccountID: "acc_h", Reason: "case", CreatedBy: "stf_1", CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			// Sign-ups: never verified for 8 days (purged), verified, and
			// never verified for a day (kept).
			for id, age := range map[string]time.Duration{"acc_u": 8 * 24 * time.Hour, "acc_v": 8 * 24 * time.Hour, "acc_n": 24 * time.Hour} {
				if err := st.CreateAccount(ctx, &store.Account{ID: id, EmailIndex: []byte("e" + id), MobileIndex: []byte("m" + id),
					PasswordHash: "x", CreatedAt: now.Add(-age)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.SetVerified(ctx, "acc_v", store.Mobile); err != nil {
				t.Fatal(err)
			}
			// Outbox files written 2 days and an hour ago.
			outbox := filepath.Join(t.TempDir(), "outbox")
			for _, age := range []time.Duration{48 * time.Hour, time.Hour} {
				o, err := notify.NewOutbox(notify.OutboxConfig{Dir: outbox, Clock: func() time.Time { return now.Add(-age) }, Rand: rand.Reader})
				if err != nil {
					t.Fatal(err)
				}
				if err := o.Send(ctx, notify.Message{Channel: notify.Email, To: "a@example.com", Subject: "s", Body: "b", Kind: "notice"}); err != nil {
					t.Fatal(err)
				}
			}
			var ivs []store.Interval
			for i := range 23 {
				start := now.Add(-200*24*time.Hour + time.Duration(i)*time.Hour)
				end := start.Add(30 * time.Minute)
				ivs = append(ivs, store.Interval{DeviceID: "dev_acc_a", Start: start, End: &end},
					store.Interval{DeviceID: "dev_acc_h", Start: start, End: &end})
			}
			recent := now.Add(-10 * 24 * time.Hour)
			recentEnd := recent.Add(time.Hour)
			ivs = append(ivs, store.Interval{DeviceID: "dev_acc_a", Start: recent, End: &recentEnd})
			if _, err := st.RecordIntervals(ctx, "eu", ivs); err != nil {
				t.Fatal(err)
			}
			log, err := audit.New(audit.Config{Store: st, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			sw, err := retention.New(retention.Config{Store: st, Holds: st, Inventory: inventory.Default(), Audit: log, Logger: storetest.Logger(t),
				Clock: clock, Rand: rand.Reader, Batch: 5,
				Outbox: func(before time.Time) (int64, error) { return notify.PruneOutbox(outbox, before) }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = sw.RunNow(ctx, staff.Principal{ID: "stf_s", Role: staff.RoleSupport})
			if errs.CodeOf(err) != errs.Forbidden {
				t.Fatalf("RunNow as support: got %v, want Forbidden", err)
			}
			officer := staff.Principal{ID: "stf_po", Role: staff.RolePrivacyOfficer}
			run, err := sw.RunNow(ctx, officer)
			if err != nil {
				t.Fatal(err)
			}
			var sessions *store.SweepCount
			deleted := map[string]int64{}
			for i, c := range run.Counts {
				if c.Error != "" {
					t.Errorf("category %s target %s: error %s", c.Category, c.Target, c.Error)
				}
				if c.Target == store.SweepSessions {
					sessions = &run.Counts[i]
				}
				deleted[c.Target] = c.Deleted
			}
			if deleted[store.SweepUnverified] != 1 || deleted[retention.TargetOutbox] != 1 {
				t.Errorf("unverified accounts and outbox files deleted: %d and %d, want 1 and 1", deleted[store.SweepUnverified], deleted[retention.TargetOutbox])
			}
			for id, want := range map[string]bool{"acc_u": false, "acc_v": true, "acc_n": true, "acc_a": true} {
				if _, err := st.Account(ctx, id); (err == nil) != want {
					t.Errorf("account %s after the sweep: %v; want kept %v", id, err, want)
				}
			}
			if es, _ := os.ReadDir(outbox); len(es) != 1 {
				t.Errorf("outbox after the sweep: %d files, want the newer one", len(es))
			}
			if sessions == nil || sessions.Deleted != 23 || sessions.KeptByHold != 23 || sessions.Batches != 5 {
				t.Fatalf("sessions count: got %+v, want 23 deleted in 5 batches of at most 5, 23 kept by hold", sessions)
			}
			if got, _ := st.Usage(ctx, "acc_a", now.Add(-365*24*time.Hour), 100); len(got) != 1 {
				t.Fatalf("acc_a intervals left: got %d, want 1 (the recent one)", len(got))
			}
			if got, _ := st.Usage(ctx, "acc_h", now.Add(-365*24*time.Hour), 100); len(got) != 23 {
				t.Fatalf("held intervals left: got %d, want 23", len(got))
			}
			rules, last, err := sw.Status(ctx, officer)
			if err != nil || last == nil || last.ID != run.ID || len(rules) == 0 {
				t.Fatalf("Status: got last %+v, %d rules, %v; want the run just made", last, len(rules), err)
			}
			entries, err := log.About(ctx, officer, run.ID, 10)
			if err != nil || len(entries) != 1 || entries[0].Actor != "stf_po" || entries[0].Action != staff.ActRetentionRun {
				t.Fatalf("audit of the run: got %+v, %v; want one retention.run entry by stf_po", entries, err)
			}
			// The scheduled sweep runs as the system: with nothing left to
			// delete it leaves no audit entry; with something, it does.
			sys, err := sw.RunNow(ctx, staff.System())
			if err != nil || sys.Cause != "schedule" {
				t.Fatalf("system sweep: got %+v, %v; want cause schedule", sys, err)
			}
			if entries, _ := log.About(ctx, officer, sys.ID, 10); len(entries) != 0 {
				t.Fatalf("an empty scheduled sweep was audited: %+v", entries)
			}
			now = now.Add(400 * 24 * time.Hour) // the recent interval ages out
			sys, err = sw.RunNow(ctx, staff.System())
			if err != nil {
				t.Fatal(err)
			}
			entries, err = log.About(ctx, officer, sys.ID, 10)
			if err != nil || len(entries) != 1 || entries[0].Actor != staff.SystemID || entries[0].Role != staff.RoleSystem {
				t.Fatalf("audit of a scheduled sweep that deleted: got %+v, %v; want one entry by the system", entries, err)
			}
		})
	}
}

// TestSweeperClosesStaleSessions: before the session intervals are swept,
// an interval still open whose gateway stopped reporting is closed at the
// minute the gateway was last seen, so that it ages out like any other;
// one whose gateway still reports stays open. The run counts and audits
// what it closed.
func TestSweeperClosesStaleSessions(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := t.Context()
			now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			if err := st.CreateAccount(ctx, &store.Account{ID: "acc_a", EmailIndex: []byte("ea"), MobileIndex: []byte("ma"),
				PasswordHash: "x", CreatedAt: now.Add(-30 * 24 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
			for i, gw := range []string{"gw_dead", "gw_alive"} {
				if err := st.CreateDevice(ctx, &store.Device{ID: "dev_" + gw, AccountID: "acc_a", SealedName: []byte("sealed d"), PublicKey: storetest.PublicKey(70 + i),
					CreatedAt: now.Add(-30 * 24 * time.Hour)}, 5); err != nil {
					t.Fatal(err)
				}
				if err := st.CreateGateway(ctx, &store.Gateway{ID: gw, Region: "eu", Endpoint: "198.18.0.9:51820",
					PublicKey: storetest.PublicKey(80 + i), CredentialHash: []byte("c" + gw), CreatedAt: now.Add(-30 * 24 * time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			lastSeen := now.Add(-3*time.Hour + 25*time.Second)
			if err := st.TouchGateway(ctx, "gw_dead", lastSeen); err != nil {
				t.Fatal(err)
			}
			if err := st.TouchGateway(ctx, "gw_alive", now.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			start := now.Add(-5 * time.Hour)
			if _, err := st.RecordIntervals(ctx, "eu", []store.Interval{
				{DeviceID: "dev_gw_dead", Start: start, GatewayID: "gw_dead"},
				{DeviceID: "dev_gw_alive", Start: start, GatewayID: "gw_alive"},
			}); err != nil {
				t.Fatal(err)
			}
			log, err := audit.New(audit.Config{Store: st, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			sw, err := retention.New(retention.Config{Store: st, Holds: st, Inventory: inventory.Default(), Audit: log,
				Logger: storetest.Logger(t), Clock: clock, Rand: rand.Reader, Batch: 5})
			if err != nil {
				t.Fatal(err)
			}
			run, err := sw.RunNow(ctx, staff.System())
			if err != nil {
				t.Fatal(err)
			}
			var closed int64
			for _, c := range run.Counts {
				closed += c.Closed
			}
			if closed != 1 {
				t.Fatalf("closed %d open intervals, want 1: %+v", closed, run.Counts)
			}
			got, err := st.Usage(ctx, "acc_a", start.Add(-time.Hour), 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, iv := range got {
				switch iv.DeviceID {
				case "dev_gw_dead":
					if iv.End == nil || !iv.End.Equal(lastSeen.Truncate(time.Minute)) {
						t.Errorf("interval of the silent gateway ends %v, want %v", iv.End, lastSeen.Truncate(time.Minute))
					}
				case "dev_gw_alive":
					if iv.End != nil {
						t.Errorf("interval of the gateway still reporting ends %v, want it open", iv.End)
					}
				}
			}
			entries, err := log.About(ctx, staff.Principal{ID: "stf_po", Role: staff.RolePrivacyOfficer}, run.ID, 10)
			if err != nil || len(entries) != 1 || !strings.Contains(entries[0].Detail, "closed 1 open session intervals") {
				t.Fatalf("audit of the run: got %+v, %v; want one entry saying it closed 1 interval", entries, err)
			}
		})
	}
}
