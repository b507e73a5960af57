package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/nitronet/nitronet/internal/client"
	"github.com/nitronet/nitronet/internal/dnsblock"
	"github.com/spf13/cobra"
)

// findDevice returns the device of ds that ref names: the device whose ID
// is ref, else the one device whose name is exactly ref. A name that
// several devices share is an error listing their IDs.
func findDevice(ds []client.Device, ref string) (client.Device, error) {
	for _, d := range ds {
		if d.ID == ref {
			return d, nil
		}
	}
	var named []client.Device
	for _, d := range ds {
		if d.Name == ref {
			named = append(named, d)
		}
	}
	switch len(named) {
	case 1:
		return named[0], nil
	case 0:
		return client.Device{}, fmt.Errorf("no device with ID or name %q on your account (see 'nitronet device list')", ref)
	}
	ids := make([]string, len(named))
	for i, d := range named {
		ids[i] = d.ID
	}
	return client.Device{}, fmt.Errorf("%d devices are named %q: %s; give the ID of the one you mean", len(named), ref, strings.Join(ids, ", "))
}

// device returns the caller's device that ref names (an ID or a name; see
// findDevice).
func device(ctx context.Context, cl *client.Client, ref string) (client.Device, error) {
	ds, err := cl.Devices(ctx)
	if err != nil {
		return client.Device{}, err
	}
	return findDevice(ds, ref)
}

// deviceJSON is one device in `device list --json`.
type deviceJSON struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	PublicKey string   `json:"public_key"`
	Addresses []string `json:"addresses"`
	// DNSBlocking names the DNS blocking categories the device chose.
	DNSBlocking []string `json:"dns_blocking"`
	CreatedAt   jsonTime `json:"created_at"`
	// KeyHere reports whether the device's private key is on this machine.
	KeyHere bool `json:"key_here"`
}

func newDeviceCmd(g *globals) *cobra.Command {
	c := g.serverFlag(&cobra.Command{
		Use:   "device",
		Short: "Manage your devices (private keys stay on this machine)",
		Long: "Manage your devices. A device is named by its ID or by its name: an exact ID match\n" +
			"wins, then an exact name; a name that several devices share must be given as an ID.",
	})
	c.AddCommand(newDeviceAddCmd(g), newDeviceListCmd(g), newDeviceRemoveCmd(g), newDeviceRotateCmd(g),
		newDeviceRenameCmd(g), newDeviceConfigCmd(g), newDeviceBlockingCmd(g))
	return c
}

func newDeviceAddCmd(g *globals) *cobra.Command {
	var blocking []string
	c := inputs(&cobra.Command{
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
			dev, err := cl.AddDevice(cmd.Context(), args[0], key.Public().String(), blocking)
			if err != nil {
				return err
			}
			if err := d.SaveKey(dev.ID, key); err != nil {
				return fmt.Errorf("device %s registered but its key could not be saved: %w", dev.ID, err)
			}
			fmt.Fprintf(g.env.Stdout, "Device %s (%s) added with addresses %s.\n", dev.ID, dev.Name, strings.Join(dev.Addresses, ", "))
			fmt.Fprintf(g.env.Stdout, "Its private key is kept in %s and was not sent anywhere.\n", d.Path)
			if len(dev.DNSBlocking) > 0 {
				fmt.Fprintf(g.env.Stdout, "Its DNS blocks %s.\n", strings.Join(dev.DNSBlocking, ", "))
			}
			return nil
		},
	}, "name", "NAME")
	c.Flags().StringSliceVar(&blocking, "dns-blocking", nil, "DNS blocking categories: "+dnsCategories())
	return c
}

// dnsCategories lists the DNS blocking categories for help texts, from
// package dnsblock, which defines them.
func dnsCategories() string {
	var names []string
	for _, c := range dnsblock.Categories() {
		names = append(names, c.String())
	}
	return strings.Join(names, ", ") + " (comma-separated)"
}

