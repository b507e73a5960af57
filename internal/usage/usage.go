// Package usage keeps what the policy says Nitronet keeps about use of the
// service: the duration and intervals of sessions (device, gateway region,
// start, end, at minute granularity), or with recording set to "none" only
// a live count of open sessions, held in memory.
//
// Gateways derive sessions from WireGuard handshakes and report them here.
// Nothing else about a session — endpoints, destinations, bytes — exists in
// this package's inputs, so it cannot be kept.
package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/store"
)

// Recording modes.
const (
	RecordIntervals = "intervals"
	RecordNone      = "none"
)

// MaxReport bounds the intervals in one gateway report.
const MaxReport = 1000

// Service records and serves session intervals. It is safe for concurrent
// use.
type Service struct {
	store store.Store
	mode  string
	clock func() time.Time
	log   *slog.Logger

	mu   sync.Mutex
	live map[string]map[string]time.Time // gateway -> device -> start of open session
}

// Config holds a Service's dependencies and its recording mode; all are
// required.
type Config struct {
	Store store.Store
	// Mode is RecordIntervals or RecordNone.
	Mode   string
	Clock  func() time.Time
	Logger *slog.Logger
}

// New returns a Service recording in cfg.Mode.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Clock == nil || cfg.Logger == nil {
		return nil, errors.New("usage: missing dependency")
	}
	if cfg.Mode != RecordIntervals && cfg.Mode != RecordNone {
		return nil, fmt.Errorf("usage recording must be %q or %q", RecordIntervals, RecordNone)
	}
	return &Service{store: cfg.Store, mode: cfg.Mode, clock: cfg.Clock, log: cfg.Logger, live: map[string]map[string]time.Time{}}, nil
}

// Mode returns the recording mode.
func (s *Service) Mode() string { return s.mode }

// ClockSkew is how far a gateway's clock may differ from the control
// server's: an interval may start or end up to ClockSkew in the future, and
// start up to ClockSkew before its device was created.
const ClockSkew = 5 * time.Minute

// Report takes a gateway's batch. Times are truncated to the minute. A
// batch with an interval that cannot be true is refused whole with
// Invalid, naming the member (intervals.device_id, intervals.start,
// intervals.end): a malformed device ID, a missing start, a start or end
// in the future, an end before the start, an interval longer than
// gwproto.MaxSession or one still open more than MaxSession (plus
// ClockSkew) after its start, or (when recording intervals) a start before
// the device was created. These bounds keep every recorded
// interval inside the device's life, so that retention, which deletes
// intervals that ended before its cut-off, reaches each one: a report
// from 1900, or one that ends in 9999, is refused. Intervals of devices
// that no longer exist only close intervals already recorded (see
// store.UsageStore). In "none" mode only the in-memory live count
// changes.
func (s *Service) Report(ctx context.Context, gatewayID, region string, r gwproto.SessionReport) error {
	if len(r.Intervals) > MaxReport {
		return errs.Field(errs.Invalid, "intervals", "at most %d intervals per report", MaxReport)
	}
	now := s.clock()
	latest := now.Add(ClockSkew)
	ivs := make([]store.Interval, 0, len(r.Intervals))
	for _, in := range r.Intervals {
		if !ident.Valid(in.DeviceID, "dev") {
			return errs.Field(errs.Invalid, "intervals.device_id", "interval has an invalid device_id")
		}
		if in.Start.IsZero() || in.Start.After(latest) {
			return errs.Field(errs.Invalid, "intervals.start", "interval start is missing or in the future")
		}
		iv := store.Interval{DeviceID: in.DeviceID, Region: region, Start: in.Start.UTC().Truncate(time.Minute), GatewayID: gatewayID}
		if in.End != nil {
			e := in.End.UTC().Truncate(time.Minute)
			if e.Before(iv.Start) {
				return errs.Field(errs.Invalid, "intervals.end", "interval ends before it starts")
			}
			if in.End.After(latest) {
				return errs.Field(errs.Invalid, "intervals.end", "interval end is in the future")
			}
			iv.End = &e
		}
		ivs = append(ivs, iv)
	}
	if s.mode == RecordIntervals && len(ivs) > 0 {
		if err := s.withinDeviceLife(ctx, ivs); err != nil {
			return err
		}
	}
	for _, iv := range ivs {
		if err := withinSessionLimit(iv.Start, iv.End, now); err != nil {
			return err
		}
	}
	s.track(gatewayID, ivs)
	if s.mode == RecordNone || len(ivs) == 0 {
		return nil
	}
	if _, err := s.store.RecordIntervals(ctx, region, ivs); err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	return nil
}

