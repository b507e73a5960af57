package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/processing"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/spf13/cobra"
)

func newAdminAccountCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "account", Short: "User accounts, as support and the privacy officer see them (every read is audited)"}
	c.AddCommand(newAdminAccountShowCmd(a), newAdminAccountLookupCmd(a))
	return c
}

// staffAccountJSON is `admin account show|lookup --json`.
type staffAccountJSON struct {
	ID             string         `json:"id"`
	Status         string         `json:"status"`
	Email          string         `json:"email"`  // "" once erased
	Mobile         string         `json:"mobile"` // "" once erased
	EmailVerified  bool           `json:"email_verified"`
	MobileVerified bool           `json:"mobile_verified"`
	CreatedAt      jsonTime       `json:"created_at"`
	Processing     processingJSON `json:"processing"`
}

// processingJSON is an account's restriction and objection and what they
// stop.
type processingJSON struct {
	Restricted bool     `json:"restricted"`
	Objected   bool     `json:"objected"`
	Stopped    []string `json:"stopped"`   // purposes, e.g. announcement, statistics
	Continues  []string `json:"continues"` // purposes still carried out
	Effect     string   `json:"effect"`
}

func processingView(s processing.State) processingJSON {
	v := processingJSON{Restricted: s.Restricted, Objected: s.Objected, Stopped: []string{}, Continues: []string{}, Effect: s.Effect}
	for _, p := range s.Stopped {
		v.Stopped = append(v.Stopped, string(p))
	}
	for _, p := range s.Continues {
		v.Continues = append(v.Continues, string(p))
	}
	return v
}

// printStaffAccount prints an account as staff see it, as JSON if asJSON.
func printStaffAccount(env *Env, v *accounts.StaffView, asJSON bool) error {
	if asJSON {
		return printJSON(env.Stdout, staffAccountJSON{ID: v.ID, Status: v.Status, Email: v.Email, Mobile: v.Mobile,
			EmailVerified: v.EmailVerified, MobileVerified: v.MobileVerified, CreatedAt: jsonTime(v.CreatedAt),
			Processing: processingView(v.Processing)})
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Account:\t%s\nStatus:\t%s\nCreated:\t%s\n", v.ID, v.Status, v.CreatedAt.Format(time.RFC3339))
	if v.Email == "" {
		fmt.Fprintln(tw, "Contacts:\tnone (the account was erased and its data key destroyed)")
	} else {
		fmt.Fprintf(tw, "Email:\t%s (verified: %v)\nMobile:\t%s (verified: %v)\n", v.Email, v.EmailVerified, v.Mobile, v.MobileVerified)
	}
	fmt.Fprintf(tw, "Restricted:\t%v\nObjected:\t%v\n", v.Processing.Restricted, v.Processing.Objected)
	if len(v.Processing.Stopped) > 0 {
		fmt.Fprintf(tw, "Stopped:\t%s\n", strings.Join(processingView(v.Processing).Stopped, ", "))
	}
	return tw.Flush()
}

func newAdminAccountShowCmd(a *admin) *cobra.Command {
	env := a.env
	var asJSON bool
	c := &cobra.Command{
		Use: "show ID [--json]", Short: "Show an account's status and contacts", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			v, err := srv.Accounts.StaffShow(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			return printStaffAccount(env, v, asJSON)
		}),
	}
	jsonFlag(c, &asJSON)
	return c
}

func newAdminAccountLookupCmd(a *admin) *cobra.Command {
	env := a.env
	var email, mobile string
	var asJSON bool
	c := &cobra.Command{
		Use:   "lookup --email E | --mobile M [--json]",
		Short: "Find the account holding an email address or mobile number (through the blind index; audited without the value)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ch, value := store.Email, email
			switch {
			case email != "" && mobile != "":
				return usageError(cmd, "give --email or --mobile, not both")
			case mobile != "":
				ch, value = store.Mobile, mobile
			case email == "":
				return usageError(cmd, "--email or --mobile is required")
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				v, err := srv.Accounts.StaffLookup(cmd.Context(), p, ch, value)
				if err != nil {
					return err
				}
				return printStaffAccount(env, v, asJSON)
			})
		},
	}
	c.Flags().StringVar(&email, "email", "", "the email address")
	c.Flags().StringVar(&mobile, "mobile", "", "the mobile number")
	jsonFlag(c, &asJSON)
	return c
}
