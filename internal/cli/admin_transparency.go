package cli

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/transparency"
	"github.com/spf13/cobra"
)

func newAdminTransparencyCmd(a *admin) *cobra.Command {
	env := a.env
	var period, out, canary, keyFile string
	c := &cobra.Command{
		Use:   "transparency --period 2026H2 [-o FILE] [--canary TEXT]",
		Short: "Build and sign the transparency report for a half-year from the disclosure ledger (legal role)",
		Long: "Build the transparency report (counts by type, jurisdiction and outcome, and a warrant\n" +
			"canary) for a half-year that has ended, sign it with the Ed25519 key in DATA/transparency.key\n" +
			"(created on first use) and write the signed file. Publish the printed public key where\n" +
			"readers can find it; they check reports with `nitronet transparency verify FILE --public-key KEY`.",
		Args:    cobra.NoArgs,
		PreRunE: required("period"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := transparency.ParsePeriod(period)
			if err != nil {
				return usageError(cmd, "--period: %s", errs.MessageOf(err))
			}
			return a.asStaff(cmd, func(srv *server.Server, pr staff.Principal) error {
				key, err := srv.TransparencyKey(keyFile)
				if err != nil {
					return fmt.Errorf("signing key: %w", err)
				}
				file, r, err := srv.Disclosures.Transparency(cmd.Context(), pr, p, canary, key)
				if err != nil {
					return err
				}
				warnController(env.Stderr, srv.Config.Controller, "readers of the report cannot tell who publishes it")
				if out == "" {
					out = "transparency-" + p.String() + ".json"
				}
				pub := transparency.EncodePublicKey(key.Public().(ed25519.PublicKey))
				if out == "-" {
					fmt.Fprintf(env.Stderr, "Public key: %s\n", pub)
					_, err := env.Stdout.Write(file)
					return err
				}
				if err := os.WriteFile(out, file, 0o644); err != nil {
					return fmt.Errorf("write report: %w", err)
				}
				fmt.Fprintf(env.Stdout, "Transparency report %s written to %s (%d request(s)).\n", p, out, r.Totals.Requests)
				fmt.Fprintf(env.Stdout, "Audit log head signed into it: %s\n", r.AuditHead)
				if r.Interim {
					fmt.Fprintf(env.Stdout, "The period is still running: this is an interim report up to %s; the final one is due %s.\n",
						r.CoversUntil.Format(time.DateOnly), r.PeriodEnd.Format(time.DateOnly))
				}
				fmt.Fprintf(env.Stdout, "Public key: %s\n", pub)
				return nil
			})
		},
	}
	c.Flags().StringVar(&period, "period", "", "half-year, e.g. 2026H2 (required)")
	c.Flags().StringVarP(&out, "output", "o", "", "file to write (default transparency-PERIOD.json; - for stdout)")
	c.Flags().StringVar(&canary, "canary", "", "warrant canary statement to sign; empty means none is made")
	c.Flags().StringVar(&keyFile, "key-file", "", "signing key (default DATA/transparency.key)")
	return c
}
