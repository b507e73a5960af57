package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/spf13/cobra"
)

// newAdminPrivacyAccountCmd shows the account a request is about.
func newAdminPrivacyAccountCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use: "account ID", Short: "Show the account a request is about: contacts, devices, sessions, requests, holds (audited)", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			v, err := srv.Privacy.StaffAccount(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			printAccountView(a.env, v)
			return nil
		}),
	}
}

// printAccountView prints the account a request is about.
func printAccountView(env *Env, v *privacy.AccountView) {
	out := env.Stdout
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	verified := func(ok bool) string {
		if ok {
			return "verified"
		}
		return "not verified"
	}
	fmt.Fprintf(out, "Account    %s (%s), opened %s\n", v.Account.ID, v.Account.Status, ts(v.Account.CreatedAt))
	if v.Erased {
		fmt.Fprintln(out, "Contacts   none: the account was erased and its data key destroyed")
	} else {
		fmt.Fprintf(out, "Email      %s (%s)\nMobile     %s (%s)\n", v.Account.Email, verified(v.Account.EmailVerified),
			v.Account.Mobile, verified(v.Account.MobileVerified))
	}
	fmt.Fprintf(out, "Restricted %v\nObjected   %v\nHolds      %d in force\n", v.Flags.Restricted, v.Flags.Objected, v.Holds.Active)
	for _, h := range v.Holds.Holds {
		until := "until released"
		if h.Until != nil {
			until = "until " + ts(*h.Until)
		}
		fmt.Fprintf(out, "  %s  %s (%s)\n", h.ID, strings.ReplaceAll(h.Reason, "\n", "; "), until)
	}
	fmt.Fprintf(out, "Devices    %d\n", len(v.Devices))
	for _, d := range v.Devices {
		last := "never used"
		if d.LastUsed != nil {
			last = "last used " + ts(*d.LastUsed)
		}
		conn := ""
		if d.Connected {
			conn = ", connected now"
		}
		fmt.Fprintf(out, "  %s  %s: %d sessions kept, %s%s\n", d.ID, d.Name, d.Sessions, last, conn)
	}
	s := v.Sessions
	fmt.Fprintf(out, "Sessions   %d kept, %d open", s.Count, s.Open)
	if s.First != nil && s.Last != nil {
		fmt.Fprintf(out, ", first %s, latest %s", ts(*s.First), ts(*s.Last))
	}
	if len(s.Regions) > 0 {
		fmt.Fprintf(out, ", regions %s", strings.Join(s.Regions, ", "))
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "Requests   %d\n", len(v.Requests))
	for _, r := range v.Requests {
		fmt.Fprintf(out, "  %s  %-13s %-21s received %s\n", r.ID, r.Type, r.Status, ts(r.ReceivedAt))
	}
	if v.Correct.Allowed {
		fmt.Fprintf(out, "Correct    yes: nitronet admin privacy correct %s --email E | --mobile M\n", v.Request.ID)
	} else if v.Request.Type == store.RequestRectification {
		fmt.Fprintf(out, "Correct    no: %s\n", v.Correct.Reason)
	}
	fmt.Fprintln(out, "This view is recorded in the audit log.")
}

// newAdminPrivacyCorrectCmd enters a corrected contact for a
// rectification.
func newAdminPrivacyCorrectCmd(a *admin) *cobra.Command {
	var email, mobile string
	c := &cobra.Command{
		Use:   "correct ID --email E | --mobile M",
		Short: "Correct the email or mobile of a verified rectification's account; it takes effect once the requester enters the code sent to it",
		Args:  cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			ch, value := store.Email, email
			switch {
			case email != "" && mobile != "", email == "" && mobile == "":
				return usageError(cmd, "give exactly one of --email and --mobile")
			case mobile != "":
				ch, value = store.Mobile, mobile
			}
			if err := srv.Privacy.StaffCorrectContact(cmd.Context(), p, args[0], ch, value); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "A code was sent to the corrected %s. The correction takes effect, and request %s is completed, once the requester enters it on their account page.\n", ch, args[0])
			return nil
		}),
	}
	c.Flags().StringVar(&email, "email", "", "the corrected email address")
	c.Flags().StringVar(&mobile, "mobile", "", "the corrected mobile number")
	return c
}
