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
// Only closed sessions of active accounts count; accounts whose
// restriction or objection (GDPR Art. 18 and 21) stops statistics, as
// package processing decides, are left out by the store query, as are
// anonymised sessions. Account identities never reach this package: the
// store replaces them with per-query numbers.
//
// # Budget
//
// Every report spends privacy budget: the same question asked again gives
// fresh noise, and averaging many answers weakens the guarantee. So each
// calendar quarter (UTC) has a budget (Config.Budget, default
// DefaultQuarterBudget), and every released report is entered in a ledger
// with who ran it, what it covered and the epsilon it spent. A report that
// would take the quarter's entries past the budget is refused
// (Precondition, field "epsilon") and nothing is released. A single report
// may spend at most MaxReportEpsilon and needs a minimum group of at
// least MinReportGroup accounts, unless a privacy officer overrides these
// limits with a reason (Options.Override, staff.ActStatsOverride), which
// is audited; the quarter's budget has no override. Each run is audited
// with the epsilon it spent.
package stats

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/processing"
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
	MinMinGroup            = 2  // a group of one is one person; the least an override allows
	MaxEpsilon             = 1e6
	DefaultQuarterBudget   = 3.0 // epsilon per calendar quarter
	MaxReportEpsilon       = 1.0 // per report, without an override
	MinReportGroup         = 10  // per report, without an override
	MaxOverrideLen         = 500 // characters of an override reason
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
	// Override is a privacy officer's reason for a report beyond
	// MaxReportEpsilon or below MinReportGroup; "" for none.
	Override string
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
	// Budget is the quarter's budget after this report was entered.
	Budget Budget `json:"budget"`
}

// Budget is what a quarter's privacy budget has spent and has left.
type Budget struct {
	Quarter string  `json:"quarter"` // "2026-Q1"
	Budget  float64 `json:"budget"`  // epsilon
	Spent   float64 `json:"spent"`
	Left    float64 `json:"left"`
	Entries []Spend `json:"entries"` // oldest first
}

// Spend is one report in the ledger.
type Spend struct {
	ID        string    `json:"id"`
	Report    string    `json:"report"`
	StaffID   string    `json:"staff_id"`
	StaffRole string    `json:"staff_role"`
	Epsilon   float64   `json:"epsilon"`
	MinGroup  int       `json:"min_group"`
	Override  string    `json:"override,omitempty"`
	SpentAt   time.Time `json:"spent_at"`
}

// Config holds a Service's dependencies.
type Config struct {
	Store store.StatsStore
	Audit staff.Auditor
	Clock func() time.Time
	Rand  io.Reader // ledger entry ids
	// Budget is the epsilon each calendar quarter may spend (the setting
	// --stats-budget); 0 means DefaultQuarterBudget.
	Budget float64
}

