package cli

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/breaches"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

// breachJSON is a breach record in `admin breach list|show --json`.
type breachJSON struct {
	ID                  string             `json:"id"`
	DetectedAt          jsonTime           `json:"detected_at"`
	NotifyBy            jsonTime           `json:"notify_by"`
	Overdue             bool               `json:"overdue"`
	Nature              string             `json:"nature"`
	Categories          []string           `json:"categories"`
	People              *int64             `json:"people"`
	Records             *int64             `json:"records"`
	Consequences        string             `json:"consequences"`
	MeasuresTaken       string             `json:"measures_taken"`
	MeasuresProposed    string             `json:"measures_proposed"`
	Risk                string             `json:"risk"`
	Status              string             `json:"status"`
	AuthorityNotifiedAt *jsonTime          `json:"authority_notified_at"`
	AuthorityReference  string             `json:"authority_reference"`
	Contact             string             `json:"contact"`
	RecordedBy          string             `json:"recorded_by"`
	RecordedAt          jsonTime           `json:"recorded_at"`
	UpdatedAt           jsonTime           `json:"updated_at"`
	ClosedAt            *jsonTime          `json:"closed_at"`
	Notices             []breachNoticeJSON `json:"notices"`
}

// breachNoticeJSON is a notice of a breach to the people affected, with
// its progress as `admin notices list --json` shows it.
type breachNoticeJSON struct {
	ID                string   `json:"id"`
	Audience          string   `json:"audience"`
	Email             bool     `json:"email"`
	CreatedAt         jsonTime `json:"created_at"`
	Accounts          int64    `json:"accounts"`
	Posted            int64    `json:"posted"`
	EmailsSent        int64    `json:"emails_sent"`
	EmailsFailed      int64    `json:"emails_failed"`
	EmailsPending     int64    `json:"emails_pending"`
	EmailsQueued      int64    `json:"emails_queued"` // in the outbound queue; outcome not known yet
	EmailsUnconfirmed int64    `json:"emails_unconfirmed"`
	Done              bool     `json:"done"`
}

// breachView returns b as printed by --json.
func breachView(b breaches.Breach) breachJSON {
	v := breachJSON{ID: b.ID, DetectedAt: jsonTime(b.DetectedAt), NotifyBy: jsonTime(b.NotifyBy), Overdue: b.Overdue,
		Nature: b.Nature, Categories: nonNil(b.Categories), People: b.People, Records: b.Records, Consequences: b.Consequences,
		MeasuresTaken: b.MeasuresTaken, MeasuresProposed: b.MeasuresProposed, Risk: b.Risk, Status: b.Status,
		AuthorityNotifiedAt: optTime(b.AuthorityNotifiedAt), AuthorityReference: b.AuthorityReference, Contact: b.Contact,
		RecordedBy: b.RecordedBy, RecordedAt: jsonTime(b.RecordedAt), UpdatedAt: jsonTime(b.UpdatedAt),
		ClosedAt: optTime(b.ClosedAt), Notices: []breachNoticeJSON{}}
	for _, n := range b.Notices {
		p := n.Progress
		v.Notices = append(v.Notices, breachNoticeJSON{ID: n.RunID, Audience: n.Audience, Email: n.Email,
			CreatedAt: jsonTime(n.CreatedAt), Accounts: p.Accounts, Posted: p.Posted, EmailsSent: p.Sent,
			EmailsFailed: p.Failed, EmailsPending: p.Pending, EmailsQueued: p.Queued, EmailsUnconfirmed: p.Claimed, Done: p.Done})
	}
	return v
}

// overdueText flags an overdue authority notification.
func overdueText(b breaches.Breach) string {
	if b.Overdue {
		return "OVERDUE"
	}
	return "-"
}

