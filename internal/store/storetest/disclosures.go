package storetest

import (
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// mkDisclosure returns a complied disclosure received at t0()+days.
func mkDisclosure(id, ref string, days int, accounts ...string) *store.Disclosure {
	return &store.Disclosure{
		ID: id, Reference: ref, Authority: "Court A", Jurisdiction: "DE", LegalBasis: "§ 1", Type: "court-order",
		ReceivedAt: t0().Add(time.Duration(days) * 24 * time.Hour), ScopeRequested: "subscriber data",
		Decision: "complied", CategoriesDisclosed: []string{"account.email"}, FieldsDisclosed: []string{"email address"},
		AccountIDs: accounts, RecordedBy: "stf_x", RecordedAt: t0(),
	}
}

func testDisclosures(t *testing.T, s store.Store) {
	ctx := t.Context()
	gag := t0().Add(30 * 24 * time.Hour)
	d1 := mkDisclosure("dis_1", "R-1", 0, "acc_d1", "acc_d2")
	d1.GagUntil = &gag
	must(t, "CreateDisclosure d1", s.CreateDisclosure(ctx, d1))
	must(t, "CreateDisclosure d2", s.CreateDisclosure(ctx, mkDisclosure("dis_2", "R-2", 10, "acc_d2")))
	refused := mkDisclosure("dis_3", "R-3", 200)
	refused.Decision, refused.CategoriesDisclosed, refused.FieldsDisclosed = "refused", nil, nil
	must(t, "CreateDisclosure d3", s.CreateDisclosure(ctx, refused))

	wantCode(t, "duplicate reference", s.CreateDisclosure(ctx, mkDisclosure("dis_4", "R-1", 1)), errs.Conflict)
	wantCode(t, "missing fields", s.CreateDisclosure(ctx, &store.Disclosure{ID: "dis_5"}), errs.Invalid)
	_, err := s.Disclosure(ctx, "dis_none")
	wantCode(t, "Disclosure unknown", err, errs.NotFound)

	got, err := s.Disclosure(ctx, "dis_1")
	must(t, "Disclosure", err)
	if !reflect.DeepEqual(got, d1) {
		t.Fatalf("Disclosure round trip: got %+v, want %+v", got, d1)
	}
	got3, err := s.Disclosure(ctx, "dis_3")
	must(t, "Disclosure 3", err)
	if got3.CategoriesDisclosed == nil || len(got3.CategoriesDisclosed) != 0 || len(got3.AccountIDs) != 0 {
		t.Fatalf("refused disclosure: got categories %v accounts %v, want empty non-nil lists", got3.CategoriesDisclosed, got3.AccountIDs)
	}

	ids := func(ds []store.Disclosure) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	for _, tt := range []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"all", time.Time{}, time.Time{}, []string{"dis_1", "dis_2", "dis_3"}},
		{"from", t0().Add(time.Hour), time.Time{}, []string{"dis_2", "dis_3"}},
		{"to exclusive", time.Time{}, t0().Add(10 * 24 * time.Hour), []string{"dis_1"}},
		{"empty", t0().Add(-time.Hour), t0(), nil},
	} {
		all, err := s.Disclosures(ctx, tt.from, tt.to)
		must(t, "Disclosures "+tt.name, err)
		if g := ids(all); !slices.Equal(g, tt.want) {
			t.Errorf("Disclosures %s: got %v, want %v", tt.name, g, tt.want)
		}
	}

	about, err := s.DisclosuresAbout(ctx, "acc_d2")
	must(t, "DisclosuresAbout", err)
	if g := ids(about); !slices.Equal(g, []string{"dis_1", "dis_2"}) {
		t.Fatalf("DisclosuresAbout: got %v, want [dis_1 dis_2]", g)
	}
	for _, d := range about {
		if !slices.Equal(d.AccountIDs, []string{"acc_d2"}) {
			t.Fatalf("DisclosuresAbout %s accounts: got %v, want only acc_d2", d.ID, d.AccountIDs)
		}
	}

	// Before the gag ends only dis_2 (no gag) is due; after, dis_1's two
	// accounts too.
	due, err := s.DueDisclosureNotices(ctx, t0().Add(20*24*time.Hour), 100)
	must(t, "DueDisclosureNotices", err)
	if len(due) != 1 || due[0].Disclosure.ID != "dis_2" || due[0].AccountID != "acc_d2" {
		t.Fatalf("due during gag: got %+v, want dis_2/acc_d2", due)
	}
	after := gag
	due, err = s.DueDisclosureNotices(ctx, after, 100)
	must(t, "DueDisclosureNotices after", err)
	if len(due) != 3 {
		t.Fatalf("due after gag: got %d, want 3", len(due))
	}
	if due, _ := s.DueDisclosureNotices(ctx, after, 1); len(due) != 1 {
		t.Fatalf("limit 1: got %d, want 1", len(due))
	}
	_, err = s.DueDisclosureNotices(ctx, after, 0)
	wantCode(t, "limit 0", err, errs.Invalid)

	ok, err := s.ClaimDisclosureNotice(ctx, "dis_1", "acc_d1", after)
	must(t, "Claim", err)
	if !ok {
		t.Fatal("first claim: got false, want true")
	}
	if ok, _ := s.ClaimDisclosureNotice(ctx, "dis_1", "acc_d1", after); ok {
		t.Fatal("second claim: got true, want false")
	}
	_, err = s.ClaimDisclosureNotice(ctx, "dis_1", "acc_other", after)
	wantCode(t, "claim unnamed account", err, errs.NotFound)
	if d, _ := s.Disclosure(ctx, "dis_1"); d.GagNotifiedAt != nil {
		t.Fatalf("GagNotifiedAt after one of two claims: got %v, want nil", d.GagNotifiedAt)
	}
	must(t, "Unclaim", s.UnclaimDisclosureNotice(ctx, "dis_1", "acc_d1"))

	// Concurrent claims: exactly one wins each.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, a := range []string{"acc_d1", "acc_d2"} {
				ok, err := s.ClaimDisclosureNotice(ctx, "dis_1", a, after)
				if err != nil {
					t.Errorf("concurrent claim: %v", err)
				}
				if ok {
					wins.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := wins.Load(); got != 2 {
		t.Fatalf("concurrent claims won: got %d, want 2", got)
	}
	d, _ := s.Disclosure(ctx, "dis_1")
	if d.GagNotifiedAt == nil || !d.GagNotifiedAt.Equal(after) {
		t.Fatalf("GagNotifiedAt after all claims: got %v, want %v", d.GagNotifiedAt, after)
	}
	due, _ = s.DueDisclosureNotices(ctx, after, 100)
	if len(due) != 1 || due[0].Disclosure.ID != "dis_2" {
		t.Fatalf("due after claims: got %+v, want only dis_2", due)
	}
}

