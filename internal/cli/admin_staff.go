package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/spf13/cobra"
)

func newAdminStaffCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "staff", Short: "Staff accounts and roles (" + strings.Join(staff.Roles(), ", ") + ")"}
	c.AddCommand(newAdminStaffAddCmd(a), newAdminStaffListCmd(a), newAdminStaffRoleCmd(a),
		newAdminStaffSetDisabledCmd(a, true), newAdminStaffSetDisabledCmd(a, false),
		newAdminStaffTOTPCmd(a), newAdminStaffTOTPResetCmd(a))
	return c
}

func newAdminStaffAddCmd(a *admin) *cobra.Command {
	env := a.env
	var email, role string
	c := &cobra.Command{
		Use:   "add --email EMAIL --role ROLE",
		Short: "Add a staff account; its password is read without echo or from stdin",
		Long: "Add a staff account. While no enabled admin exists (a new installation, or one whose\n" +
			"admins are gone), whoever holds the data directory or database adds staff without\n" +
			"--staff (and with NITRONET_STAFF unset): that is how the first admin is made, and how\n" +
			"an installation without one recovers. The addition is audited as a bootstrap. Once an\n" +
			"enabled admin exists, --staff must name an admin.",
		Args:    cobra.NoArgs,
		PreRunE: required("email", "role"),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := a.server(cmd)
			if err != nil {
				return err
			}
			defer srv.Close()
			var by staff.Principal
			if a.staffGiven() {
				if by, err = a.principal(cmd, srv); err != nil {
					return err
				}
			}
			pw, err := readSecret(env, "Password for the new staff account: ")
			if err != nil {
				return err
			}
			var id string
			if a.staffGiven() {
				id, err = srv.Staff.Add(cmd.Context(), by, email, role, pw)
			} else {
				id, err = srv.Staff.Bootstrap(cmd.Context(), email, role, pw)
				if errs.Is(err, errs.Unauthenticated) {
					return errors.New("an enabled admin exists: act as an admin with --staff EMAIL (or NITRONET_STAFF)")
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Staff account %s (%s) added.\n", id, role)
			return nil
		},
	}
	c.Flags().StringVar(&email, "email", "", "staff email")
	c.Flags().StringVar(&role, "role", "", "role: "+strings.Join(staff.Roles(), ", "))
	return c
}

// staffJSON is one staff account in `admin staff list --json`.
type staffJSON struct {
	ID        string   `json:"id"`
	Email     string   `json:"email"`
	Role      string   `json:"role"`
	Disabled  bool     `json:"disabled"`
	TwoFactor bool     `json:"two_factor"`
	CreatedAt jsonTime `json:"created_at"`
}

func newAdminStaffListCmd(a *admin) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use: "list [--json]", Short: "List staff accounts", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			all, err := srv.Staff.List(cmd.Context(), p)
			if err != nil {
				return err
			}
			if asJSON {
				v := struct {
					Staff []staffJSON `json:"staff"`
				}{Staff: []staffJSON{}}
				for _, s := range all {
					v.Staff = append(v.Staff, staffJSON{ID: s.ID, Email: s.Email, Role: s.Role, Disabled: s.Disabled,
						TwoFactor: s.TwoFactor, CreatedAt: jsonTime(s.CreatedAt)})
				}
				return printJSON(a.env.Stdout, v)
			}
			tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEMAIL\tROLE\tDISABLED\tTWO-FACTOR")
			for _, s := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\n", s.ID, s.Email, s.Role, s.Disabled, s.TwoFactor)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(c, &asJSON)
	return c
}

func newAdminStaffRoleCmd(a *admin) *cobra.Command {
	var target, newRole string
	c := &cobra.Command{
		Use:     "role (--email EMAIL | ID) --role ROLE",
		Short:   "Change a staff account's role; the last enabled admin keeps theirs",
		Args:    cobra.MaximumNArgs(1),
		PreRunE: required("role"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := staffRef(cmd, target, args)
			if err != nil {
				return err
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				m, err := srv.Staff.SetRole(cmd.Context(), p, ref, newRole)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "Staff account %s (%s) now has the role %s.\n", m.ID, m.Email, m.Role)
				return nil
			})
		},
	}
	c.Flags().StringVar(&target, "email", "", "the staff account's email (or give its ID)")
	c.Flags().StringVar(&newRole, "role", "", "new role: "+strings.Join(staff.Roles(), ", "))
	return c
}

// newAdminStaffSetDisabledCmd is `admin staff disable` (disable) or
// `admin staff enable`.
func newAdminStaffSetDisabledCmd(a *admin, disable bool) *cobra.Command {
	var target string
	use, short := "enable (--email EMAIL | ID)", "Enable a disabled staff account again"
	if disable {
		use, short = "disable (--email EMAIL | ID)", "Disable a staff account and end its sessions; the last enabled admin stays"
	}
	c := &cobra.Command{
		Use: use, Short: short, Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := staffRef(cmd, target, args)
			if err != nil {
				return err
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				var m staff.Member
				var err error
				if disable {
					m, err = srv.Staff.Disable(cmd.Context(), p, ref)
				} else {
					m, err = srv.Staff.Enable(cmd.Context(), p, ref)
				}
				if err != nil {
					return err
				}
				state := "enabled"
				if m.Disabled {
					state = "disabled; its sessions ended"
				}
				fmt.Fprintf(a.env.Stdout, "Staff account %s (%s) %s.\n", m.ID, m.Email, state)
				return nil
			})
		},
	}
	c.Flags().StringVar(&target, "email", "", "the staff account's email (or give its ID)")
	return c
}

func newAdminStaffTOTPCmd(a *admin) *cobra.Command {
	env := a.env
	return &cobra.Command{
		Use:   "totp",
		Short: "Turn on two-factor login for your own staff account (an authenticator app scans the QR code)",
		Args:  cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
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
		}),
	}
}

func newAdminStaffTOTPResetCmd(a *admin) *cobra.Command {
	var target string
	c := &cobra.Command{
		Use: "totp-reset (--email EMAIL | ID)", Short: "Remove a staff member's second factor (a lost phone); they enroll again", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := staffRef(cmd, target, args)
			if err != nil {
				return err
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				if err := srv.Staff.ResetTOTP(cmd.Context(), p, ref); err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "Two-factor login of %s removed.\n", ref)
				return nil
			})
		},
	}
	c.Flags().StringVar(&target, "email", "", "the staff account's email (or give its ID)")
	return c
}

// staffRef returns the staff account cmd names: --email, or else its one
// argument (an ID or an email). Neither or both is a usage error.
func staffRef(cmd *cobra.Command, email string, args []string) (string, error) {
	switch {
	case email != "" && len(args) > 0:
		return "", usageError(cmd, "give either --email or an ID, not both")
	case email != "":
		return email, nil
	case len(args) == 1:
		return args[0], nil
	}
	return "", usageError(cmd, "name the staff account: --email EMAIL or its ID")
}