// withinSessionLimit returns Invalid if an interval starting at start
// and ending at end (nil while open), both truncated, is longer than
// gwproto.MaxSession, or has been open longer than that at now, give or
// take ClockSkew: a gateway reports a longer session as consecutive
// intervals (package gateway/sessions), and the retention sweep closes an
// open interval that outlived the limit (store.CloseStaleSessions).
func withinSessionLimit(start time.Time, end *time.Time, now time.Time) error {
	if end == nil {
		if now.Sub(start) > gwproto.MaxSession+ClockSkew {
			return errs.Field(errs.Invalid, "intervals.start", "interval has been open since %s, longer than the session limit of %s",
				start.Format(time.RFC3339), gwproto.MaxSession)
		}
		return nil
	}
	if d := end.Sub(start); d > gwproto.MaxSession {
		return errs.Field(errs.Invalid, "intervals.end", "interval lasts %s, longer than the session limit of %s", d, gwproto.MaxSession)
	}
	return nil
}

// withinDeviceLife returns Invalid if an interval of an existing device
// starts more than ClockSkew before the device was created.
func (s *Service) withinDeviceLife(ctx context.Context, ivs []store.Interval) error {
	ids := make([]string, 0, len(ivs))
	for _, iv := range ivs {
		ids = append(ids, iv.DeviceID)
	}
	created, err := s.store.DevicesCreated(ctx, ids)
	if err != nil {
		return fmt.Errorf("read device creation times: %w", err)
	}
	for _, iv := range ivs {
		c, ok := created[iv.DeviceID]
		if ok && iv.Start.Before(c.Add(-ClockSkew).Truncate(time.Minute)) {
			return errs.Field(errs.Invalid, "intervals.start", "interval starts before its device was created")
		}
	}
	return nil
}

// track updates the live count from a batch.
func (s *Service) track(gatewayID string, ivs []store.Interval) {
	s.mu.Lock()
	defer s.mu.Unlock()
	open := s.live[gatewayID]
	if open == nil {
		open = map[string]time.Time{}
		s.live[gatewayID] = open
	}
	for _, iv := range ivs {
		if iv.End == nil {
			open[iv.DeviceID] = iv.Start
		} else if st, ok := open[iv.DeviceID]; ok && !st.After(iv.Start) {
			delete(open, iv.DeviceID)
		}
	}
}

// Live returns the number of open sessions per gateway id, as last
// reported. It is a count only.
func (s *Service) Live() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.live))
	for g, open := range s.live {
		out[g] = len(open)
	}
	return out
}

// Session is an interval as its owner sees it.
type Session struct {
	DeviceID  string     `json:"device_id"`
	Region    string     `json:"region"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
}

// ForAccount returns the account's sessions of the last days days, newest
// first (at most 10,000).
func (s *Service) ForAccount(ctx context.Context, accountID string, days int) ([]Session, error) {
	if days < 1 || days > 3660 {
		return nil, errs.Field(errs.Invalid, "days", "days must be 1 to 3660")
	}
	ivs, err := s.store.Usage(ctx, accountID, s.clock().AddDate(0, 0, -days), 10_000)
	if err != nil {
		return nil, err
	}
	out := make([]Session, 0, len(ivs))
	for _, iv := range ivs {
		out = append(out, Session{DeviceID: iv.DeviceID, Region: iv.Region, StartedAt: iv.Start, EndedAt: iv.End})
	}
	return out, nil
}

// Activity is what the account's session intervals say about one device:
// whether a session is open now, when the device was last used (the end
// of its latest session, or now, to the minute) and that session's
// gateway region.
type Activity struct {
	Connected bool
	LastUsed  time.Time
	Region    string
}

// activityDays is how far back Activity looks; retention ends intervals
// well before.
const activityDays = 400

// Activity returns the activity of each of the account's devices that has
// a session interval in the store, by device id. In "none" mode nothing is
// stored and the map is empty.
func (s *Service) Activity(ctx context.Context, accountID string) (map[string]Activity, error) {
	out := map[string]Activity{}
	if s.mode == RecordNone {
		return out, nil
	}
	now := s.clock().UTC().Truncate(time.Minute)
	ivs, err := s.store.Usage(ctx, accountID, now.AddDate(0, 0, -activityDays), 10_000)
	if err != nil {
		return nil, err
	}
	for _, iv := range ivs {
		end, open := now, iv.End == nil
		if !open {
			end = iv.End.UTC()
		}
		a, seen := out[iv.DeviceID]
		if !seen || end.After(a.LastUsed) || (open && !a.Connected) {
			a.LastUsed, a.Region = end, iv.Region
		}
		a.Connected = a.Connected || open
		out[iv.DeviceID] = a
	}
	return out, nil
}
