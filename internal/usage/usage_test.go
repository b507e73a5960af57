package usage_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/usage"
)

var created = time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)

// IDs in the form ident.New makes.
const (
	accID  = "acc_aaaaaaaaaaaaaaaaaaaaaaaaaa"
	devID  = "dev_aaaaaaaaaaaaaaaaaaaaaaaaaa"
	goneID = "dev_bbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// newService returns a service recording in mode on a SQLite store that
// holds one device, devID, created at created, and a clock ten days
// later.
func newService(t *testing.T, mode string) (*usage.Service, store.Store, time.Time) {
	t.Helper()
	st := storetest.SQLite(t, storetest.DefaultPool())
	ctx := t.Context()
	if err := st.CreateAccount(ctx, &store.Account{ID: accID, EmailSealed: []byte("e"), MobileSealed: []byte("m"),
		WrappedKey: []byte("k"), EmailIndex: []byte("ei"), MobileIndex: []byte("mi"), PasswordHash: "$argon2id$x",
		Status: store.StatusActive, CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDevice(ctx, &store.Device{ID: devID, AccountID: accID, SealedName: []byte("laptop"),
		PublicKey: storetest.PublicKey(1), CreatedAt: created}, 5); err != nil {
		t.Fatal(err)
	}
	now := created.Add(10 * 24 * time.Hour)
	svc, err := usage.New(usage.Config{Store: st, Mode: mode, Clock: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st, now
}

// TestReportBounds: an interval must lie within its device's life, as
// far as the clocks can tell: not before the device was created, not
// ending or starting in the future, not ending before it starts. Each
// bound allows usage.ClockSkew.
func TestReportBounds(t *testing.T) {
	svc, st, now := newService(t, usage.RecordIntervals)
	at := func(t time.Time) *time.Time { return &t }
	y1900 := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	y9999 := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		iv    gwproto.Interval
		field string // "" when accepted
	}{
		{"from 1900, still open", gwproto.Interval{Start: y1900}, "intervals.start"},
		{"from 1900 to 1901", gwproto.Interval{Start: y1900, End: at(y1900.AddDate(1, 0, 0))}, "intervals.start"},
		{"ending in 9999", gwproto.Interval{Start: now.Add(-time.Hour), End: at(y9999)}, "intervals.end"},
		{"starting in 9999", gwproto.Interval{Start: y9999}, "intervals.start"},
		{"a day before the device", gwproto.Interval{Start: created.AddDate(0, 0, -1), End: at(created)}, "intervals.start"},
		{"beyond the skew before the device", gwproto.Interval{Start: created.Add(-usage.ClockSkew - time.Minute)}, "intervals.start"},
		{"within the skew before the device", gwproto.Interval{Start: created.Add(-usage.ClockSkew + time.Minute), End: at(created.Add(time.Hour))}, ""},
		{"starting beyond the skew ahead", gwproto.Interval{Start: now.Add(usage.ClockSkew + time.Minute)}, "intervals.start"},
		{"ending beyond the skew ahead", gwproto.Interval{Start: now.Add(-time.Hour), End: at(now.Add(usage.ClockSkew + time.Minute))}, "intervals.end"},
		{"ending before it starts", gwproto.Interval{Start: now.Add(-time.Hour), End: at(now.Add(-2 * time.Hour))}, "intervals.end"},
		{"ending within the skew ahead", gwproto.Interval{Start: now.Add(-time.Hour), End: at(now.Add(usage.ClockSkew - time.Minute))}, ""},
		{"ten days long, ended now", gwproto.Interval{Start: created.Add(time.Minute), End: at(now)}, "intervals.end"},
		{"a minute over the session limit", gwproto.Interval{Start: now.Add(-gwproto.MaxSession - 2*time.Minute), End: at(now.Add(-time.Minute))}, "intervals.end"},
		{"the session limit, ended now", gwproto.Interval{Start: now.Add(-gwproto.MaxSession), End: at(now)}, ""},
		{"open beyond the session limit", gwproto.Interval{Start: now.Add(-gwproto.MaxSession - usage.ClockSkew - time.Minute)}, "intervals.start"},
		{"open for almost the session limit", gwproto.Interval{Start: now.Add(-gwproto.MaxSession + time.Minute)}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.iv.DeviceID = devID
			// A valid interval in the same batch is refused with it.
			other := gwproto.Interval{DeviceID: devID, Start: now.Add(-3 * time.Minute)}
			err := svc.Report(t.Context(), "gw_1", "eu-west", gwproto.SessionReport{Intervals: []gwproto.Interval{other, c.iv}})
			if c.field == "" {
				if err != nil {
					t.Fatalf("got %v, want it recorded", err)
				}
				return
			}
			if errs.CodeOf(err) != errs.Invalid || errs.FieldOf(err) != c.field {
				t.Fatalf("got %v (field %q), want invalid naming %s", err, errs.FieldOf(err), c.field)
			}
		})
	}
	got, err := st.Usage(t.Context(), accID, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, iv := range got {
		if iv.Start.Before(created.Add(-usage.ClockSkew)) || iv.Start.After(now) || (iv.End != nil && iv.End.After(now.Add(usage.ClockSkew))) {
			t.Errorf("recorded %v – %v, outside the device's life", iv.Start, iv.End)
		}
	}
	if len(got) != 5 {
		t.Errorf("got %d intervals recorded, want 5 (the four accepted and the batch's valid one)", len(got))
	}

	// A device that no longer exists cannot be checked; its report only
	// closes what was recorded, so nothing new is kept.
	if err := svc.Report(t.Context(), "gw_1", "eu-west", gwproto.SessionReport{Intervals: []gwproto.Interval{
		{DeviceID: goneID, Start: now.Add(-time.Hour)}}}); err != nil {
		t.Fatalf("a removed device's report: %v", err)
	}
	if after, err := st.Usage(t.Context(), accID, time.Time{}, 100); err != nil || len(after) != len(got) {
		t.Fatalf("after a removed device's report: %d intervals, %v; want %d", len(after), err, len(got))
	}
}

// TestReportBoundsNone: with recording off nothing reaches the store, so
// the device's creation is not read; the time bounds still apply.
func TestReportBoundsNone(t *testing.T) {
	svc, _, now := newService(t, usage.RecordNone)
	if err := svc.Report(t.Context(), "gw_1", "eu-west", gwproto.SessionReport{Intervals: []gwproto.Interval{
		{DeviceID: devID, Start: now.Add(-time.Minute)}}}); err != nil {
		t.Fatal(err)
	}
	err := svc.Report(t.Context(), "gw_1", "eu-west", gwproto.SessionReport{Intervals: []gwproto.Interval{
		{DeviceID: devID, Start: now.AddDate(100, 0, 0)}}})
	if errs.CodeOf(err) != errs.Invalid {
		t.Fatalf("a start in 2126: got %v, want invalid", err)
	}
	if live := svc.Live()["gw_1"]; live != 1 {
		t.Fatalf("live count %d, want 1", live)
	}
}
