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
	c := &cobra.Command{Use: "privacy", Short: "Privacy requests: list, show, extend, complete, deny (every action is audited)"}
	c.AddCommand(newAdminPrivacyListCmd(a), newAdminPrivacyShowCmd(a), newAdminPrivacyExtendCmd(a),
		newAdminPrivacyCompleteCmd(a), newAdminPrivacyDenyCmd(a), newAdminPrivacyResumeCmd(a))
	return c
}

func newAdminPrivacyListCmd(a *admin) *cobra.Command {
	var overdue bool
	c := &cobra.Command{
		Use: "list [--overdue]", Short: "List requests; --overdue: not answered or extended in time", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			rs, err := srv.Privacy.StaffList(cmd.Context(), p, overdue)
			if err != nil {
				return err
			}
			return printRequestTable(a.env, rs, true)
		}),
	}
	c.Flags().BoolVar(&overdue, "overdue", false, "only requests past their deadline and not answered")
	return c
}

func newAdminPrivacyShowCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use: "show ID", Short: "Show a request", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.StaffShow(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			printRequest(a.env, *r)
			printActions(a.env, *r)
			return nil
		}),
	}
}

func newAdminPrivacyExtendCmd(a *admin) *cobra.Command {
	var reason string
	var months int
	c := &cobra.Command{
		Use: "extend ID --reason TEXT [--months 1|2]", Short: "Extend the deadline (within the first month, at most two further months); the user is told the reason", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.Extend(cmd.Context(), p, args[0], months, reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Request %s is now due %s; the user was told why.\n", r.ID, r.DueAt.Format("2006-01-02"))
			return nil
		}),
	}
	c.Flags().StringVar(&reason, "reason", "", "why more time is needed (sent to the user)")
	c.Flags().IntVar(&months, "months", 1, "further calendar months (1 or 2; two in total at most)")
	return c
}

func newAdminPrivacyCompleteCmd(a *admin) *cobra.Command {
	var note string
	c := &cobra.Command{
		Use: "complete ID [--note TEXT]", Short: "Mark a verified request completed; the user is told", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.Complete(cmd.Context(), p, args[0], note)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Request %s completed.\n", r.ID)
			return nil
		}),
	}
	c.Flags().StringVar(&note, "note", "", "what was done (sent to the user)")
	return c
}

func newAdminPrivacyDenyCmd(a *admin) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use: "deny ID --reason TEXT", Short: "Deny a request; the user is told the reason and their right to complain", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.Deny(cmd.Context(), p, args[0], reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Request %s denied; the user was told the reason and their right to complain.\n", r.ID)
			return nil
		}),
	}
	c.Flags().StringVar(&reason, "reason", "", "why (required; sent to the user)")
	return c
}

func newAdminPrivacyResumeCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use: "resume-erasures", Short: "Finish interrupted erasures and those whose legal hold has ended", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			n, err := srv.Privacy.ResumeErasures(cmd.Context(), p)
			if err != nil {
				return fmt.Errorf("after %d erasure(s): %w", n, err)
			}
			fmt.Fprintf(a.env.Stdout, "%d erasures carried out.\n", n)
			return nil
		}),
	}
}
