package cli

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/spf13/cobra"
)

// privacyPath returns the API path of request id plus suffix.
func privacyPath(id, suffix string) string {
	return "/api/v1/privacy/requests/" + url.PathEscape(id) + suffix
}

// printRequest prints one request in words.
func printRequest(w *Env, r privacy.Request) {
	out := w.Stdout
	fmt.Fprintf(out, "Request   %s\nType      %s\nStatus    %s\n", r.ID, r.Type, r.Status)
	if r.AccountID != "" {
		fmt.Fprintf(out, "Account   %s\n", r.AccountID)
	}
	if r.Channel != "" && r.Channel != "app" {
		fmt.Fprintf(out, "Channel   %s (recorded by staff)\n", r.Channel)
	}
	fmt.Fprintf(out, "Received  %s\nDue       %s", r.ReceivedAt.Format(time.RFC3339), r.DueAt.Format(time.RFC3339))
	if r.Overdue {
		fmt.Fprint(out, "  (OVERDUE)")
	}
	fmt.Fprintln(out)
	if r.Details != "" {
		fmt.Fprintf(out, "Details   %s\n", r.Details)
	}
	if r.Extension != nil {
		fmt.Fprintf(out, "Extended  %s: %s\n", r.Extension.At.Format(time.DateOnly), strings.ReplaceAll(r.Extension.Reason, "\n", "; "))
		if n := r.Extension.Notice; n != nil {
			fmt.Fprintf(out, "Notified  %s\n", noticeLine(n))
		}
	}
	if len(r.IdentityProof) > 0 {
		fmt.Fprintf(out, "To verify %s\n", strings.Join(r.IdentityProof, ", "))
	}
	if c := r.IdentityCheck; c != nil {
		by := ""
		if c.By != "" {
			by = " by " + c.By
		}
		fmt.Fprintf(out, "Identity  checked%s on %s: %s (%s)\n", by, c.At.Format(time.RFC3339), c.Method, c.Description)
	}
	if r.Outcome != "" {
		fmt.Fprintf(out, "Outcome   %s\n", r.Outcome)
	}
	if r.ExportUntil != nil {
		fmt.Fprintf(out, "Export    downloadable until %s (nitronet privacy download %s)\n", r.ExportUntil.Format(time.RFC3339), r.ID)
	}
	fmt.Fprintf(out, "Fee       %s\n", r.Fee)
	printRecipients(w, r.Recipients)
}

// printRecipients lists the processors that received the data of a
// rectification or erasure and whether each was told (Art. 19).
func printRecipients(w *Env, rs []privacy.Recipient) {
	if len(rs) == 0 {
		return
	}
	out := w.Stdout
	fmt.Fprintln(out, "Recipients of the data, told of this request (Art. 19 GDPR):")
	for _, x := range rs {
		state := x.Status
		if x.NotedAt != nil {
			state += " on " + x.NotedAt.Format(time.DateOnly)
		}
		if x.Note != "" {
			state += ": " + x.Note
		}
		fmt.Fprintf(out, "  %s received %s (%s to %s): %s\n", x.Processor, strings.Join(x.Categories, ", "),
			x.FirstAt.Format(time.DateOnly), x.LastAt.Format(time.DateOnly), state)
	}
}

func printRequestTable(env *Env, rs []privacy.Request, withAccount bool) error {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	if withAccount {
		fmt.Fprintln(tw, "ID\tACCOUNT\tTYPE\tSTATUS\tRECEIVED\tDUE\tOVERDUE")
	} else {
		fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tRECEIVED\tDUE\tOVERDUE")
	}
	for _, r := range rs {
		acct := ""
		if withAccount {
			acct = dashIfEmpty(r.AccountID) + "\t"
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\t%v\n", r.ID, acct, r.Type, r.Status,
			r.ReceivedAt.Format(time.DateOnly), r.DueAt.Format(time.DateOnly), r.Overdue)
	}
	return tw.Flush()
}

