package stats_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/stats"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// fakeStore returns fixed per-unit rows and keeps a ledger in memory.
type fakeStore struct {
	rows   []store.DailyUsage
	ledger *[]store.StatsSpend
}

func (f fakeStore) DailyUsage(_ context.Context, from, to time.Time, exclude store.Flags) ([]store.DailyUsage, error) {
	if !exclude.Restricted || !exclude.Objected {
		return nil, fmt.Errorf("statistics must exclude restricted and objected accounts, got %+v", exclude)
	}
	var out []store.DailyUsage
	for _, r := range f.rows {
		if !r.Day.Before(from) && r.Day.Before(to) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f fakeStore) SpendStatsBudget(_ context.Context, e *store.StatsSpend, budget int64) error {
	var spent int64
	for _, x := range *f.ledger {
		if x.Quarter == e.Quarter {
			spent += x.MicroEpsilon
		}
	}
	if spent+e.MicroEpsilon > budget {
		return errs.Field(errs.Precondition, "epsilon", "over budget")
	}
	*f.ledger = append(*f.ledger, *e)
	return nil
}

func (f fakeStore) StatsLedger(_ context.Context, quarter string) ([]store.StatsSpend, error) {
	var out []store.StatsSpend
	for _, x := range *f.ledger {
		if x.Quarter == quarter {
			out = append(out, x)
		}
	}
	return out, nil
}

func rows(rs ...store.DailyUsage) fakeStore {
	return fakeStore{rows: rs, ledger: new([]store.StatsSpend)}
}

type nopAudit struct{ n *int }

func (a nopAudit) Record(context.Context, string, string, string, string, string) error {
	*a.n++
	return nil
}

var day1 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func officer() staff.Principal { return staff.Principal{ID: "stf_po", Role: staff.RolePrivacyOfficer} }

// newSvc returns a service on st with a budget large enough for many
// reports (budgetSvc sets it).
func newSvc(t *testing.T, st store.StatsStore) (*stats.Service, *int) {
	return budgetSvc(t, st, 1e6)
}

func budgetSvc(t *testing.T, st store.StatsStore, budget float64) (*stats.Service, *int) {
	t.Helper()
	n := 0
	svc, err := stats.New(stats.Config{Store: st, Audit: nopAudit{&n}, Rand: rand.Reader, Budget: budget,
		Clock: func() time.Time { return day1.Add(30 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	return svc, &n
}

// data: "eu" on day1 has 12 accounts with 2 sessions and 1 hour each, plus
// one heavy account (100 sessions, 30 hours: clamped to 20 and 24); "us"
// has 3 accounts (below any minimum group of 4 or more).
func data() fakeStore {
	var f []store.DailyUsage
	for u := range 12 {
		f = append(f, store.DailyUsage{Unit: u, Day: day1, Region: "eu", Sessions: 2, Seconds: 3600})
	}
	f = append(f, store.DailyUsage{Unit: 12, Day: day1, Region: "eu", Sessions: 100, Seconds: 30 * 3600})
	for u := 20; u < 23; u++ {
		f = append(f, store.DailyUsage{Unit: u, Day: day1, Region: "us", Sessions: 1, Seconds: 600})
	}
	return rows(f...)
}

// why is the override reason of the tests' reports beyond the limits.
const why = "accuracy test on synthetic data"

func TestUsageAccurateWithLargeEpsilon(t *testing.T) {
	svc, audits := newSvc(t, data())
	r, err := svc.Usage(t.Context(), officer(), stats.Options{From: day1, To: day1, Epsilon: 1e5, MinGroup: 5, Override: why})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 1 {
		t.Fatalf("rows: got %+v, want only eu (us has 3 accounts, below 5)", r.Rows)
	}
	row := r.Rows[0]
	// 12×2 + min(100, 20) sessions; 12×1 + min(30, 24) hours.
	if row.Day != "2026-03-01" || row.Region != "eu" || math.Abs(float64(row.Sessions-44)) > 1 || math.Abs(row.Hours-36) > 0.2 {
		t.Fatalf("eu row: got %+v, want about 44 sessions and 36 hours", row)
	}
	if *audits != 2 {
		t.Errorf("audit entries: got %d, want 2 (the report and its override)", *audits)
	}
}

func TestUsageSuppressesSmallGroups(t *testing.T) {
	// A group needs MinGroup accounts (exactly checked) and then passes
	// private partition selection over the accounts beyond MinGroup-1, so
	// at a huge epsilon a group of 13 is kept from MinGroup 10 and below.
	for _, k := range []int{4, 10, 14} {
		t.Run(fmt.Sprint("min-group ", k), func(t *testing.T) {
			svc, _ := newSvc(t, data())
			for range 20 { // the exact pre-threshold never lets a small group through
				r, err := svc.Usage(t.Context(), officer(), stats.Options{From: day1, To: day1, Epsilon: 4e4, MinGroup: k, Override: why})
				if err != nil {
					t.Fatal(err)
				}
				for _, row := range r.Rows {
					if row.Region == "us" || (row.Region == "eu" && k > 13) {
						t.Fatalf("got row %+v, want it suppressed below %d accounts", row, k)
					}
				}
				if k <= 10 && len(r.Rows) != 1 {
					t.Fatalf("got %d rows, want eu (13 accounts) kept", len(r.Rows))
				}
			}
		})
	}
}

func TestUsageIsNoisyWithinBounds(t *testing.T) {
	// 300 accounts with 1 session of 1 hour: large enough for partition
	// selection at epsilon 1 to keep the group almost surely.
	var f []store.DailyUsage
	for u := range 300 {
		f = append(f, store.DailyUsage{Unit: u, Day: day1, Region: "eu", Sessions: 1, Seconds: 3600})
	}
	svc, _ := newSvc(t, rows(f...))
	const wantSessions, wantHours = 300, 300.0
	kept := 0
	// Laplace scale for ε=1 split in three, l0 = 1 day × 2 regions:
	// sessions 2×20×3 = 120, hours 2×24×3 = 144. |noise| exceeds 14 scales
	// with probability below 1e-6.
	differs := false
	for range 30 {
		r, err := svc.Usage(t.Context(), officer(), stats.Options{From: day1, To: day1, Epsilon: 1, MinGroup: 5, Override: why})
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range r.Rows {
			kept++
			if math.Abs(float64(row.Sessions-wantSessions)) > 14*120 || math.Abs(row.Hours-wantHours) > 14*144 {
				t.Fatalf("row %+v outside the statistical bounds", row)
			}
			if row.Sessions != wantSessions || row.Hours != wantHours {
				differs = true
			}
		}
	}
	if kept < 25 {
		t.Fatalf("the 300-account group was published in %d of 30 reports, want nearly all", kept)
	}
	if !differs {
		t.Fatal("30 reports at epsilon 1 all gave the exact values, want noise")
	}
}

func TestUsageBoundsRegionsPerDay(t *testing.T) {
	// 12 accounts each use 3 regions on one day; with at most 1 region per
	// account-day only the most-used region counts.
	var f []store.DailyUsage
	for u := range 12 {
		f = append(f,
			store.DailyUsage{Unit: u, Day: day1, Region: "a", Sessions: 1, Seconds: 7200},
			store.DailyUsage{Unit: u, Day: day1, Region: "b", Sessions: 1, Seconds: 60},
			store.DailyUsage{Unit: u, Day: day1, Region: "c", Sessions: 1, Seconds: 60})
	}
	svc, _ := newSvc(t, rows(f...))
	r, err := svc.Usage(t.Context(), officer(), stats.Options{From: day1, To: day1, Epsilon: 1e5, MinGroup: 5, MaxRegionsPerDay: 1, Override: why})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 1 || r.Rows[0].Region != "a" {
		t.Fatalf("rows: got %+v, want only region a", r.Rows)
	}
}

func TestUsageRejects(t *testing.T) {
	svc, _ := newSvc(t, data())
	tests := []struct {
		name string
		by   staff.Principal
		o    stats.Options
		want errs.Code
	}{
		{"support", staff.Principal{ID: "stf_s", Role: staff.RoleSupport}, stats.Options{From: day1, To: day1}, errs.Forbidden},
		{"legal", staff.Principal{ID: "stf_l", Role: staff.RoleLegal}, stats.Options{From: day1, To: day1}, errs.Forbidden},
		{"admin", staff.Principal{ID: "stf_a", Role: staff.RoleAdmin}, stats.Options{From: day1, To: day1}, ""},
		{"no dates", officer(), stats.Options{}, errs.Invalid},
		{"to before from", officer(), stats.Options{From: day1, To: day1.Add(-24 * time.Hour)}, errs.Invalid},
		{"too long", officer(), stats.Options{From: day1.Add(-100 * 24 * time.Hour), To: day1}, errs.Invalid},
		{"future", officer(), stats.Options{From: day1.Add(365 * 24 * time.Hour), To: day1.Add(366 * 24 * time.Hour)}, errs.Invalid},
		{"group of one", officer(), stats.Options{From: day1, To: day1, MinGroup: 1, Override: why}, errs.Invalid},
		{"too much epsilon", officer(), stats.Options{From: day1, To: day1, Epsilon: 1.5}, errs.Invalid},
		{"too small a group", officer(), stats.Options{From: day1, To: day1, MinGroup: 9}, errs.Invalid},
		{"nothing to override", officer(), stats.Options{From: day1, To: day1, Override: why}, errs.Invalid},
		{"override of two lines", officer(), stats.Options{From: day1, To: day1, Epsilon: 2, Override: "a\nb"}, errs.Invalid},
		{"admin overrides", staff.Principal{ID: "stf_a", Role: staff.RoleAdmin}, stats.Options{From: day1, To: day1, Epsilon: 2, Override: why}, errs.Forbidden},
		{"negative epsilon", officer(), stats.Options{From: day1, To: day1, Epsilon: -1}, errs.Invalid},
		{"NaN epsilon", officer(), stats.Options{From: day1, To: day1, Epsilon: math.NaN()}, errs.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Usage(t.Context(), tt.by, tt.o)
			if got := errs.CodeOf(err); got != tt.want {
				t.Fatalf("Usage: got %v (code %q), want %q", err, got, tt.want)
			}
		})
	}
}

// TestExcludedAccountsOnStores runs on real stores: accounts that
// restricted or objected to processing never contribute.
func TestExcludedAccountsOnStores(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := t.Context()
			start := day1.Add(9 * time.Hour)
			end := start.Add(time.Hour)
			for i := range 24 {
				id := fmt.Sprintf("acc_x%02d", i)
				if err := st.CreateAccount(ctx, &store.Account{ID: id, EmailIndex: []byte("e" + id), MobileIndex: []byte("m" + id),
					PasswordHash: "x", Status: store.StatusActive, CreatedAt: day1}); err != nil {
					t.Fatal(err)
				}
				dev := &store.Device{ID: fmt.Sprintf("dev_x%02d", i), AccountID: id, PublicKey: storetest.PublicKey(900 + i), CreatedAt: day1}
				if err := st.CreateDevice(ctx, dev, 10); err != nil {
					t.Fatal(err)
				}
				region := "eu"
				if i >= 12 { // half of them opt out, in their own region
					region = "us"
					f := store.Flags{Restricted: i%2 == 0, Objected: i%2 == 1}
					if err := st.SetFlags(ctx, id, f); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := st.RecordIntervals(ctx, region, []store.Interval{{DeviceID: dev.ID, Start: start, End: &end}}); err != nil {
					t.Fatal(err)
				}
			}
			clock := func() time.Time { return day1.Add(48 * time.Hour) }
			log, err := audit.New(audit.Config{Store: st, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			svc, err := stats.New(stats.Config{Store: st, Audit: log, Clock: clock, Rand: rand.Reader, Budget: 1e6})
			if err != nil {
				t.Fatal(err)
			}
			r, err := svc.Usage(ctx, officer(), stats.Options{From: day1, To: day1, Epsilon: 1e5, MinGroup: 5, Override: why})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Rows) != 1 || r.Rows[0].Region != "eu" || math.Abs(float64(r.Rows[0].Sessions-12)) > 1 || math.Abs(r.Rows[0].Hours-12) > 0.2 {
				t.Fatalf("rows: got %+v, want only eu with about 12 sessions and 12 hours", r.Rows)
			}
			es, err := st.AuditEntriesFor(ctx, "usage_statistics", 10)
			if err != nil || len(es) != 2 || es[1].Action != staff.ActStatsView || es[0].Action != staff.ActStatsOverride ||
				!strings.Contains(es[0].Detail, why) { // newest first
				t.Fatalf("audit: got %+v, %v; want a stats.view and a stats.override entry with the reason", es, err)
			}
			b, err := svc.Budget(ctx, officer(), "")
			if err != nil || b.Quarter != "2026-Q1" || len(b.Entries) != 1 || b.Entries[0].Override != why || b.Spent != 1e5 {
				t.Fatalf("budget: got %+v, %v; want the report in the 2026-Q1 ledger", b, err)
			}
		})
	}
}

// TestBudgetRefusesOverspend: a quarter's reports together spend at most
// its budget; a refused report releases nothing and spends nothing.
func TestBudgetRefusesOverspend(t *testing.T) {
	svc, audits := budgetSvc(t, data(), 3)
	o := stats.Options{From: day1, To: day1, Epsilon: 1}
	for i := range 3 {
		r, err := svc.Usage(t.Context(), officer(), o)
		if err != nil {
			t.Fatalf("report %d: %v", i+1, err)
		}
		if r.Budget.Spent != float64(i+1) || r.Budget.Left != float64(2-i) {
			t.Fatalf("report %d: budget %+v, want %d spent", i+1, r.Budget, i+1)
		}
	}
	before := *audits
	r, err := svc.Usage(t.Context(), officer(), stats.Options{From: day1, To: day1, Epsilon: 0.01})
	if r != nil || !errs.Is(err, errs.Precondition) || errs.FieldOf(err) != "epsilon" || !strings.Contains(err.Error(), "2026-Q1") {
		t.Fatalf("fourth report: got %v, %v; want Precondition on epsilon naming the quarter", r, err)
	}
	if *audits != before {
		t.Errorf("a refused report was audited as run")
	}
	b, err := svc.Budget(t.Context(), staff.Principal{ID: "stf_a", Role: staff.RoleAdmin}, "2026-Q1")
	if err != nil || b.Budget != 3 || b.Spent != 3 || b.Left != 0 || len(b.Entries) != 3 {
		t.Fatalf("budget: got %+v, %v; want 3 of 3 spent in 3 entries", b, err)
	}
	if e := b.Entries[0]; e.StaffID != "stf_po" || e.StaffRole != staff.RolePrivacyOfficer || e.Report != "usage 2026-03-01..2026-03-01" ||
		e.Epsilon != 1 || e.MinGroup != 10 || e.Override != "" {
		t.Errorf("ledger entry: got %+v", e)
	}
	// An override lifts the per-report limits, never the quarter's budget.
	svc2, _ := budgetSvc(t, data(), 3)
	_, err = svc2.Usage(t.Context(), officer(), stats.Options{From: day1, To: day1, Epsilon: 3.5, Override: why})
	if !errs.Is(err, errs.Precondition) {
		t.Fatalf("override beyond the budget: got %v, want Precondition", err)
	}
	if _, err := svc2.Usage(t.Context(), officer(), stats.Options{From: day1, To: day1, Epsilon: 3, Override: why}); err != nil {
		t.Fatalf("override within the budget: %v", err)
	}
}

// TestBudgetSumsExactly: ten reports of 0.3 spend exactly 3.
func TestBudgetSumsExactly(t *testing.T) {
	svc, _ := budgetSvc(t, data(), 3)
	for i := range 10 {
		if _, err := svc.Usage(t.Context(), officer(), stats.Options{From: day1, To: day1, Epsilon: 0.3}); err != nil {
			t.Fatalf("report %d of 0.3: %v", i+1, err)
		}
	}
	if _, err := svc.Usage(t.Context(), officer(), stats.Options{From: day1, To: day1, Epsilon: 0.3}); !errs.Is(err, errs.Precondition) {
		t.Fatalf("eleventh report: got %v, want Precondition", err)
	}
}

// TestBudgetPerQuarter: each calendar quarter has its own budget.
func TestBudgetPerQuarter(t *testing.T) {
	st := data()
	now := day1.Add(30 * 24 * time.Hour) // 2026-03-31
	n := 0
	svc, err := stats.New(stats.Config{Store: st, Audit: nopAudit{&n}, Rand: rand.Reader, Budget: 1, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	o := stats.Options{From: day1, To: day1, Epsilon: 1}
	if _, err := svc.Usage(t.Context(), officer(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Usage(t.Context(), officer(), o); !errs.Is(err, errs.Precondition) {
		t.Fatalf("second report in 2026-Q1: got %v, want Precondition", err)
	}
	now = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	if _, err := svc.Usage(t.Context(), officer(), o); err != nil {
		t.Fatalf("first report in 2026-Q2: %v", err)
	}
	for q, want := range map[string]float64{"2026-Q1": 1, "2026-Q2": 1, "2025-Q4": 0} {
		b, err := svc.Budget(t.Context(), officer(), q)
		if err != nil || b.Spent != want || b.Quarter != q {
			t.Errorf("Budget(%s): got %+v, %v; want %g spent", q, b, err, want)
		}
	}
	for _, bad := range []string{"2026-Q5", "2026Q1", "Q1-2026", "2026-Q01", "1999-Q1"} {
		if _, err := svc.Budget(t.Context(), officer(), bad); !errs.Is(err, errs.Invalid) || errs.FieldOf(err) != "quarter" {
			t.Errorf("Budget(%q): got %v, want Invalid on quarter", bad, err)
		}
	}
	if _, err := svc.Budget(t.Context(), staff.Principal{ID: "stf_s", Role: staff.RoleSupport}, ""); !errs.Is(err, errs.Forbidden) {
		t.Errorf("support reads the budget: got %v, want Forbidden", err)
	}
}

func TestQuarter(t *testing.T) {
	for in, want := range map[string]string{"2026-01-01T00:00:00Z": "2026-Q1", "2026-03-31T23:59:59Z": "2026-Q1",
		"2026-04-01T00:00:00Z": "2026-Q2", "2026-12-31T23:00:00-02:00": "2027-Q1"} {
		at, _ := time.Parse(time.RFC3339, in)
		if got := stats.Quarter(at); got != want {
			t.Errorf("Quarter(%s) = %s, want %s", in, got, want)
		}
	}
}