// printBreach prints one breach record in words.
func printBreach(env *Env, b breaches.Breach) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	num := func(n *int64) string {
		if n == nil {
			return "unknown"
		}
		return "about " + strconv.FormatInt(*n, 10)
	}
	orNone := func(s string) string {
		if s == "" {
			return "(not recorded)"
		}
		return strings.ReplaceAll(s, "\n", "\n\t")
	}
	fmt.Fprintf(tw, "Breach:\t%s\nStatus:\t%s\nDetected:\t%s\n", b.ID, b.Status, b.DetectedAt.Format(time.RFC3339))
	notified := "not yet"
	if b.AuthorityNotifiedAt != nil {
		notified = b.AuthorityNotifiedAt.Format(time.RFC3339)
		if b.AuthorityReference != "" {
			notified += ", reference " + b.AuthorityReference
		}
	}
	due := b.NotifyBy.Format(time.RFC3339)
	if b.Overdue {
		due += " (OVERDUE)"
	}
	fmt.Fprintf(tw, "Notify authority by:\t%s\nAuthority notified:\t%s\n", due, notified)
	fmt.Fprintf(tw, "Risk:\t%s\nNature:\t%s\nCategories:\t%s\n", orNone(b.Risk), orNone(b.Nature), orNone(strings.Join(b.Categories, ", ")))
	fmt.Fprintf(tw, "People:\t%s\nRecords:\t%s\n", num(b.People), num(b.Records))
	fmt.Fprintf(tw, "Consequences:\t%s\nMeasures taken:\t%s\nMeasures proposed:\t%s\n", orNone(b.Consequences),
		orNone(b.MeasuresTaken), orNone(b.MeasuresProposed))
	fmt.Fprintf(tw, "Contact point:\t%s\nRecorded:\t%s by %s\n", orNone(b.Contact), b.RecordedAt.Format(time.RFC3339), b.RecordedBy)
	for _, n := range b.Notices {
		p := n.Progress
		fmt.Fprintf(tw, "Notice %s:\tto %s, %d/%d inboxes, emails sent %d, failed %d, pending %d, done %v\n",
			n.RunID, n.Audience, p.Posted, p.Accounts, p.Sent, p.Failed, p.Pending, p.Done)
	}
	tw.Flush()
}

func newAdminBreachCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "breach", Short: "The breach register (Art. 33/34): add, list, show, update, notify (every step is audited)"}
	c.AddCommand(newAdminBreachAddCmd(a), newAdminBreachListCmd(a), newAdminBreachShowCmd(a), newAdminBreachUpdateCmd(a),
		newAdminBreachNotifyCmd(a))
	return c
}

func newAdminBreachAddCmd(a *admin) *cobra.Command {
	env := a.env
	var detected, nature string
	var asJSON bool
	add := &cobra.Command{
		Use:   "add --detected-at RFC3339 --nature TEXT",
		Short: "Open a breach record; the supervisory authority must be notified within 72 hours of detection",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "detected-at", "nature"); err != nil {
				return err
			}
			t, err := parseTimeFlag(cmd, "detected-at", detected)
			if err != nil {
				return err
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				b, err := srv.Breaches.Add(cmd.Context(), p, t, nature)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(env.Stdout, breachView(*b))
				}
				fmt.Fprintf(env.Stdout, "Breach %s recorded. Notify the supervisory authority by %s (72 hours after detection),\n"+
					"unless the breach is unlikely to result in a risk to people. Complete the record with:\n"+
					"  nitronet admin breach update %s --categories ... --people N --consequences TEXT --measures-taken TEXT ...\n",
					b.ID, b.NotifyBy.Format(time.RFC3339), b.ID)
				return nil
			})
		},
	}
	add.Flags().StringVar(&detected, "detected-at", "", "when the breach was detected (you became aware of it), RFC 3339")
	add.Flags().StringVar(&nature, "nature", "", "what happened")
	jsonFlag(add, &asJSON)
	return add
}

