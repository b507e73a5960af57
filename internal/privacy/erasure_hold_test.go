package privacy_test

import (
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/retention"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestEraseAccountRechecksHolds: a hold placed after the service looked
// (here: the store is asked to erase everything although a hold is now
// active) still keeps the data; the store refuses inside its transaction.
func TestEraseAccountRechecksHolds(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, b.Open(t))
			ctx := t.Context()
			u := h.signup(t)
			r := h.request(t, u, store.RequestErasure, "")
			if _, err := h.holds.Add(ctx, principal(staff.RoleLegal), u.id, "Case 12", nil); err != nil {
				t.Fatal(err)
			}
			_, err := h.st.EraseAccount(ctx, store.Erasure{RequestID: r.ID, AccountID: u.id, At: h.clk.Now(), Outcome: "erased"})
			wantCode(t, "erase under a hold placed late", err, errs.Conflict)
			a, err := h.st.Account(ctx, u.id)
			if err != nil {
				t.Fatal(err)
			}
			if a.WrappedKey == nil || a.Status != store.StatusActive {
				t.Fatalf("after refused erasure: got status %q, key present %v; want the account untouched", a.Status, a.WrappedKey != nil)
			}
			rep, err := h.svc.ConfirmErasure(ctx, u.id, r.ID)
			if err != nil || rep.Status != store.RequestHeld {
				t.Fatalf("confirm under hold: got %+v, %v, want held", rep, err)
			}
		})
	}
}

// TestResumeErasureAfterPurge: a held erasure whose hold lapsed, and whose
// closed account the retention sweeper then purged before the erasure was
// resumed, is finished (completed, tombstone) rather than failing every
// later ResumeErasures.
func TestResumeErasureAfterPurge(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, b.Open(t))
			ctx := t.Context()
			u := h.signup(t)
			until := h.clk.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
			if _, err := h.holds.Add(ctx, principal(staff.RoleLegal), u.id, "Case 13", &until); err != nil {
				t.Fatal(err)
			}
			r := h.request(t, u, store.RequestErasure, "please")
			if rep, err := h.svc.ConfirmErasure(ctx, u.id, r.ID); err != nil || rep.Status != store.RequestHeld {
				t.Fatalf("confirm under hold: got %+v, %v, want held", rep, err)
			}
			// The hold lapses; the grace period passes; the sweeper purges
			// the closed account before anything resumes the erasure. The
			// database stamps closed_at with its own clock, so move past it.
			h.clk.Set(time.Now().Add(60 * 24 * time.Hour))
			sw, err := retention.New(retention.Config{Store: h.st, Holds: h.st, Inventory: inventory.Default(), Audit: h.audit,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: h.clk.Now, Rand: rand.Reader})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sw.RunNow(ctx, staff.System()); err != nil {
				t.Fatal(err)
			}
			if _, err := h.st.Account(ctx, u.id); !errs.Is(err, errs.NotFound) {
				t.Fatalf("account after sweep: got %v, want NotFound (purged)", err)
			}
			n, err := h.svc.ResumeErasures(ctx, staff.System())
			if err != nil || n != 1 {
				t.Fatalf("resume after purge: got %d, %v, want 1, nil", n, err)
			}
			got, err := h.st.PrivacyRequest(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != store.RequestCompleted || got.AccountID != "" || got.Details != "" {
				t.Fatalf("request after resume: got status %q, account %q, details %q; want completed, detached, no details",
					got.Status, got.AccountID, got.Details)
			}
			if _, err := h.st.Tombstone(ctx, r.ID); err != nil {
				t.Fatalf("tombstone: %v", err)
			}
			if n, err := h.svc.ResumeErasures(ctx, staff.System()); err != nil || n != 0 {
				t.Fatalf("second resume: got %d, %v, want 0, nil", n, err)
			}
		})
	}
}