// requestJSON is a privacy request in `privacy list|show --json` (and,
// with account_id and actions, in the staff views: staffRequestJSON).
type requestJSON struct {
	ID         string   `json:"id"`
	Type       string   `json:"type"`
	Status     string   `json:"status"`
	Channel    string   `json:"channel"`
	Details    string   `json:"details"`
	ReceivedAt jsonTime `json:"received_at"`
	DueAt      jsonTime `json:"due_at"`
	Overdue    bool     `json:"overdue"`
	// IdentityProof lists what `privacy verify` still needs: "password",
	// "email_code", "mobile_code".
	IdentityProof []string `json:"identity_proof"`
	// IdentityCheck is the staff check of a requester whom no verified
	// contact could prove, or null.
	IdentityCheck *identityCheckJSON `json:"identity_check"`
	// Recipients are the processors told of a rectification or erasure.
	Recipients   []recipientJSON `json:"recipients"`
	Extension    *extensionJSON  `json:"extension"`
	VerifiedAt   *jsonTime       `json:"verified_at"`
	ConfirmedAt  *jsonTime       `json:"confirmed_at"`
	CompletedAt  *jsonTime       `json:"completed_at"`
	DeniedReason string          `json:"denied_reason"`
	Outcome      string          `json:"outcome"`
	ExportUntil  *jsonTime       `json:"export_until"`
	Fee          string          `json:"fee"`
}

// identityCheckJSON is a staff identity check.
type identityCheckJSON struct {
	Method      string   `json:"method"`
	Description string   `json:"description"`
	At          jsonTime `json:"at"`
	By          string   `json:"by,omitempty"` // staff views only
}

// recipientJSON is a processor told of a rectification or erasure.
type recipientJSON struct {
	Processor  string    `json:"processor"`
	Categories []string  `json:"categories"`
	FirstAt    jsonTime  `json:"first_at"`
	LastAt     jsonTime  `json:"last_at"`
	Status     string    `json:"status"`
	NotedAt    *jsonTime `json:"noted_at"`
	Note       string    `json:"note"`
}

// extensionJSON is a deadline extension.
type extensionJSON struct {
	At     jsonTime `json:"at"`
	Reason string   `json:"reason"`
	// Notice is the delivery of the notice telling the user (staff
	// views only).
	Notice *extensionNoticeJSON `json:"notice,omitempty"`
}

// extensionNoticeJSON is the delivery of an extension's notice.
type extensionNoticeJSON struct {
	State       string    `json:"state"`
	Attempts    int       `json:"attempts"`
	Error       string    `json:"error"`
	DeliveredAt *jsonTime `json:"delivered_at"`
	NextAttempt *jsonTime `json:"next_attempt"`
}

// noticeLine describes an extension notice's delivery in words.
func noticeLine(n *privacy.ExtensionNotice) string {
	switch n.State {
	case privacy.NoticeDelivered:
		return fmt.Sprintf("delivered %s", n.DeliveredAt.Format(time.RFC3339))
	case privacy.NoticeNoAccount:
		return "no account to tell"
	case privacy.NoticeQueued:
		return fmt.Sprintf("queued: attempt %d is in the outbound queue (the relay has not accepted it yet)", n.Attempts)
	}
	s := fmt.Sprintf("%s: %d attempt(s) failed (%s)", strings.ToUpper(n.State), n.Attempts, n.Error)
	if n.NextAttempt != nil {
		s += ", next " + n.NextAttempt.Format(time.RFC3339)
	}
	return s
}

// requestView returns r as printed by --json.
func requestView(r privacy.Request) requestJSON {
	v := requestJSON{ID: r.ID, Type: r.Type, Status: r.Status, Channel: r.Channel, Details: r.Details,
		ReceivedAt: jsonTime(r.ReceivedAt), DueAt: jsonTime(r.DueAt), Overdue: r.Overdue, IdentityProof: nonNil(r.IdentityProof),
		VerifiedAt: optTime(r.VerifiedAt), ConfirmedAt: optTime(r.ConfirmedAt), CompletedAt: optTime(r.CompletedAt),
		DeniedReason: r.DeniedReason, Outcome: r.Outcome, ExportUntil: optTime(r.ExportUntil), Fee: r.Fee}
	if r.Extension != nil {
		v.Extension = &extensionJSON{At: jsonTime(r.Extension.At), Reason: r.Extension.Reason}
		if n := r.Extension.Notice; n != nil {
			v.Extension.Notice = &extensionNoticeJSON{State: n.State, Attempts: n.Attempts, Error: n.Error,
				DeliveredAt: optTime(n.DeliveredAt), NextAttempt: optTime(n.NextAttempt)}
		}
	}
	if c := r.IdentityCheck; c != nil {
		v.IdentityCheck = &identityCheckJSON{Method: c.Method, Description: c.Description, At: jsonTime(c.At), By: c.By}
	}
	v.Recipients = []recipientJSON{}
	for _, x := range r.Recipients {
		v.Recipients = append(v.Recipients, recipientJSON{Processor: x.Processor, Categories: nonNil(x.Categories),
			FirstAt: jsonTime(x.FirstAt), LastAt: jsonTime(x.LastAt), Status: x.Status, NotedAt: optTime(x.NotedAt), Note: x.Note})
	}
	return v
}