func testProcessors(t *testing.T, s store.Store) {
	ctx := t.Context()
	seeded, err := s.Processors(ctx)
	must(t, "Processors", err)
	if len(seeded) != 2 {
		t.Fatalf("seeded register: got %d entries, want 2", len(seeded))
	}
	p := &store.Processor{ID: "prc_x", Name: "Backup Host", Purpose: "backups", Categories: []string{"account.record"}, CreatedAt: t0()}
	must(t, "CreateProcessor", s.CreateProcessor(ctx, p))
	dup := *p
	dup.ID, dup.Name = "prc_y", "backup host"
	wantCode(t, "duplicate name", s.CreateProcessor(ctx, &dup), errs.Conflict)
	wantCode(t, "missing", s.CreateProcessor(ctx, &store.Processor{ID: "prc_z"}), errs.Invalid)
	got, err := s.ProcessorByName(ctx, "BACKUP HOST")
	must(t, "ProcessorByName", err)
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("ProcessorByName: got %+v, want %+v", got, p)
	}
	_, err = s.ProcessorByName(ctx, "nobody")
	wantCode(t, "ProcessorByName unknown", err, errs.NotFound)
	del, err := s.DeleteProcessor(ctx, "backup host")
	must(t, "DeleteProcessor by name", err)
	if del.ID != "prc_x" {
		t.Fatalf("deleted: got %s, want prc_x", del.ID)
	}
	del, err = s.DeleteProcessor(ctx, seeded[0].ID)
	must(t, "DeleteProcessor by id", err)
	if del.Name != seeded[0].Name {
		t.Fatalf("deleted: got %s, want %s", del.Name, seeded[0].Name)
	}
	_, err = s.DeleteProcessor(ctx, "prc_x")
	wantCode(t, "DeleteProcessor twice", err, errs.NotFound)
	if all, _ := s.Processors(ctx); len(all) != 1 {
		t.Fatalf("after deletes: got %d entries, want 1", len(all))
	}
}

