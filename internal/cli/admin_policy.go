package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/policy"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

// printProgress returns a notices progress reporter writing one line per
// batch to w.
func printProgress(w io.Writer) func(notices.Progress) {
	return func(p notices.Progress) {
		fmt.Fprintf(w, "notice %s: %d/%d inboxes, emails sent %d, failed %d, pending %d, queued %d\n",
			p.RunID, p.Posted, p.Accounts, p.Sent, p.Failed, p.Pending, p.Queued)
	}
}

// settled delivers what the outbound queue holds (notice emails are
// queued, and a run learns of each one's outcome only when the queue
// delivers it) and returns run p's progress after that. If either fails,
// it returns p: the emails stay queued and `serve` delivers them.
func settled(ctx context.Context, srv *server.Server, p notices.Progress) notices.Progress {
	if _, err := srv.Outbound.Drain(ctx); err != nil {
		return p
	}
	if q, err := srv.Notices.Progress(ctx, p.RunID); err == nil {
		return q
	}
	return p
}

// printQueued tells of a run's emails still queued, if any.
func printQueued(w io.Writer, p notices.Progress) {
	if p.Queued > 0 {
		fmt.Fprintf(w, ", %d queued (the relay has not accepted them yet; `nitronet serve` retries them for a day)", p.Queued)
	}
}

// runNotice works through notice run id as staff member by, printing
// progress to env.Stdout and a summary at the end.
func runNotice(ctx context.Context, env *Env, srv *server.Server, by staff.Principal, id string) error {
	p, err := srv.Policy.RunNotice(ctx, by, id, printProgress(env.Stdout))
	if err != nil {
		return fmt.Errorf("notice %s stopped (resume with `nitronet admin notices resume %s`): %w", id, id, err)
	}
	p = settled(ctx, srv, p)
	fmt.Fprintf(env.Stdout, "Notice %s done: %d inboxes, %d emails sent, %d failed", p.RunID, p.Posted, p.Sent, p.Failed)
	printQueued(env.Stdout, p)
	if p.Claimed > 0 {
		fmt.Fprintf(env.Stdout, ", %d unconfirmed after an interruption (not resent)", p.Claimed)
	}
	fmt.Fprintln(env.Stdout, ".")
	return nil
}

// readTextFile reads a UTF-8 text file of at most max bytes.
func readTextFile(path string, max int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > max {
		return "", fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return string(b), nil
}

func newAdminPolicyCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Versioned privacy policy and terms (privacy officer)"}
	c.AddCommand(newAdminPolicyPublishCmd(a), newAdminPolicyListCmd(a))
	return c
}

func newAdminPolicyPublishCmd(a *admin) *cobra.Command {
	env := a.env
	var kind string
	var material bool
	c := &cobra.Command{
		Use:   "publish FILE --kind privacy|terms [--material]",
		Short: "Publish FILE as the next version; --material notifies every user by inbox and email",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readTextFile(args[0], policy.MaxBody)
			if err != nil {
				return err
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				pub, err := srv.Policy.Publish(cmd.Context(), p, kind, body, material)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "Published %s version %d (%s), material=%v.\n",
					pub.Document.Kind, pub.Document.Version, pub.Document.ID, pub.Document.Material)
				if pub.Run == nil {
					return nil
				}
				return runNotice(cmd.Context(), env, srv, p, pub.Run.ID)
			})
		},
	}
	c.Flags().StringVar(&kind, "kind", "privacy", "document kind: privacy or terms")
	c.Flags().BoolVar(&material, "material", false, "a material change: every user is notified and must accept it")
	return c
}

// policyVersionJSON is one version in `admin policy list --json`.
type policyVersionJSON struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind"` // privacy or terms
	Version     int      `json:"version"`
	Material    bool     `json:"material"`
	PublishedAt jsonTime `json:"published_at"`
}

func newAdminPolicyListCmd(a *admin) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use: "list [--json]", Short: "List every published version (public: no staff login)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := a.server(cmd)
			if err != nil {
				return err
			}
			defer srv.Close()
			docs, err := srv.Policy.History(cmd.Context(), false)
			if err != nil {
				return err
			}
			if asJSON {
				v := struct {
					Versions []policyVersionJSON `json:"versions"`
				}{Versions: []policyVersionJSON{}}
				for _, d := range docs {
					v.Versions = append(v.Versions, policyVersionJSON{ID: d.ID, Kind: d.Kind, Version: d.Version,
						Material: d.Material, PublishedAt: jsonTime(d.PublishedAt)})
				}
				return printJSON(a.env.Stdout, v)
			}
			tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tVERSION\tMATERIAL\tPUBLISHED")
			for _, d := range docs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%s\n", d.ID, d.Kind, d.Version, d.Material, d.PublishedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	jsonFlag(c, &asJSON)
	return c
}

