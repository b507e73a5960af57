// Package notify sends outgoing messages to users: email through an SMTP
// relay, SMS through an HTTP webhook, or files in an outbox directory for
// operators without either.
//
// Messages carry personal data (addresses, numbers, one-time codes), so this
// package never logs a recipient, a subject, a body or a credential. It logs
// at most a message's Kind and whether sending succeeded, and the text of the
// errors it returns has recipient addresses and numbers redacted.
package notify

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
)

// Channel is the medium a message is sent through.
type Channel string

// The channels a Message may use.
const (
	Email Channel = "email"
	SMS   Channel = "sms"
)

// Message is one outgoing message.
type Message struct {
	// Channel selects the medium.
	Channel Channel
	// To is the recipient: an email address for Email, an E.164 number for
	// SMS. It must not contain control characters.
	To string
	// Subject is the email subject. It is ignored for SMS. It must not
	// contain control characters.
	Subject string
	// Body is the plain-text content.
	Body string
	// Kind is a short machine label like "verify-code" used only for
	// routing, logs and file names, never personal data. It must be 1 to 32
	// characters from a-z, 0-9 and "-", starting with a letter or digit.
	Kind string
	// Account is the ID of the account whose data the message carries,
	// or empty. It is never sent or logged: it tells the processor guard
	// whose data the processor receives, so that the recipients of an
	// account's data can be listed (GDPR Art. 15 and 19), and a notifier
	// that keeps messages (the outbox) files each under its account, so
	// that an erasure can delete them (Outbox.ForgetAccount). It must be
	// empty or 1 to 64 characters from a-z, 0-9 and "_".
	Account string
}

// Notifier sends messages. Implementations are safe for concurrent use.
type Notifier interface {
	// Send sends m, or returns an error saying why it could not. A nil
	// error means the message was handed on (to the relay, the webhook or
	// the outbox), not that it was delivered.
	Send(ctx context.Context, m Message) error
}

// Router sends each message through the Notifier for its channel.
// A Router is safe for concurrent use if its Notifiers are.
type Router struct {
	Email, SMS Notifier
}

// Send sends m through r.Email or r.SMS according to m.Channel. It returns an
// *errs.Error with code errs.Invalid if the channel is unknown, and one with
// code errs.Unavailable if no Notifier is configured for it.
func (r Router) Send(ctx context.Context, m Message) error {
	var n Notifier
	switch m.Channel {
	case Email:
		n = r.Email
	case SMS:
		n = r.SMS
	default:
		return errs.E(errs.Invalid, "unknown message channel")
	}
	if n == nil {
		return errs.E(errs.Unavailable, "no %s notifier is configured", m.Channel)
	}
	return n.Send(ctx, m)
}

// Validate returns an *errs.Error with code errs.Invalid if no Notifier
// could send m: an unknown channel, a malformed Kind, no recipient, or a
// control character in the recipient or subject. The message does not
// contain m's fields.
func (m Message) Validate() error { return m.validate("") }

// SafeKind returns k if it is a well-formed Message.Kind, which holds no
// personal data, and "invalid" otherwise, for logs.
func SafeKind(k string) string {
	if validKind(k) {
		return k
	}
	return "invalid"
}

// validate checks the fields every Notifier relies on. If want is not empty,
// m.Channel must equal it.
func (m Message) validate(want Channel) error {
	if want != "" && m.Channel != want {
		return errs.E(errs.Invalid, "message channel %q is not %q", m.Channel, want)
	}
	if m.Channel != Email && m.Channel != SMS {
		return errs.E(errs.Invalid, "unknown message channel")
	}
	if !validKind(m.Kind) {
		return errs.E(errs.Invalid, "invalid message kind")
	}
	if !validAccount(m.Account) {
		return errs.E(errs.Invalid, "invalid message account")
	}
	if m.To == "" {
		return errs.E(errs.Invalid, "message has no recipient")
	}
	if hasControl(m.To) {
		return errs.E(errs.Invalid, "message recipient contains a control character")
	}
	if hasControl(m.Subject) {
		return errs.E(errs.Invalid, "message subject contains a control character")
	}
	return nil
}

// validKind reports whether k is a well-formed Message.Kind.
func validKind(k string) bool {
	if k == "" || len(k) > 32 || k[0] == '-' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validAccount reports whether a is a well-formed Message.Account.
func validAccount(a string) bool {
	if len(a) > 64 {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// hasControl reports whether s contains an ASCII control character or DEL,
// which could inject headers.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// addrPattern matches anything that looks like an email address, for
// redaction. It is compiled once and never modified.
var addrPattern = regexp.MustCompile(`[^\s<>"'(),;:\[\]]+@[^\s<>"'(),;:\[\]]+`)

// sendError is the error a Notifier returns when sending fails. Its text has
// the recipient and anything resembling an email address redacted, so it
// can be logged; Unwrap still gives the cause for errors.Is and errors.As.
type sendError struct {
	op   string // e.g. "smtp send"
	kind string // Message.Kind, already validated
	text string // redacted text of err
	err  error
}

func (e *sendError) Error() string {
	return fmt.Sprintf("notify: %s %s: %s", e.op, e.kind, e.text)
}

func (e *sendError) Unwrap() error { return e.err }

// sendFailed returns an *errs.Error with code errs.Unavailable wrapping a
// sendError for cause.
func sendFailed(op string, m Message, cause error) error {
	text := cause.Error()
	if m.To != "" {
		text = replaceFold(text, m.To, "[recipient]")
		if t := strings.TrimPrefix(m.To, "+"); len(t) >= 4 {
			text = replaceFold(text, t, "[recipient]")
		}
	}
	text = addrPattern.ReplaceAllString(text, "[address]")
	return errs.Wrap(errs.Unavailable, &sendError{op: op, kind: m.Kind, text: text, err: cause}, "message could not be sent")
}

// replaceFold replaces every ASCII-case-insensitive occurrence of old in s
// with repl.
func replaceFold(s, old, repl string) string {
	if old == "" {
		return s
	}
	ls, lo := strings.ToLower(s), strings.ToLower(old)
	if len(ls) != len(s) || len(lo) != len(old) {
		// Lowercasing changed byte lengths (non-ASCII); fall back to an
		// exact match so indexes stay aligned.
		return strings.ReplaceAll(s, old, repl)
	}
	var b strings.Builder
	for {
		i := strings.Index(ls, lo)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, ls = s[i+len(old):], ls[i+len(old):]
	}
}
