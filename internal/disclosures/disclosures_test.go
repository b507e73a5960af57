package disclosures_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/disclosures"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/transparency"
)

// inbox is a recording Inbox. fail makes Post fail for that account once.
type inbox struct {
	mu    sync.Mutex
	posts []string // "account|kind|subject"
	fail  map[string]bool
}

func (b *inbox) Post(_ context.Context, accountID, kind, subject, body string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail[accountID] {
		delete(b.fail, accountID)
		return errs.E(errs.Unavailable, "inbox down")
	}
	b.posts = append(b.posts, accountID+"|"+kind+"|"+subject)
	return nil
}

func (b *inbox) count(account string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, p := range b.posts {
		if strings.HasPrefix(p, account+"|") {
			n++
		}
	}
	return n
}

type fixture struct {
	svc   *disclosures.Service
	st    store.Store
	box   *inbox
	now   *time.Time
	legal staff.Principal
	acc   []string
}

// testController is the controller the fixture's service is built with.
var testController = controller.Identity{Name: "Example VPN GmbH", Address: "1 Example Street, Berlin", Email: "privacy@example.org"}

func setup(t *testing.T, st store.Store) *fixture {
	t.Helper()
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	f := &fixture{st: st, box: &inbox{fail: map[string]bool{}}, now: &now,
		legal: staff.Principal{ID: "stf_legal", Role: staff.RoleLegal}}
	clock := func() time.Time { return *f.now }
	log, err := audit.New(audit.Config{Store: st, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := disclosures.New(disclosures.Config{Store: st, Accounts: st, Audit: log, Inbox: f.box,
		Inventory: inventory.Default(), Controller: testController, Logger: slog.New(slog.DiscardHandler), Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	for i := range 3 {
		id, _ := ident.New(rand.Reader, "acc")
		a := &store.Account{ID: id, EmailIndex: []byte(fmt.Sprint("e", i, id)), MobileIndex: []byte(fmt.Sprint("m", i, id)),
			PasswordHash: "x", Status: store.StatusActive, CreatedAt: now}
		if err := st.CreateAccount(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		f.acc = append(f.acc, id)
	}
	return f
}

func (f *fixture) input(ref string, accounts ...string) disclosures.Input {
	return disclosures.Input{Reference: ref, Authority: "Amtsgericht Berlin", Jurisdiction: "DE", LegalBasis: "§ 100j StPO",
		Type: "court-order", ReceivedAt: f.now.Add(-48 * time.Hour), ScopeRequested: "subscriber data",
		Decision: "complied", Categories: []string{inventory.IDEmail}, Fields: []string{"email address"}, Accounts: accounts}
}

func forEachBackend(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, setup(t, b.Open(t))) })
	}
}

func TestAddValidation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		future := f.now.Add(time.Hour)
		before := f.now.Add(-72 * time.Hour)
		tests := []struct {
			name   string
			by     staff.Principal
			modify func(*disclosures.Input)
			want   errs.Code
		}{
			{"ok", f.legal, func(*disclosures.Input) {}, ""},
			{"support may not", staff.Principal{ID: "stf_s", Role: staff.RoleSupport}, func(*disclosures.Input) {}, errs.Forbidden},
			{"admin may not", staff.Principal{ID: "stf_a", Role: staff.RoleAdmin}, func(*disclosures.Input) {}, errs.Forbidden},
			{"privacy officer may not", staff.Principal{ID: "stf_p", Role: staff.RolePrivacyOfficer}, func(*disclosures.Input) {}, errs.Forbidden},
			{"unknown decision", f.legal, func(in *disclosures.Input) { in.Decision = "maybe" }, errs.Invalid},
			{"unknown type", f.legal, func(in *disclosures.Input) { in.Type = "letter" }, errs.Invalid},
			{"unknown category", f.legal, func(in *disclosures.Input) { in.Categories = []string{"account.shoe_size"} }, errs.Invalid},
			{"complied without fields", f.legal, func(in *disclosures.Input) { in.Fields = nil }, errs.Invalid},
			{"complied without accounts", f.legal, func(in *disclosures.Input) { in.Accounts = nil }, errs.Invalid},
			{"refused with data", f.legal, func(in *disclosures.Input) { in.Decision = "refused" }, errs.Invalid},
			{"refused, no accounts", f.legal, func(in *disclosures.Input) {
				in.Decision, in.Categories, in.Fields, in.Accounts = "refused", nil, nil, nil
			}, ""},
			{"no reference", f.legal, func(in *disclosures.Input) { in.Reference = "  " }, errs.Invalid},
			{"no scope", f.legal, func(in *disclosures.Input) { in.ScopeRequested = "" }, errs.Invalid},
			{"no date", f.legal, func(in *disclosures.Input) { in.ReceivedAt = time.Time{} }, errs.Invalid},
			{"future date", f.legal, func(in *disclosures.Input) { in.ReceivedAt = future }, errs.Invalid},
			{"gag before receipt", f.legal, func(in *disclosures.Input) { in.GagUntil = &before }, errs.Invalid},
			{"malformed account", f.legal, func(in *disclosures.Input) { in.Accounts = []string{"alice@example.com"} }, errs.Invalid},
			{"missing account", f.legal, func(in *disclosures.Input) { in.Accounts = []string{"acc_aaaaaaaaaaaaaaaaaaaaaaaaaa"} }, errs.NotFound},
			{"control character", f.legal, func(in *disclosures.Input) { in.Authority = "A\x1b[31m" }, errs.Invalid},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := f.input(fmt.Sprint("REF-", i), f.acc[0])
				tt.modify(&in)
				_, err := f.svc.Add(t.Context(), tt.by, in)
				if got := errs.CodeOf(err); got != tt.want {
					t.Fatalf("Add: got %v (code %q), want code %q", err, got, tt.want)
				}
			})
		}
		_, err := f.svc.Add(t.Context(), f.legal, f.input("REF-0", f.acc[0]))
		if errs.CodeOf(err) != errs.Conflict {
			t.Fatalf("duplicate reference: got %v, want Conflict", err)
		}
		// Support may not read the ledger either; legal may, and it is audited.
		if _, err := f.svc.List(t.Context(), staff.Principal{ID: "stf_s", Role: staff.RoleSupport}, time.Time{}, time.Time{}); errs.CodeOf(err) != errs.Forbidden {
			t.Fatalf("List as support: got %v, want Forbidden", err)
		}
		ds, err := f.svc.List(t.Context(), f.legal, time.Time{}, time.Time{})
		if err != nil || len(ds) != 2 {
			t.Fatalf("List: got %d, %v; want 2 disclosures", len(ds), err)
		}
		if es, _ := f.st.AuditEntriesFor(t.Context(), f.acc[0], 10); len(es) != 1 || es[0].Action != staff.ActDisclosureManage {
			t.Fatalf("account audit: got %+v, want one disclosure entry", es)
		}
	})
}

func TestNotifyLapsedGagsOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		gagEnd := f.now.Add(10 * 24 * time.Hour)
		in := f.input("GAG-1", f.acc[0], f.acc[1])
		in.GagUntil = &gagEnd
		gagged, err := f.svc.Add(ctx, f.legal, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Add(ctx, f.legal, f.input("NOGAG-1", f.acc[2])); err != nil {
			t.Fatal(err)
		}

		steps := []struct {
			name  string
			at    time.Time
			fail  string
			want  int
			err   bool
			total [3]int
		}{
			{"during gag: only the ungagged one", *f.now, "", 1, false, [3]int{0, 0, 1}},
			{"again during gag: nothing", *f.now, "", 0, false, [3]int{0, 0, 1}},
			{"gag ended, one post fails", gagEnd, f.acc[1], 1, true, [3]int{1, 0, 1}},
			{"retry posts the failed one", gagEnd, "", 1, false, [3]int{1, 1, 1}},
			{"nothing left", gagEnd.Add(time.Hour), "", 0, false, [3]int{1, 1, 1}},
		}
		for _, s := range steps {
			if s.fail != "" {
				f.box.fail[s.fail] = true
			}
			*f.now = s.at
			n, err := f.svc.NotifyLapsedGags(ctx, staff.System())
			if n != s.want || (err != nil) != s.err {
				t.Fatalf("%s: got %d, %v; want %d, error %v", s.name, n, err, s.want, s.err)
			}
			for i, want := range s.total {
				if got := f.box.count(f.acc[i]); got != want {
					t.Fatalf("%s: account %d has %d notices, want %d", s.name, i, got, want)
				}
			}
		}
		// The system's runs are audited when they posted something.
		es, err := f.st.AuditEntriesFor(ctx, "disclosures", 100)
		if err != nil {
			t.Fatal(err)
		}
		runs := 0
		for _, e := range es {
			if e.Action == staff.ActDisclosureNotify && e.Actor == staff.SystemID {
				runs++
			}
		}
		if runs != 3 {
			t.Fatalf("audited system runs: got %d, want 3 (the ones that posted)", runs)
		}
		if _, err := f.svc.NotifyLapsedGags(ctx, staff.Principal{ID: "stf_s", Role: staff.RoleSupport}); !errs.Is(err, errs.Forbidden) {
			t.Fatalf("support notifies: got %v, want Forbidden", err)
		}
		d, err := f.st.Disclosure(ctx, gagged.ID)
		if err != nil || d.GagNotifiedAt == nil {
			t.Fatalf("GagNotifiedAt: got %v, %v; want set", d, err)
		}
		if !strings.Contains(f.box.posts[0], disclosures.NoticeKind) {
			t.Errorf("notice kind: got %q, want %q", f.box.posts[0], disclosures.NoticeKind)
		}
	})
}

