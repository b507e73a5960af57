package privacy

import (
	"context"
	"fmt"
	"github.com/nitronet/nitronet/internal/acctkey"
	"slices"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// Recipients told (GDPR Art. 19).
//
// The processor guard records, per account, which processor was handed
// which categories of the account's data, and when (never the content).
// A rectification or erasure copies that record onto the request once the
// requester's identity is proven, again when a rectification completes,
// and again just before an erasure runs (which then deletes the account's
// own record): the request lists every processor that received the data
// and what, without naming the account. The controller must communicate
// the rectification or erasure to each of them unless that proves
// impossible; staff note each communication (NoteRecipient), and the
// requester sees the list and its state on the request.

// Recipient is a processor that received the data of a rectification or
// erasure request's account, and whether it was told of the request.
type Recipient struct {
	Processor string `json:"processor"`
	// Categories are the inventory category IDs it received.
	Categories []string  `json:"categories"`
	FirstAt    time.Time `json:"first_at"`
	LastAt     time.Time `json:"last_at"`
	// Status is "pending" (to be told), "told", or "impossible" (Note
	// says why).
	Status  string     `json:"status"`
	NotedAt *time.Time `json:"noted_at,omitempty"`
	Note    string     `json:"note,omitempty"`
}

// RecipientStatuses returns the communication states of a recipient.
func RecipientStatuses() []string {
	return []string{store.RecipientPending, store.RecipientTold, store.RecipientImpossible}
}

// toldOf reports whether recipients are told of requests of type typ.
func toldOf(typ string) bool {
	return typ == store.RequestRectification || typ == store.RequestErasure
}

// addRecipients fills v.Recipients with r's recorded recipients. A read
// error is logged and leaves the list empty.
func (s *Service) addRecipients(ctx context.Context, v *Request, r *store.PrivacyRequest) {
	if !toldOf(r.Type) {
		return
	}
	rs, err := s.cfg.Store.RequestRecipients(ctx, r.ID)
	if err != nil {
		s.cfg.Logger.Warn("recipients of request not read", "request", r.ID, "err", errs.CodeOf(err))
		return
	}
	ring := s.keyring()
	defer ring.Close()
	key, err := ring.key(ctx, r.AccountID)
	if err != nil {
		s.cfg.Logger.Warn("recipient notes of request not opened", "request", r.ID, "err", errs.CodeOf(err))
	}
	v.Recipients = make([]Recipient, 0, len(rs))
	for _, x := range rs {
		note := x.Note
		if len(x.NoteSealed) > 0 && key != nil {
			if note, err = key.Open(acctkey.RecipientNote, recipientRecord(r.ID, x.Processor), x.NoteSealed); err != nil {
				s.cfg.Logger.Warn("recipient note not opened", "request", r.ID, "err", errs.CodeOf(err))
				note = ""
			}
		}
		v.Recipients = append(v.Recipients, Recipient{Processor: x.Processor, Categories: x.Categories,
			FirstAt: x.FirstAt.UTC(), LastAt: x.LastAt.UTC(), Status: x.Status, NotedAt: utcPtr(x.NotedAt), Note: note})
	}
}

// recipientRecord is the record a note on telling processor of request
// id is sealed for.
func recipientRecord(id, processor string) string { return id + "/" + processor }

// sealRecipientNote returns note as NoteRequestRecipient stores it for
// request r: sealed under the account's key while r has an account, so
// that an erasure leaves it unreadable; in plaintext once r has none (it
// was erased, or never had one), when the request identifies nobody.
func (s *Service) sealRecipientNote(ctx context.Context, r *store.PrivacyRequest, processor, note string) (string, []byte, error) {
	if note == "" || r.AccountID == "" {
		return note, nil, nil
	}
	ring := s.keyring()
	defer ring.Close()
	key, err := ring.key(ctx, r.AccountID)
	if err != nil {
		return "", nil, err
	}
	if key == nil {
		return note, nil, nil
	}
	sealed, err := key.Seal(acctkey.RecipientNote, recipientRecord(r.ID, processor), note)
	return "", sealed, err
}

// snapshotRecipients copies onto rectification or erasure request r the
// processors that received its account's data so far, grouped by
// processor (see the comment on recipients).
func (s *Service) snapshotRecipients(ctx context.Context, r *store.PrivacyRequest) error {
	if !toldOf(r.Type) || r.AccountID == "" {
		return nil
	}
	ts, err := s.cfg.Store.ProcessorTransfers(ctx, r.AccountID)
	if err != nil {
		return err
	}
	var out []store.RequestRecipient
	for _, t := range ts {
		i := slices.IndexFunc(out, func(x store.RequestRecipient) bool { return x.Processor == t.Processor })
		if i < 0 {
			out = append(out, store.RequestRecipient{Processor: t.Processor, FirstAt: t.FirstAt, LastAt: t.LastAt})
			i = len(out) - 1
		}
		x := &out[i]
		x.Categories = append(x.Categories, t.Category)
		if t.FirstAt.Before(x.FirstAt) {
			x.FirstAt = t.FirstAt
		}
		if t.LastAt.After(x.LastAt) {
			x.LastAt = t.LastAt
		}
	}
	if len(out) == 0 {
		return nil
	}
	return s.cfg.Store.MergeRequestRecipients(ctx, r.ID, out)
}

// NoteRecipient records, for by (who must be allowed
// staff.ActPrivacyComplete), whether processor was told of rectification
// or erasure request id: status "told", "impossible" (note, the reason,
// is then required) or back to "pending". Bad input is Invalid naming
// "status" or "note"; a processor not listed on the request is NotFound
// with field "processor". It is audited and returns the request.
func (s *Service) NoteRecipient(ctx context.Context, by staff.Principal, id, processor, status, note string) (*Request, error) {
	if err := staff.Authorize(by, staff.ActPrivacyComplete); err != nil {
		return nil, err
	}
	if err := requestID(id); err != nil {
		return nil, err
	}
	status = strings.ToLower(strings.TrimSpace(status))
	if !slices.Contains(RecipientStatuses(), status) {
		return nil, errs.Field(errs.Invalid, "status", "unknown status %q: want one of %s", clip(status, 40),
			strings.Join(RecipientStatuses(), ", "))
	}
	note, err := checkText("note", note, MaxReason)
	if err != nil {
		return nil, err
	}
	if status == store.RecipientImpossible && note == "" {
		return nil, errs.Field(errs.Invalid, "note", "say why the processor cannot be told")
	}
	r, err := s.cfg.Store.PrivacyRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if !toldOf(r.Type) {
		return nil, errs.E(errs.Conflict, "only a rectification or erasure is communicated to recipients")
	}
	processor = strings.TrimSpace(processor)
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	plain, sealed, err := s.sealRecipientNote(ctx, r, processor, note)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.NoteRequestRecipient(ctx, id, processor, status, plain, sealed, by.ID, now); errs.Is(err, errs.NotFound) {
		return nil, errs.Field(errs.NotFound, "processor", "request %s lists no recipient %q", id, clip(processor, 60))
	} else if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActPrivacyComplete, subject(r),
		fmt.Sprintf("request %s: recipient %s %s", id, processor, status)); err != nil {
		return nil, err
	}
	return s.staffFull(ctx, by, r)
}
