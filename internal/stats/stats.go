// Package stats produces the statistical reports the privacy policy allows
// ("statistical reports ... without being directly related to a specific
// individual"): aggregate usage per gateway region and day, made
// differentially private with Google's differential-privacy library
// (dpagg), with a minimum group size.
//
// # Guarantee
//
// The privacy unit is an account, over the whole report. Each account's
// contribution is bounded before any noise is added: on each day it counts
// in at most MaxRegionsPerDay regions (those it used most), with at most
// MaxSessionsPerDay sessions and MaxHoursPerDay hours per region. An
// account can thus touch at most days × MaxRegionsPerDay (day, region)
// groups, and the noise is scaled for that (the l0 sensitivity), so the
// whole report is (Epsilon, Delta)-differentially private for every
// account. Epsilon is split in three equal parts: choosing which groups to
// publish, the session counts and the hours.
//
// # Minimum group size
//
// A (day, region) group is published only if at least MinGroup distinct
// accounts contributed to it (an exact pre-threshold, never crossed by
// noise) and, on top of that, differentially private partition selection
// (dpagg.PreAggSelectPartition with Delta) keeps it. The selection applies
// to the accounts beyond MinGroup-1, so in practice a group needs somewhat
// more than MinGroup accounts, the more so the smaller Epsilon. Nothing
// about a suppressed group is published, not even that it was
// suppressed.
//
// # Who is counted
//
// Only closed sessions of active accounts count; accounts that restricted
// processing or objected to it (GDPR Art. 18 and 21) are left out by the
// store query, as are anonymised sessions. Account identities never reach
// this package: the store replaces them with per-query numbers.
//
// Every report spends privacy budget: the same question asked again gives
// fresh noise, and averaging many answers weakens the guarantee. Each run
// is audited with the epsilon it spent.
package stats

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// Defaults and limits of Options.
const (
	DefaultEpsilon         = 1.0
	DefaultDelta           = 1e-6
	DefaultMinGroup        = 10
	DefaultRegionsPerDay   = 2
	DefaultSessionsPerDay  = 20
	DefaultHoursPerDay     = 24.0
	MaxDays                = 92 // a quarter; noise grows with the number of days
	MinMinGroup            = 2  // a group of one is one person
	MaxEpsilon             = 1e6
	maxSessionsPerDayBound = 1000
	maxRegionsPerDayBound  = 50
)

// Options are the parameters of a usage report. From and To are UTC days;
// both are included. Zero values take the defaults above.
type Options struct {
	From, To          time.Time
	Epsilon           float64
	Delta             float64
	MinGroup          int
	MaxRegionsPerDay  int
	MaxSessionsPerDay int
	MaxHoursPerDay    float64
}

// Row is one published (day, region) group. Sessions and Hours are noisy,
// never negative; Hours is rounded to a tenth.
type Row struct {
	Day      string  `json:"day"` // YYYY-MM-DD
	Region   string  `json:"region"`
	Sessions int64   `json:"sessions"`
	Hours    float64 `json:"hours"`
}

// Report is a differentially private usage report.
type Report struct {
	From              string  `json:"from"`
	To                string  `json:"to"`
	PrivacyUnit       string  `json:"privacy_unit"`
	Epsilon           float64 `json:"epsilon"`
	Delta             float64 `json:"delta"`
	MinGroup          int     `json:"min_group"`
	MaxRegionsPerDay  int     `json:"max_regions_per_account_day"`
	MaxSessionsPerDay int     `json:"max_sessions_per_account_day_region"`
	MaxHoursPerDay    float64 `json:"max_hours_per_account_day_region"`
	Noise             string  `json:"noise"`
	Rows              []Row   `json:"rows"`
}

// Config holds a Service's dependencies.
type Config struct {
	Store store.StatsStore
	Audit staff.Auditor
	Clock func() time.Time
}

// Service produces reports. It is safe for concurrent use.
type Service struct{ cfg Config }

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("stats: missing dependency")
	}
	return &Service{cfg: cfg}, nil
}

