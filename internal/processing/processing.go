// Package processing holds the one rule that says which processing of an
// account's data its owner's restriction (GDPR Art. 18) and objection
// (Art. 21) still allow. Every part of the server that processes account
// data beyond storing it asks this package, and nothing else:
//
//   - statistics leave an account out through the store query, with the
//     flags Excluding(Statistics) names;
//   - notices to every account skip it the same way, with the flags
//     Excluding(ForMessage(kind)) names;
//   - every outgoing message passes Guard, which refuses one whose
//     purpose the account's flags stop, so that no processor (the SMTP
//     relay, the SMS gateway) receives data for a stopped purpose;
//   - the export and the staff console show State.
//
// # The rule
//
// An objection stops the processing based on legitimate interests
// (Art. 6(1)(f)): product announcements and aggregate statistics.
//
// A restriction stops all processing except storage and the service the
// account holder is using: the VPN and the account itself, the messages
// that service needs (one-time codes, security notices, answers to the
// holder's own requests), and notices the law requires the holder be
// given (changes to the policy or terms, breach notices under Art. 34,
// notices of disclosures once a gag lapses). Any purpose not listed as
// such, including one added later, is stopped by a restriction.
//
// Both flags are set and lifted by privacy requests (package privacy).
package processing

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/store"
)

// Purpose is a purpose for which account data is processed.
type Purpose string

// The purposes the server processes account data for.
const (
	// Storage is keeping the data, without other use.
	Storage Purpose = "storage"
	// Service is the service the account holder uses: the VPN, the
	// account, its devices, sessions and limits, and their own requests.
	Service Purpose = "service"
	// ServiceNotice is a message the service needs to send: one-time
	// codes, password resets, security and contact-change notices,
	// answers to the holder's privacy requests.
	ServiceNotice Purpose = "service-notice"
	// LegalNotice is a notice the law or the contract requires: a change
	// to the policy or terms, a breach notice (Art. 34), a disclosure
	// notice once a gag lapses.
	LegalNotice Purpose = "legal-notice"
	// Announcement is a product or service announcement to every
	// account: legitimate interest.
	Announcement Purpose = "announcement"
	// Statistics is aggregate, differentially private statistics:
	// legitimate interest.
	Statistics Purpose = "statistics"
)

// Purposes lists every purpose, in a stable order.
func Purposes() []Purpose {
	return []Purpose{Storage, Service, ServiceNotice, LegalNotice, Announcement, Statistics}
}

// legitimateInterest lists the purposes based on legitimate interests
// (Art. 6(1)(f)), which an objection stops.
func legitimateInterest() []Purpose { return []Purpose{Announcement, Statistics} }

// underRestriction lists the only purposes a restriction leaves.
func underRestriction() []Purpose { return []Purpose{Storage, Service, ServiceNotice, LegalNotice} }

// Allowed reports whether an account with flags f may be processed for p.
func Allowed(f store.Flags, p Purpose) bool {
	if f.Restricted && !slices.Contains(underRestriction(), p) {
		return false
	}
	if f.Objected && slices.Contains(legitimateInterest(), p) {
		return false
	}
	return true
}

// Excluding returns the flags that exclude an account from p: a store
// query for p leaves out the accounts with any of them set
// (store.StatsStore.DailyUsage, store.InboxStore.PostNoticeBatch).
func Excluding(p Purpose) store.Flags {
	return store.Flags{
		Restricted: !Allowed(store.Flags{Restricted: true}, p),
		Objected:   !Allowed(store.Flags{Objected: true}, p),
	}
}

// Message kinds (notify.Message.Kind, inbox message kinds) whose purpose
// is not a service notice.
const (
	KindAnnouncement = "announcement"
	KindPolicyChange = "policy-change"
	KindBreach       = "breach-notice"
	KindDisclosure   = "disclosure-notice"
)

// ForMessage returns the purpose of a message of kind: Announcement for
// an announcement, LegalNotice for a policy-change, breach or disclosure
// notice, ServiceNotice for a one-time code ("…-code"), a password reset,
// a contact change or a privacy-request message ("privacy-…"), and
// Announcement for any other kind, so that a new kind is stopped by an
// objection until it is classified here.
func ForMessage(kind string) Purpose {
	switch {
	case kind == KindAnnouncement:
		return Announcement
	case kind == KindPolicyChange, kind == KindBreach, kind == KindDisclosure:
		return LegalNotice
	case strings.HasSuffix(kind, "-code"), kind == "password-reset", kind == "contact-changed",
		strings.HasPrefix(kind, "privacy-"):
		return ServiceNotice
	}
	return Announcement
}

// State is what an account's flags mean, as the export and the console
// show it.
type State struct {
	Restricted bool `json:"restricted"`
	Objected   bool `json:"objected"`
	// Stopped lists the purposes the flags stop; Continues those still
	// carried out. Both in Purposes order.
	Stopped   []Purpose `json:"stopped"`
	Continues []Purpose `json:"continues"`
	// Effect says it in words.
	Effect string `json:"effect"`
}

// StateOf returns the state of an account with flags f.
func StateOf(f store.Flags) State {
	s := State{Restricted: f.Restricted, Objected: f.Objected, Stopped: []Purpose{}, Continues: []Purpose{}}
	for _, p := range Purposes() {
		if Allowed(f, p) {
			s.Continues = append(s.Continues, p)
		} else {
			s.Stopped = append(s.Stopped, p)
		}
	}
	switch {
	case f.Restricted:
		s.Effect = "Processing is restricted (Art. 18 GDPR): your data is only stored and used for the service you are using, with the messages it needs and the notices the law requires. You get no announcements and are left out of statistics."
	case f.Objected:
		s.Effect = "You objected (Art. 21 GDPR): you get no product announcements and are left out of statistics. Service messages and legal notices still reach you."
	default:
		s.Effect = "No restriction or objection: your data is processed for the purposes in the inventory, including announcements and aggregate statistics, to which you may object."
	}
	return s
}

// FlagReader reads an account's flags (store.HoldStore.AccountFlags).
type FlagReader interface {
	AccountFlags(ctx context.Context, accountID string) (store.Flags, error)
}

// Guard returns a Notifier that refuses, with Forbidden, a message whose
// purpose (ForMessage of its Kind) the flags of its account
// (notify.Message.Account) stop, and passes any other message to next
// unchanged. A message naming no account is passed on. If the flags
// cannot be read the message is refused (Unavailable), never sent
// unchecked. A refusal is logged with the kind only.
func Guard(next notify.Notifier, flags FlagReader, log *slog.Logger) notify.Notifier {
	return &guard{next: next, flags: flags, log: log}
}

type guard struct {
	next  notify.Notifier
	flags FlagReader
	log   *slog.Logger
}

func (g *guard) Send(ctx context.Context, m notify.Message) error {
	if m.Account != "" {
		p := ForMessage(m.Kind)
		f, err := g.flags.AccountFlags(ctx, m.Account)
		if errs.Is(err, errs.NotFound) {
			// An account purged since: only what a restriction leaves
			// (such as the notice of its own erasure) may go out.
			f, err = store.Flags{Restricted: true}, nil
		}
		if err != nil {
			g.log.Error("processing flags unavailable; message refused", "purpose", string(p), "err", errs.CodeOf(err))
			return errs.Wrap(errs.Unavailable, err, "the account's processing flags could not be read")
		}
		if !Allowed(f, p) {
			g.log.Info("message refused: the account restricted or objected to its purpose", "purpose", string(p))
			return errs.E(errs.Forbidden, "the account holder restricted or objected to %s", p)
		}
	}
	return g.next.Send(ctx, m)
}
