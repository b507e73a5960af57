package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newDeviceCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "device", Short: "Manage your devices (private keys stay on this machine)"}
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Generate a WireGuard key pair here and register the public key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			d, err := g.dir()
			if err != nil {
				return err
			}
			key, err := d.NewKey(g.env.Rand)
			if err != nil {
				return err
			}
			dev, err := cl.AddDevice(cmd.Context(), args[0], key.Public().String())
			if err != nil {
				return err
			}
			if err := d.SaveKey(dev.ID, key); err != nil {
				return fmt.Errorf("device %s registered but its key could not be saved: %w", dev.ID, err)
			}
			fmt.Fprintf(g.env.Stdout, "Device %s (%s) added with addresses %s.\n", dev.ID, dev.Name, strings.Join(dev.Addresses, ", "))
			fmt.Fprintf(g.env.Stdout, "Its private key is kept in %s and was not sent anywhere.\n", d.Path)
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List your devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			ds, err := cl.Devices(cmd.Context())
			if err != nil {
				return err
			}
			d, err := g.dir()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tADDRESSES\tKEY HERE\tPUBLIC KEY")
			for _, dev := range ds {
				here := "no"
				if _, err := d.Key(dev.ID); err == nil {
					here = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", dev.ID, dev.Name, strings.Join(dev.Addresses, ","), here, dev.PublicKey)
			}
			return tw.Flush()
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a device; gateways drop it at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			if err := cl.RemoveDevice(cmd.Context(), args[0]); err != nil {
				return err
			}
			d, err := g.dir()
			if err != nil {
				return err
			}
			if err := d.RemoveKey(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "Device %s removed.\n", args[0])
			return nil
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate ID",
		Short: "Replace a device's key pair with a new one generated here",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			d, err := g.dir()
			if err != nil {
				return err
			}
			key, err := d.NewKey(g.env.Rand)
			if err != nil {
				return err
			}
			pub := key.Public().String()
			if _, err := cl.UpdateDevice(cmd.Context(), args[0], nil, &pub); err != nil {
				return err
			}
			if err := d.SaveKey(args[0], key); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "Device %s now uses a new key pair.\n", args[0])
			return nil
		},
	}
	rename := &cobra.Command{
		Use:   "rename ID NAME",
		Short: "Rename a device",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			dev, err := cl.UpdateDevice(cmd.Context(), args[0], &args[1], nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "Device %s is now called %s.\n", dev.ID, dev.Name)
			return nil
		},
	}
	c.AddCommand(add, list, remove, rotate, rename, newDeviceConfigCmd(g))
	return c
}
