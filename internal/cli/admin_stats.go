package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/stats"
	"github.com/spf13/cobra"
)

func newAdminStatsCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "stats", Short: "Differentially private statistics"}
	c.AddCommand(newAdminStatsUsageCmd(a))
	return c
}

func newAdminStatsUsageCmd(a *admin) *cobra.Command {
	env := a.env
	var from, to, format string
	var asJSON bool
	var o stats.Options
	c := &cobra.Command{
		Use:   "usage --from DATE --to DATE [--epsilon E] [--min-group K] [--format table|json | --json]",
		Short: "Sessions and hours per region and day, with differential privacy",
		Long: "Sessions and hours of use per gateway region and UTC day, from --from to --to inclusive,\n" +
			"made differentially private (Laplace noise; the privacy unit is an account over the whole\n" +
			"report, with each account's use per day bounded). A group is shown only if at least\n" +
			"--min-group distinct accounts are in it (an exact check) and private partition selection\n" +
			"keeps it. Accounts that restricted or objected to processing are never counted.\n" +
			"Each run spends privacy budget and is audited.",
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
		Noise: r.Noise, Rows: []usageRowJSON{}}
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
	return nil
}
