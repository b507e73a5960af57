package processors

import (
	"context"
	"log/slog"
	"regexp"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/notify"
)

// Register says what a processor may receive, and records what it
// received. *Service implements it.
type Register interface {
	// Scope returns the inventory category IDs the processor named name
	// may receive; an unregistered processor is NotFound.
	Scope(ctx context.Context, name string) ([]string, error)
	// Received records that the processor named name is handed
	// categories of account accountID's data (never the content).
	Received(ctx context.Context, accountID, name string, categories []string) error
}

// ProcessorFor returns the processor a message on channel ch is handed to:
// NameSMTP for email, NameSMS for SMS, "" for an unknown channel.
func ProcessorFor(ch notify.Channel) string {
	switch ch {
	case notify.Email:
		return NameSMTP
	case notify.SMS:
		return NameSMS
	}
	return ""
}

// Patterns that find personal data a message's text carries beyond its
// recipient. They are compiled per call to keep the package free of
// state; messages are few.
const (
	emailPattern  = `[^\s<>"'(),;:\[\]]+@[^\s<>"'(),;:\[\]]+\.[^\s<>"'(),;:\[\]]+`
	mobilePattern = `\+[1-9][0-9]{7,14}\b`
)

// Transfer returns the inventory categories m hands to its processor, in
// inventory order:
//
//   - the recipient: an email address (inventory.IDEmail) or a mobile
//     number (inventory.IDMobile);
//   - the content, by m.Kind: a kind ending in "-code" carries a one-time
//     code (inventory.IDCodes), "password-reset" a reset link
//     (inventory.IDResetTokens), a service notice (ServiceNotice) only the
//     fact it tells the recipient about their own account, and any other
//     kind is a notice whose text is also kept in the account inbox
//     (inventory.IDInbox);
//   - any email address or E.164 number in the subject or body, which
//     adds inventory.IDEmail or inventory.IDMobile (for example a new
//     mobile number quoted in an email).
func Transfer(m notify.Message) []string {
	need := map[string]bool{}
	switch m.Channel {
	case notify.Email:
		need[inventory.IDEmail] = true
	case notify.SMS:
		need[inventory.IDMobile] = true
	}
	switch {
	case strings.HasSuffix(m.Kind, "-code"):
		need[inventory.IDCodes] = true
	case m.Kind == "password-reset":
		need[inventory.IDResetTokens] = true
	case ServiceNotice(m.Kind):
		// Nothing beyond the recipient.
	default:
		need[inventory.IDInbox] = true
	}
	text := m.Subject + "\n" + m.Body
	if regexp.MustCompile(emailPattern).MatchString(text) {
		need[inventory.IDEmail] = true
	}
	if regexp.MustCompile(mobilePattern).MatchString(text) {
		need[inventory.IDMobile] = true
	}
	var out []string
	// The categories a message can carry, in inventory order.
	for _, id := range []string{inventory.IDEmail, inventory.IDMobile, inventory.IDCodes, inventory.IDResetTokens, inventory.IDInbox} {
		if need[id] {
			out = append(out, id)
		}
	}
	return out
}

// Kinds of service notices: messages that tell the holder of an account,
// at a contact of theirs, what just happened to it, and quote no contact
// and no inbox text.
const (
	// KindContactChanged tells the old email address or mobile number that
	// it was replaced.
	KindContactChanged = "contact-changed"
	// KindErasure tells the account holder that the account is being
	// erased.
	KindErasure = "privacy-erasure"
)

// ServiceNotice reports whether kind is a service notice, which hands its
// processor only the recipient's contact (Transfer). Such notices must
// reach the old number after a mobile change, and the account holder
// during an erasure, through any processor that may carry that contact.
func ServiceNotice(kind string) bool {
	return kind == KindContactChanged || kind == KindErasure
}

// Guard returns a Notifier that checks every message against the register
// before handing it to next, which must be a processor's notifier (the
// SMTP relay or the SMS webhook; a local outbox is no processor and needs
// no guard). The processor is chosen by the message's channel
// (ProcessorFor), and what the message transfers by Transfer.
//
// A message whose categories are all within the processor's registered
// scope is passed to next unchanged; if the message names its account
// (notify.Message.Account), the transfer is first recorded in the
// register (Register.Received), and a message whose transfer cannot be
// recorded is refused (Unavailable), so that no account's data reaches a
// processor unrecorded. Otherwise Send returns an
// *errs.Error with code Forbidden and logs a warning that names only the
// message kind, the processor and the category IDs outside scope, never a
// recipient, subject or body. An unregistered processor is outside scope
// for everything; a register that cannot be read refuses the message
// (Unavailable). The returned Notifier is safe for concurrent use if next
// and reg are.
func Guard(next notify.Notifier, reg Register, log *slog.Logger) notify.Notifier {
	return &guard{next: next, reg: reg, log: log}
}

type guard struct {
	next notify.Notifier
	reg  Register
	log  *slog.Logger
}

func (g *guard) Send(ctx context.Context, m notify.Message) error {
	name := ProcessorFor(m.Channel)
	if name == "" {
		return errs.E(errs.Invalid, "unknown message channel")
	}
	kind := safeKind(m.Kind)
	allowed, err := g.reg.Scope(ctx, name)
	if errs.Is(err, errs.NotFound) {
		allowed, err = nil, nil
	}
	if err != nil {
		g.log.Error("processor register unavailable; transfer refused", "processor", name, "kind", kind, "err", err)
		return errs.Wrap(errs.Unavailable, err, "the processor register could not be read")
	}
	cats := Transfer(m)
	if out := Outside(cats, allowed); len(out) > 0 {
		g.log.Warn("transfer outside processor scope refused", "processor", name, "kind", kind, "categories", out)
		return errs.E(errs.Forbidden, "%s may not receive %s (processor register)", name, strings.Join(out, ", "))
	}
	if m.Account != "" {
		if err := g.reg.Received(ctx, m.Account, name, cats); err != nil {
			g.log.Error("transfer not recorded; refused", "processor", name, "kind", kind, "err", errs.CodeOf(err))
			return errs.Wrap(errs.Unavailable, err, "the transfer to the processor could not be recorded")
		}
	}
	return g.next.Send(ctx, m)
}

// safeKind returns k if it is a well-formed message kind (which holds no
// personal data), and "invalid" otherwise, so nothing else reaches a log.
func safeKind(k string) string {
	if k == "" || len(k) > 32 {
		return "invalid"
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "invalid"
		}
	}
	return k
}
