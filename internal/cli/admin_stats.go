package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/stats"
	"github.com/spf13/cobra"
)

func newAdminStatsCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "stats", Short: "Differentially private statistics and their privacy budget"}
	c.AddCommand(newAdminStatsUsageCmd(a), newAdminStatsBudgetCmd(a))
	return c
}

func newAdminStatsUsageCmd(a *admin) *cobra.Command {
	env := a.env
	var from, to, format string
	var asJSON bool
	var o stats.Options
	c := &cobra.Command{
		Use:   "usage --from DATE --to DATE [--epsilon E] [--min-group K] [--override REASON] [--format table|json | --json]",
		Short: "Sessions and hours per region and day, with differential privacy",
		Long: "Sessions and hours of use per gateway region and UTC day, from --from to --to inclusive,\n" +
			"made differentially private (Laplace noise; the privacy unit is an account over the whole\n" +
			"report, with each account's use per day bounded). A group is shown only if at least\n" +
			"--min-group distinct accounts are in it (an exact check) and private partition selection\n" +
			"keeps it. Accounts that restricted or objected to processing are never counted.\n" +
			"Each run spends privacy budget and is audited. A report spends at most epsilon 1 and needs a\n" +
			"minimum group of at least 10, unless a privacy officer overrides this with --override REASON\n" +
			"(audited); the reports of a calendar quarter together spend at most the quarter's budget\n" +
			"(the setting --stats-budget, default 3), and one that would exceed it is refused.\n" +
			"`nitronet admin stats budget` shows what is spent and what is left.",
		Args:    cobra.NoArgs,
		PreRunE: required("from", "to"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.From, err = parseDay("from", from); err != nil {
				return usageError(cmd, "%v", err)
			}
			if o.To, err = parseDay("to", to); err != nil {
				return usageError(cmd, "%v", err)
			}
			if err := formatJSON(cmd, &format, asJSON); err != nil {
				return err
			}
			if format != "table" && format != "json" {
				return usageError(cmd, "--format must be table or json, not %q", format)
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				r, err := srv.Stats.Usage(cmd.Context(), p, o)
				if err != nil {
					return err
				}
				if format == "json" {
					return printJSON(env.Stdout, usageView(r))
				}
				return printUsage(env.Stdout, r)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&from, "from", "", "first day (YYYY-MM-DD, UTC)")
	f.StringVar(&to, "to", "", "last day, included (YYYY-MM-DD, UTC)")
	f.Float64Var(&o.Epsilon, "epsilon", stats.DefaultEpsilon, "privacy budget epsilon spent by this report")
	f.IntVar(&o.MinGroup, "min-group", stats.DefaultMinGroup, "minimum distinct accounts in a published group")
	f.StringVar(&o.Override, "override", "", "privacy officer: the reason for a report beyond epsilon 1 or below a minimum group of 10 (audited)")
	f.StringVar(&format, "format", "table", "output: table or json")
	jsonFlag(c, &asJSON)
	return c
}

// formatJSON makes --json mean --format json on cmd, and refuses --json
// with another --format.
func formatJSON(cmd *cobra.Command, format *string, asJSON bool) error {
	if !asJSON {
		return nil
	}
	if cmd.Flags().Changed("format") && *format != "json" {
		return usageError(cmd, "--json and --format %s do not go together", *format)
	}
	*format = "json"
	return nil
}

// usageJSON is `admin stats usage --json` (and --format json).
type usageJSON struct {
	From              string         `json:"from"` // YYYY-MM-DD
	To                string         `json:"to"`
	PrivacyUnit       string         `json:"privacy_unit"`
	Epsilon           float64        `json:"epsilon"`
	Delta             float64        `json:"delta"`
	MinGroup          int            `json:"min_group"`
	MaxRegionsPerDay  int            `json:"max_regions_per_account_day"`
	MaxSessionsPerDay int            `json:"max_sessions_per_account_day_region"`
	MaxHoursPerDay    float64        `json:"max_hours_per_account_day_region"`
	Noise             string         `json:"noise"`
	Rows              []usageRowJSON `json:"rows"`
	Budget            budgetSumJSON  `json:"budget"`
}

// budgetSumJSON is the quarter's budget after a report.
type budgetSumJSON struct {
	Quarter string  `json:"quarter"` // 2026-Q1
	Budget  float64 `json:"budget"`
	Spent   float64 `json:"spent"`
	Left    float64 `json:"left"`
}

// usageRowJSON is one published group of a usage report.
type usageRowJSON struct {
	Day      string  `json:"day"` // YYYY-MM-DD
	Region   string  `json:"region"`
	Sessions int64   `json:"sessions"`
	Hours    float64 `json:"hours"`
}

// usageView returns r as --json prints it.
func usageView(r *stats.Report) usageJSON {
	v := usageJSON{From: r.From, To: r.To, PrivacyUnit: r.PrivacyUnit, Epsilon: r.Epsilon, Delta: r.Delta, MinGroup: r.MinGroup,
		MaxRegionsPerDay: r.MaxRegionsPerDay, MaxSessionsPerDay: r.MaxSessionsPerDay, MaxHoursPerDay: r.MaxHoursPerDay,
		Noise: r.Noise, Rows: []usageRowJSON{},
		Budget: budgetSumJSON{Quarter: r.Budget.Quarter, Budget: r.Budget.Budget, Spent: r.Budget.Spent, Left: r.Budget.Left}}
	for _, row := range r.Rows {
		v.Rows = append(v.Rows, usageRowJSON{Day: row.Day, Region: row.Region, Sessions: row.Sessions, Hours: row.Hours})
	}
	return v
}

// printUsage writes a usage report as a table.
func printUsage(w io.Writer, r *stats.Report) error {
	fmt.Fprintf(w, "Usage %s to %s: epsilon %g, delta %g, minimum group %d accounts; values are noisy.\n",
		r.From, r.To, r.Epsilon, r.Delta, r.MinGroup)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DAY\tREGION\tSESSIONS\tHOURS\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t\n", row.Day, oneLine(row.Region), row.Sessions, row.Hours)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Rows) == 0 {
		fmt.Fprintln(w, "(no group is large enough to publish)")
	}
	fmt.Fprintf(w, "Budget %s: epsilon %g spent of %g, %g left.\n", r.Budget.Quarter, r.Budget.Spent, r.Budget.Budget, r.Budget.Left)
	return nil
}

func newAdminStatsBudgetCmd(a *admin) *cobra.Command {
	env := a.env
	var quarter string
	var asJSON bool
	c := &cobra.Command{
		Use:   "budget [--quarter YYYY-QN] [--json]",
		Short: "The privacy budget of a calendar quarter's statistics: spent, left, and who ran which report",
		Long: "The privacy budget (epsilon) of the statistical reports of a calendar quarter (UTC; the\n" +
			"current one unless --quarter), what they have spent and what is left, and the ledger: each\n" +
			"report with who ran it, the epsilon it spent, its minimum group and any override reason.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				b, err := srv.Stats.Budget(cmd.Context(), p, quarter)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(env.Stdout, budgetView(b))
				}
				return printBudget(env.Stdout, b)
			})
		},
	}
	c.Flags().StringVar(&quarter, "quarter", "", "calendar quarter, e.g. 2026-Q1 (default: the current one)")
	jsonFlag(c, &asJSON)
	return c
}

