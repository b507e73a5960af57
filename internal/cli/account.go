package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newSignupCmd(g *globals) *cobra.Command {
	var email, mobile string
	c := &cobra.Command{
		Use:   "signup --email EMAIL --mobile +NUMBER",
		Short: "Create an account (the password is read without echo, or from stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "email", "mobile"); err != nil {
				return err
			}
			pw, err := readSecret(g.env, "Password (10 to 256 characters): ")
			if err != nil {
				return err
			}
			cl, st, err := g.client()
			if err != nil {
				return err
			}
			id, err := cl.Signup(cmd.Context(), email, mobile, pw)
			if err != nil {
				return err
			}
			sess, err := cl.Login(cmd.Context(), email, pw)
			if err != nil {
				// The server answers a sign-up with an address that
				// already has an account like any other, and tells the
				// address's owner instead.
				return fmt.Errorf("%w\nIf %s already had an account, its owner has been emailed: log in, or reset the password with `nitronet password forgot`", err, email)
			}
			st.Token, st.Email, st.Device = sess.Token, email, sess.Device
			d, err := g.dir()
			if err != nil {
				return err
			}
			if err := d.Save(st); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "Account %s created and logged in.\n", id)
			fmt.Fprintln(g.env.Stdout, "We sent a code to your email and to your mobile. Verify both with:")
			fmt.Fprintln(g.env.Stdout, "  nitronet verify email CODE")
			fmt.Fprintln(g.env.Stdout, "  nitronet verify mobile CODE")
			return nil
		},
	}
	c.Flags().StringVar(&email, "email", "", "email address")
	c.Flags().StringVar(&mobile, "mobile", "", "mobile number in international form, e.g. +447700900123")
	return inputs(g.serverFlag(c), "password", "password")
}

func newLoginCmd(g *globals) *cobra.Command {
	var email string
	c := &cobra.Command{
		Use:   "login --email EMAIL",
		Short: "Log in (the password is read without echo, or from stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "email"); err != nil {
				return err
			}
			pw, err := readSecret(g.env, "Password: ")
			if err != nil {
				return err
			}
			cl, st, err := g.client()
			if err != nil {
				return err
			}
			device := ""
			if st.Email == email {
				device = st.Device
			}
			sess, err := cl.LoginAs(cmd.Context(), email, pw, device)
			if err != nil {
				return err
			}
			st.Token, st.Email, st.Device = sess.Token, email, sess.Device
			d, err := g.dir()
			if err != nil {
				return err
			}
			if err := d.Save(st); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "Logged in until %s.\n", sess.ExpiresAt.Local().Format("2006-01-02 15:04"))
			return nil
		},
	}
	c.Flags().StringVar(&email, "email", "", "email address")
	return inputs(g.serverFlag(c), "password", "password")
}

func newLogoutCmd(g *globals) *cobra.Command {
	return g.serverFlag(&cobra.Command{
		Use:   "logout",
		Short: "End this session",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, st, err := g.authed()
			if err != nil {
				return err
			}
			if err := cl.Logout(cmd.Context()); err != nil {
				return err
			}
			st.Token = ""
			d, err := g.dir()
			if err != nil {
				return err
			}
			if err := d.Save(st); err != nil {
				return err
			}
			fmt.Fprintln(g.env.Stdout, "Logged out.")
			return nil
		},
	})
}

func newVerifyCmd(g *globals) *cobra.Command {
	var resend bool
	c := &cobra.Command{
		Use:   "verify email|mobile [CODE]",
		Short: "Verify your email or mobile with the code we sent (or --resend it)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ch := args[0]
			if ch != "email" && ch != "mobile" {
				return usageError(cmd, `the first argument must be "email" or "mobile", not %q`, ch)
			}
			if !resend && len(args) != 2 {
				return usageError(cmd, "give the code: nitronet verify %s CODE", ch)
			}
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			if resend {
				if err := cl.Resend(cmd.Context(), ch); err != nil {
					return err
				}
				fmt.Fprintf(g.env.Stdout, "A new code was sent to your %s.\n", ch)
				return nil
			}
			p, err := cl.Verify(cmd.Context(), ch, args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "Your %s is verified.\n", ch)
			if p.EmailVerified && p.MobileVerified {
				fmt.Fprintln(g.env.Stdout, "Both contacts are verified: you can add devices with `nitronet device add NAME`.")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&resend, "resend", false, "send a new code instead")
	return inputs(g.serverFlag(c), "channel", "the first argument (email or mobile)", "code", "CODE")
}

// accountJSON is `whoami --json`.
type accountJSON struct {
	AccountID      string   `json:"account_id"`
	Email          string   `json:"email"`
	EmailVerified  bool     `json:"email_verified"`
	Mobile         string   `json:"mobile"`
	MobileVerified bool     `json:"mobile_verified"`
	CreatedAt      jsonTime `json:"created_at"`
	Server         string   `json:"server"`
}

func newWhoamiCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "whoami",
		Short: "Show the account you are logged in as",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			p, err := cl.Me(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.env.Stdout, accountJSON{AccountID: p.ID, Email: p.Email, EmailVerified: p.EmailVerified,
					Mobile: p.Mobile, MobileVerified: p.MobileVerified, CreatedAt: jsonTime(p.CreatedAt), Server: cl.BaseURL})
			}
			tw := tabwriter.NewWriter(g.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "account\t%s\n", p.ID)
			fmt.Fprintf(tw, "email\t%s\t%s\n", p.Email, verified(p.EmailVerified))
			fmt.Fprintf(tw, "mobile\t%s\t%s\n", p.Mobile, verified(p.MobileVerified))
			fmt.Fprintf(tw, "server\t%s\n", cl.BaseURL)
			return tw.Flush()
		},
	}
	jsonFlag(c, &asJSON)
	return g.serverFlag(c)
}

func verified(ok bool) string {
	if ok {
		return "verified"
	}
	return "not verified"
}

func newPasswordCmd(g *globals) *cobra.Command {
	c := g.serverFlag(&cobra.Command{Use: "password", Short: "Forgotten password"})
	var email, token string
	forgot := &cobra.Command{
		Use:   "forgot --email EMAIL",
		Short: "Email yourself a single-use reset token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "email"); err != nil {
				return err
			}
			cl, _, err := g.client()
			if err != nil {
				return err
			}
			if err := cl.RequestReset(cmd.Context(), email); err != nil {
				return err
			}
			fmt.Fprintln(g.env.Stdout, "If an account uses this email, a reset token has been sent to it.")
			return nil
		},
	}
	forgot.Flags().StringVar(&email, "email", "", "email address")
	reset := &cobra.Command{
		Use:   "reset --token TOKEN",
		Short: "Set a new password with a reset token; every session ends",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "token"); err != nil {
				return err
			}
			pw, err := readSecret(g.env, "New password: ")
			if err != nil {
				return err
			}
			cl, _, err := g.client()
			if err != nil {
				return err
			}
			if err := cl.Reset(cmd.Context(), token, pw); err != nil {
				return err
			}
			fmt.Fprintln(g.env.Stdout, "Password changed. Every session was ended: log in again.")
			return nil
		},
	}
	reset.Flags().StringVar(&token, "token", "", "reset token from the email")
	inputs(reset, "password", "new password")
	c.AddCommand(forgot, reset)
	return c
}
