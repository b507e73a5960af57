package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

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
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"rules": rs, "last_sweep": last})
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
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
