package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

func newAdminProcessorCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "processor", Short: "The processor register: third parties and the data each may receive (privacy officer)"}
	c.AddCommand(newAdminProcessorAddCmd(a), newAdminProcessorListCmd(a), newAdminProcessorRemoveCmd(a))
	return c
}

func newAdminProcessorAddCmd(a *admin) *cobra.Command {
	var name, purpose string
	var cats []string
	c := &cobra.Command{
		Use: "add --name NAME --purpose TEXT --categories IDS", Short: "Register a processor", Args: cobra.NoArgs,
		PreRunE: required("name", "purpose", "categories"),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			pr, err := srv.Processors.Add(cmd.Context(), p, name, purpose, cats)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Processor %s (%s) registered for %s.\n", pr.ID, pr.Name, strings.Join(pr.Categories, ", "))
			return nil
		}),
	}
	c.Flags().StringVar(&name, "name", "", "processor name, e.g. \"SMTP relay\"")
	c.Flags().StringVar(&purpose, "purpose", "", "what it does for you")
	c.Flags().StringSliceVar(&cats, "categories", nil, "data category IDs it may receive, comma-separated")
	return c
}

// processorJSON is one processor in `admin processor list --json`.
type processorJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Purpose    string   `json:"purpose"`
	Categories []string `json:"categories"` // data category IDs it may receive
	CreatedAt  jsonTime `json:"created_at"`
}

func newAdminProcessorListCmd(a *admin) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use: "list [--json]", Short: "List the processor register", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			ps, err := srv.Processors.List(cmd.Context(), p)
			if err != nil {
				return err
			}
			if asJSON {
				v := struct {
					Processors []processorJSON `json:"processors"`
				}{Processors: []processorJSON{}}
				for _, pr := range ps {
					v.Processors = append(v.Processors, processorJSON{ID: pr.ID, Name: pr.Name, Purpose: pr.Purpose,
						Categories: nonNil(pr.Categories), CreatedAt: jsonTime(pr.CreatedAt)})
				}
				return printJSON(a.env.Stdout, v)
			}
			tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCATEGORIES\tSINCE\tPURPOSE")
			for _, pr := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", pr.ID, oneLine(pr.Name), strings.Join(pr.Categories, ","),
					pr.CreatedAt.Format(time.DateOnly), oneLine(pr.Purpose))
			}
			return tw.Flush()
		}),
	}
	jsonFlag(c, &asJSON)
	return c
}

func newAdminProcessorRemoveCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use: "remove ID|NAME", Short: "Remove a processor; transfers to it are refused from then on", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			pr, err := srv.Processors.Remove(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Processor %s (%s) removed.\n", pr.ID, pr.Name)
			return nil
		}),
	}
}
