// Package inbox is the account inbox: messages "sent to you through your
// account", such as policy-change notices, service announcements and
// answers to privacy requests.
//
// Message subjects and bodies may be personal data; this package never
// logs them, and stores a message posted to one account sealed under the
// account's data key (package acctkey), so an erasure leaves it
// unreadable. A notice run's message (the same text to every account,
// with no personal data) keeps the run's text.
package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/processing"
	"github.com/nitronet/nitronet/internal/store"
)

// Limits on message content.
const (
	MaxSubject = 200    // runes
	MaxBody    = 20_000 // runes
	// ListLimit is the most messages List returns.
	ListLimit = 500
)

// Message is an inbox message as the API and the data export show it.
type Message struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Subject   string     `json:"subject"`
	Body      string     `json:"body"`
	CreatedAt time.Time  `json:"created_at"`
	ReadAt    *time.Time `json:"read_at"`
	// RequestID is the privacy request the message is about, if any.
	RequestID string `json:"request_id,omitempty"`
}

// Store is the part of the store the inbox uses (a store.Store).
type Store interface {
	store.InboxStore
	store.PlainTextStore
}

// Service posts and reads inbox messages. It is safe for concurrent use.
type Service struct {
	store Store
	keys  *acctkey.Keys
	clock func() time.Time
	rand  io.Reader
	flags processing.FlagReader
}

// Config holds a Service's dependencies; all but Flags are required.
type Config struct {
	Store Store
	// Keys seals and opens the messages posted to one account.
	Keys  *acctkey.Keys
	Clock func() time.Time
	Rand  io.Reader
	// Flags, if set, reads accounts' restriction and objection: Post
	// then refuses a message whose purpose they stop (package
	// processing).
	Flags processing.FlagReader
}

// New returns a Service over cfg.Store.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Keys == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, errors.New("inbox: missing dependency")
	}
	return &Service{store: cfg.Store, keys: cfg.Keys, clock: cfg.Clock, rand: cfg.Rand, flags: cfg.Flags}, nil
}

