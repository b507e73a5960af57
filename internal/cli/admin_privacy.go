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
	var overdue, asJSON bool
	c := &cobra.Command{
		Use: "list [--overdue] [--json]", Short: "List requests; --overdue: not answered or extended in time", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			rs, err := srv.Privacy.StaffList(cmd.Context(), p, overdue)
			if err != nil {
				return err
			}
			if asJSON {
				v := struct {
					Requests []staffRequestJSON `json:"requests"`
				}{Requests: []staffRequestJSON{}}
				for _, r := range rs {
					v.Requests = append(v.Requests, staffRequestView(r))
				}
				return printJSON(a.env.Stdout, v)
			}
			return printRequestTable(a.env, rs, true)
		}),
	}
	c.Flags().BoolVar(&overdue, "overdue", false, "only requests past their deadline and not answered")
	jsonFlag(c, &asJSON)
	return c
}

func newAdminPrivacyShowCmd(a *admin) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use: "show ID [--json]", Short: "Show a request and what you may do with it now", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.StaffShow(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.env.Stdout, staffRequestView(*r))
			}
			printRequest(a.env, *r)
			printActions(a.env, *r)
			return nil
		}),
	}
	jsonFlag(c, &asJSON)
	return c
}

func newAdminPrivacyExtendCmd(a *admin) *cobra.Command {
	var reason string
	var months int
	c := &cobra.Command{
		Use: "extend ID --reason TEXT [--months 1|2]", Short: "Extend the deadline (within the first month, at most two further months); the user is told the reason", Args: cobra.ExactArgs(1),
		PreRunE: required("reason"),
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
		PreRunE: required("reason"),
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

// staffRequestJSON is a request in `admin privacy list|show --json`: the
// user's view (requestJSON) with the account and the actions the staff
// member may take on it now.
type staffRequestJSON struct {
	requestJSON
	AccountID string       `json:"account_id"` // "" once the account is erased
	Actions   []actionJSON `json:"actions"`
}

// actionJSON is one action of a staffRequestJSON.
type actionJSON struct {
	Action  string `json:"action"` // privacy.extend, privacy.complete or privacy.deny
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"` // why not, when not allowed
	Months  []int  `json:"months"` // extend: the further months still possible
}

// staffRequestView returns r as `admin privacy list|show --json` print it.
func staffRequestView(r privacy.Request) staffRequestJSON {
	v := staffRequestJSON{requestJSON: requestView(r), AccountID: r.AccountID, Actions: []actionJSON{}}
	for _, a := range r.Actions {
		v.Actions = append(v.Actions, actionJSON{Action: a.Action, Allowed: a.Allowed, Reason: a.Reason, Months: nonNil(a.Months)})
	}
	return v
}