func testDailyUsage(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"acc_s1", "acc_s2", "acc_s3", "acc_s4"} {
		mkAccount(t, s, id)
	}
	for i, a := range []string{"acc_s1", "acc_s2", "acc_s3", "acc_s4"} {
		mkDevice(t, s, a, "dev_s"+a[5:], 600+i)
	}
	must(t, "SetFlags s3", s.SetFlags(ctx, "acc_s3", store.Flags{Restricted: true}))
	must(t, "SetFlags s4", s.SetFlags(ctx, "acc_s4", store.Flags{Objected: true}))
	day := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	iv := func(dev string, startMin, lenMin int) store.Interval {
		st := day.Add(time.Duration(startMin) * time.Minute)
		e := st.Add(time.Duration(lenMin) * time.Minute)
		return store.Interval{DeviceID: dev, Start: st, End: &e}
	}
	open := store.Interval{DeviceID: "dev_s1", Start: day.Add(23 * time.Hour)}
	for _, r := range []struct {
		region string
		ivs    []store.Interval
	}{
		{"eu", []store.Interval{iv("dev_s1", 0, 60), iv("dev_s1", 120, 30), iv("dev_s2", 10, 90), iv("dev_s3", 0, 60),
			iv("dev_s4", 0, 60), iv("dev_s1", 24*60+5, 10), open}},
		{"us", []store.Interval{iv("dev_s1", 300, 15), iv("dev_s2", -10, 20)}},
	} {
		if _, err := s.RecordIntervals(ctx, r.region, r.ivs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.DailyUsage(ctx, day, day.Add(48*time.Hour), store.Flags{Restricted: true, Objected: true})
	must(t, "DailyUsage", err)
	type row struct {
		day           string
		region        string
		sessions, sec int64
	}
	units := map[int]bool{}
	var rows []row
	for _, g := range got {
		units[g.Unit] = true
		rows = append(rows, row{g.Day.Format(time.DateOnly), g.Region, g.Sessions, g.Seconds})
	}
	// s1: eu day1 2 sessions 90 min, us day1 1 session 15 min, eu day2 10 min
	// (open session left out); s2: eu day1 90 min; its us session started the
	// day before, outside the range. s3 and s4 are excluded.
	want := []row{
		{"2025-03-10", "eu", 2, 90 * 60}, {"2025-03-10", "us", 1, 15 * 60}, {"2025-03-11", "eu", 1, 10 * 60},
		{"2025-03-10", "eu", 1, 90 * 60},
	}
	if !slices.Equal(rows, want) || len(units) != 2 {
		t.Fatalf("DailyUsage: got %v over %d units, want %v over 2 units", rows, len(units), want)
	}
	// The exclusion is the caller's: each flag leaves out only its accounts.
	for _, tc := range []struct {
		exclude store.Flags
		units   int
	}{{store.Flags{Objected: true}, 3}, {store.Flags{Restricted: true}, 3}, {store.Flags{}, 4}} {
		got, err := s.DailyUsage(ctx, day, day.Add(48*time.Hour), tc.exclude)
		must(t, "DailyUsage", err)
		units := map[int]bool{}
		for _, g := range got {
			units[g.Unit] = true
		}
		if len(units) != tc.units {
			t.Errorf("DailyUsage excluding %+v: got %d accounts, want %d", tc.exclude, len(units), tc.units)
		}
	}
	_, err = s.DailyUsage(ctx, day, day, store.Flags{})
	wantCode(t, "empty range", err, errs.Invalid)
}