// normalize fills defaults and checks o. It returns the number of days.
// Errors name their field: "from", "to", "epsilon", "delta", "min_group"
// or "bounds".
func (o *Options) normalize(now time.Time) (int, error) {
	if o.From.IsZero() || o.To.IsZero() {
		field := "from"
		if !o.From.IsZero() {
			field = "to"
		}
		return 0, errs.Field(errs.Invalid, field, "--from and --to dates are required")
	}
	o.From, o.To = day(o.From), day(o.To)
	if o.To.Before(o.From) {
		return 0, errs.Field(errs.Invalid, "to", "--to is before --from")
	}
	if o.From.After(now) {
		return 0, errs.Field(errs.Invalid, "from", "--from is in the future")
	}
	days := int(o.To.Sub(o.From)/(24*time.Hour)) + 1
	if days > MaxDays {
		return 0, errs.Field(errs.Invalid, "to", "a report covers at most %d days (noise grows with the number of days)", MaxDays)
	}
	if o.Epsilon == 0 {
		o.Epsilon = DefaultEpsilon
	}
	if !(o.Epsilon > 0 && o.Epsilon <= MaxEpsilon) {
		return 0, errs.Field(errs.Invalid, "epsilon", "epsilon must be positive and at most %g", float64(MaxEpsilon))
	}
	if o.Delta == 0 {
		o.Delta = DefaultDelta
	}
	if !(o.Delta > 0 && o.Delta < 1e-3) {
		return 0, errs.Field(errs.Invalid, "delta", "delta must be in (0, 0.001)")
	}
	if o.MinGroup == 0 {
		o.MinGroup = DefaultMinGroup
	}
	if o.MinGroup < MinMinGroup {
		return 0, errs.Field(errs.Invalid, "min_group", "the minimum group size must be at least %d", MinMinGroup)
	}
	if o.MaxRegionsPerDay == 0 {
		o.MaxRegionsPerDay = DefaultRegionsPerDay
	}
	if o.MaxSessionsPerDay == 0 {
		o.MaxSessionsPerDay = DefaultSessionsPerDay
	}
	if o.MaxHoursPerDay == 0 {
		o.MaxHoursPerDay = DefaultHoursPerDay
	}
	if o.MaxRegionsPerDay < 1 || o.MaxRegionsPerDay > maxRegionsPerDayBound ||
		o.MaxSessionsPerDay < 1 || o.MaxSessionsPerDay > maxSessionsPerDayBound ||
		!(o.MaxHoursPerDay > 0 && o.MaxHoursPerDay <= 24) {
		return 0, errs.Field(errs.Invalid, "bounds", "contribution bounds out of range")
	}
	return days, nil
}

func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

type partKey struct {
	day    time.Time
	region string
}

type partition struct {
	sel      *dpagg.PreAggSelectPartition
	sessions *dpagg.BoundedSumInt64
	hours    *dpagg.BoundedSumFloat64
}

// Usage returns the differentially private usage report for o. by must be
// allowed staff.ActStatsView; each run is audited with its parameters.
// Bad options are Invalid. Rows are ordered by day, then region.
func (s *Service) Usage(ctx context.Context, by staff.Principal, o Options) (*Report, error) {
	if err := staff.Authorize(by, staff.ActStatsView); err != nil {
		return nil, err
	}
	days, err := o.normalize(s.cfg.Clock())
	if err != nil {
		return nil, err
	}
	data, err := s.cfg.Store.DailyUsage(ctx, o.From, o.To.Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	rows, err := aggregate(data, o, int64(days)*int64(o.MaxRegionsPerDay))
	if err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("usage statistics %s..%s epsilon=%g delta=%g min-group=%d",
		o.From.Format(time.DateOnly), o.To.Format(time.DateOnly), o.Epsilon, o.Delta, o.MinGroup)
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActStatsView, "usage_statistics", detail); err != nil {
		return nil, err
	}
	return &Report{
		From: o.From.Format(time.DateOnly), To: o.To.Format(time.DateOnly), PrivacyUnit: "account",
		Epsilon: o.Epsilon, Delta: o.Delta, MinGroup: o.MinGroup, MaxRegionsPerDay: o.MaxRegionsPerDay,
		MaxSessionsPerDay: o.MaxSessionsPerDay, MaxHoursPerDay: o.MaxHoursPerDay, Noise: "laplace", Rows: rows,
	}, nil
}

