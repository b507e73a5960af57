package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

// printActions says what the staff member may do with r now, as the
// privacy service decided, and how.
func printActions(env *Env, r privacy.Request) {
	commands := map[string]string{
		staff.ActPrivacyExtend:   "nitronet admin privacy extend " + r.ID + " --months N --reason TEXT",
		staff.ActPrivacyComplete: "nitronet admin privacy complete " + r.ID + " [--note TEXT]",
		staff.ActPrivacyDeny:     "nitronet admin privacy deny " + r.ID + " --reason TEXT",
	}
	fmt.Fprintln(env.Stdout, "You may:")
	for _, a := range r.Actions {
		name := strings.TrimPrefix(a.Action, "privacy.")
		switch {
		case a.Allowed && len(a.Months) > 0:
			fmt.Fprintf(env.Stdout, "  %-8s yes, by %s month(s): %s\n", name, joinInts(a.Months, " or "), commands[a.Action])
		case a.Allowed:
			fmt.Fprintf(env.Stdout, "  %-8s yes: %s\n", name, commands[a.Action])
		default:
			fmt.Fprintf(env.Stdout, "  %-8s no: %s\n", name, a.Reason)
		}
	}
}

// joinInts joins ns with sep.
func joinInts(ns []int, sep string) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, sep)
}

func newAdminPrivacyCmd(a *admin) *cobra.Command {
	env := a.env
	c := &cobra.Command{Use: "privacy", Short: "Privacy requests: list, show, extend, complete, deny (every action is audited)"}

	var overdue bool
	list := &cobra.Command{
		Use: "list [--overdue]", Short: "List requests; --overdue: not answered or extended in time", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			rs, err := srv.Privacy.StaffList(cmd.Context(), p, overdue)
			if err != nil {
				return err
			}
			return printRequestTable(env, rs, true)
		}),
	}
	list.Flags().BoolVar(&overdue, "overdue", false, "only requests past their deadline and not answered")

	show := &cobra.Command{
		Use: "show ID", Short: "Show a request", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.StaffShow(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			printRequest(env, *r)
			printActions(env, *r)
			return nil
		}),
	}

	var reason string
	var months int
	extend := &cobra.Command{
		Use: "extend ID --reason TEXT [--months 1|2]", Short: "Extend the deadline (within the first month, at most two further months); the user is told the reason", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.Extend(cmd.Context(), p, args[0], months, reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Request %s is now due %s; the user was told why.\n", r.ID, r.DueAt.Format("2006-01-02"))
			return nil
		}),
	}
	extend.Flags().StringVar(&reason, "reason", "", "why more time is needed (sent to the user)")
	extend.Flags().IntVar(&months, "months", 1, "further calendar months (1 or 2; two in total at most)")

	var note string
	complete := &cobra.Command{
		Use: "complete ID [--note TEXT]", Short: "Mark a verified request completed; the user is told", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.Complete(cmd.Context(), p, args[0], note)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Request %s completed.\n", r.ID)
			return nil
		}),
	}
	complete.Flags().StringVar(&note, "note", "", "what was done (sent to the user)")

	var denyReason string
	deny := &cobra.Command{
		Use: "deny ID --reason TEXT", Short: "Deny a request; the user is told the reason and their right to complain", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.Deny(cmd.Context(), p, args[0], denyReason)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Request %s denied; the user was told the reason and their right to complain.\n", r.ID)
			return nil
		}),
	}
	deny.Flags().StringVar(&denyReason, "reason", "", "why (required; sent to the user)")

	resume := &cobra.Command{
		Use: "resume-erasures", Short: "Finish interrupted erasures and those whose legal hold has ended", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			n, err := srv.Privacy.ResumeErasures(cmd.Context(), p)
			if err != nil {
				return fmt.Errorf("after %d erasure(s): %w", n, err)
			}
			fmt.Fprintf(env.Stdout, "%d erasures carried out.\n", n)
			return nil
		}),
	}

	c.AddCommand(list, show, extend, complete, deny, resume)
	return c
}