// budgetJSON is `admin stats budget --json`.
type budgetJSON struct {
	Quarter string      `json:"quarter"`
	Budget  float64     `json:"budget"`
	Spent   float64     `json:"spent"`
	Left    float64     `json:"left"`
	Entries []spendJSON `json:"entries"`
}

// spendJSON is one report in the ledger.
type spendJSON struct {
	ID        string    `json:"id"`
	Report    string    `json:"report"`
	StaffID   string    `json:"staff_id"`
	StaffRole string    `json:"staff_role"`
	Epsilon   float64   `json:"epsilon"`
	MinGroup  int       `json:"min_group"`
	Override  string    `json:"override"` // "" for none
	SpentAt   time.Time `json:"spent_at"`
}

func budgetView(b *stats.Budget) budgetJSON {
	v := budgetJSON{Quarter: b.Quarter, Budget: b.Budget, Spent: b.Spent, Left: b.Left, Entries: []spendJSON{}}
	for _, e := range b.Entries {
		v.Entries = append(v.Entries, spendJSON{ID: e.ID, Report: e.Report, StaffID: e.StaffID, StaffRole: e.StaffRole,
			Epsilon: e.Epsilon, MinGroup: e.MinGroup, Override: e.Override, SpentAt: e.SpentAt.UTC()})
	}
	return v
}

// printBudget writes a quarter's budget and ledger as text.
func printBudget(w io.Writer, b *stats.Budget) error {
	fmt.Fprintf(w, "Statistics budget %s: epsilon %g spent of %g, %g left.\n", b.Quarter, b.Spent, b.Budget, b.Left)
	if len(b.Entries) == 0 {
		fmt.Fprintln(w, "No report was run in this quarter.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SPENT AT\tREPORT\tEPSILON\tMIN GROUP\tBY\tROLE\tOVERRIDE")
	for _, e := range b.Entries {
		override := "-"
		if e.Override != "" {
			override = oneLine(e.Override)
		}
		fmt.Fprintf(tw, "%s\t%s\t%g\t%d\t%s\t%s\t%s\n", e.SpentAt.UTC().Format(time.RFC3339), oneLine(e.Report), e.Epsilon,
			e.MinGroup, e.StaffID, staff.RoleName(e.StaffRole), override)
	}
	return tw.Flush()
}
