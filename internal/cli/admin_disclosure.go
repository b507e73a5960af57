package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/disclosures"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/transparency"
	"github.com/spf13/cobra"
)

// parseDay reads a date flag: YYYY-MM-DD (00:00 UTC) or an RFC 3339 time.
func parseDay(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q: want YYYY-MM-DD or an RFC 3339 time", flag, s)
	}
	return t, nil
}

func newAdminDisclosureCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "disclosure", Short: "The disclosure ledger: requests from authorities (legal role)"}
	c.AddCommand(newAdminDisclosureAddCmd(a), newAdminDisclosureListCmd(a), newAdminDisclosureShowCmd(a), newAdminDisclosureNotifyCmd(a))
	return c
}

func newAdminDisclosureAddCmd(a *admin) *cobra.Command {
	env := a.env
	var in disclosures.Input
	var received, gag string
	c := &cobra.Command{
		Use: "add --reference REF --authority NAME --jurisdiction CODE --legal-basis TEXT --type TYPE --received DATE " +
			"--scope TEXT --decision DECISION [--categories IDS --fields NAMES] [--accounts IDS] [--gag-until DATE]",
		Short:   "Record a request from an authority",
		Args:    cobra.NoArgs,
		PreRunE: required("reference", "authority", "jurisdiction", "legal-basis", "type", "received", "scope", "decision"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseDay("received", received)
			if err != nil {
				return usageError(cmd, "%v", err)
			}
			in.ReceivedAt = r
			if in.GagUntil, err = parseUntil("gag-until", gag); err != nil {
				return usageError(cmd, "%v", err)
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				d, err := srv.Disclosures.Add(cmd.Context(), p, in)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "Disclosure %s recorded (%s, %d account(s)).\n", d.ID, d.Decision, len(d.AccountIDs))
				if d.GagUntil != nil {
					fmt.Fprintf(env.Stdout, "The affected users will be told after the gag ends on %s.\n", d.GagUntil.Format(time.DateOnly))
				} else if len(d.AccountIDs) > 0 {
					fmt.Fprintln(env.Stdout, "No gag: the affected users are told at the next notify-lapsed run.")
				}
				return nil
			})
		},
	}
	f := c.Flags()
	f.StringVar(&in.Reference, "reference", "", "the authority's case or order reference")
	f.StringVar(&in.Authority, "authority", "", "the authority that asked, e.g. \"Amtsgericht Berlin\"")
	f.StringVar(&in.Jurisdiction, "jurisdiction", "", "its jurisdiction, e.g. DE")
	f.StringVar(&in.LegalBasis, "legal-basis", "", "the legal basis cited, e.g. \"§ 100j StPO\"")
	f.StringVar(&in.Type, "type", "", "request type: "+strings.Join(disclosures.Types(), ", "))
	f.StringVar(&received, "received", "", "date received (YYYY-MM-DD or RFC 3339)")
	f.StringVar(&in.ScopeRequested, "scope", "", "what the authority asked for")
	f.StringVar(&in.Decision, "decision", "", "decision: "+strings.Join(disclosures.Decisions(), ", "))
	f.StringSliceVar(&in.Categories, "categories", nil, "data category IDs disclosed, comma-separated (e.g. account.email)")
	f.StringSliceVar(&in.Fields, "fields", nil, "the exact fields disclosed, comma-separated")
	f.StringSliceVar(&in.Accounts, "accounts", nil, "account IDs the request was about, comma-separated")
	f.StringVar(&gag, "gag-until", "", "end of a gag order (YYYY-MM-DD: through that day); default none")
	return inputs(c, "scope_requested", "--scope", "received_at", "--received")
}

// disclosureJSON is a disclosure in `admin disclosure list|show --json`.
type disclosureJSON struct {
	ID                  string    `json:"id"`
	Reference           string    `json:"reference"`
	Authority           string    `json:"authority"`
	Jurisdiction        string    `json:"jurisdiction"`
	LegalBasis          string    `json:"legal_basis"`
	Type                string    `json:"type"`
	ReceivedAt          jsonTime  `json:"received_at"`
	ScopeRequested      string    `json:"scope_requested"`
	Decision            string    `json:"decision"`
	CategoriesDisclosed []string  `json:"categories_disclosed"`
	FieldsDisclosed     []string  `json:"fields_disclosed"`
	AccountIDs          []string  `json:"account_ids"`
	GagUntil            *jsonTime `json:"gag_until"`       // null: no gag order
	GagNotifiedAt       *jsonTime `json:"gag_notified_at"` // when the affected users were told; null: not yet
	RecordedBy          string    `json:"recorded_by"`     // staff ID
	RecordedAt          jsonTime  `json:"recorded_at"`
}

