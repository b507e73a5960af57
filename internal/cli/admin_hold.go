package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/spf13/cobra"
)

// parseUntil reads an --until value: a date (YYYY-MM-DD, end of that day
// UTC) or an RFC 3339 time. "" means no end.
func parseUntil(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		t = t.Add(24*time.Hour - time.Second)
		return &t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, fmt.Errorf("--until %q: want YYYY-MM-DD or an RFC 3339 time", s)
	}
	return &t, nil
}

func newAdminHoldCmd(a *admin) *cobra.Command {
	env := a.env
	c := &cobra.Command{Use: "hold", Short: "Legal holds: keep an account's data from deletion (legal role)"}
	var account, reason, until string
	add := &cobra.Command{
		Use: "add --account ID --reason TEXT [--until DATE]", Short: "Place a legal hold", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := parseUntil(until)
			if err != nil {
				return err
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				h, err := srv.Holds.Add(cmd.Context(), p, account, reason, u)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "Hold %s placed on %s.\n", h.ID, h.AccountID)
				return nil
			})
		},
	}
	add.Flags().StringVar(&account, "account", "", "account id")
	add.Flags().StringVar(&reason, "reason", "", "why the data must be kept (case, obligation)")
	add.Flags().StringVar(&until, "until", "", "end date (YYYY-MM-DD); default: until released")

	var lAccount string
	var active bool
	list := &cobra.Command{
		Use: "list [--account ID] [--active]", Short: "List legal holds", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				hs, err := srv.Holds.List(cmd.Context(), p, lAccount, active)
				if err != nil {
					return err
				}
				return printHolds(env, hs)
			})
		},
	}
	list.Flags().StringVar(&lAccount, "account", "", "only this account")
	list.Flags().BoolVar(&active, "active", false, "only holds in force now")

	release := &cobra.Command{
		Use: "release ID", Short: "Release a legal hold", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				if err := srv.Holds.Release(cmd.Context(), p, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "Hold %s released.\n", args[0])
				return nil
			})
		},
	}
	c.AddCommand(add, list, release)
	return c
}

func printHolds(env *Env, hs []store.Hold) error {
	now := env.Clock()
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tACCOUNT\tACTIVE\tUNTIL\tBY\tREASON")
	for _, h := range hs {
		u := "released"
		if h.ReleasedAt == nil {
			u = "-"
			if h.Until != nil {
				u = h.Until.UTC().Format(time.DateOnly)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", h.ID, h.AccountID, h.Active(now), u, h.CreatedBy, h.Reason)
	}
	return tw.Flush()
}
