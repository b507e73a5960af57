package storetest

import (
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

func testUsage(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_u1")
	mkAccount(t, s, "acc_u2")
	mkDevice(t, s, "acc_u1", "dev_u1", 501)
	mkDevice(t, s, "acc_u2", "dev_u2", 502)
	start := t0().Truncate(time.Minute)
	end := start.Add(42 * time.Minute)

	n, err := s.RecordIntervals(ctx, "eu-west", []store.Interval{
		{DeviceID: "dev_u1", Start: start},
		{DeviceID: "dev_u2", Start: start.Add(time.Minute)},
		{DeviceID: "dev_gone", Start: start}, // no such device: dropped
	})
	must(t, "RecordIntervals", err)
	if n != 2 {
		t.Fatalf("got %d kept, want 2", n)
	}
	// Re-reporting the same (device, start) with an end closes it: no duplicate.
	if _, err := s.RecordIntervals(ctx, "eu-west", []store.Interval{{DeviceID: "dev_u1", Start: start, End: &end}}); err != nil {
		t.Fatal(err)
	}
	// A later open report does not reopen it.
	if _, err := s.RecordIntervals(ctx, "eu-west", []store.Interval{{DeviceID: "dev_u1", Start: start}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Usage(ctx, "acc_u1", start.Add(-time.Hour), 100)
	must(t, "Usage", err)
	if len(got) != 1 || got[0].DeviceID != "dev_u1" || got[0].Region != "eu-west" || !got[0].Start.Equal(start) ||
		got[0].End == nil || !got[0].End.Equal(end) {
		t.Fatalf("got %+v, want one closed interval %v–%v in eu-west", got, start, end)
	}
	// since filters; limit bounds; another account's intervals never show.
	if got, _ := s.Usage(ctx, "acc_u1", start.Add(time.Minute), 100); len(got) != 0 {
		t.Fatalf("since filter: got %d, want 0", len(got))
	}
	if got, _ := s.Usage(ctx, "acc_u2", start.Add(-time.Hour), 100); len(got) != 1 || got[0].DeviceID != "dev_u2" || got[0].End != nil {
		t.Fatalf("acc_u2: got %+v, want its one open interval", got)
	}
	created, err := s.DevicesCreated(ctx, []string{"dev_u2", "dev_gone", "dev_u1", "dev_u2"})
	must(t, "DevicesCreated", err)
	if len(created) != 2 || !created["dev_u1"].Equal(t0().Add(501*time.Second)) || !created["dev_u2"].Equal(t0().Add(502*time.Second)) {
		t.Fatalf("DevicesCreated: got %v, want dev_u1 and dev_u2 at their creation", created)
	}
	_, err = s.Usage(ctx, "acc_u1", start, 0)
	wantCode(t, "Usage limit 0", err, errs.Invalid)
	_, err = s.RecordIntervals(ctx, "", []store.Interval{{DeviceID: "dev_u1", Start: start}})
	wantCode(t, "RecordIntervals no region", err, errs.Invalid)

	// Deleting a device ends its open sessions, and a late report of the
	// end still lands on the existing row.
	must(t, "DeleteDevice", s.DeleteDevice(ctx, "acc_u2", "dev_u2"))
	got, _ = s.Usage(ctx, "acc_u2", start.Add(-time.Hour), 100)
	if len(got) != 1 || got[0].End == nil {
		t.Fatalf("after delete: got %+v, want the interval closed", got)
	}
	late := start.Add(3 * time.Minute)
	if n, err := s.RecordIntervals(ctx, "eu-west", []store.Interval{{DeviceID: "dev_u2", Start: start.Add(time.Minute), End: &late}}); err != nil || n != 1 {
		t.Fatalf("late end: got %d, %v; want 1 kept", n, err)
	}
	got, _ = s.Usage(ctx, "acc_u2", start.Add(-time.Hour), 100)
	if len(got) != 1 || !got[0].End.Equal(late) {
		t.Fatalf("late end: got %+v, want end %v", got, late)
	}
}