func newAdminAnnounceCmd(a *admin) *cobra.Command {
	env := a.env
	var subject, bodyFile string
	var email bool
	c := &cobra.Command{
		Use:     "announce --subject S --body-file F [--email]",
		Short:   "Send a service announcement to every account's inbox (and by email with --email)",
		Args:    cobra.NoArgs,
		PreRunE: required("subject", "body-file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readTextFile(bodyFile, 64<<10)
			if err != nil {
				return err
			}
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				run, err := srv.Policy.Announce(cmd.Context(), p, subject, body, email)
				if err != nil {
					return err
				}
				return runNotice(cmd.Context(), env, srv, p, run.ID)
			})
		},
	}
	c.Flags().StringVar(&subject, "subject", "", "subject line (1 to 200 characters)")
	c.Flags().StringVar(&bodyFile, "body-file", "", "file holding the message text")
	c.Flags().BoolVar(&email, "email", false, "also email every user")
	return c
}

func newAdminNoticesCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "notices", Short: "Notices sent to every account: progress and resumption"}
	c.AddCommand(newAdminNoticesListCmd(a), newAdminNoticesResumeCmd(a))
	return c
}

// noticeJSON is one notice in `admin notices list --json`.
type noticeJSON struct {
	ID                string   `json:"id"`
	Kind              string   `json:"kind"`        // inbox message kind, e.g. policy-change, announcement
	DocumentID        string   `json:"document_id"` // the policy version announced, or ""
	Subject           string   `json:"subject"`
	Email             bool     `json:"email"` // also sent by email
	CreatedAt         jsonTime `json:"created_at"`
	Accounts          int64    `json:"accounts"` // active accounts
	Posted            int64    `json:"posted"`   // inbox messages posted
	EmailsSent        int64    `json:"emails_sent"`
	EmailsFailed      int64    `json:"emails_failed"`
	EmailsPending     int64    `json:"emails_pending"`
	EmailsQueued      int64    `json:"emails_queued"`      // in the outbound queue; outcome not known yet
	EmailsUnconfirmed int64    `json:"emails_unconfirmed"` // claimed before an interruption; not resent
}

func newAdminNoticesListCmd(a *admin) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use: "list [--json]", Short: "List unfinished notices with their progress", Args: cobra.NoArgs,
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, _ []string) error {
			ns, err := srv.Policy.Notices(cmd.Context(), p)
			if err != nil {
				return err
			}
			if asJSON {
				v := struct {
					Notices []noticeJSON `json:"notices"`
				}{Notices: []noticeJSON{}}
				for _, n := range ns {
					r, pr := n.Run, n.Progress
					v.Notices = append(v.Notices, noticeJSON{ID: r.ID, Kind: r.Kind, DocumentID: r.DocumentID, Subject: r.Subject,
						Email: r.Email, CreatedAt: jsonTime(r.CreatedAt), Accounts: pr.Accounts, Posted: pr.Posted,
						EmailsSent: pr.Sent, EmailsFailed: pr.Failed, EmailsPending: pr.Pending, EmailsUnconfirmed: pr.Claimed,
						EmailsQueued: pr.Queued})
				}
				return printJSON(a.env.Stdout, v)
			}
			tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tCREATED\tINBOXES\tSENT\tFAILED\tPENDING\tQUEUED")
			for _, n := range ns {
				r, pr := n.Run, n.Progress
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%d\n", r.ID, r.Kind, r.CreatedAt.UTC().Format(time.RFC3339),
					pr.Posted, pr.Accounts, pr.Sent, pr.Failed, pr.Pending, pr.Queued)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(c, &asJSON)
	return c
}

func newAdminNoticesResumeCmd(a *admin) *cobra.Command {
	env := a.env
	return &cobra.Command{
		Use: "resume [ID]", Short: "Resume an interrupted notice (all unfinished ones without ID)", Args: cobra.MaximumNArgs(1),
		RunE: a.withArgs(func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error {
			if len(args) == 1 {
				return runNotice(cmd.Context(), env, srv, p, args[0])
			}
			n, err := srv.Policy.ResumeNotices(cmd.Context(), p, printProgress(env.Stdout))
			if err != nil {
				return err
			}
			if n == 0 {
				fmt.Fprintln(env.Stdout, "No unfinished notice to resume.")
			} else {
				fmt.Fprintf(env.Stdout, "%d notice(s) finished.\n", n)
			}
			return nil
		}),
	}
}