func TestNotifyConcurrentRunsPostOnce(t *testing.T) {
	st := storetest.SQLite(t, storetest.DefaultPool())
	f := setup(t, st)
	if _, err := f.svc.Add(t.Context(), f.legal, f.input("C-1", f.acc...)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.svc.NotifyLapsedGags(t.Context(), f.legal); err != nil {
				t.Errorf("NotifyLapsedGags: %v", err)
			}
		}()
	}
	wg.Wait()
	for i, a := range f.acc {
		if got := f.box.count(a); got != 1 {
			t.Errorf("account %d: got %d notices, want exactly 1", i, got)
		}
	}
}

func TestExportSectionHidesGagged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		gagEnd := f.now.Add(24 * time.Hour)
		in := f.input("SECRET-1", f.acc[0], f.acc[1])
		in.GagUntil = &gagEnd
		if _, err := f.svc.Add(ctx, f.legal, in); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Add(ctx, f.legal, f.input("OPEN-1", f.acc[0])); err != nil {
			t.Fatal(err)
		}
		refs := func(account string) []string {
			name, data, err := f.svc.ExportSection(ctx, account)
			if err != nil || name != "disclosures" {
				t.Fatalf("ExportSection: got %q, %v", name, err)
			}
			b, _ := json.Marshal(data)
			for _, other := range f.acc {
				if other != account && strings.Contains(string(b), other) {
					t.Fatalf("export of one account names another: %s", b)
				}
			}
			var out []string
			for _, d := range data.([]disclosures.ExportedDisclosure) {
				out = append(out, d.Reference)
			}
			return out
		}
		if got := refs(f.acc[0]); len(got) != 1 || got[0] != "OPEN-1" {
			t.Fatalf("during gag, account 0: got %v, want [OPEN-1]", got)
		}
		if got := refs(f.acc[1]); len(got) != 0 {
			t.Fatalf("during gag, account 1: got %v, want none", got)
		}
		if got := refs(f.acc[2]); got != nil {
			t.Fatalf("unnamed account: got %v, want none", got)
		}
		*f.now = gagEnd
		if got := refs(f.acc[1]); len(got) != 1 || got[0] != "SECRET-1" {
			t.Fatalf("after gag, account 1: got %v, want [SECRET-1]", got)
		}
	})
}

