package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/spf13/cobra"
)

func newAdminStaffCmd(a *admin) *cobra.Command {
	env := a.env
	c := &cobra.Command{Use: "staff", Short: "Staff accounts and roles (" + fmt.Sprint(staff.Roles()) + ")"}
	var email, role string
	add := &cobra.Command{
		Use:   "add --email EMAIL --role ROLE",
		Short: "Add a staff account; its password is read without echo or from stdin",
		Long: "Add a staff account. The first staff account can be added by whoever holds the data\n" +
			"directory; after that, --staff must name an admin.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := a.server(cmd)
			if err != nil {
				return err
			}
			defer srv.Close()
			existing, err := srv.Store.ListStaff(cmd.Context())
			if err != nil {
				return err
			}
			by := staff.Operator()
			if len(existing) > 0 {
				if by, err = a.principal(cmd, srv); err != nil {
					return err
				}
			}
			pw, err := readSecret(env, "Password for the new staff account: ")
			if err != nil {
				return err
			}
			id, err := srv.Staff.Add(cmd.Context(), by, email, role, pw)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Staff account %s (%s) added.\n", id, role)
			return nil
		},
	}
	add.Flags().StringVar(&email, "email", "", "staff email")
	add.Flags().StringVar(&role, "role", "", "role: admin, support, privacy_officer or legal")

	list := &cobra.Command{
		Use: "list", Short: "List staff accounts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, "", func(srv *server.Server, p staff.Principal) error {
				all, err := srv.Staff.List(cmd.Context(), p)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tEMAIL\tROLE\tDISABLED")
				for _, s := range all {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", s.ID, s.Email, s.Role, s.Disabled)
				}
				return tw.Flush()
			})
		},
	}

	var enable bool
	disable := &cobra.Command{
		Use: "disable ID", Short: "Disable a staff account (ends its sessions); --enable undoes it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, "", func(srv *server.Server, p staff.Principal) error {
				if p.ID == args[0] && !enable {
					return errors.New("you cannot disable your own account")
				}
				if err := srv.Staff.SetDisabled(cmd.Context(), p, args[0], !enable); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "Staff account %s disabled=%v.\n", args[0], !enable)
				return nil
			})
		},
	}
	disable.Flags().BoolVar(&enable, "enable", false, "enable instead")
	enroll := &cobra.Command{
		Use:   "totp",
		Short: "Turn on two-factor login for your own staff account (an authenticator app scans the QR code)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, "", func(srv *server.Server, p staff.Principal) error {
				en, err := srv.Staff.BeginTOTP(cmd.Context(), p)
				if err != nil {
					return err
				}
				qr, err := wgconf.QR(en.URL)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stderr, "%s\nScan this with your authenticator app, or enter the key %s.\n", qr, en.Secret)
				code, err := readSecret(env, "Code shown by the app: ")
				if err != nil {
					return err
				}
				if err := srv.Staff.ConfirmTOTP(cmd.Context(), p, en.Secret, code); err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, "Two-factor login is on: staff logins now need a code from the app.")
				return nil
			})
		},
	}
	reset := &cobra.Command{
		Use: "totp-reset ID", Short: "Remove a staff member's second factor (a lost phone); they enroll again", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, "", func(srv *server.Server, p staff.Principal) error {
				if err := srv.Staff.ResetTOTP(cmd.Context(), p, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "Two-factor login of %s removed.\n", args[0])
				return nil
			})
		},
	}
	c.AddCommand(add, list, disable, enroll, reset)
	return c
}

func newAdminAuditCmd(a *admin) *cobra.Command {
	env := a.env
	c := &cobra.Command{Use: "audit", Short: "The tamper-evident staff audit log"}
	verify := &cobra.Command{
		Use: "verify", Short: "Check the audit log's hash chain", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, staff.ActAuditView, func(srv *server.Server, p staff.Principal) error {
				n, err := srv.Audit.Verify(cmd.Context())
				if err != nil {
					return fmt.Errorf("audit log BROKEN after checking %d entries: %w", n, err)
				}
				if err := srv.Audit.Record(cmd.Context(), p.ID, p.Role, staff.ActAuditView, "audit_log", fmt.Sprintf("verified %d entries", n)); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "Audit log intact: %d entries, hash chain verified.\n", n)
				return nil
			})
		},
	}
	var after int64
	var limit int
	list := &cobra.Command{
		Use: "list", Short: "Print audit entries", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, staff.ActAuditView, func(srv *server.Server, p staff.Principal) error {
				es, err := srv.Audit.Entries(cmd.Context(), after, limit)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tAT\tACTOR\tROLE\tACTION\tSUBJECT\tDETAIL")
				for _, e := range es {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Format("2006-01-02 15:04:05Z"), e.Actor, e.Role, e.Action, e.Subject, e.Detail)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().Int64Var(&after, "after", 0, "only entries after this sequence number")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many entries")
	c.AddCommand(verify, list)
	return c
}