// requestsJSON is `privacy list --json`.
type requestsJSON struct {
	Requests []requestJSON `json:"requests"`
}

// requestsView returns rs as printed by --json.
func requestsView(rs []privacy.Request) requestsJSON {
	v := requestsJSON{Requests: []requestJSON{}}
	for _, r := range rs {
		v.Requests = append(v.Requests, requestView(r))
	}
	return v
}

// dashIfEmpty returns s, or "-" for an empty s.
func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newPrivacyCmd(g *globals) *cobra.Command {
	c := g.serverFlag(&cobra.Command{Use: "privacy", Short: "Your privacy rights: access, portability, rectification, erasure, restriction, objection (free of charge)"})
	c.AddCommand(newPrivacyRequestCmd(g), newPrivacyListCmd(g), newPrivacyShowCmd(g), newPrivacyVerifyCmd(g),
		newPrivacyDownloadCmd(g), newPrivacyEraseCmd(g), newPrivacyContactCmd(g))
	return c
}

func newPrivacyRequestCmd(g *globals) *cobra.Command {
	var details string
	c := &cobra.Command{
		Use:   "request TYPE",
		Short: "Make a request: " + strings.Join(privacy.Types(), ", ") + ` (--details lift undoes a restriction or objection)`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(privacy.Types(), args[0]) {
				return usageError(cmd, "TYPE must be one of %s, not %q", strings.Join(privacy.Types(), ", "), args[0])
			}
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			var r privacy.Request
			if err := cl.Do(cmd.Context(), "POST", "/api/v1/privacy/requests", map[string]string{"type": args[0], "details": details}, &r); err != nil {
				return err
			}
			printRequest(g.env, r)
			fmt.Fprintf(g.env.Stdout, "\nWe sent a code to each of your verified contacts. Prove it is you with:\n  nitronet privacy verify %s --email-code CODE --mobile-code CODE\n", r.ID)
			return nil
		},
	}
	c.Flags().StringVar(&details, "details", "", "what you ask for, in your words (optional)")
	return inputs(c, "type", "TYPE")
}

func newPrivacyListCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use: "list", Short: "List your requests", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			var out struct {
				Requests []privacy.Request `json:"requests"`
			}
			if err := cl.Do(cmd.Context(), "GET", "/api/v1/privacy/requests", nil, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.env.Stdout, requestsView(out.Requests))
			}
			return printRequestTable(g.env, out.Requests, false)
		},
	}
	jsonFlag(c, &asJSON)
	return c
}

func newPrivacyShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use: "show ID", Short: "Show one request", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			var r privacy.Request
			if err := cl.Do(cmd.Context(), "GET", privacyPath(args[0], ""), nil, &r); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.env.Stdout, requestView(r))
			}
			printRequest(g.env, r)
			return nil
		},
	}
	jsonFlag(c, &asJSON)
	return inputs(c, "id", "ID")
}

func newPrivacyVerifyCmd(g *globals) *cobra.Command {
	var emailCode, mobileCode string
	var resend bool
	c := &cobra.Command{
		Use: "verify ID --email-code CODE --mobile-code CODE", Short: "Prove your identity (password plus the codes sent to you)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			if resend {
				if err := cl.Do(cmd.Context(), "POST", privacyPath(args[0], "/resend"), map[string]string{}, nil); err != nil {
					return err
				}
				fmt.Fprintln(g.env.Stdout, "New codes were sent to your verified contacts.")
				return nil
			}
			// The request says what proves identity for it; check the
			// flags that give it before asking for the password.
			var pending privacy.Request
			if err := cl.Do(cmd.Context(), "GET", privacyPath(args[0], ""), nil, &pending); err != nil {
				return err
			}
			for _, field := range pending.IdentityProof {
				if f := cmd.Flags().Lookup(strings.ReplaceAll(field, "_", "-")); f != nil {
					if err := requireFlags(cmd, f.Name); err != nil {
						return err
					}
				}
			}
			pw, err := password(g.env)
			if err != nil {
				return err
			}
			var r privacy.Request
			if err := cl.Do(cmd.Context(), "POST", privacyPath(args[0], "/verify"),
				map[string]string{"password": pw, "email_code": emailCode, "mobile_code": mobileCode}, &r); err != nil {
				return err
			}
			printRequest(g.env, r)
			if r.Type == "erasure" {
				fmt.Fprintf(g.env.Stdout, "\n%s\nTo go ahead: nitronet privacy erase %s --yes\n", privacy.ErasureWarning, r.ID)
			}
			return nil
		},
	}
	c.Flags().StringVar(&emailCode, "email-code", "", "the code sent to your email")
	c.Flags().StringVar(&mobileCode, "mobile-code", "", "the code sent to your mobile")
	c.Flags().BoolVar(&resend, "resend", false, "send new codes instead")
	return inputs(c, "password", "password", "id", "ID")
}

