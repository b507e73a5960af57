// Package retention enforces the retention rules of the data inventory.
// Each rule deletes one category's records a number of days after the
// category's trigger (session end, expiry, account closure, ...). The
// days are those of the inventory in force: the defaults with the
// operator's --retention settings applied once (Effective).
//
// A Sweeper applies every rule in bounded batches (each its own short
// transaction), so it never holds a long lock, and never deletes data of
// an account under an active legal hold: the store checks holds inside
// each deleting transaction. Every sweep stores its counts per category,
// never contents, for the console (`nitronet admin retention rules`).
package retention

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/usage"
)

// TargetOutbox is the sweep target of the outbox files (Config.Outbox),
// the one target outside the database.
const TargetOutbox = "outbox_files"

// StaleGateway is how long a gateway may go unseen before its open
// session intervals are closed at the last moment it was seen. Gateways
// poll the control server at least every minute.
const StaleGateway = 10 * time.Minute

// Defaults.
const (
	DefaultBatch    = 5000      // rows per deleting transaction
	DefaultInterval = time.Hour // between scheduled sweeps
	MaxDays         = 100 * 365
)

// Rule is the retention rule of one inventory category.
type Rule struct {
	Category string   `json:"category"`         // inventory category id
	Name     string   `json:"name"`             // category name
	Covers   []string `json:"covers,omitempty"` // other categories stored in the same records
	// Targets are the store.Sweep* deletions carrying the rule out; none
	// if the records go with another rule's (Note says which) or are not
	// swept automatically.
	Targets     []string          `json:"targets,omitempty"`
	Days        int               `json:"days"`
	DefaultDays int               `json:"default_days"`
	Trigger     inventory.Trigger `json:"trigger"`
	Rule        string            `json:"rule"` // in words
	Note        string            `json:"note,omitempty"`
}

// step maps one category to its sweep target.
type step struct {
	category string
	targets  []string
	note     string
	covers   []string // categories stored in the same records
}

// plan returns the categories' sweep targets, in sweep order. A step's
// note says what its sweep deletes; docs/retention.md shows it.
func plan() []step {
	t := func(ts ...string) []string { return ts }
	return []step{
		{inventory.IDTokens, t(store.SweepTokens, store.SweepExportTokens, store.SweepStaffTokens),
			"login tokens, export-download tokens and staff login tokens", nil},
		{inventory.IDResetTokens, t(store.SweepResetTokens), "password-reset tokens", nil},
		{inventory.IDOutbound, t(store.SweepOutbound),
			"messages and reset requests still in the outbound queue (its worker deletes them as soon as they are handed on, and gives up on the others after the same period)", nil},
		{inventory.IDCodes, t(store.SweepCodes, store.SweepPendingContacts),
			"verification codes, and pending contact changes, which expire with their code", nil},
		{inventory.IDPeerFeed, t(store.SweepPeerChanges),
			"gateway peer-feed entries (gateways that fall further behind reload a snapshot)", nil},
		{inventory.IDSessions, t(store.SweepSessions), "session intervals that ended that long ago; first, an interval still open whose gateway stopped reporting is closed at the minute the gateway was last seen", nil},
		{inventory.IDInbox, t(store.SweepInbox), "inbox messages of closed accounts", nil},
		{inventory.IDDevices, t(store.SweepClosedDevices), "devices left on closed accounts (addresses freed, gateways told)", nil},
		{inventory.IDUnverified, t(store.SweepUnverified),
			"active accounts whose email and mobile were both never verified, with everything that references them (policy acceptances too)", nil},
		{inventory.IDAccount, t(store.SweepClosedAccounts),
			"the closed account's row, once its devices are gone (email, mobile and password hash were already crypto-shredded or cleared at closure); rows that reference it cascade, except policy acceptances, which keep the closing time and follow their own rule",
			[]string{inventory.IDEmail, inventory.IDMobile, inventory.IDPassword, inventory.IDTransfers}},
		{inventory.IDPrivacyRequests, t(store.SweepRequests), "privacy requests completed or denied that long ago", nil},
		{inventory.IDAudit, t(store.SweepAudit), "the oldest staff-audit entries, as a prefix of the hash chain; stops at the first entry about a held account", nil},
		{inventory.IDPolicyAcceptance, t(store.SweepAcceptances), "policy acceptances of closed accounts, counted from the closing time they carry, whether or not the account's row is still there", nil},
		{inventory.IDOutbox, t(TargetOutbox), "message files in DATA/outbox (not covered by legal holds: they name no account)", nil},
		{inventory.IDDisclosures, nil, "not swept: the disclosure ledger records no closing date yet; review by hand", nil},
		{inventory.IDBreaches, t(store.SweepBreaches), "breach records closed that long ago", nil},
		{inventory.IDStatsLedger, t(store.SweepStatsLedger), "statistics budget ledger entries written that long ago", nil},
	}
}