// content is what a message posted to one account seals.
type content struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// ValidKind reports whether k is a message kind: 1 to 32 characters from
// a-z, 0-9 and "-", not starting with "-".
func ValidKind(k string) bool {
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

// ValidateContent checks a message's kind, subject and body and returns
// them trimmed: the subject must be 1 to MaxSubject runes without control
// characters, the body 1 to MaxBody runes. It returns Invalid otherwise,
// naming the field "kind", "subject" or "body".
func ValidateContent(kind, subject, body string) (string, string, error) {
	if !ValidKind(kind) {
		return "", "", errs.Field(errs.Invalid, "kind", "message kind must be 1 to 32 characters from a-z, 0-9 and -")
	}
	subject, body = strings.TrimSpace(subject), strings.TrimSpace(body)
	if subject == "" || utf8.RuneCountInString(subject) > MaxSubject || !utf8.ValidString(subject) ||
		strings.IndexFunc(subject, unicode.IsControl) >= 0 {
		return "", "", errs.Field(errs.Invalid, "subject", "a subject of 1 to %d characters without control characters is required", MaxSubject)
	}
	if body == "" || utf8.RuneCountInString(body) > MaxBody || !utf8.ValidString(body) {
		return "", "", errs.Field(errs.Invalid, "body", "a body of 1 to %d characters is required", MaxBody)
	}
	return subject, body, nil
}

// Post puts a message of kind with subject and body into the account's
// inbox. It returns Invalid for bad content (see ValidateContent) and
// NotFound for an unknown account, and Forbidden if the account's
// restriction or objection stops the purpose of kind
// (processing.ForMessage). Other packages call it to send messages
// "through your account".
func (s *Service) Post(ctx context.Context, accountID, kind, subject, body string) error {
	return s.PostAbout(ctx, accountID, "", kind, subject, body)
}

// PostAbout is Post for a message about privacy request requestID (empty
// for none), which front ends link to the request. A malformed request id
// is Invalid (field "request_id").
func (s *Service) PostAbout(ctx context.Context, accountID, requestID, kind, subject, body string) error {
	if requestID != "" && !ident.Valid(requestID, "prq") {
		return errs.Field(errs.Invalid, "request_id", "malformed privacy request id")
	}
	subject, body, err := ValidateContent(kind, subject, body)
	if err != nil {
		return err
	}
	if s.flags != nil {
		f, err := s.flags.AccountFlags(ctx, accountID)
		if err != nil {
			return err
		}
		if p := processing.ForMessage(kind); !processing.Allowed(f, p) {
			return errs.E(errs.Forbidden, "the account holder restricted or objected to %s", p)
		}
	}
	id, err := ident.New(s.rand, "msg")
	if err != nil {
		return err
	}
	key, err := s.keys.Open(ctx, accountID)
	if err != nil {
		return err
	}
	defer key.Close()
	b, err := json.Marshal(content{Subject: subject, Body: body})
	if err != nil {
		return err
	}
	sealed, err := key.Seal(acctkey.InboxMessage, id, string(b))
	if err != nil {
		return err
	}
	return s.store.PostMessage(ctx, &store.Message{
		ID: id, AccountID: accountID, Kind: kind, Sealed: sealed, CreatedAt: s.clock(), RequestID: requestID,
	})
}

// SealPlaintext seals the messages posted to one account before messages
// were sealed (see acctkey.Keys.SealPlainTexts, which returns the counts).
func (s *Service) SealPlaintext(ctx context.Context) (done, skipped int, err error) {
	return s.keys.SealPlainTexts(ctx, s.store, store.PlainInbox, acctkey.InboxMessage,
		func(p store.PlainText) (string, map[string]string, error) {
			b, err := json.Marshal(content{Subject: p.Fields["subject"], Body: p.Fields["body"]})
			return string(b), nil, err
		})
}

// messages returns ms as the API shows them, opening sealed ones with the
// account's key.
func (s *Service) messages(ctx context.Context, accountID string, ms []store.Message) ([]Message, error) {
	out := make([]Message, 0, len(ms))
	var key *acctkey.Key
	defer func() {
		if key != nil {
			key.Close()
		}
	}()
	for _, m := range ms {
		v := Message{ID: m.ID, Kind: m.Kind, Subject: m.Subject, Body: m.Body, CreatedAt: m.CreatedAt, ReadAt: m.ReadAt, RequestID: m.RequestID}
		if len(m.Sealed) > 0 {
			if key == nil {
				k, err := s.keys.Open(ctx, accountID)
				if err != nil {
					return nil, err
				}
				key = k
			}
			text, err := key.Open(acctkey.InboxMessage, m.ID, m.Sealed)
			if err != nil {
				return nil, err
			}
			var c content
			if err := json.Unmarshal([]byte(text), &c); err != nil {
				return nil, fmt.Errorf("message %s: %w", m.ID, err)
			}
			v.Subject, v.Body = c.Subject, c.Body
		}
		out = append(out, v)
	}
	return out, nil
}

// List returns the account's newest messages (at most limit, capped at
// ListLimit; limit < 1 means ListLimit), newest first, and its number of
// unread messages. The slice is never nil.
func (s *Service) List(ctx context.Context, accountID string, limit int) ([]Message, int, error) {
	if limit < 1 || limit > ListLimit {
		limit = ListLimit
	}
	ms, unread, err := s.store.Messages(ctx, accountID, limit)
	if err != nil {
		return nil, 0, err
	}
	out, err := s.messages(ctx, accountID, ms)
	if err != nil {
		return nil, 0, err
	}
	return out, unread, nil
}

// Unread returns the account's number of unread messages.
func (s *Service) Unread(ctx context.Context, accountID string) (int, error) {
	_, n, err := s.store.Messages(ctx, accountID, 1)
	return n, err
}

// MarkRead marks the account's message id read. Marking a read message
// again is not an error. A malformed id, or another account's message, is
// NotFound (field "id").
func (s *Service) MarkRead(ctx context.Context, accountID, id string) error {
	if !ident.Valid(id, "msg") {
		return errs.Field(errs.NotFound, "id", "message not found")
	}
	return s.store.MarkRead(ctx, accountID, id, s.clock())
}

// Delete deletes the account's message id: it is no longer listed or
// exported, and its text is gone (an email of it not yet sent is not
// sent). A malformed id, another account's message, or one already
// deleted is NotFound (field "id").
func (s *Service) Delete(ctx context.Context, accountID, id string) error {
	if !ident.Valid(id, "msg") {
		return errs.Field(errs.NotFound, "id", "message not found")
	}
	return errs.WithField(s.store.DeleteMessage(ctx, accountID, id, s.clock()), "id")
}

// ExportSection returns the account's whole inbox for the data export,
// under the name "inbox": every message, newest first.
func (s *Service) ExportSection(ctx context.Context, accountID string) (string, any, error) {
	ms, _, err := s.store.Messages(ctx, accountID, 1_000_000)
	if err != nil {
		return "", nil, err
	}
	out, err := s.messages(ctx, accountID, ms)
	if err != nil {
		return "", nil, err
	}
	return "inbox", out, nil
}
