package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newAdminProcessorCmd(a *admin) *cobra.Command {
	env := a.env
	c := &cobra.Command{Use: "processor", Short: "The processor register: third parties and the data each may receive (privacy officer)"}

	var name, purpose string
	var cats []string
	add := &cobra.Command{
		Use: "add --name NAME --purpose TEXT --categories IDS", Short: "Register a processor", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := a.server(cmd)
			if err != nil {
				return err
			}
			defer srv.Close()
			p, err := a.principal(cmd, srv)
			if err != nil {
				return err
			}
			pr, err := srv.Processors.Add(cmd.Context(), p, name, purpose, cats)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Processor %s (%s) registered for %s.\n", pr.ID, pr.Name, strings.Join(pr.Categories, ", "))
			return nil
		},
	}
	add.Flags().StringVar(&name, "name", "", "processor name, e.g. \"SMTP relay\"")
	add.Flags().StringVar(&purpose, "purpose", "", "what it does for you")
	add.Flags().StringSliceVar(&cats, "categories", nil, "data category IDs it may receive, comma-separated")

	list := &cobra.Command{
		Use: "list", Short: "List the processor register", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := a.server(cmd)
			if err != nil {
				return err
			}
			defer srv.Close()
			p, err := a.principal(cmd, srv)
			if err != nil {
				return err
			}
			ps, err := srv.Processors.List(cmd.Context(), p)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCATEGORIES\tSINCE\tPURPOSE")
			for _, pr := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", pr.ID, oneLine(pr.Name), strings.Join(pr.Categories, ","),
					pr.CreatedAt.Format(time.DateOnly), oneLine(pr.Purpose))
			}
			return tw.Flush()
		},
	}

	remove := &cobra.Command{
		Use: "remove ID|NAME", Short: "Remove a processor; transfers to it are refused from then on", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := a.server(cmd)
			if err != nil {
				return err
			}
			defer srv.Close()
			p, err := a.principal(cmd, srv)
			if err != nil {
				return err
			}
			pr, err := srv.Processors.Remove(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Processor %s (%s) removed.\n", pr.ID, pr.Name)
			return nil
		},
	}
	c.AddCommand(add, list, remove)
	return c
}
