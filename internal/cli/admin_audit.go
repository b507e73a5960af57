package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

func newAdminAuditCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "The tamper-evident staff audit log"}
	c.AddCommand(newAdminAuditHeadCmd(a), newAdminAuditVerifyCmd(a), newAdminAuditListCmd(a))
	return c
}

func newAdminAuditHeadCmd(a *admin) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "head [--json]",
		Short: "Print the audit log's head (SEQ:HASH), to keep outside this system",
		Long: "Print the head of the audit log: the sequence number and hash of its newest entry,\n" +
			"as SEQ:HASH alone on a line. Keep it somewhere the operators of this system cannot\n" +
			"write (another system, a printed record, mail to the data-protection officer);\n" +
			"`nitronet admin audit verify --head SEQ:HASH` later proves that the log still holds\n" +
			"that entry and that nothing up to it was changed, removed or rolled back.",
		Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			h, err := srv.Audit.Head(cmd.Context(), p)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.env.Stdout, headOut{Seq: h.Seq, Hash: hex.EncodeToString(h.Hash), Head: h.String()})
			}
			_, err = fmt.Fprintln(a.env.Stdout, h)
			return err
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: seq, hash and head")
	return c
}

func newAdminAuditVerifyCmd(a *admin) *cobra.Command {
	env := a.env
	var want string
	var asJSON bool
	c := &cobra.Command{
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
			if want == "" && asJSON {
				return usageError(cmd, "--json needs --head")
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
				return usageError(cmd, "--head: %s", errs.MessageOf(err))
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				proof, err := srv.Audit.VerifyHead(cmd.Context(), p, h)
				return printHeadProof(env, h, proof, err, asJSON)
			})
		},
	}
	c.Flags().StringVar(&want, "head", "", "a head taken earlier (SEQ:HASH) to prove the log against")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (with --head)")
	return c
}

// auditPageJSON is `admin audit list --json`.
type auditPageJSON struct {
	Entries []auditEntryJSON `json:"entries"`
	// LastSeq is the sequence number of the newest entry in the whole log
	// when it was read (before this read's own entry); 0 for an empty log.
	LastSeq int64 `json:"last_seq"`
}

// auditEntryJSON is one entry of the audit log.
type auditEntryJSON struct {
	Seq      int64    `json:"seq"`
	At       jsonTime `json:"at"`
	Actor    string   `json:"actor"` // staff ID; "system" (housekeeping) or "operator" (a staff bootstrap)
	Role     string   `json:"role"`
	Action   string   `json:"action"`
	Subject  string   `json:"subject"`
	Detail   string   `json:"detail"`
	PrevHash string   `json:"prev_hash"` // hexadecimal; "" for the first entry
	Hash     string   `json:"hash"`      // hexadecimal
}

func newAdminAuditListCmd(a *admin) *cobra.Command {
	var after int64
	var limit int
	var asJSON bool
	c := &cobra.Command{
		Use: "list [--after SEQ] [--limit N] [--json]", Short: "Print audit entries", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			page, err := srv.Audit.Read(cmd.Context(), p, after, limit)
			if err != nil {
				return err
			}
			if asJSON {
				v := auditPageJSON{Entries: []auditEntryJSON{}, LastSeq: page.Last}
				for _, e := range page.Entries {
					v.Entries = append(v.Entries, auditEntryJSON{Seq: e.Seq, At: jsonTime(e.At), Actor: e.Actor, Role: e.Role,
						Action: e.Action, Subject: e.Subject, Detail: e.Detail,
						PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)})
				}
				return printJSON(a.env.Stdout, v)
			}
			tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tAT\tACTOR\tROLE\tACTION\tSUBJECT\tDETAIL")
			for _, e := range page.Entries {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Format("2006-01-02 15:04:05Z"), e.Actor, e.Role, e.Action, e.Subject, e.Detail)
			}
			return tw.Flush()
		}),
	}
	c.Flags().Int64Var(&after, "after", 0, "only entries after this sequence number")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many entries")
	jsonFlag(c, &asJSON)
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
		if werr := printJSON(env.Stdout, r); werr != nil {
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