// aggregate bounds each unit's contributions and computes the noisy,
// thresholded groups. l0 is the most groups one unit may touch.
func aggregate(data []store.DailyUsage, o Options, l0 int64) ([]Row, error) {
	// Bound: per unit and day, keep the MaxRegionsPerDay regions used most.
	type unitDay struct {
		unit int
		day  time.Time
	}
	byUnitDay := map[unitDay][]store.DailyUsage{}
	for _, d := range data {
		k := unitDay{d.Unit, d.Day}
		byUnitDay[k] = append(byUnitDay[k], d)
	}
	eps := o.Epsilon / 3
	parts := map[partKey]*partition{}
	for _, group := range byUnitDay {
		slices.SortFunc(group, func(a, b store.DailyUsage) int {
			return cmp.Or(cmp.Compare(b.Seconds, a.Seconds), cmp.Compare(a.Region, b.Region))
		})
		if len(group) > o.MaxRegionsPerDay {
			group = group[:o.MaxRegionsPerDay]
		}
		for _, d := range group {
			k := partKey{d.Day, d.Region}
			p := parts[k]
			if p == nil {
				var err error
				if p, err = newPartition(o, eps, l0); err != nil {
					return nil, err
				}
				parts[k] = p
			}
			if err := p.sel.Increment(); err != nil {
				return nil, err
			}
			if err := p.sessions.Add(d.Sessions); err != nil { // clamped by the library
				return nil, err
			}
			if err := p.hours.Add(float64(d.Seconds) / 3600); err != nil {
				return nil, err
			}
		}
	}
	rows := []Row{}
	for k, p := range parts {
		keep, err := p.sel.ShouldKeepPartition()
		if err != nil {
			return nil, err
		}
		if !keep {
			continue
		}
		n, err := p.sessions.Result()
		if err != nil {
			return nil, err
		}
		h, err := p.hours.Result()
		if err != nil {
			return nil, err
		}
		rows = append(rows, Row{Day: k.day.Format(time.DateOnly), Region: k.region,
			Sessions: max(n, 0), Hours: math.Round(max(h, 0)*10) / 10})
	}
	slices.SortFunc(rows, func(a, b Row) int { return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Region, b.Region)) })
	return rows, nil
}

func newPartition(o Options, eps float64, l0 int64) (*partition, error) {
	sel, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{
		Epsilon: eps, Delta: o.Delta, PreThreshold: int64(o.MinGroup), MaxPartitionsContributed: l0,
	})
	if err != nil {
		return nil, fmt.Errorf("stats: partition selection: %w", err)
	}
	sessions, err := dpagg.NewBoundedSumInt64(&dpagg.BoundedSumInt64Options{
		Epsilon: eps, MaxPartitionsContributed: l0, Lower: 0, Upper: int64(o.MaxSessionsPerDay), Noise: noise.Laplace(),
	})
	if err != nil {
		return nil, fmt.Errorf("stats: session sum: %w", err)
	}
	hours, err := dpagg.NewBoundedSumFloat64(&dpagg.BoundedSumFloat64Options{
		Epsilon: eps, MaxPartitionsContributed: l0, Lower: 0, Upper: o.MaxHoursPerDay, Noise: noise.Laplace(),
	})
	if err != nil {
		return nil, fmt.Errorf("stats: hours sum: %w", err)
	}
	return &partition{sel: sel, sessions: sessions, hours: hours}, nil
}
