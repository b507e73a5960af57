package privacy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// requestText is a request's free text: the user's details and what staff
// wrote. It is stored as one JSON value sealed under the account's data
// key (acctkey.RequestText), so an erasure leaves none of it readable.
type requestText struct {
	Details        string `json:"details,omitempty"`
	ExtendedReason string `json:"extended_reason,omitempty"`
	DeniedReason   string `json:"denied_reason,omitempty"`
	// Note is the staff's note on completing the request.
	Note string `json:"note,omitempty"`
}

// outcome returns what the user is told was done with r: the staff's note
// or reason if there is one, otherwise r's Outcome, which the service
// words without personal data.
func (t requestText) outcome(r *store.PrivacyRequest) string {
	switch {
	case r.Status == store.RequestDenied && t.DeniedReason != "":
		return "Denied: " + t.DeniedReason
	case t.Note != "":
		return t.Note
	}
	return r.Outcome
}

// seal seals t as the text of request id with key.
func (t requestText) seal(key *acctkey.Key, id string) ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return key.Seal(acctkey.RequestText, id, string(b))
}

// openText returns r's text, opened with key. A request written before
// texts were sealed has it in plaintext; a request of an erased account
// (key nil) has none left.
func openText(key *acctkey.Key, r *store.PrivacyRequest) (requestText, error) {
	if len(r.Sealed) == 0 {
		return requestText{Details: r.Details, ExtendedReason: r.ExtendedReason, DeniedReason: r.DeniedReason}, nil
	}
	if key == nil {
		return requestText{}, nil
	}
	s, err := key.Open(acctkey.RequestText, r.ID, r.Sealed)
	if err != nil {
		return requestText{}, err
	}
	var t requestText
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return requestText{}, fmt.Errorf("request %s text: %w", r.ID, err)
	}
	return t, nil
}

// keyring opens accounts' keys for the length of one call, each once.
// Close it when done.
type keyring struct {
	keys *acctkey.Keys
	open map[string]*acctkey.Key
}

func (s *Service) keyring() *keyring {
	return &keyring{keys: s.cfg.Keys, open: map[string]*acctkey.Key{}}
}

// key returns the key of account id, or nil for no account or one whose
// key an erasure destroyed.
func (k *keyring) key(ctx context.Context, id string) (*acctkey.Key, error) {
	if id == "" {
		return nil, nil
	}
	if key, ok := k.open[id]; ok {
		return key, nil
	}
	key, err := k.keys.Open(ctx, id)
	if errs.Is(err, errs.Gone) || errs.Is(err, errs.NotFound) {
		key, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	k.open[id] = key
	return key, nil
}

// text returns r's text.
func (k *keyring) text(ctx context.Context, r *store.PrivacyRequest) (requestText, error) {
	key, err := k.key(ctx, r.AccountID)
	if err != nil {
		return requestText{}, err
	}
	return openText(key, r)
}

func (k *keyring) Close() {
	for _, key := range k.open {
		if key != nil {
			key.Close()
		}
	}
}

// updateText updates request id in one transaction: fn changes the
// request and its text, which is sealed again under the account's key
// (plaintext written before texts were sealed moves into it). For a
// request of an erased account, whose key is gone, fn's changes to the
// text are dropped; a request from outside the app without an account
// keeps them in plaintext (a note as its outcome). It returns the updated request and its text.
func (s *Service) updateText(ctx context.Context, id string,
	fn func(r *store.PrivacyRequest, t *requestText) error) (*store.PrivacyRequest, requestText, error) {
	cur, err := s.cfg.Store.PrivacyRequest(ctx, id)
	if err != nil {
		return nil, requestText{}, err
	}
	ring := s.keyring()
	defer ring.Close()
	key, err := ring.key(ctx, cur.AccountID)
	if err != nil {
		return nil, requestText{}, err
	}
	var txt requestText
	r, err := s.cfg.Store.UpdatePrivacyRequest(ctx, id, func(r *store.PrivacyRequest) error {
		if r.AccountID != cur.AccountID {
			return errs.E(errs.Conflict, "request %s changed account; try again", id)
		}
		t, err := openText(key, r)
		if err != nil {
			return err
		}
		if len(r.Sealed) == 0 && key != nil {
			// Written before texts were sealed: its outcome may quote
			// staff, which moves into the sealed text.
			r.Outcome, t.Note = legacyOutcome(r.Type, r.Status, r.Outcome)
		}
		if err := fn(r, &t); err != nil {
			return err
		}
		if key == nil && r.AccountID == "" && outside(r) {
			// From outside the app and without an account: there is no
			// key to seal under, and no account it would identify.
			r.Details, r.ExtendedReason, r.DeniedReason = t.Details, t.ExtendedReason, t.DeniedReason
			if t.Note != "" {
				r.Outcome = t.Note
			}
			txt = t
			return nil
		}
		if key == nil {
			txt = requestText{}
			return nil
		}
		if r.Sealed, err = t.seal(key, r.ID); err != nil {
			return err
		}
		r.Details, r.ExtendedReason, r.DeniedReason = "", "", ""
		txt = t
		return nil
	})
	if err != nil {
		return nil, requestText{}, err
	}
	return r, txt, nil
}

// legacyOutcome splits the outcome of a request written before texts were
// sealed into the part that stays in plaintext, worded by the service,
// and a staff note. A denial's outcome quoted its reason, which is kept
// (sealed) on its own; a rectification completed with a note had the note
// as its outcome. Every other outcome is the service's wording.
func legacyOutcome(typ, status, outcome string) (plain, note string) {
	switch {
	case status == store.RequestDenied:
		return deniedOutcome, ""
	case typ == store.RequestRectification && status == store.RequestCompleted &&
		outcome != rectificationVerified && outcome != rectificationVerifiedBefore && !isCorrectedOutcome(outcome):
		return "", outcome
	}
	return outcome, ""
}

// SealPlaintext seals the texts of privacy requests written before texts
// were sealed, and empties those of erased accounts but an erasure's
// outcome (see acctkey.Keys.SealPlainTexts, which returns the counts).
func (s *Service) SealPlaintext(ctx context.Context) (done, skipped int, err error) {
	return s.cfg.Keys.SealPlainTexts(ctx, s.cfg.Store, store.PlainRequests, acctkey.RequestText,
		func(p store.PlainText) (string, map[string]string, error) {
			typ, status, outcome := p.Meta["type"], p.Meta["status"], p.Fields["outcome"]
			if p.AccountID == "" {
				if typ == store.RequestErasure {
					return "", map[string]string{"outcome": outcome}, nil
				}
				return "", nil, nil
			}
			plain, note := legacyOutcome(typ, status, outcome)
			b, err := json.Marshal(requestText{Details: p.Fields["details"], ExtendedReason: p.Fields["extended_reason"],
				DeniedReason: p.Fields["denied_reason"], Note: note})
			return string(b), map[string]string{"outcome": plain}, err
		})
}