// ParseOverrides parses "CATEGORY=DAYS" settings (the --retention flag).
// Categories must be inventory ids with a rule of their own; DAYS must be
// 0 to MaxDays. A later setting for a category wins.
func ParseOverrides(settings []string, inv inventory.Inventory) (map[string]int, error) {
	out := map[string]int{}
	own := map[string]bool{}
	for _, p := range plan() {
		own[p.category] = true
	}
	for _, s := range settings {
		k, v, ok := strings.Cut(strings.TrimSpace(s), "=")
		if !ok {
			return nil, errs.E(errs.Invalid, "--retention %q: want CATEGORY=DAYS", s)
		}
		if _, found := inv.Category(k); !found || !own[k] {
			return nil, errs.E(errs.Invalid, "--retention %q: unknown category; use one of %s", s, strings.Join(ruleIDs(), ", "))
		}
		d, err := strconv.Atoi(v)
		if err != nil || d < 0 || d > MaxDays {
			return nil, errs.E(errs.Invalid, "--retention %q: days must be a whole number from 0 to %d", s, MaxDays)
		}
		out[k] = d
	}
	return out, nil
}

// ruleIDs returns the categories with a rule of their own, sorted: the
// keys --retention accepts.
func ruleIDs() []string {
	var ids []string
	for _, p := range plan() {
		ids = append(ids, p.category)
	}
	sort.Strings(ids)
	return ids
}

// Effective returns the inventory in force: inv with the --retention
// settings (see ParseOverrides) applied by inventory.WithDays, so that
// each overridden category, and those that follow it, state and keep the
// new period. The composition root calls it once and hands the result to
// the sweeper and to everything that states a period.
func Effective(inv inventory.Inventory, settings []string) (inventory.Inventory, error) {
	days, err := ParseOverrides(settings, inv)
	if err != nil {
		return nil, err
	}
	return inv.WithDays(days)
}

// Rules returns the rules of inv, the inventory in force, in sweep order.
// Every category of inv appears once, either as a rule or in another
// rule's Covers. DefaultDays is each category's shipped figure.
func Rules(inv inventory.Inventory) []Rule {
	var out []Rule
	seen := map[string]bool{}
	for _, p := range plan() {
		c, ok := inv.Category(p.category)
		if !ok {
			continue
		}
		out = append(out, Rule{Category: c.ID, Name: c.Name, Covers: p.covers, Targets: p.targets, Days: c.Retention.Days,
			DefaultDays: c.Retention.DefaultDays, Trigger: c.Retention.Trigger, Rule: c.Retention.String(), Note: p.note})
		seen[c.ID] = true
		for _, id := range p.covers {
			seen[id] = true
		}
	}
	// Categories without a step are listed so the console shows every
	// category; they are not swept automatically.
	for _, c := range inv {
		if seen[c.ID] {
			continue
		}
		out = append(out, Rule{Category: c.ID, Name: c.Name, Days: c.Retention.Days, DefaultDays: c.Retention.DefaultDays,
			Trigger: c.Retention.Trigger, Rule: c.Retention.String(), Note: "not swept automatically: " + c.Retention.Criteria})
	}
	return out
}

// Config holds a Sweeper's dependencies.
type Config struct {
	Store store.RetentionStore
	Holds store.HoldStore
	// Inventory is the inventory in force (see Effective): the sweeper
	// deletes by its periods.
	Inventory inventory.Inventory
	Audit     staff.Auditor
	Logger    *slog.Logger
	Clock     func() time.Time
	Rand      io.Reader
	Batch     int // rows per transaction, default DefaultBatch
	// Outbox deletes the outbox files written before a cutoff
	// (notify.PruneOutbox on DATA/outbox); nil skips TargetOutbox.
	Outbox func(before time.Time) (int64, error)
}

// Sweeper applies the retention rules. It is safe for concurrent use,
// though concurrent sweeps only share the work.
type Sweeper struct {
	cfg   Config
	rules []Rule
}

// New returns a Sweeper. Every field of cfg but Batch is required.
func New(cfg Config) (*Sweeper, error) {
	if cfg.Store == nil || cfg.Holds == nil || cfg.Inventory == nil || cfg.Audit == nil || cfg.Logger == nil ||
		cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("retention: missing dependency")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	return &Sweeper{cfg: cfg, rules: Rules(cfg.Inventory)}, nil
}

// Rules returns the sweeper's rules, in sweep order.
func (s *Sweeper) Rules() []Rule { return append([]Rule(nil), s.rules...) }

// sweepAll applies every rule once and records the run with cause
// ("schedule" or "manual"). A rule whose target is missing from this
// database is reported as skipped; an error in one rule is reported in its
// count and the others still run. It returns the run; the error is non-nil
// only if the run could not be recorded or ctx ended.
func (s *Sweeper) sweepAll(ctx context.Context, cause string) (*store.RetentionRun, error) {
	id, err := ident.New(s.cfg.Rand, "ret")
	if err != nil {
		return nil, err
	}
	run := &store.RetentionRun{ID: id, Cause: cause, StartedAt: s.cfg.Clock()}
	held, err := s.cfg.Holds.HeldAccounts(ctx, run.StartedAt)
	if err != nil {
		return nil, err
	}
	for _, r := range s.rules {
		if len(r.Targets) == 0 {
			run.Counts = append(run.Counts, store.SweepCount{Category: r.Category, Days: r.Days, Skipped: r.Note})
			continue
		}
		for _, target := range r.Targets {
			c := store.SweepCount{Category: r.Category, Target: target, Days: r.Days}
			if target == store.SweepSessions {
				s.closeStale(ctx, &c)
			}
			s.sweep(ctx, r, target, &c)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			run.Counts = append(run.Counts, c)
		}
	}
	run.FinishedAt = s.cfg.Clock()
	if err := s.cfg.Store.SaveRetentionRun(ctx, run); err != nil {
		return nil, err
	}
	var total int64
	for _, c := range run.Counts {
		total += c.Deleted
	}
	s.cfg.Logger.Info("retention sweep", "run", run.ID, "cause", cause, "deleted", total,
		"held_accounts", len(held), "duration", run.FinishedAt.Sub(run.StartedAt))
	return run, nil
}

