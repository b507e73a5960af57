// Package acctkey seals an account's free text under the account's own
// data key: device names, per-account inbox messages and the texts of
// privacy requests (the user's details, the staff's reasons and notes).
// It is the same key that seals the account's email and mobile (package
// vault), so an erasure, which destroys that key, makes all of it
// unreadable at once: in the live database, in its write-ahead log and
// free pages, and in every backup.
//
// Each sealed value is bound, as AES-GCM additional data, to its account,
// its kind (Field) and the record it belongs to, so a ciphertext cannot be
// moved to another account, column or row.
//
// The store never sees the plaintext; callers seal before writing and
// open after reading. Keys is safe for concurrent use; a Key is safe for
// concurrent use until Close.
package acctkey

import (
	"context"
	"errors"
	"fmt"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/vault"
)

// Field names a kind of sealed value. It is part of every value's
// additional data, so values of one field never open as another.
type Field string

// The sealed fields.
const (
	DeviceName   Field = "device.name"     // a device's name
	InboxMessage Field = "inbox.message"   // a per-account inbox message (subject and body)
	RequestText  Field = "privacy.request" // a privacy request's free text
	// RecipientNote is the staff's note on telling a processor of a
	// request (record: request ID, "/", processor).
	RecipientNote Field = "privacy.recipient-note"
)

// Accounts reads account records (a store.Store).
type Accounts interface {
	Account(ctx context.Context, id string) (*store.Account, error)
}

// Keys opens accounts' data keys from their wrapped form in the store.
type Keys struct {
	vault    *vault.Vault
	accounts Accounts
}

// New returns Keys that unwrap with v the keys of accounts read from a.
func New(v *vault.Vault, a Accounts) *Keys { return &Keys{vault: v, accounts: a} }

// ErasedMessage is what Open's Gone error says.
const ErasedMessage = "the account's data key was destroyed by its erasure"

// Open returns the data key of account accountID; the caller must Close
// it. An account whose key an erasure destroyed is Gone; an unknown
// account NotFound.
func (k *Keys) Open(ctx context.Context, accountID string) (*Key, error) {
	a, err := k.accounts.Account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	return k.OpenAccount(a)
}

// OpenAccount is Open for an account record the caller already read.
func (k *Keys) OpenAccount(a *store.Account) (*Key, error) {
	if len(a.WrappedKey) == 0 {
		return nil, errs.E(errs.Gone, ErasedMessage)
	}
	dk, err := k.vault.Unwrap(a.ID, a.WrappedKey)
	if err != nil {
		return nil, fmt.Errorf("unwrap the data key of %s: %w", a.ID, err)
	}
	return &Key{account: a.ID, dk: dk}, nil
}

// Key is one account's open data key.
type Key struct {
	account string
	dk      *vault.DataKey
}

// aad binds a value to its account, field and record.
func (k *Key) aad(f Field, record string) []byte {
	return []byte(k.account + "|" + string(f) + "|" + record)
}

// Seal seals text as field f of record record (its ID). The result is
// len(text)+vault.Overhead bytes.
func (k *Key) Seal(f Field, record, text string) ([]byte, error) {
	if record == "" {
		return nil, errors.New("acctkey: seal: empty record ID")
	}
	return k.dk.Seal([]byte(text), k.aad(f, record))
}

// Open opens a value Seal sealed as field f of record. A value of another
// account, field or record, or one altered, fails with vault.ErrDecrypt.
func (k *Key) Open(f Field, record string, sealed []byte) (string, error) {
	b, err := k.dk.Open(sealed, k.aad(f, record))
	if err != nil {
		return "", fmt.Errorf("open %s of %s: %w", f, record, err)
	}
	return string(b), nil
}

// Index returns a keyed index of text as field f: HMAC-SHA256 of text
// under a key derived from the account's data key for f (see
// vault.DataKey.MAC). Equal texts of one account and field have equal
// indexes, so a unique database index over them enforces uniqueness
// without the text; other accounts' indexes of the same text differ, and
// none can be linked to its text without the key, which an erasure
// destroys. A KEK rotation only re-wraps the data key, so indexes need no
// re-deriving. Callers normalise text first (e.g. case-fold it).
func (k *Key) Index(f Field, text string) ([]byte, error) {
	return k.dk.MAC("acctkey/index/"+string(f), []byte(text))
}

// Close destroys the key material.
func (k *Key) Close() { k.dk.Destroy() }

// PlainTexts is the part of the store that holds free text written before
// it was sealed (a store.Store).
type PlainTexts interface {
	PlainTexts(ctx context.Context, kind, after string, limit int) ([]store.PlainText, error)
	SealPlainTexts(ctx context.Context, ss []store.Sealing) (int, error)
}

// sealBatch is how many records SealPlainTexts seals per transaction.
const sealBatch = 200

// Encoder turns a record's plaintext into the text to seal, and the
// plaintext its fields keep (nil: none; see store.Sealing.Plain). For a
// record of an erased account only plain is used.
type Encoder func(p store.PlainText) (text string, plain map[string]string, err error)

// SealPlainTexts seals, in batches of one transaction each, every record
// of kind (store.PlainDevices, PlainInbox or PlainRequests) that still
// holds free text in plaintext: encode gives the text to seal as field f
// under its account's key; an erased account's record (no account) only
// has its plaintext changed. It returns how many records it changed, and
// how many it skipped because their account's key could not be opened or
// encode failed (they stay as they are). It is resumable: run again, it
// goes on where it stopped; and it is safe to run concurrently with
// itself and with writers, whose changes win.
func (k *Keys) SealPlainTexts(ctx context.Context, st PlainTexts, kind string, f Field, encode Encoder) (done, skipped int, err error) {
	after := ""
	for {
		ps, err := st.PlainTexts(ctx, kind, after, sealBatch)
		if err != nil {
			return done, skipped, err
		}
		if len(ps) == 0 {
			return done, skipped, nil
		}
		after = ps[len(ps)-1].ID
		ss, bad := k.sealAll(ctx, ps, f, encode)
		skipped += bad
		n, err := st.SealPlainTexts(ctx, ss)
		done += n
		if err != nil {
			return done, skipped, err
		}
	}
}

// sealAll seals ps, opening each account's key once; it returns the
// sealings and how many records it could not seal.
func (k *Keys) sealAll(ctx context.Context, ps []store.PlainText, f Field, encode Encoder) ([]store.Sealing, int) {
	keys := map[string]*Key{}
	defer func() {
		for _, key := range keys {
			if key != nil {
				key.Close()
			}
		}
	}()
	var out []store.Sealing
	bad := 0
	for _, p := range ps {
		text, plain, err := encode(p)
		if err != nil {
			bad++
			continue
		}
		if p.AccountID == "" {
			out = append(out, store.Sealing{PlainText: p, Plain: plain})
			continue
		}
		key, ok := keys[p.AccountID]
		if !ok {
			key, _ = k.Open(ctx, p.AccountID) // nil on error: counted below
			keys[p.AccountID] = key
		}
		if key == nil {
			bad++
			continue
		}
		sealed, err := key.Seal(f, p.ID, text)
		if err != nil {
			bad++
			continue
		}
		out = append(out, store.Sealing{PlainText: p, Sealed: sealed, Plain: plain})
	}
	return out, bad
}

// OpenOr opens sealed as Open does, or returns plain when sealed is
// empty: the plaintext of a record written before its field was sealed.
func (k *Key) OpenOr(f Field, record string, sealed []byte, plain string) (string, error) {
	if len(sealed) == 0 {
		return plain, nil
	}
	return k.Open(f, record, sealed)
}