// blockingText describes a device's DNS blocking choice.
func blockingText(cats []string) string {
	if len(cats) == 0 {
		return "none"
	}
	return strings.Join(cats, ",")
}

func newDeviceBlockingCmd(g *globals) *cobra.Command {
	return inputs(&cobra.Command{
		Use:   "dns-blocking ID|NAME CATEGORIES|none",
		Short: "Choose the DNS blocking categories of a device",
		Long: "Choose which DNS blocking categories a device uses: " + dnsCategories() + ",\n" +
			"or none. The gateway answers names on the operator's lists of those categories with\n" +
			"NXDOMAIN. It keeps no record of the choice: the device's configuration names the\n" +
			"resolver of that set, so reconnect (nitronet up) or fetch the configuration again.\n" +
			"No query or match is logged or counted per device.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			dev, err := device(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			cats := []string{}
			if !strings.EqualFold(strings.TrimSpace(args[1]), "none") {
				for _, c := range strings.Split(args[1], ",") {
					if c = strings.TrimSpace(c); c != "" {
						cats = append(cats, c)
					}
				}
			}
			set, err := cl.SetDNSBlocking(cmd.Context(), dev.ID, cats)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "Device %s (%s) now blocks: %s. Reconnect to apply it.\n", set.ID, set.Name, blockingText(set.DNSBlocking))
			return nil
		},
	}, "dns_blocking", "CATEGORIES")
}

func newDeviceListCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
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
			keyHere := func(id string) bool { _, err := d.Key(id); return err == nil }
			if asJSON {
				out := struct {
					Devices []deviceJSON `json:"devices"`
				}{Devices: []deviceJSON{}}
				for _, dev := range ds {
					out.Devices = append(out.Devices, deviceJSON{ID: dev.ID, Name: dev.Name, PublicKey: dev.PublicKey,
						Addresses: nonNil(dev.Addresses), DNSBlocking: nonNil(dev.DNSBlocking), CreatedAt: jsonTime(dev.CreatedAt), KeyHere: keyHere(dev.ID)})
				}
				return printJSON(g.env.Stdout, out)
			}
			tw := tabwriter.NewWriter(g.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tADDRESSES\tDNS BLOCKING\tKEY HERE\tPUBLIC KEY")
			for _, dev := range ds {
				here := "no"
				if keyHere(dev.ID) {
					here = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", dev.ID, dev.Name, strings.Join(dev.Addresses, ","), blockingText(dev.DNSBlocking), here, dev.PublicKey)
			}
			return tw.Flush()
		},
	}
	jsonFlag(c, &asJSON)
	return c
}

func newDeviceRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID|NAME",
		Short: "Remove a device; gateways drop it at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			dev, err := device(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			if err := cl.RemoveDevice(cmd.Context(), dev.ID); err != nil {
				return err
			}
			d, err := g.dir()
			if err != nil {
				return err
			}
			if err := d.RemoveKey(dev.ID); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "Device %s (%s) removed.\n", dev.ID, dev.Name)
			return nil
		},
	}
}

func newDeviceRotateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate ID|NAME",
		Short: "Replace a device's key pair with a new one generated here",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			dev, err := device(cmd.Context(), cl, args[0])
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
			if _, err := cl.UpdateDevice(cmd.Context(), dev.ID, nil, &pub); err != nil {
				return err
			}
			if err := d.SaveKey(dev.ID, key); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "Device %s (%s) now uses a new key pair.\n", dev.ID, dev.Name)
			return nil
		},
	}
}

func newDeviceRenameCmd(g *globals) *cobra.Command {
	return inputs(&cobra.Command{
		Use:   "rename ID|NAME NEW-NAME",
		Short: "Rename a device",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			dev, err := device(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			renamed, err := cl.UpdateDevice(cmd.Context(), dev.ID, &args[1], nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "Device %s is now called %s.\n", renamed.ID, renamed.Name)
			return nil
		},
	}, "name", "NEW-NAME")
}