// closeStale closes the open session intervals no gateway will close,
// counting into c.Closed, before the sessions are swept.
func (s *Sweeper) closeStale(ctx context.Context, c *store.SweepCount) {
	now := s.cfg.Clock()
	for ctx.Err() == nil {
		n, err := s.cfg.Store.CloseStaleSessions(ctx, now.Add(-StaleGateway), now.Add(-gwproto.MaxSession-usage.ClockSkew),
			gwproto.MaxSession, s.cfg.Batch)
		c.Closed += n
		if err != nil {
			c.Error = errs.MessageOf(err)
			s.cfg.Logger.Error("closing stale sessions failed", "err", err)
			return
		}
		if n < int64(s.cfg.Batch) {
			return
		}
	}
}

// sweep deletes the due records of r's target in batches, counting into
// c.
func (s *Sweeper) sweep(ctx context.Context, r Rule, target string, c *store.SweepCount) {
	now := s.cfg.Clock()
	cutoff := now.Add(-time.Duration(r.Days) * 24 * time.Hour)
	if target == TargetOutbox {
		if s.cfg.Outbox == nil {
			c.Skipped = "no outbox in this configuration"
			return
		}
		n, err := s.cfg.Outbox(cutoff)
		c.Deleted, c.Batches = n, 1
		if err != nil {
			c.Error = err.Error()
			s.cfg.Logger.Error("retention sweep failed", "category", r.Category, "err", err)
		}
		return
	}
	for {
		if ctx.Err() != nil {
			return
		}
		n, err := s.cfg.Store.SweepBatch(ctx, target, cutoff, now, s.cfg.Batch)
		if err != nil {
			if errs.Is(err, errs.Precondition) {
				c.Skipped = errs.MessageOf(err)
			} else {
				c.Error = errs.MessageOf(err)
				s.cfg.Logger.Error("retention sweep failed", "category", r.Category, "err", err)
			}
			return
		}
		c.Batches++
		c.Deleted += n
		if n < int64(s.cfg.Batch) {
			break
		}
	}
	kept, err := s.cfg.Store.SweepHeld(ctx, target, cutoff, now)
	if err != nil {
		c.Error = errs.MessageOf(err)
		return
	}
	c.KeptByHold = kept
}

// RunNow applies every rule once for by, who must be allowed
// staff.ActRetentionRun, and returns the run with its counts (see
// Store.SaveRetentionRun). A rule whose target is missing from this
// database is reported as skipped; an error in one rule is reported in its
// count and the others still run; the error is non-nil only if the run
// could not be recorded or ctx ended. The run's cause is "schedule" for
// staff.System (the hourly sweep of `nitronet serve`) and "manual" for a
// staff member. The sweep is audited with its total count; a scheduled
// sweep that deleted nothing is not, so the hourly runs do not fill the
// log.
func (s *Sweeper) RunNow(ctx context.Context, by staff.Principal) (*store.RetentionRun, error) {
	if err := staff.Authorize(by, staff.ActRetentionRun); err != nil {
		return nil, err
	}
	cause := "manual"
	if by.IsSystem() {
		cause = "schedule"
	}
	run, err := s.sweepAll(ctx, cause)
	if err != nil {
		return nil, err
	}
	var total, closed int64
	for _, c := range run.Counts {
		total += c.Deleted
		closed += c.Closed
	}
	if total == 0 && closed == 0 && by.IsSystem() {
		return run, nil
	}
	detail := fmt.Sprintf("retention sweep deleted %d records", total)
	if closed > 0 {
		detail += fmt.Sprintf(" and closed %d open session intervals", closed)
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActRetentionRun, run.ID, detail); err != nil {
		return nil, err
	}
	return run, nil
}

// Status returns the rules and the last sweep (nil if none ran yet) for
// staff member by, who must be allowed staff.ActRetentionView; the view
// is audited.
func (s *Sweeper) Status(ctx context.Context, by staff.Principal) ([]Rule, *store.RetentionRun, error) {
	if err := staff.Authorize(by, staff.ActRetentionView); err != nil {
		return nil, nil, err
	}
	last, err := s.cfg.Store.LastRetentionRun(ctx)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return nil, nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActRetentionView, "retention", "viewed retention rules and the last sweep"); err != nil {
		return nil, nil, err
	}
	return s.Rules(), last, nil
}
