package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

func newAdminGatewayCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "gateway", Short: "Manage gateways (admin; every change is audited)"}
	c.AddCommand(newAdminGatewayAddCmd(a), newAdminGatewayListCmd(a), newAdminGatewayRemoveCmd(a))
	return c
}

func newAdminGatewayAddCmd(a *admin) *cobra.Command {
	var region, endpoint string
	c := &cobra.Command{
		Use:     "add --region NAME --endpoint HOST:PORT",
		Short:   "Create a gateway record; prints its one-time enrollment token alone on stdout",
		Args:    cobra.NoArgs,
		PreRunE: required("region", "endpoint"),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			g, tok, err := srv.Gateways.Add(cmd.Context(), p, region, endpoint)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.env.Stdout, tok)
			fmt.Fprintf(a.env.Stderr, "Gateway %s (%s, %s) created. Enroll it with:\n  nitronet gateway --server URL --token TOKEN\n", g.ID, g.Region, g.Endpoint)
			return nil
		}),
	}
	c.Flags().StringVar(&region, "region", "", "region name, e.g. eu-west")
	c.Flags().StringVar(&endpoint, "endpoint", "", "HOST:PORT that clients dial")
	return c
}

// gatewayJSON is one gateway in `admin gateway list --json`.
type gatewayJSON struct {
	ID        string    `json:"id"`
	Region    string    `json:"region"`
	Endpoint  string    `json:"endpoint"`
	PublicKey string    `json:"public_key"` // "" until enrolled
	Enrolled  bool      `json:"enrolled"`
	LastSeen  *jsonTime `json:"last_seen"`
}

func newAdminGatewayListCmd(a *admin) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--json]",
		Short: "List gateways",
		Args:  cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			gs, err := srv.Gateways.StaffList(cmd.Context(), p)
			if err != nil {
				return err
			}
			if asJSON {
				v := struct {
					Gateways []gatewayJSON `json:"gateways"`
				}{Gateways: []gatewayJSON{}}
				for _, g := range gs {
					v.Gateways = append(v.Gateways, gatewayJSON{ID: g.ID, Region: g.Region, Endpoint: g.Endpoint,
						PublicKey: g.PublicKey, Enrolled: g.PublicKey != "", LastSeen: optTime(g.LastSeen)})
				}
				return printJSON(a.env.Stdout, v)
			}
			tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tREGION\tENDPOINT\tENROLLED\tLAST SEEN")
			for _, g := range gs {
				seen := "-"
				if g.LastSeen != nil {
					seen = g.LastSeen.UTC().Format("2006-01-02 15:04:05Z")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", g.ID, g.Region, g.Endpoint, g.PublicKey != "", seen)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(c, &asJSON)
	return c
}

func newAdminGatewayRemoveCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a gateway: its credential stops working at once and it gets no more peers",
		Args:  cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			g, err := srv.Gateways.Remove(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Gateway %s (%s, %s) removed.\n", g.ID, g.Region, g.Endpoint)
			return nil
		}),
	}
}