func newAdminBreachListCmd(a *admin) *cobra.Command {
	env := a.env
	var asJSON bool
	list := &cobra.Command{
		Use: "list", Short: "List the register, with when the authority must be notified and whether that is overdue", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			bs, err := srv.Breaches.List(cmd.Context(), p)
			if err != nil {
				return err
			}
			if asJSON {
				out := struct {
					Breaches []breachJSON `json:"breaches"`
				}{Breaches: []breachJSON{}}
				for _, b := range bs {
					out.Breaches = append(out.Breaches, breachView(b))
				}
				return printJSON(env.Stdout, out)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDETECTED\tNOTIFY BY\tOVERDUE\tAUTHORITY NOTIFIED\tRISK\tSTATUS")
			for _, b := range bs {
				notified := "-"
				if b.AuthorityNotifiedAt != nil {
					notified = b.AuthorityNotifiedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.DetectedAt.Format(time.RFC3339), b.NotifyBy.Format(time.RFC3339),
					overdueText(b), notified, dashIfEmpty(b.Risk), b.Status)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(list, &asJSON)
	return list
}

func newAdminBreachShowCmd(a *admin) *cobra.Command {
	env := a.env
	var asJSON bool
	show := &cobra.Command{
		Use: "show ID", Short: "Show a breach record with its notices", Args: cobra.ExactArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			b, err := srv.Breaches.Get(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Stdout, breachView(*b))
			}
			printBreach(env, *b)
			return nil
		}),
	}
	jsonFlag(show, &asJSON)
	return show
}

func newAdminBreachUpdateCmd(a *admin) *cobra.Command {
	env := a.env
	var detected, nature, categories, consequences, taken, proposed, risk, notified, reference, status string
	var people, records int64
	var asJSON bool
	update := &cobra.Command{
		Use:   "update ID [--nature T] [--categories ID,ID] [--people N] [--records N] [--consequences T] [--measures-taken T] [--measures-proposed T] [--risk unlikely|risk|high] [--authority-notified-at RFC3339] [--authority-reference REF] [--status open|closed]",
		Short: "Complete or correct a breach record; only the flags given change",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u breaches.Update
			fl := cmd.Flags()
			str := func(name string, v *string) *string {
				if fl.Changed(name) {
					return v
				}
				return nil
			}
			u.Nature, u.Consequences, u.MeasuresTaken = str("nature", &nature), str("consequences", &consequences), str("measures-taken", &taken)
			u.MeasuresProposed, u.Risk, u.AuthorityReference = str("measures-proposed", &proposed), str("risk", &risk), str("authority-reference", &reference)
			u.Status = str("status", &status)
			if fl.Changed("categories") {
				cats := strings.Split(categories, ",")
				u.Categories = &cats
			}
			if fl.Changed("people") {
				u.People = &people
			}
			if fl.Changed("records") {
				u.Records = &records
			}
			for _, tf := range []struct {
				name string
				v    string
				dst  **time.Time
			}{{"detected-at", detected, &u.DetectedAt}, {"authority-notified-at", notified, &u.AuthorityNotifiedAt}} {
				if !fl.Changed(tf.name) {
					continue
				}
				t, err := parseTimeFlag(cmd, tf.name, tf.v)
				if err != nil {
					return err
				}
				if t.IsZero() {
					return usageError(cmd, "--%s needs a time", tf.name)
				}
				*tf.dst = &t
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				b, err := srv.Breaches.Update(cmd.Context(), p, args[0], u)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(env.Stdout, breachView(*b))
				}
				printBreach(env, *b)
				return nil
			})
		},
	}
	f := update.Flags()
	f.StringVar(&detected, "detected-at", "", "when the breach was detected, RFC 3339")
	f.StringVar(&nature, "nature", "", "what happened")
	f.StringVar(&categories, "categories", "", "the data categories concerned: inventory category IDs, comma-separated (see 'nitronet admin records')")
	f.Int64Var(&people, "people", 0, "approximate number of people concerned")
	f.Int64Var(&records, "records", 0, "approximate number of records concerned")
	f.StringVar(&consequences, "consequences", "", "the likely consequences")
	f.StringVar(&taken, "measures-taken", "", "the measures taken to address the breach and mitigate its effects")
	f.StringVar(&proposed, "measures-proposed", "", "the measures proposed, and what people can do")
	f.StringVar(&risk, "risk", "", "the risk to people: "+strings.Join(breaches.Risks(), ", ")+" (unlikely: the authority need not be notified)")
	f.StringVar(&notified, "authority-notified-at", "", "when the supervisory authority was notified, RFC 3339")
	f.StringVar(&reference, "authority-reference", "", "the authority's reference for the notification")
	f.StringVar(&status, "status", "", "open or closed (closing needs the authority notified, or --risk unlikely)")
	jsonFlag(update, &asJSON)
	return update
}

