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
			return a.asStaff(cmd, staff.ActAuditView, func(srv *server.Server, p staff.Principal) error {
				h, err := srv.Audit.Head(cmd.Context())
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
			}
			h, err := auditchain.ParseCheckpoint(want)
			if err != nil {
				return fmt.Errorf("--head: %s", errs.MessageOf(err))
			}
			return a.asStaff(cmd, "", func(srv *server.Server, p staff.Principal) error {
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
