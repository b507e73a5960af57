package cli

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/transparency"
	"github.com/spf13/cobra"
)

func newTransparencyCmd(env *Env) *cobra.Command {
	c := &cobra.Command{Use: "transparency", Short: "Check an operator's signed transparency report"}
	var pub string
	verify := &cobra.Command{
		Use:   "verify FILE [--public-key BASE64]",
		Short: "Check a transparency report's signature and print it",
		Long: "Check the Ed25519 signature of a signed transparency report and print its contents.\n" +
			"With --public-key (the key the operator publishes), the report must be signed with that\n" +
			"key. Without it, only the key embedded in the file is checked, which proves nothing about\n" +
			"who made the file: the output says so and shows the key to compare. Exits non-zero if the\n" +
			"file is malformed, altered or signed with another key.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var trusted ed25519.PublicKey
			if pub != "" {
				k, err := transparency.ParsePublicKey(strings.TrimSpace(pub))
				if err != nil {
					return err
				}
				trusted = k
			}
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("read report: %w", err)
			}
			data, err := io.ReadAll(io.LimitReader(f, transparency.MaxFileSize+1))
			f.Close()
			if err != nil {
				return fmt.Errorf("read report: %w", err)
			}
			r, err := transparency.Verify(data, trusted)
			var sa *transparency.SelfAssertedError
			switch {
			case errors.As(err, &sa):
				fmt.Fprintf(env.Stdout, "Signature valid but SELF-ASSERTED: the file is intact and signed by key\n  %s\n"+
					"but no trusted key was given. Compare this key with the one the operator publishes,\n"+
					"or run again with --public-key KEY.\n\n", transparency.EncodePublicKey(sa.PublicKey))
			case err != nil:
				return fmt.Errorf("transparency report NOT verified: %w", err)
			default:
				fmt.Fprintf(env.Stdout, "Signature valid: signed with the trusted key %s.\n\n", transparency.EncodePublicKey(trusted))
			}
			printReport(env, r)
			return nil
		},
	}
	verify.Flags().StringVar(&pub, "public-key", "", "the operator's published Ed25519 public key (standard base64)")
	c.AddCommand(verify)
	return c
}

func printReport(env *Env, r transparency.Report) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Period:\t%s (%s to %s)\n", r.Period, r.PeriodStart.Format(time.DateOnly), r.PeriodEnd.Add(-time.Second).Format(time.DateOnly))
	fmt.Fprintf(tw, "Generated:\t%s\n", r.GeneratedAt.Format(time.RFC3339))
	printController(tw, r)
	printAuditHead(tw, r)
	fmt.Fprintf(tw, "Requests:\t%d (data disclosed: %d, nothing disclosed: %d)\n", r.Totals.Requests, r.Totals.WithDataDisclosed, r.Totals.NoDataDisclosed)
	fmt.Fprintf(tw, "Accounts affected:\t%d\n", r.AccountsAffected)
	for _, m := range []struct {
		name string
		v    map[string]int
	}{{"By type", r.ByType}, {"By jurisdiction", r.ByJurisdiction}, {"By outcome", r.ByOutcome}, {"By category disclosed", r.ByCategory}} {
		fmt.Fprintf(tw, "%s:\t%s\n", m.name, counts(m.v))
	}
	canary := r.Canary.Statement
	if canary == "" {
		canary = "(none: treat the canary as dead)"
	}
	fmt.Fprintf(tw, "Canary:\t%s\n", oneLine(canary))
	fmt.Fprintf(tw, "Next update due:\t%s\n", r.Canary.NextUpdate.Format(time.DateOnly))
	tw.Flush()
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", oneLine(k), m[k]))
	}
	return strings.Join(parts, ", ")
}

// printController writes who published the report: the controller's
// details it states, or that it states none.
func printController(w io.Writer, r transparency.Report) {
	if r.Controller == (controller.Identity{}) {
		why := "the operator configured none"
		if r.Format == transparency.ReportFormatV1 {
			why = "reports of format 1 do not state it"
		}
		fmt.Fprintf(w, "Published by:\tnot stated (%s)\n", why)
		return
	}
	label := "Published by:"
	for _, row := range r.Controller.Rows() {
		if row.Value == "" {
			continue
		}
		fmt.Fprintf(w, "%s\t%s: %s\n", label, row.Label, oneLine(row.Value))
		label = ""
	}
}

// printAuditHead writes the audit log head the report commits to, or why
// it states none.
func printAuditHead(w io.Writer, r transparency.Report) {
	if r.AuditHead == "" {
		fmt.Fprintf(w, "Audit log head:\tnot stated (reports of formats 1 and 2 do not carry it)\n")
		return
	}
	fmt.Fprintf(w, "Audit log head:\t%s\n", oneLine(r.AuditHead))
	fmt.Fprintf(w, "\t(the operator proves the staff audit log against it with: nitronet admin audit verify --head %s)\n", oneLine(r.AuditHead))
}
