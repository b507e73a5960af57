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

func testOutbound(t *testing.T, s store.Store) {
	ctx := t.Context()
	job := func(id string, due time.Duration) *store.OutboundJob {
		return &store.OutboundJob{ID: id, Sealed: []byte("sealed " + id), DueAt: t0().Add(due), CreatedAt: t0()}
	}
	wantCode(t, "enqueue without id", s.EnqueueOutbound(ctx, &store.OutboundJob{Sealed: []byte("x")}), errs.Invalid)
	wantCode(t, "enqueue without content", s.EnqueueOutbound(ctx, &store.OutboundJob{ID: "j"}), errs.Invalid)
	for _, j := range []*store.OutboundJob{job("b", 0), job("a", 0), job("later", time.Hour)} {
		must(t, "EnqueueOutbound", s.EnqueueOutbound(ctx, j))
	}
	wantCode(t, "enqueue a taken id", s.EnqueueOutbound(ctx, job("a", 0)), errs.Conflict)
	_, err := s.ClaimOutbound(ctx, t0(), 0, 10)
	wantCode(t, "claim without a lease", err, errs.Invalid)

	ids := func(js []store.OutboundJob) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	got, err := s.ClaimOutbound(ctx, t0(), time.Minute, 10)
	must(t, "ClaimOutbound", err)
	if !slices.Equal(ids(got), []string{"a", "b"}) {
		t.Fatalf("claim: got %v, want the two due jobs [a b]", ids(got))
	}
	if got[0].Attempts != 1 || string(got[0].Sealed) != "sealed a" || !got[0].DueAt.Equal(t0().Add(time.Minute)) {
		t.Fatalf("claimed job: got %+v, want one attempt, its content and the lease as due time", got[0])
	}
	// Leased jobs are not claimed again until the lease ends.
	if got, _ := s.ClaimOutbound(ctx, t0().Add(30*time.Second), time.Minute, 10); len(got) != 0 {
		t.Fatalf("claim during the lease: got %v, want none", ids(got))
	}
	must(t, "DeleteOutbound", s.DeleteOutbound(ctx, "a"))
	must(t, "DeleteOutbound absent", s.DeleteOutbound(ctx, "a"))
	must(t, "RescheduleOutbound", s.RescheduleOutbound(ctx, "b", t0().Add(10*time.Minute)))
	wantCode(t, "reschedule absent", s.RescheduleOutbound(ctx, "a", t0()), errs.NotFound)
	// After its lease a job not rescheduled comes back; b waits for its
	// new time.
	got, err = s.ClaimOutbound(ctx, t0().Add(2*time.Minute), time.Minute, 10)
	must(t, "ClaimOutbound", err)
	if len(got) != 0 {
		t.Fatalf("claim before b is due: got %v, want none", ids(got))
	}
	got, err = s.ClaimOutbound(ctx, t0().Add(2*time.Hour), time.Minute, 1)
	must(t, "ClaimOutbound", err)
	if !slices.Equal(ids(got), []string{"b"}) || got[0].Attempts != 2 {
		t.Fatalf("claim with limit 1: got %+v, want b on its second attempt", got)
	}

	// A KEK rotation reads every job's seal, leased or not, and re-seals
	// a job only if it is unchanged.
	sealed, err := s.OutboundSealed(ctx, "", 1)
	must(t, "OutboundSealed", err)
	if len(sealed) != 1 || sealed[0].ID != "b" || string(sealed[0].Sealed) != "sealed b" {
		t.Fatalf("OutboundSealed: got %+v, want b with its seal", sealed)
	}
	sealed, err = s.OutboundSealed(ctx, "b", 10)
	must(t, "OutboundSealed", err)
	if !slices.Equal(ids(sealed), []string{"later"}) {
		t.Fatalf("OutboundSealed after b: got %v, want [later]", ids(sealed))
	}
	_, err = s.ResealOutbound(ctx, "b", nil, []byte("x"))
	wantCode(t, "reseal without the old seal", err, errs.Invalid)
	if ok, err := s.ResealOutbound(ctx, "b", []byte("sealed b"), []byte("resealed b")); err != nil || !ok {
		t.Fatalf("ResealOutbound: got %v, %v; want done", ok, err)
	}
	if ok, err := s.ResealOutbound(ctx, "b", []byte("sealed b"), []byte("stale")); err != nil || ok {
		t.Fatalf("ResealOutbound of a changed seal: got %v, %v; want not done", ok, err)
	}
	if ok, err := s.ResealOutbound(ctx, "a", []byte("sealed a"), []byte("x")); err != nil || ok {
		t.Fatalf("ResealOutbound of a deleted job: got %v, %v; want not done", ok, err)
	}
	if got, _ := s.OutboundSealed(ctx, "", 1); len(got) != 1 || string(got[0].Sealed) != "resealed b" {
		t.Fatalf("after reseal: got %+v, want b's new seal", got)
	}

	// Retention deletes what was queued before the cutoff, whatever its
	// state.
	if n, err := s.CountOutbound(ctx); err != nil || n != 2 {
		t.Fatalf("CountOutbound: got %d, %v; want 2", n, err)
	}
	n, err := s.SweepBatch(ctx, store.SweepOutbound, t0().Add(time.Second), t0().Add(time.Hour), 100)
	must(t, "SweepBatch", err)
	if n != 2 {
		t.Fatalf("sweep: got %d deleted, want 2 (b and later)", n)
	}
	if got, _ := s.ClaimOutbound(ctx, t0().Add(3*time.Hour), time.Minute, 10); len(got) != 0 {
		t.Fatalf("claim after the sweep: got %v, want none", ids(got))
	}
}

// testOutboundConcurrent: concurrent workers never claim the same job.
func testOutboundConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const jobs, workers = 40, 4
	for i := range jobs {
		must(t, "EnqueueOutbound", s.EnqueueOutbound(ctx, &store.OutboundJob{ID: fmt.Sprintf("j%02d", i),
			Sealed: []byte{1}, DueAt: t0(), CreatedAt: t0()}))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				got, err := s.ClaimOutbound(ctx, t0(), time.Hour, 3)
				if err != nil {
					t.Errorf("ClaimOutbound: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, j := range got {
					seen[j.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != jobs {
		t.Fatalf("got %d distinct jobs claimed, want %d", len(seen), jobs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %s claimed %d times, want once", id, n)
		}
	}
}
