package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/spf13/cobra"
)

func newAdminStaffCmd(a *admin) *cobra.Command {
	env := a.env
	c := &cobra.Command{Use: "staff", Short: "Staff accounts and roles (" + strings.Join(staff.Roles(), ", ") + ")"}
	var email, role string
	add := &cobra.Command{
		Use:   "add --email EMAIL --role ROLE",
		Short: "Add a staff account; its password is read without echo or from stdin",
		Long: "Add a staff account. While no enabled admin exists (a new installation, or one whose\n" +
			"admins are gone), whoever holds the data directory or database adds staff without\n" +
			"--staff (and with NITRONET_STAFF unset): that is how the first admin is made, and how\n" +
			"an installation without one recovers. The addition is audited as a bootstrap. Once an\n" +
			"enabled admin exists, --staff must name an admin.",
		Args: cobra.NoArgs,
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
	add.Flags().StringVar(&email, "email", "", "staff email")
	add.Flags().StringVar(&role, "role", "", "role: "+strings.Join(staff.Roles(), ", "))

	list := &cobra.Command{
		Use: "list", Short: "List staff accounts", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			all, err := srv.Staff.List(cmd.Context(), p)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEMAIL\tROLE\tDISABLED\tTWO-FACTOR")
			for _, s := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\n", s.ID, s.Email, s.Role, s.Disabled, s.TwoFactor)
			}
			return tw.Flush()
		}),
	}

	var target, newRole string
	roleCmd := &cobra.Command{
		Use:   "role (--email EMAIL | ID) --role ROLE",
		Short: "Change a staff account's role; the last enabled admin keeps theirs",
		Args:  cobra.MaximumNArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			ref, err := staffRef(target, args)
			if err != nil {
				return err
			}
			if newRole == "" {
				return errors.New("--role is required: one of " + strings.Join(staff.Roles(), ", "))
			}
			m, err := srv.Staff.SetRole(cmd.Context(), p, ref, newRole)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Staff account %s (%s) now has the role %s.\n", m.ID, m.Email, m.Role)
			return nil
		}),
	}
	roleCmd.Flags().StringVar(&target, "email", "", "the staff account's email (or give its ID)")
	roleCmd.Flags().StringVar(&newRole, "role", "", "new role: "+strings.Join(staff.Roles(), ", "))

	setDisabled := func(disable bool) *cobra.Command {
		var target string
		use, short := "enable (--email EMAIL | ID)", "Enable a disabled staff account again"
		if disable {
			use, short = "disable (--email EMAIL | ID)", "Disable a staff account and end its sessions; the last enabled admin stays"
		}
		cmd := &cobra.Command{
			Use: use, Short: short, Args: cobra.MaximumNArgs(1),
			RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
				ref, err := staffRef(target, args)
				if err != nil {
					return err
				}
				var m staff.Member
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
				fmt.Fprintf(env.Stdout, "Staff account %s (%s) %s.\n", m.ID, m.Email, state)
				return nil
			}),
		}
		cmd.Flags().StringVar(&target, "email", "", "the staff account's email (or give its ID)")
		return cmd
	}

	enroll := &cobra.Command{
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
	var resetTarget string
	reset := &cobra.Command{
		Use: "totp-reset (--email EMAIL | ID)", Short: "Remove a staff member's second factor (a lost phone); they enroll again", Args: cobra.MaximumNArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			ref, err := staffRef(resetTarget, args)
			if err != nil {
				return err
			}
			if err := srv.Staff.ResetTOTP(cmd.Context(), p, ref); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Two-factor login of %s removed.\n", ref)
			return nil
		}),
	}
	reset.Flags().StringVar(&resetTarget, "email", "", "the staff account's email (or give its ID)")
	c.AddCommand(add, list, roleCmd, setDisabled(true), setDisabled(false), enroll, reset)
	return c
}

// staffRef returns the staff account a command names: --email, or else
// its one argument (an ID or an email).
func staffRef(email string, args []string) (string, error) {
	switch {
	case email != "" && len(args) > 0:
		return "", errors.New("give either --email or an ID, not both")
	case email != "":
		return email, nil
	case len(args) == 1:
		return args[0], nil
	}
	return "", errors.New("name the staff account: --email EMAIL or its ID")
}

