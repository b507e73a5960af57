package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/retention"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/spf13/cobra"
)

// printRun writes a sweep's counts as a table.
func printRun(w io.Writer, r *store.RetentionRun) error {
	fmt.Fprintf(w, "Sweep %s (%s) %s, %s:\n", r.ID, r.Cause, r.StartedAt.UTC().Format(time.RFC3339),
		r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CATEGORY\tDAYS\tDELETED\tKEPT BY HOLD\tBATCHES\tNOTE")
	for _, c := range r.Counts {
		note := c.Skipped
		if c.Closed > 0 {
			note = fmt.Sprintf("closed %d open intervals first", c.Closed)
		}
		if c.Error != "" {
			note = "error: " + c.Error
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", c.Category, c.Days, c.Deleted, c.KeptByHold, c.Batches, note)
	}
	return tw.Flush()
}

func newAdminRetentionCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "retention", Short: "Retention rules and the sweeper"}
	c.AddCommand(newAdminRetentionRunCmd(a), newAdminRetentionRulesCmd(a))
	return c
}

func newAdminRetentionRunCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use: "run", Short: "Sweep now: delete every record past its retention (legal holds respected)", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			r, err := srv.Retention.RunNow(cmd.Context(), p)
			if err != nil {
				return err
			}
			return printRun(a.env.Stdout, r)
		}),
	}
}

func newAdminRetentionRulesCmd(a *admin) *cobra.Command {
	env := a.env
	var asJSON bool
	c := &cobra.Command{
		Use: "rules [--json]", Short: "Show the retention rules and the last sweep's counts", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			rs, last, err := srv.Retention.Status(cmd.Context(), p)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Stdout, retentionView(rs, last))
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CATEGORY\tDAYS\tDEFAULT\tRULE\tNOTE")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", r.Category, r.Days, r.DefaultDays, r.Rule, r.Note)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout)
			if last == nil {
				fmt.Fprintln(env.Stdout, "No sweep has run yet.")
				return nil
			}
			return printRun(env.Stdout, last)
		}),
	}
	jsonFlag(c, &asJSON)
	return c
}

// retentionJSON is `admin retention rules --json`.
type retentionJSON struct {
	Rules     []retentionRuleJSON `json:"rules"`
	LastSweep *sweepJSON          `json:"last_sweep"` // null before the first sweep
}

// retentionRuleJSON is one retention rule in force.
type retentionRuleJSON struct {
	Category    string   `json:"category"` // inventory category ID
	Name        string   `json:"name"`
	Covers      []string `json:"covers"`  // other categories kept in the same records
	Targets     []string `json:"targets"` // the sweeper's deletions carrying the rule out
	Days        int      `json:"days"`    // in force
	DefaultDays int      `json:"default_days"`
	Trigger     string   `json:"trigger"` // the event the days count from
	Rule        string   `json:"rule"`    // in words
	Note        string   `json:"note"`
}

// sweepJSON is one run of the retention sweeper.
type sweepJSON struct {
	ID         string           `json:"id"`
	Cause      string           `json:"cause"` // schedule or manual
	StartedAt  jsonTime         `json:"started_at"`
	FinishedAt jsonTime         `json:"finished_at"`
	Counts     []sweepCountJSON `json:"counts"`
}

// sweepCountJSON is what a sweep did for one target.
type sweepCountJSON struct {
	Category   string `json:"category"`
	Target     string `json:"target"`
	Days       int    `json:"days"`
	Deleted    int64  `json:"deleted"`
	KeptByHold int64  `json:"kept_by_hold"`
	Batches    int    `json:"batches"`
	Skipped    string `json:"skipped"` // why the target was not swept
	Error      string `json:"error"`
}

// retentionView returns the rules and the last sweep as --json prints them.
func retentionView(rs []retention.Rule, last *store.RetentionRun) retentionJSON {
	v := retentionJSON{Rules: []retentionRuleJSON{}}
	for _, r := range rs {
		v.Rules = append(v.Rules, retentionRuleJSON{Category: r.Category, Name: r.Name, Covers: nonNil(r.Covers),
			Targets: nonNil(r.Targets), Days: r.Days, DefaultDays: r.DefaultDays, Trigger: string(r.Trigger), Rule: r.Rule, Note: r.Note})
	}
	if last != nil {
		s := &sweepJSON{ID: last.ID, Cause: last.Cause, StartedAt: jsonTime(last.StartedAt), FinishedAt: jsonTime(last.FinishedAt),
			Counts: []sweepCountJSON{}}
		for _, c := range last.Counts {
			s.Counts = append(s.Counts, sweepCountJSON{Category: c.Category, Target: c.Target, Days: c.Days, Deleted: c.Deleted,
				KeptByHold: c.KeptByHold, Batches: c.Batches, Skipped: c.Skipped, Error: c.Error})
		}
		v.LastSweep = s
	}
	return v
}
