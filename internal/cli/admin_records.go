package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

func newAdminRecordsCmd(a *admin) *cobra.Command {
	env := a.env
	var format string
	var asJSON bool
	c := &cobra.Command{
		Use:   "records [--format markdown|json | --json]",
		Short: "Print the Article 30 record of processing, generated from the data inventory in force",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatJSON(cmd, &format, asJSON); err != nil {
				return err
			}
			if format != "markdown" && format != "json" {
				return usageError(cmd, "--format must be markdown or json, not %q", format)
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				rop, err := srv.Records.Record(cmd.Context(), p)
				if err != nil {
					return err
				}
				warnController(env.Stderr, srv.Config.Controller, "the record of processing (Art. 30(1)(a) GDPR) must name the controller and its contact details")
				if format == "markdown" {
					_, err := fmt.Fprint(env.Stdout, rop.Markdown())
					return err
				}
				return printJSON(env.Stdout, rop)
			})
		},
	}
	c.Flags().StringVar(&format, "format", "markdown", "output format: markdown or json")
	jsonFlag(c, &asJSON)
	return c
}

// warnController writes one warning line to w if the controller's name or
// contact details are not configured, naming the flags that set them and
// why they matter (why).
func warnController(w io.Writer, id controller.Identity, why string) {
	missing := id.Missing()
	if len(missing) == 0 {
		return
	}
	for i, f := range missing {
		missing[i] = "--" + f
	}
	verb := "is"
	if len(missing) > 1 {
		verb = "are"
	}
	list := strings.Join(missing, ", ")
	if n := len(missing); n > 1 {
		list = strings.Join(missing[:n-1], ", ") + " and " + missing[n-1]
	}
	fmt.Fprintf(w, "warning: %s %s not set: %s\n", list, verb, why)
}