// disclosureView returns d as --json prints it.
func disclosureView(d *store.Disclosure) disclosureJSON {
	return disclosureJSON{ID: d.ID, Reference: d.Reference, Authority: d.Authority, Jurisdiction: d.Jurisdiction,
		LegalBasis: d.LegalBasis, Type: d.Type, ReceivedAt: jsonTime(d.ReceivedAt), ScopeRequested: d.ScopeRequested,
		Decision: d.Decision, CategoriesDisclosed: nonNil(d.CategoriesDisclosed), FieldsDisclosed: nonNil(d.FieldsDisclosed),
		AccountIDs: nonNil(d.AccountIDs), GagUntil: optTime(d.GagUntil), GagNotifiedAt: optTime(d.GagNotifiedAt),
		RecordedBy: d.RecordedBy, RecordedAt: jsonTime(d.RecordedAt)}
}

func newAdminDisclosureListCmd(a *admin) *cobra.Command {
	var period string
	var asJSON bool
	c := &cobra.Command{
		Use: "list [--period 2026H2] [--json]", Short: "List recorded disclosures", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var from, to time.Time
			if period != "" {
				p, err := transparency.ParsePeriod(period)
				if err != nil {
					return usageError(cmd, "--period: %s", errs.MessageOf(err))
				}
				from, to = p.Start(), p.End()
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				ds, err := srv.Disclosures.List(cmd.Context(), p, from, to)
				if err != nil {
					return err
				}
				if asJSON {
					v := struct {
						Disclosures []disclosureJSON `json:"disclosures"`
					}{Disclosures: []disclosureJSON{}}
					for i := range ds {
						v.Disclosures = append(v.Disclosures, disclosureView(&ds[i]))
					}
					return printJSON(a.env.Stdout, v)
				}
				tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tRECEIVED\tTYPE\tAUTHORITY\tJURISDICTION\tDECISION\tACCOUNTS\tGAG UNTIL")
				for _, d := range ds {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.ReceivedAt.Format(time.DateOnly), d.Type,
						oneLine(d.Authority), oneLine(d.Jurisdiction), d.Decision, len(d.AccountIDs), dateOr(d.GagUntil, "-"))
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().StringVar(&period, "period", "", "only requests received in this half-year, e.g. 2026H2")
	jsonFlag(c, &asJSON)
	return c
}

func newAdminDisclosureShowCmd(a *admin) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use: "show ID [--json]", Short: "Show one disclosure in full", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			d, err := srv.Disclosures.Get(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.env.Stdout, disclosureView(d))
			}
			printDisclosure(a.env, d)
			return nil
		}),
	}
	jsonFlag(c, &asJSON)
	return c
}

func newAdminDisclosureNotifyCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use:   "notify-lapsed",
		Short: "Tell affected users about disclosures whose gag has ended (or that had none); safe to repeat",
		Args:  cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			n, err := srv.Disclosures.NotifyLapsedGags(cmd.Context(), p)
			if err != nil {
				return fmt.Errorf("after %d notice(s): %w", n, err)
			}
			fmt.Fprintf(a.env.Stdout, "%d notice(s) posted.\n", n)
			return nil
		}),
	}
}

func printDisclosure(env *Env, d *store.Disclosure) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	row("ID", d.ID)
	row("Reference", d.Reference)
	row("Authority", d.Authority)
	row("Jurisdiction", d.Jurisdiction)
	row("Legal basis", d.LegalBasis)
	row("Type", d.Type)
	row("Received", d.ReceivedAt.Format(time.RFC3339))
	row("Scope requested", d.ScopeRequested)
	row("Decision", d.Decision)
	row("Categories disclosed", orDash(strings.Join(d.CategoriesDisclosed, ", ")))
	row("Fields disclosed", orDash(strings.Join(d.FieldsDisclosed, ", ")))
	row("Accounts", orDash(strings.Join(d.AccountIDs, ", ")))
	row("Gag until", dateOr(d.GagUntil, "none"))
	row("Users notified", dateOr(d.GagNotifiedAt, "not yet"))
	row("Recorded by", d.RecordedBy+" at "+d.RecordedAt.Format(time.RFC3339))
	tw.Flush()
}

func oneLine(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "\t", " ") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dateOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.DateOnly)
}
