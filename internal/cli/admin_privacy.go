package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

// printActions says what the staff member may do with r now, as the
// privacy service decided, and how.
func printActions(env *Env, r privacy.Request) {
	commands := map[string]string{
		staff.ActPrivacyRecord:   "nitronet admin privacy verify " + r.ID + " --email-code CODE --mobile-code CODE (new codes: nitronet admin privacy codes " + r.ID + ")",
		staff.ActPrivacyExtend:   "nitronet admin privacy extend " + r.ID + " --months N --reason TEXT",
		staff.ActPrivacyComplete: "nitronet admin privacy complete " + r.ID + " --note TEXT",
		staff.ActPrivacyDeny:     "nitronet admin privacy deny " + r.ID + " --reason TEXT",
	}
	fmt.Fprintln(env.Stdout, "You may:")
	for _, a := range r.Actions {
		name := strings.TrimPrefix(a.Action, "privacy.")
		if a.Action == staff.ActPrivacyRecord {
			name = "verify"
		}
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
	c := &cobra.Command{Use: "privacy", Short: "Privacy requests: add those received by email, phone or post; list, show, extend, complete, deny (every action is audited)"}
	c.AddCommand(newAdminPrivacyListCmd(a), newAdminPrivacyShowCmd(a), newAdminPrivacyExtendCmd(a),
		newAdminPrivacyCompleteCmd(a), newAdminPrivacyDenyCmd(a), newAdminPrivacyResumeCmd(a))
	c.AddCommand(newAdminPrivacyAddCmd(a), newAdminPrivacyVerifyCmd(a), newAdminPrivacyCodesCmd(a), newAdminPrivacyRecipientCmd(a))
	c.AddCommand(newAdminPrivacyAccountCmd(a), newAdminPrivacyCorrectCmd(a))
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
		Use: "complete ID --note TEXT", Short: "Mark a verified request completed, saying what was done; the user is told", Args: cobra.ExactArgs(1),
		PreRunE: required("note"),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.Complete(cmd.Context(), p, args[0], note)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Request %s completed.\n", r.ID)
			return nil
		}),
	}
	c.Flags().StringVar(&note, "note", "", "what was done (required; sent to the user)")
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
	Action  string `json:"action"` // privacy.record (outside the app), privacy.extend, privacy.complete or privacy.deny
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

// parseTimeFlag parses the RFC 3339 value of flag; "" is the zero time.
func parseTimeFlag(cmd *cobra.Command, flag, v string) (time.Time, error) {
	if strings.TrimSpace(v) == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
	if err != nil {
		return time.Time{}, usageError(cmd, "--%s %q: want an RFC 3339 time such as 2025-06-01T09:30:00Z", flag, v)
	}
	return t, nil
}

func newAdminPrivacyAddCmd(a *admin) *cobra.Command {
	env := a.env
	var in privacy.Intake
	var received string
	var asJSON bool
	add := &cobra.Command{
		Use:   "add --type T --email E|--mobile M --channel email|phone|post [--received-at RFC3339] [--note TEXT] [--identity-check METHOD]",
		Short: "Record a request received by email, phone or post; it is due one calendar month after --received-at (default now)",
		Long: "Record a privacy request that arrived outside the app. --email or --mobile is the contact the\n" +
			"requester named; it finds the account through the blind index. If the account has a verified\n" +
			"contact, a code goes to each: the requester reads them back to you (enter them with\n" +
			"'admin privacy verify'), or enters them in the app or portal with their password. If no\n" +
			"account's verified contact can prove who they are, check their identity yourself and say how\n" +
			"with --identity-check (" + strings.Join(privacy.CheckMethods(), ", ") + "); never keep a copy of\n" +
			"an identity document.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "type", "channel"); err != nil {
				return err
			}
			t, err := parseTimeFlag(cmd, "received-at", received)
			if err != nil {
				return err
			}
			in.ReceivedAt = t
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				r, err := srv.Privacy.StaffAdd(cmd.Context(), p, in)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(env.Stdout, staffRequestView(*r))
				}
				printRequest(env, *r)
				if r.Status == "pending_verification" {
					fmt.Fprintf(env.Stdout, "\nA code went to each verified contact of the account. When the requester reads them back:\n"+
						"  nitronet admin privacy verify %s --email-code CODE --mobile-code CODE\n", r.ID)
				}
				return nil
			})
		},
	}
	f := add.Flags()
	f.StringVar(&in.Type, "type", "", "request type: "+strings.Join(privacy.Types(), ", "))
	f.StringVar(&in.Email, "email", "", "the email address the requester named")
	f.StringVar(&in.Mobile, "mobile", "", "the mobile number the requester named")
	f.StringVar(&in.Channel, "channel", "", "how the request arrived: "+strings.Join(privacy.Channels(), ", "))
	f.StringVar(&received, "received-at", "", "when it arrived, RFC 3339 (default now; not in the future, at most a year ago)")
	f.StringVar(&in.Note, "note", "", "what the request says, in your words (kept with the request)")
	f.StringVar(&in.Check, "identity-check", "", "how you checked the requester's identity when no account's verified contact can prove it: "+
		strings.Join(privacy.CheckMethods(), ", "))
	jsonFlag(add, &asJSON)
	return add
}

func newAdminPrivacyVerifyCmd(a *admin) *cobra.Command {
	env := a.env
	var emailCode, mobileCode string
	c := &cobra.Command{
		Use:   "verify ID --email-code CODE --mobile-code CODE",
		Short: "Enter the codes a requester from outside the app read back to you; this proves their identity",
		Args:  cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			r, err := srv.Privacy.StaffVerify(cmd.Context(), p, args[0], emailCode, mobileCode)
			if err != nil {
				return err
			}
			printRequest(env, *r)
			return nil
		}),
	}
	c.Flags().StringVar(&emailCode, "email-code", "", "the code sent to the account's email address")
	c.Flags().StringVar(&mobileCode, "mobile-code", "", "the code sent to the account's mobile number")
	return c
}

func newAdminPrivacyCodesCmd(a *admin) *cobra.Command {
	env := a.env
	return &cobra.Command{
		Use:   "codes ID",
		Short: "Send fresh identity-proof codes for a request from outside the app (codes expire after 10 minutes)",
		Args:  cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			fields, err := srv.Privacy.StaffSendCodes(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "New codes sent (%s).\n", strings.Join(fields, ", "))
			return nil
		}),
	}
}

func newAdminPrivacyRecipientCmd(a *admin) *cobra.Command {
	env := a.env
	var processor, status, note string
	c := &cobra.Command{
		Use:   "recipient ID --processor NAME --status told|impossible|pending [--note TEXT]",
		Short: "Record that a processor was told of a rectification or erasure (Art. 19), or why it cannot be",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "processor", "status"); err != nil {
				return err
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				r, err := srv.Privacy.NoteRecipient(cmd.Context(), p, args[0], processor, status, note)
				if err != nil {
					return err
				}
				printRecipients(env, r.Recipients)
				return nil
			})
		},
	}
	c.Flags().StringVar(&processor, "processor", "", "the processor's name, as the request lists it")
	c.Flags().StringVar(&status, "status", "", "told, impossible (say why with --note) or pending")
	c.Flags().StringVar(&note, "note", "", "how it was told (a ticket, a date), or why it cannot be")
	return c
}
