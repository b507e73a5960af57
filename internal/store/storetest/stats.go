package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// testStatsLedger: spending stays within the quarter's budget, whatever
// the order, and each quarter has its own.
func testStatsLedger(t *testing.T, s store.Store) {
	ctx := t.Context()
	spend := func(id, quarter string, micro int64, at time.Time) *store.StatsSpend {
		return &store.StatsSpend{ID: id, Quarter: quarter, Report: "usage 2025-01-01..2025-01-31", StaffID: "stf_po",
			StaffRole: "privacy_officer", MicroEpsilon: micro, MinGroup: 10, SpentAt: at}
	}
	const budget = 3_000_000
	must(t, "spend 1", s.SpendStatsBudget(ctx, spend("sld_1", "2025-Q1", 1_000_000, t0()), budget))
	e2 := spend("sld_2", "2025-Q1", 1_500_000, t0().Add(time.Hour))
	e2.Override, e2.MinGroup = "approved by the board", 5
	must(t, "spend 2", s.SpendStatsBudget(ctx, e2, budget))
	err := s.SpendStatsBudget(ctx, spend("sld_3", "2025-Q1", 500_001, t0().Add(2*time.Hour)), budget)
	wantCode(t, "over budget", err, errs.Precondition)
	if errs.FieldOf(err) != "epsilon" {
		t.Errorf("over budget: field %q, want epsilon", errs.FieldOf(err))
	}
	must(t, "spend the rest", s.SpendStatsBudget(ctx, spend("sld_4", "2025-Q1", 500_000, t0().Add(3*time.Hour)), budget))
	must(t, "next quarter", s.SpendStatsBudget(ctx, spend("sld_5", "2025-Q2", 3_000_000, t0().Add(24*time.Hour)), budget))
	wantCode(t, "repeated id", s.SpendStatsBudget(ctx, spend("sld_5", "2025-Q3", 1, t0()), budget), errs.Conflict)
	wantCode(t, "zero epsilon", s.SpendStatsBudget(ctx, spend("sld_6", "2025-Q3", 0, t0()), budget), errs.Invalid)

	got, err := s.StatsLedger(ctx, "2025-Q1")
	must(t, "StatsLedger", err)
	if len(got) != 3 || got[0].ID != "sld_1" || got[1].ID != "sld_2" || got[2].ID != "sld_4" {
		t.Fatalf("ledger of 2025-Q1: got %+v, want sld_1, sld_2, sld_4", got)
	}
	if g := got[1]; g.Override != "approved by the board" || g.MinGroup != 5 || g.MicroEpsilon != 1_500_000 ||
		!g.SpentAt.Equal(t0().Add(time.Hour)) || g.StaffID != "stf_po" || g.StaffRole != "privacy_officer" || g.Report == "" {
		t.Errorf("entry 2: got %+v", g)
	}
	if got, err := s.StatsLedger(ctx, "2024-Q4"); err != nil || len(got) != 0 {
		t.Errorf("empty quarter: got %+v, %v", got, err)
	}

	// The sweeper deletes entries written before the cutoff, in batches.
	n, err := s.SweepBatch(ctx, store.SweepStatsLedger, t0().Add(time.Hour), t0(), 10)
	must(t, "SweepBatch stats ledger", err)
	if n != 1 {
		t.Fatalf("SweepBatch before the second entry: deleted %d, want 1", n)
	}
	if got, _ := s.StatsLedger(ctx, "2025-Q1"); len(got) != 2 || got[0].ID != "sld_2" {
		t.Fatalf("after the sweep: got %+v, want sld_2 and sld_4", got)
	}

	// Concurrent spenders never overspend: 12 reports of 0.5 against a
	// budget of 3 leave exactly 6 in the ledger.
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.SpendStatsBudget(ctx, spend(fmt.Sprintf("sld_c%02d", i), "2025-Q4", 500_000, t0()), budget)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errs.Is(err, errs.Precondition):
				refused++
			case err != nil:
				t.Errorf("concurrent spend: %v", err)
			}
		}()
	}
	wg.Wait()
	got, err = s.StatsLedger(ctx, "2025-Q4")
	must(t, "StatsLedger", err)
	if len(got) != 6 || refused != 6 {
		t.Fatalf("concurrent spends: %d recorded and %d refused, want 6 and 6", len(got), refused)
	}
}

// testNoticeExclusion: a notice run reaches only the active accounts
// without the flags the caller excludes, and counts only those.
func testNoticeExclusion(t *testing.T, s store.Store) {
	ctx := t.Context()
	flags := map[string]store.Flags{"acc_x0": {}, "acc_x1": {Objected: true}, "acc_x2": {Restricted: true},
		"acc_x3": {Restricted: true, Objected: true}}
	for _, id := range []string{"acc_x0", "acc_x1", "acc_x2", "acc_x3"} {
		mkAccount(t, s, id)
		must(t, "SetFlags", s.SetFlags(ctx, id, flags[id]))
	}
	ids := func(run string) []string {
		return []string{"msg_" + run + "0", "msg_" + run + "1", "msg_" + run + "2", "msg_" + run + "3", "msg_" + run + "4"}
	}
	for _, tc := range []struct {
		run     string
		exclude store.Flags
		want    []string
	}{
		{"a", store.Flags{Objected: true, Restricted: true}, []string{"acc_x0"}},
		{"b", store.Flags{Objected: true}, []string{"acc_x0", "acc_x2"}},
		{"c", store.Flags{}, []string{"acc_x0", "acc_x1", "acc_x2", "acc_x3"}},
	} {
		run := &store.NoticeRun{ID: "ntc_x" + tc.run, Kind: "announcement", Subject: "s", Body: "b", Email: true, CreatedAt: t0()}
		must(t, "CreateNoticeRun", s.CreateNoticeRun(ctx, run))
		n, err := s.PostNoticeBatch(ctx, run, tc.exclude, ids(tc.run), t0(), 5)
		must(t, "PostNoticeBatch", err)
		if n != len(tc.want) {
			t.Errorf("run %s excluding %+v: posted %d, want %d", tc.run, tc.exclude, n, len(tc.want))
		}
		for id := range flags {
			msgs, _, err := s.Messages(ctx, id, 10)
			must(t, "Messages", err)
			has := false
			for _, m := range msgs {
				has = has || m.NoticeRun == run.ID
			}
			if has != slices.Contains(tc.want, id) {
				t.Errorf("run %s excluding %+v: %s has the notice = %v", tc.run, tc.exclude, id, has)
			}
		}
		p, err := s.NoticeProgress(ctx, run.ID, tc.exclude)
		must(t, "NoticeProgress", err)
		if p.Accounts != int64(len(tc.want)) || p.Posted != int64(len(tc.want)) || p.Pending != int64(len(tc.want)) {
			t.Errorf("run %s: progress %+v, want %d accounts, all posted and pending", tc.run, p, len(tc.want))
		}
	}
}