func newAdminBreachNotifyCmd(a *admin) *cobra.Command {
	env := a.env
	var all, noEmail, resume bool
	var accounts, accountsFile string
	notify := &cobra.Command{
		Use:   "notify ID --all | --accounts ID,ID | --accounts-file FILE [--no-email] | --resume",
		Short: "Tell the people affected, in their inbox and by email, what happened, its likely consequences, the measures taken and whom to contact (Art. 34)",
		Long: "Tell the people affected by a breach. The notice states the nature of the breach, the data\n" +
			"concerned, its likely consequences, the measures taken and proposed, and the contact point (the\n" +
			"DPO, or the controller's privacy contact). It goes to every active account (--all) or to the\n" +
			"accounts listed by ID, through the inbox and, unless --no-email, by email through the configured\n" +
			"relay. If it stops midway, --resume (or the server's hourly housekeeping) finishes it without\n" +
			"sending anything twice.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var aud breaches.Audience
			aud.All = all
			if accounts != "" {
				aud.Accounts = strings.Split(accounts, ",")
			}
			if accountsFile != "" {
				ids, err := readAccountIDs(accountsFile)
				if err != nil {
					return err
				}
				aud.Accounts = append(aud.Accounts, ids...)
			}
			if resume && (all || len(aud.Accounts) > 0) {
				return usageError(cmd, "--resume finishes the notices already started; it takes no audience")
			}
			if !resume && !all && len(aud.Accounts) == 0 {
				return usageError(cmd, "say who is affected: --all, --accounts ID,ID or --accounts-file FILE")
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				var b *breaches.Breach
				var err error
				if resume {
					b, err = srv.Breaches.ResumeNotices(cmd.Context(), p, args[0], printProgress(env.Stdout))
				} else {
					b, err = srv.Breaches.Notify(cmd.Context(), p, args[0], aud, !noEmail, printProgress(env.Stdout))
				}
				if err != nil {
					return err
				}
				if len(b.Notices) > 0 {
					n := settled(cmd.Context(), srv, b.Notices[0].Progress)
					fmt.Fprintf(env.Stdout, "Notice %s: %d/%d inboxes, emails sent %d, failed %d", b.Notices[0].RunID,
						n.Posted, n.Accounts, n.Sent, n.Failed)
					printQueued(env.Stdout, n)
					fmt.Fprintln(env.Stdout, ".")
				}
				return nil
			})
		},
	}
	f := notify.Flags()
	f.BoolVar(&all, "all", false, "tell every active account")
	f.StringVar(&accounts, "accounts", "", "tell these accounts: IDs, comma-separated")
	f.StringVar(&accountsFile, "accounts-file", "", "tell the accounts whose IDs the file lists, one per line")
	f.BoolVar(&noEmail, "no-email", false, "post to the inbox only")
	f.BoolVar(&resume, "resume", false, "finish the breach's notices that stopped midway")
	return notify
}

// readAccountIDs reads account IDs from path, one per line; blank lines
// and lines starting with # are skipped.
func readAccountIDs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--accounts-file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
		if len(out) > breaches.MaxAccounts {
			return nil, fmt.Errorf("--accounts-file: more than %d accounts; use --all", breaches.MaxAccounts)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--accounts-file: %w", err)
	}
	return out, nil
}
