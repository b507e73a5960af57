package storetest

import (
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// testCloseStaleSessions: an open interval whose gateway stopped
// reporting is closed at the minute the gateway was last seen (at most
// maxLen after its start); one whose gateway is gone ends when it was last
// seen, or at its start if never; one open for longer than the limit is
// closed whatever its gateway; intervals of gateways still reporting, and
// closed ones, are left alone; limit bounds each call.
func testCloseStaleSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	base := t0().Truncate(time.Minute)
	mkAccount(t, s, "acc_st")
	for i, id := range []string{"dev_st1", "dev_st2", "dev_st3", "dev_st4", "dev_st5", "dev_st6"} {
		mkDevice(t, s, "acc_st", id, 600+i)
	}
	for i, id := range []string{"gw-alive", "gw-dead", "gw-never", "gw-gone"} {
		must(t, "CreateGateway", s.CreateGateway(ctx, &store.Gateway{ID: id, Region: "eu", Endpoint: "198.18.0.9:51820",
			PublicKey: PublicKey(40 + i), CredentialHash: []byte("cred-" + id), CreatedAt: base}))
	}
	now := base.Add(10 * time.Hour)
	must(t, "TouchGateway alive", s.TouchGateway(ctx, "gw-alive", now.Add(-time.Minute)))
	deadSeen := base.Add(3*time.Hour + 17*time.Minute + 42*time.Second)
	must(t, "TouchGateway dead", s.TouchGateway(ctx, "gw-dead", deadSeen))
	goneSeen := base.Add(2 * time.Hour)
	must(t, "TouchGateway gone", s.TouchGateway(ctx, "gw-gone", goneSeen))

	end := base.Add(time.Hour)
	_, err := s.RecordIntervals(ctx, "eu", []store.Interval{
		{DeviceID: "dev_st1", Start: base.Add(time.Hour), GatewayID: "gw-alive"}, // still reported: kept open
		{DeviceID: "dev_st2", Start: base.Add(time.Hour), GatewayID: "gw-dead"},  // ends at deadSeen's minute
		{DeviceID: "dev_st3", Start: base.Add(time.Hour), GatewayID: "gw-never"}, // never seen: ends at its start
		{DeviceID: "dev_st4", Start: base, End: &end, GatewayID: "gw-dead"},      // closed: untouched
		{DeviceID: "dev_st5", Start: base.Add(time.Hour), GatewayID: "gw-gone"},  // gateway removed below
		{DeviceID: "dev_st6", Start: base, GatewayID: "gw-alive"},                // open past the limit
	})
	must(t, "RecordIntervals", err)
	// Removing a gateway ends its open intervals when it was last seen.
	if _, err := s.DeleteGateway(ctx, "gw-gone"); err != nil {
		t.Fatal(err)
	}
	ends := func() map[string]*time.Time {
		got, err := s.Usage(ctx, "acc_st", base.Add(-time.Hour), 100)
		must(t, "Usage", err)
		out := map[string]*time.Time{}
		for _, iv := range got {
			out[iv.DeviceID] = iv.End
		}
		return out
	}
	if e := ends()["dev_st5"]; e == nil || !e.Equal(goneSeen) {
		t.Fatalf("interval of a removed gateway: ends %v, want %v", e, goneSeen)
	}

	_, err = s.CloseStaleSessions(ctx, now, now, time.Hour, 0)
	wantCode(t, "CloseStaleSessions limit 0", err, errs.Invalid)
	deadBefore, openBefore := now.Add(-10*time.Minute), now.Add(-9*time.Hour)
	n, err := s.CloseStaleSessions(ctx, deadBefore, openBefore, 8*time.Hour, 2)
	must(t, "CloseStaleSessions", err)
	if n != 2 {
		t.Fatalf("first batch closed %d, want 2 (the limit)", n)
	}
	n, err = s.CloseStaleSessions(ctx, deadBefore, openBefore, 8*time.Hour, 2)
	must(t, "CloseStaleSessions again", err)
	if n != 1 {
		t.Fatalf("second batch closed %d, want 1", n)
	}
	if n, _ := s.CloseStaleSessions(ctx, deadBefore, openBefore, 8*time.Hour, 2); n != 0 {
		t.Fatalf("third batch closed %d, want 0", n)
	}
	got := ends()
	for dev, want := range map[string]*time.Time{
		"dev_st1": nil,
		"dev_st2": ptr(deadSeen.Truncate(time.Minute)),
		"dev_st3": ptr(base.Add(time.Hour)),
		"dev_st4": &end,
		"dev_st5": &goneSeen,
		"dev_st6": ptr(base.Add(8 * time.Hour)), // at most maxLen after its start
	} {
		if e := got[dev]; (e == nil) != (want == nil) || (e != nil && !e.Equal(*want)) {
			t.Errorf("%s: ends %v, want %v", dev, e, want)
		}
	}
	// A closed interval reported again as open stays closed, and the
	// gateway reporting it is not kept.
	if _, err := s.RecordIntervals(ctx, "eu", []store.Interval{{DeviceID: "dev_st2", Start: base.Add(time.Hour), GatewayID: "gw-dead"}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CloseStaleSessions(ctx, deadBefore, openBefore, 8*time.Hour, 10); n != 0 {
		t.Fatalf("after a late open report: closed %d, want 0", n)
	}
}
