package notify

import (
	"context"
	"strings"
)

// MaskRecipients wraps n so that the recipient it sees is masked, for
// notifiers that only record messages (the file outbox). The outbox sits in
// the data directory, which must hold no plaintext email or mobile number;
// the body (with the code in it) is unchanged.
func MaskRecipients(n Notifier) Notifier { return masked{n} }

type masked struct{ next Notifier }

func (m masked) Send(ctx context.Context, msg Message) error {
	if err := msg.validate(""); err != nil {
		return err
	}
	msg.To = Mask(msg.To)
	return m.next.Send(ctx, msg)
}

// Mask returns a form of an email address or phone number that a person can
// recognise as theirs but that does not contain it: "a…@e…" for
// "alice@example.com", "+…23" for "+447700900123".
func Mask(to string) string {
	if local, domain, ok := strings.Cut(to, "@"); ok {
		return first(local) + "…@" + first(domain) + "…"
	}
	if len(to) > 2 {
		return "+…" + to[len(to)-2:]
	}
	return "…"
}

func first(s string) string {
	for _, r := range s {
		return string(r)
	}
	return ""
}