// Service produces reports. It is safe for concurrent use.
type Service struct{ cfg Config }

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("stats: missing dependency")
	}
	if cfg.Budget == 0 {
		cfg.Budget = DefaultQuarterBudget
	}
	if !(cfg.Budget > 0 && cfg.Budget <= MaxEpsilon) {
		return nil, fmt.Errorf("stats: the quarter's budget must be positive")
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
	if err := o.checkLimits(); err != nil {
		return 0, err
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

// overrides reports whether o goes beyond the per-report limits.
func (o *Options) overrides() bool {
	return o.Epsilon > MaxReportEpsilon || o.MinGroup < MinReportGroup
}

// checkLimits checks the per-report limits and the override reason.
// Errors name "epsilon", "min_group" or "override".
func (o *Options) checkLimits() error {
	o.Override = strings.TrimSpace(o.Override)
	if o.Override == "" {
		if o.Epsilon > MaxReportEpsilon {
			return errs.Field(errs.Invalid, "epsilon",
				"a report may spend at most epsilon %g; a privacy officer may override this with a reason (--override)", MaxReportEpsilon)
		}
		if o.MinGroup < MinReportGroup {
			return errs.Field(errs.Invalid, "min_group",
				"a report needs a minimum group of at least %d accounts; a privacy officer may override this with a reason (--override)", MinReportGroup)
		}
		return nil
	}
	if !o.overrides() {
		return errs.Field(errs.Invalid, "override",
			"--override is only for a report beyond epsilon %g or below a minimum group of %d", MaxReportEpsilon, MinReportGroup)
	}
	if len([]rune(o.Override)) > MaxOverrideLen || strings.ContainsFunc(o.Override, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errs.Field(errs.Invalid, "override", "the override reason must be one line of at most %d characters", MaxOverrideLen)
	}
	return nil
}

// Quarter returns the calendar quarter (UTC) of t, as "2026-Q1".
func Quarter(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%04d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
}

// parseQuarter checks q ("2026-Q1"); "" is the quarter of now.
func parseQuarter(q string, now time.Time) (string, error) {
	if q == "" {
		return Quarter(now), nil
	}
	var y, n int
	if _, err := fmt.Sscanf(q, "%4d-Q%1d", &y, &n); err != nil || n < 1 || n > 4 || y < 2000 || fmt.Sprintf("%04d-Q%d", y, n) != q {
		return "", errs.Field(errs.Invalid, "quarter", "a quarter is written like 2026-Q1")
	}
	return q, nil
}

// microEpsilon returns eps in millionths, rounded up, as the ledger keeps it.
func microEpsilon(eps float64) int64 { return int64(math.Ceil(eps*1e6 - 1e-6)) }

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
	if strings.TrimSpace(o.Override) != "" {
		if err := staff.Authorize(by, staff.ActStatsOverride); err != nil {
			return nil, err
		}
	}
	now := s.cfg.Clock()
	days, err := o.normalize(now)
	if err != nil {
		return nil, err
	}
	quarter := Quarter(now)
	if _, err := s.checkBudget(ctx, quarter, o.Epsilon); err != nil {
		return nil, err
	}
	data, err := s.cfg.Store.DailyUsage(ctx, o.From, o.To.Add(24*time.Hour), processing.Excluding(processing.Statistics))
	if err != nil {
		return nil, err
	}
	rows, err := aggregate(data, o, int64(days)*int64(o.MaxRegionsPerDay))
	if err != nil {
		return nil, err
	}
	// Nothing is released unless the ledger takes the spend.
	report := fmt.Sprintf("usage %s..%s", o.From.Format(time.DateOnly), o.To.Format(time.DateOnly))
	if err := s.spend(ctx, by, quarter, report, o, now); err != nil {
		return nil, err
	}
	b, err := s.budget(ctx, quarter)
	if err != nil {
		return nil, err
	}
	return &Report{
		From: o.From.Format(time.DateOnly), To: o.To.Format(time.DateOnly), PrivacyUnit: "account",
		Epsilon: o.Epsilon, Delta: o.Delta, MinGroup: o.MinGroup, MaxRegionsPerDay: o.MaxRegionsPerDay,
		MaxSessionsPerDay: o.MaxSessionsPerDay, MaxHoursPerDay: o.MaxHoursPerDay, Noise: "laplace", Rows: rows,
		Budget: *b,
	}, nil
}

// checkBudget returns the quarter's budget, or Precondition (field
// "epsilon") if eps more would exceed it.
func (s *Service) checkBudget(ctx context.Context, quarter string, eps float64) (*Budget, error) {
	b, err := s.budget(ctx, quarter)
	if err != nil {
		return nil, err
	}
	if microEpsilon(b.Spent)+microEpsilon(eps) > microEpsilon(b.Budget) {
		return nil, errs.Field(errs.Precondition, "epsilon",
			"the statistics budget of %s has epsilon %g left of %g: a report of epsilon %g would exceed it (`nitronet admin stats budget` shows the ledger)",
			quarter, b.Left, b.Budget, eps)
	}
	return b, nil
}

// spend enters the report in the ledger, within the quarter's budget,
// and audits it, and the override if there is one.
func (s *Service) spend(ctx context.Context, by staff.Principal, quarter, report string, o Options, now time.Time) error {
	id, err := ident.New(s.cfg.Rand, "sld")
	if err != nil {
		return err
	}
	e := &store.StatsSpend{ID: id, Quarter: quarter, Report: report, StaffID: by.ID, StaffRole: by.Role,
		MicroEpsilon: microEpsilon(o.Epsilon), MinGroup: o.MinGroup, Override: o.Override, SpentAt: now}
	if err := s.cfg.Store.SpendStatsBudget(ctx, e, microEpsilon(s.cfg.Budget)); err != nil {
		return err
	}
	detail := fmt.Sprintf("%s epsilon=%g delta=%g min-group=%d quarter=%s ledger=%s",
		report, o.Epsilon, o.Delta, o.MinGroup, quarter, id)
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActStatsView, "usage_statistics", detail); err != nil {
		return err
	}
	if o.Override != "" {
		return s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActStatsOverride, "usage_statistics",
			fmt.Sprintf("overrode the per-report limits (at most epsilon %g, a minimum group of %d) with epsilon=%g min-group=%d for ledger %s: %s",
				MaxReportEpsilon, MinReportGroup, o.Epsilon, o.MinGroup, id, o.Override))
	}
	return nil
}

// Budget returns what quarter ("2026-Q1"; "" for the current one) has
// spent and has left, with its ledger, for by, who must be allowed
// staff.ActStatsView; the view is audited. A malformed quarter is Invalid
// with field "quarter".
func (s *Service) Budget(ctx context.Context, by staff.Principal, quarter string) (*Budget, error) {
	if err := staff.Authorize(by, staff.ActStatsView); err != nil {
		return nil, err
	}
	q, err := parseQuarter(strings.TrimSpace(quarter), s.cfg.Clock())
	if err != nil {
		return nil, err
	}
	b, err := s.budget(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActStatsView, "stats_ledger",
		"viewed the statistics budget of "+q); err != nil {
		return nil, err
	}
	return b, nil
}

// budget reads quarter's ledger.
func (s *Service) budget(ctx context.Context, quarter string) (*Budget, error) {
	es, err := s.cfg.Store.StatsLedger(ctx, quarter)
	if err != nil {
		return nil, err
	}
	b := &Budget{Quarter: quarter, Budget: s.cfg.Budget, Entries: []Spend{}}
	var spent int64
	for _, e := range es {
		spent += e.MicroEpsilon
		b.Entries = append(b.Entries, Spend{ID: e.ID, Report: e.Report, StaffID: e.StaffID, StaffRole: e.StaffRole,
			Epsilon: float64(e.MicroEpsilon) / 1e6, MinGroup: e.MinGroup, Override: e.Override, SpentAt: e.SpentAt.UTC()})
	}
	b.Spent = float64(spent) / 1e6
	b.Left = float64(max(microEpsilon(s.cfg.Budget)-spent, 0)) / 1e6
	return b, nil
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
