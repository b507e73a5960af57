package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

func newAdminAccountCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "account", Short: "User accounts, as support and the privacy officer see them (every read is audited)"}
	c.AddCommand(newAdminAccountShowCmd(a))
	return c
}

// staffAccountJSON is `admin account show --json`.
type staffAccountJSON struct {
	ID             string   `json:"id"`
	Status         string   `json:"status"`
	Email          string   `json:"email"`  // "" once erased
	Mobile         string   `json:"mobile"` // "" once erased
	EmailVerified  bool     `json:"email_verified"`
	MobileVerified bool     `json:"mobile_verified"`
	CreatedAt      jsonTime `json:"created_at"`
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
			if asJSON {
				return printJSON(env.Stdout, staffAccountJSON{ID: v.ID, Status: v.Status, Email: v.Email, Mobile: v.Mobile,
					EmailVerified: v.EmailVerified, MobileVerified: v.MobileVerified, CreatedAt: jsonTime(v.CreatedAt)})
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Account:\t%s\nStatus:\t%s\nCreated:\t%s\n", v.ID, v.Status, v.CreatedAt.Format(time.RFC3339))
			if v.Email == "" {
				fmt.Fprintln(tw, "Contacts:\tnone (the account was erased and its data key destroyed)")
			} else {
				fmt.Fprintf(tw, "Email:\t%s (verified: %v)\nMobile:\t%s (verified: %v)\n", v.Email, v.EmailVerified, v.Mobile, v.MobileVerified)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(c, &asJSON)
	return c
}