// password returns the account password: NITRONET_PASSWORD, or else read
// without echo (see readSecret).
func password(env *Env) (string, error) {
	if pw := env.Getenv("NITRONET_PASSWORD"); pw != "" {
		return pw, nil
	}
	return readSecret(env, "Password: ")
}

func newPrivacyDownloadCmd(g *globals) *cobra.Command {
	var format, output string
	c := &cobra.Command{
		Use: "download ID [--format json|html] [-o FILE]", Short: "Download your data export (single-use link)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "json" && format != "html" {
				return usageError(cmd, `--format must be "json" or "html", not %q`, format)
			}
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			var tok struct {
				Token string `json:"token"`
			}
			if err := cl.Do(cmd.Context(), "POST", privacyPath(args[0], "/export-token"), map[string]string{}, &tok); err != nil {
				return err
			}
			var body string
			if err := cl.Do(cmd.Context(), "GET", privacyPath(args[0], "/export?format="+format+"&token="+url.QueryEscape(tok.Token)), nil, &body); err != nil {
				return err
			}
			if output == "" || output == "-" {
				_, err := fmt.Fprint(g.env.Stdout, body)
				return err
			}
			if err := os.WriteFile(output, []byte(body), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stderr, "Your data was written to %s.\n", output)
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "json", "json (machine-readable) or html (readable copy)")
	c.Flags().StringVarP(&output, "output", "o", "", "file to write (mode 0600); - or none for stdout")
	return inputs(c, "id", "ID")
}

func newPrivacyEraseCmd(g *globals) *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use: "erase ID --yes", Short: "Carry out a verified erasure request: closes your account for good", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return usageError(cmd, "%s Add --yes to confirm.", privacy.ErasureWarning)
			}
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			var rep privacy.ErasureReport
			if err := cl.Do(cmd.Context(), "POST", privacyPath(args[0], "/confirm-erasure"), map[string]bool{"confirm": true}, &rep); err != nil {
				return err
			}
			fmt.Fprintln(g.env.Stdout, rep.Message)
			if d, err := g.dir(); err == nil {
				if st, err := d.Load(); err == nil {
					st.Token = ""
					_ = d.Save(st)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&yes, "yes", false, "confirm the erasure")
	return inputs(c, "id", "ID", "confirm", "--yes")
}

func newPrivacyContactCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use: "contact email|mobile NEW [CODE]", Short: "Correct your email or mobile: a code goes to the new one; give it to finish", Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ch := args[0]
			if ch != "email" && ch != "mobile" {
				return usageError(cmd, `the first argument must be "email" or "mobile", not %q`, ch)
			}
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			if len(args) == 3 {
				if err := cl.Do(cmd.Context(), "POST", "/api/v1/me/contact/verify", map[string]string{"channel": ch, "code": args[2]}, nil); err != nil {
					return err
				}
				fmt.Fprintf(g.env.Stdout, "Your %s is changed. Your old %s was told.\n", ch, ch)
				return nil
			}
			pw, err := password(g.env)
			if err != nil {
				return err
			}
			if err := cl.Do(cmd.Context(), "POST", "/api/v1/me/contact", map[string]string{"channel": ch, "value": args[1], "password": pw}, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Stdout, "A code was sent to the new %s. Finish with: nitronet privacy contact %s %s CODE\n", ch, ch, args[1])
			return nil
		},
	}
	return inputs(c, "channel", "the first argument (email or mobile)", "value", "NEW", "code", "CODE", "password", "password")
}