func newAdminAuditCmd(a *admin) *cobra.Command {
	env := a.env
	c := &cobra.Command{Use: "audit", Short: "The tamper-evident staff audit log"}
	var headJSON bool
	head := &cobra.Command{
		Use:   "head [--json]",
		Short: "Print the audit log's head (SEQ:HASH), to keep outside this system",
		Long: "Print the head of the audit log: the sequence number and hash of its newest entry,\n" +
			"as SEQ:HASH alone on a line. Keep it somewhere the operators of this system cannot\n" +
			"write (another system, a printed record, mail to the data-protection officer);\n" +
			"`nitronet admin audit verify --head SEQ:HASH` later proves that the log still holds\n" +
			"that entry and that nothing up to it was changed, removed or rolled back.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				h, err := srv.Audit.Head(cmd.Context(), p)
				if err != nil {
					return err
				}
				if headJSON {
					return json.NewEncoder(env.Stdout).Encode(headOut{Seq: h.Seq, Hash: hex.EncodeToString(h.Hash), Head: h.String()})
				}
				_, err = fmt.Fprintln(env.Stdout, h)
				return err
			})
		},
	}
	head.Flags().BoolVar(&headJSON, "json", false, "print JSON: seq, hash and head")
	var want string
	var verifyJSON bool
	verify := &cobra.Command{
		Use:   "verify [--head SEQ:HASH] [--json]",
		Short: "Check the audit log's hash chain, and prove it against a head kept elsewhere",
		Long: "Check that the audit log's hash chain is intact. With --head (from `nitronet admin\n" +
			"audit head` or a transparency report), also prove the log against it: the log must\n" +
			"still hold that entry with the same hash and every entry it counted. The answer names\n" +
			"what was found: intact, tampered, truncated, rolled back, or pruned (retention has\n" +
			"since deleted the head's entry, so it can no longer be proven: use a newer head).\n" +
			"Anything but intact exits non-zero.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if want == "" && verifyJSON {
				return fmt.Errorf("--json needs --head")
			}
			if want == "" {
				return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
					n, err := srv.Audit.Verify(cmd.Context(), p)
					var brk *auditchain.BreakError
					if errors.As(err, &brk) {
						return fmt.Errorf("audit log BROKEN after checking %d entries: %w", n, err)
					}
					if err != nil {
						return err
					}
					fmt.Fprintf(env.Stdout, "Audit log intact: %d entries, hash chain verified.\n", n)
					return nil
				})
			}
			h, err := auditchain.ParseCheckpoint(want)
			if err != nil {
				return fmt.Errorf("--head: %s", errs.MessageOf(err))
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				proof, err := srv.Audit.VerifyHead(cmd.Context(), p, h)
				return printHeadProof(env, h, proof, err, verifyJSON)
			})
		},
	}
	verify.Flags().StringVar(&want, "head", "", "a head taken earlier (SEQ:HASH) to prove the log against")
	verify.Flags().BoolVar(&verifyJSON, "json", false, "print the result as JSON (with --head)")
	var after int64
	var limit int
	list := &cobra.Command{
		Use: "list", Short: "Print audit entries", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				page, err := srv.Audit.Read(cmd.Context(), p, after, limit)
				if err != nil {
					return err
				}
				es := page.Entries
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
	c.AddCommand(head, verify, list)
	return c
}

// headOut is `admin audit head --json`.
type headOut struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"` // hexadecimal; empty for an empty log
	Head string `json:"head"` // SEQ:HASH
}

// headResult is `admin audit verify --head H --json`.
type headResult struct {
	Result  string `json:"result"` // intact, tampered, truncated, rolled_back or pruned
	Head    string `json:"head"`
	Current string `json:"current,omitempty"` // the log's head, when intact
	Entries int    `json:"entries,omitempty"` // entries checked, when intact
	Detail  string `json:"detail,omitempty"`  // what was found, when not intact
}

// printHeadProof reports the outcome of proving the log against head h:
// the proof, or what VerifyHead found (err), as text or JSON. Anything but
// a proof is returned as an error, so the command exits non-zero.
func printHeadProof(env *Env, h auditchain.Checkpoint, proof audit.HeadProof, err error, asJSON bool) error {
	var he *audit.HeadError
	if err != nil && !errors.As(err, &he) {
		return err
	}
	if asJSON {
		r := headResult{Result: "intact", Head: h.String(), Current: proof.Current.String(), Entries: proof.Entries}
		if he != nil {
			r = headResult{Result: string(he.Problem), Head: h.String(), Detail: he.Detail}
		}
		if werr := json.NewEncoder(env.Stdout).Encode(r); werr != nil {
			return werr
		}
		if he != nil {
			return fmt.Errorf("audit log %s", headVerdict(he.Problem))
		}
		return nil
	}
	if he != nil {
		if he.Problem == audit.Pruned {
			return fmt.Errorf("cannot prove head %d: %s (%s)", h.Seq, headVerdict(he.Problem), he.Detail)
		}
		return fmt.Errorf("audit log %s against head %d: %s", strings.ToUpper(headVerdict(he.Problem)), h.Seq, he.Detail)
	}
	from := "its first entry"
	if proof.Anchor > 0 {
		from = fmt.Sprintf("retention's anchor at seq %d", proof.Anchor)
	}
	fmt.Fprintf(env.Stdout, "Audit log proves head %d: it holds that entry with the same hash, and its hash chain is intact\n"+
		"from %s through the head to the current head %s (%d entries checked).\n", h.Seq, from, proof.Current, proof.Entries)
	return nil
}

// headVerdict words an audit.Problem for the operator.
func headVerdict(p audit.Problem) string {
	switch p {
	case audit.RolledBack:
		return "rolled back"
	case audit.Pruned:
		return "pruned by retention"
	}
	return string(p)
}
