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

// parseUntil reads the value s of an end-date flag (--until): a date
// (YYYY-MM-DD, end of that day UTC) or an RFC 3339 time. "" means no end.
func parseUntil(flag, s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		t = t.Add(24*time.Hour - time.Second)
		return &t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, fmt.Errorf("--%s %q: want YYYY-MM-DD or an RFC 3339 time", flag, s)
	}
	return &t, nil
}

func newAdminHoldCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "hold", Short: "Legal holds: keep an account's data from deletion (legal role)"}
	c.AddCommand(newAdminHoldAddCmd(a), newAdminHoldListCmd(a), newAdminHoldReleaseCmd(a))
	return c
}

func newAdminHoldAddCmd(a *admin) *cobra.Command {
	var account, reason, until string
	c := &cobra.Command{
		Use: "add --account ID --reason TEXT [--until DATE]", Short: "Place a legal hold", Args: cobra.NoArgs,
		PreRunE: required("account", "reason"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := parseUntil("until", until)
			if err != nil {
				return usageError(cmd, "%v", err)
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				h, err := srv.Holds.Add(cmd.Context(), p, account, reason, u)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "Hold %s placed on %s.\n", h.ID, h.AccountID)
				return nil
			})
		},
	}
	c.Flags().StringVar(&account, "account", "", "account id")
	c.Flags().StringVar(&reason, "reason", "", "why the data must be kept (case, obligation)")
	c.Flags().StringVar(&until, "until", "", "end date (YYYY-MM-DD); default: until released")
	return c
}

// holdJSON is one legal hold in `admin hold list --json`.
type holdJSON struct {
	ID         string    `json:"id"`
	AccountID  string    `json:"account_id"`
	Reason     string    `json:"reason"`
	CreatedBy  string    `json:"created_by"` // staff ID
	CreatedAt  jsonTime  `json:"created_at"`
	Until      *jsonTime `json:"until"` // null: until released
	ReleasedAt *jsonTime `json:"released_at"`
	ReleasedBy string    `json:"released_by"` // staff ID, "" while not released
	Active     bool      `json:"active"`      // in force now
}

func newAdminHoldListCmd(a *admin) *cobra.Command {
	var account string
	var active, asJSON bool
	c := &cobra.Command{
		Use: "list [--account ID] [--active] [--json]", Short: "List legal holds", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			hs, err := srv.Holds.List(cmd.Context(), p, account, active)
			if err != nil {
				return err
			}
			if asJSON {
				now := a.env.Clock()
				v := struct {
					Holds []holdJSON `json:"holds"`
				}{Holds: []holdJSON{}}
				for _, h := range hs {
					v.Holds = append(v.Holds, holdJSON{ID: h.ID, AccountID: h.AccountID, Reason: h.Reason, CreatedBy: h.CreatedBy,
						CreatedAt: jsonTime(h.CreatedAt), Until: optTime(h.Until), ReleasedAt: optTime(h.ReleasedAt),
						ReleasedBy: h.ReleasedBy, Active: h.Active(now)})
				}
				return printJSON(a.env.Stdout, v)
			}
			return printHolds(a.env, hs)
		}),
	}
	c.Flags().StringVar(&account, "account", "", "only this account")
	c.Flags().BoolVar(&active, "active", false, "only holds in force now")
	jsonFlag(c, &asJSON)
	return c
}

func newAdminHoldReleaseCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use: "release ID", Short: "Release a legal hold", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			if err := srv.Holds.Release(cmd.Context(), p, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Hold %s released.\n", args[0])
			return nil
		}),
	}
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
