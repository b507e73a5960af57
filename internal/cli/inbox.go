package cli

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/inbox"
	"github.com/nitronet/nitronet/internal/policy"
	"github.com/spf13/cobra"
)

// messageJSON is one message in `inbox --json`.
type messageJSON struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"`
	CreatedAt jsonTime  `json:"created_at"`
	ReadAt    *jsonTime `json:"read_at"`
}

// inboxJSON is `inbox --json`.
type inboxJSON struct {
	Unread   int           `json:"unread"`
	Messages []messageJSON `json:"messages"`
}

func newInboxCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "inbox [read ID]",
		Short: "Messages sent to you through your account; `inbox read ID` shows one and marks it read",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			var out struct {
				Messages []inbox.Message `json:"messages"`
				Unread   int             `json:"unread"`
			}
			if err := cl.Do(cmd.Context(), "GET", "/api/v1/me/inbox", nil, &out); err != nil {
				return err
			}
			if asJSON {
				v := inboxJSON{Unread: out.Unread, Messages: []messageJSON{}}
				for _, m := range out.Messages {
					v.Messages = append(v.Messages, messageJSON{ID: m.ID, Kind: m.Kind, Subject: m.Subject, Body: m.Body,
						CreatedAt: jsonTime(m.CreatedAt), ReadAt: optTime(m.ReadAt)})
				}
				return printJSON(g.env.Stdout, v)
			}
			fmt.Fprintf(g.env.Stdout, "%d unread.\n", out.Unread)
			tw := tabwriter.NewWriter(g.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDATE\tREAD\tSUBJECT")
			for _, m := range out.Messages {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", m.ID, m.CreatedAt.Local().Format("2006-01-02 15:04"), m.ReadAt != nil, m.Subject)
			}
			return tw.Flush()
		},
	}
	jsonFlag(c, &asJSON)
	c.AddCommand(newInboxReadCmd(g))
	return g.serverFlag(c)
}

func newInboxReadCmd(g *globals) *cobra.Command {
	return inputs(&cobra.Command{
		Use: "read ID", Short: "Show a message and mark it read", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			var out struct {
				Messages []inbox.Message `json:"messages"`
			}
			if err := cl.Do(cmd.Context(), "GET", "/api/v1/me/inbox", nil, &out); err != nil {
				return err
			}
			for _, m := range out.Messages {
				if m.ID == args[0] {
					fmt.Fprintf(g.env.Stdout, "%s\n%s\n\n%s\n", m.Subject, m.CreatedAt.Local().Format(time.RFC1123), strings.TrimRight(m.Body, "\n"))
					return cl.Do(cmd.Context(), "POST", "/api/v1/me/inbox/"+url.PathEscape(m.ID)+"/read", nil, nil)
				}
			}
			return fmt.Errorf("no message %s in your inbox", args[0])
		},
	}, "id", "ID")
}

// policyJSON is `policy --json`.
type policyJSON struct {
	Pending  []policyDocJSON   `json:"pending"`
	Accepted []acceptedDocJSON `json:"accepted"`
}

// policyDocJSON is a policy version waiting for acceptance.
type policyDocJSON struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind"`
	Version     int      `json:"version"`
	Material    bool     `json:"material"`
	PublishedAt jsonTime `json:"published_at"`
	Body        string   `json:"body"`
}

// acceptedDocJSON is an acceptance on record.
type acceptedDocJSON struct {
	DocumentID string   `json:"document_id"`
	Kind       string   `json:"kind"`
	Version    int      `json:"version"`
	AcceptedAt jsonTime `json:"accepted_at"`
}

func newPolicyCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "policy [accept ID]",
		Short: "Policy versions waiting for your acceptance; `policy accept ID` accepts one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			var out struct {
				Pending  []policy.Document   `json:"pending"`
				Accepted []policy.Acceptance `json:"accepted"`
			}
			if err := cl.Do(cmd.Context(), "GET", "/api/v1/me/policy", nil, &out); err != nil {
				return err
			}
			for i := range out.Pending {
				d := &out.Pending[i]
				if err := cl.Do(cmd.Context(), "GET", "/api/v1/policy/"+url.PathEscape(d.ID), nil, d); err != nil {
					return err
				}
			}
			if asJSON {
				v := policyJSON{Pending: []policyDocJSON{}, Accepted: []acceptedDocJSON{}}
				for _, d := range out.Pending {
					v.Pending = append(v.Pending, policyDocJSON{ID: d.ID, Kind: d.Kind, Version: d.Version, Material: d.Material,
						PublishedAt: jsonTime(d.PublishedAt), Body: d.Body})
				}
				for _, a := range out.Accepted {
					v.Accepted = append(v.Accepted, acceptedDocJSON{DocumentID: a.DocumentID, Kind: a.Kind, Version: a.Version,
						AcceptedAt: jsonTime(a.AcceptedAt)})
				}
				return printJSON(g.env.Stdout, v)
			}
			if len(out.Pending) == 0 {
				fmt.Fprintln(g.env.Stdout, "Nothing waits for your acceptance.")
			}
			for _, d := range out.Pending {
				fmt.Fprintf(g.env.Stdout, "The %s document changed materially: version %d of %s (id %s).\n\n%s\n\nAccept it with: nitronet policy accept %s\n\n",
					d.Kind, d.Version, d.PublishedAt.Local().Format("2006-01-02"), d.ID, strings.TrimRight(d.Body, "\n"), d.ID)
			}
			for _, a := range out.Accepted {
				fmt.Fprintf(g.env.Stdout, "Accepted %s version %d on %s.\n", a.Kind, a.Version, a.AcceptedAt.Local().Format("2006-01-02"))
			}
			return nil
		},
	}
	jsonFlag(c, &asJSON)
	c.AddCommand(newPolicyAcceptCmd(g))
	return g.serverFlag(c)
}

func newPolicyAcceptCmd(g *globals) *cobra.Command {
	return inputs(&cobra.Command{
		Use: "accept ID", Short: "Accept a policy version", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			if err := cl.Do(cmd.Context(), "POST", "/api/v1/me/policy/accept", map[string]string{"document_id": args[0]}, nil); err != nil {
				return err
			}
			fmt.Fprintln(g.env.Stdout, "Accepted. Your acceptance is recorded.")
			return nil
		},
	}, "document_id", "ID", "id", "ID")
}
