package cli

import (
	"encoding/json"
	"fmt"

	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

func newAdminRecordsCmd(a *admin) *cobra.Command {
	env := a.env
	var format string
	c := &cobra.Command{
		Use:   "records [--format markdown|json]",
		Short: "Print the Article 30 record of processing, generated from the data inventory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "markdown" && format != "json" {
				return fmt.Errorf("--format must be markdown or json")
			}
			return a.asStaff(cmd, staff.ActRecordsView, func(srv *server.Server, p staff.Principal) error {
				rop := inventory.Default().RecordOfProcessing()
				if format == "markdown" {
					_, err := fmt.Fprint(env.Stdout, rop.Markdown())
					return err
				}
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rop)
			})
		},
	}
	c.Flags().StringVar(&format, "format", "markdown", "output format: markdown or json")
	return c
}