func TestTransparency(t *testing.T) {
	st := storetest.SQLite(t, storetest.DefaultPool())
	f := setup(t, st)
	ctx := t.Context()
	in := f.input("T-1", f.acc[0], f.acc[1])
	in.ReceivedAt = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if _, err := f.svc.Add(ctx, f.legal, in); err != nil {
		t.Fatal(err)
	}
	ref := f.input("T-2")
	ref.Decision, ref.Categories, ref.Fields, ref.Type = "refused", nil, nil, "subpoena"
	ref.ReceivedAt = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := f.svc.Add(ctx, f.legal, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Add(ctx, f.legal, f.input("T-3", f.acc[2])); err != nil { // in 2026H2: not counted
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	p := transparency.Period{Year: 2026, Half: 1}
	if _, _, err := f.svc.Transparency(ctx, staff.Principal{ID: "stf_a", Role: staff.RoleAdmin}, p, "", key); errs.CodeOf(err) != errs.Forbidden {
		t.Fatalf("admin: got %v, want Forbidden", err)
	}
	if _, _, err := f.svc.Transparency(ctx, f.legal, transparency.Period{Year: 2099, Half: 1}, "", key); errs.CodeOf(err) != errs.Invalid {
		t.Fatalf("future period: got %v, want Invalid", err)
	}
	// The fixture's clock stands in 2026H2: its report is interim, covers
	// the ledger up to now, and promises the final report at the end.
	running := transparency.Period{Year: 2026, Half: 2}
	if _, r, err := f.svc.Transparency(ctx, f.legal, running, "", key); err != nil || !r.Interim || r.CoversUntil == nil ||
		!r.Canary.NextUpdate.Equal(running.End()) || r.Totals.Requests != 1 {
		t.Fatalf("running period: got %+v, %v; want an interim report of 1 request whose next update is the period's end", r, err)
	}
	log, err := audit.New(audit.Config{Store: st, Clock: func() time.Time { return *f.now }})
	if err != nil {
		t.Fatal(err)
	}
	head, err := log.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	file, r, err := f.svc.Transparency(ctx, f.legal, p, "No secret orders.", key)
	if err != nil {
		t.Fatal(err)
	}
	// The report carries the audit head taken just before signing; the
	// signing's own entry follows it.
	if r.AuditHead != head.String() || head.Seq == 0 {
		t.Fatalf("audit head: got %q, want %q", r.AuditHead, head)
	}
	if after, err := log.Checkpoint(ctx); err != nil || after.Seq != head.Seq+1 {
		t.Fatalf("audit head after signing: got %v, %v, want seq %d", after, err, head.Seq+1)
	}
	if es, err := st.AuditEntries(ctx, head.Seq, 1); err != nil || len(es) != 1 || es[0].Action != staff.ActTransparency ||
		!strings.HasSuffix(es[0].Detail, fmt.Sprintf("at audit head %d", head.Seq)) {
		t.Fatalf("signing's audit entry: got %+v, %v", es, err)
	}
	if r.Totals.Requests != 2 || r.Totals.WithDataDisclosed != 1 || r.AccountsAffected != 2 || r.ByOutcome["refused"] != 1 {
		t.Fatalf("report: got %+v", r)
	}
	got, err := transparency.Verify(file, key.Public().(ed25519.PublicKey))
	if err != nil || got.Totals != r.Totals || got.AuditHead != head.String() || got.Format != transparency.ReportFormat {
		t.Fatalf("Verify: got %+v, %v", got, err)
	}
	if got.Controller != testController || got.Format != transparency.ReportFormat {
		t.Errorf("signed report: controller %+v, format %q; want %+v, %q", got.Controller, got.Format, testController, transparency.ReportFormat)
	}
	for _, s := range []string{"T-1", "Amtsgericht", f.acc[0]} {
		if strings.Contains(string(file), s) {
			t.Errorf("signed report contains %q", s)
		}
	}
}
