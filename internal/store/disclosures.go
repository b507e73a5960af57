package store

import (
	"context"
	"time"
)

// Disclosure is one entry of the disclosure ledger: a request from a public
// authority for users' data, what was decided and exactly what left.
// CategoriesDisclosed holds inventory category IDs; FieldsDisclosed names
// the fields within them. AccountIDs lists the accounts the request was
// about; they are deliberately not foreign keys, since the ledger outlives
// the accounts it names. GagUntil is the end of a gag (non-disclosure)
// order, nil if there was none. GagNotifiedAt is set once every named
// account has been told (see DisclosureStore.ClaimDisclosureNotice).
type Disclosure struct {
	ID                  string
	Reference           string
	Authority           string
	Jurisdiction        string
	LegalBasis          string
	Type                string
	ReceivedAt          time.Time
	ScopeRequested      string
	Decision            string
	CategoriesDisclosed []string
	FieldsDisclosed     []string
	AccountIDs          []string
	GagUntil            *time.Time
	GagNotifiedAt       *time.Time
	RecordedBy          string
	RecordedAt          time.Time
}

// Gagged reports whether a gag order keeps d from the affected users at
// now: GagUntil is set and now is before it.
func (d Disclosure) Gagged(now time.Time) bool {
	return d.GagUntil != nil && now.Before(*d.GagUntil)
}

// DisclosureNotice is one account that is due a notice about a disclosure.
type DisclosureNotice struct {
	Disclosure Disclosure // without AccountIDs: only AccountID is due
	AccountID  string
}

// DisclosureStore keeps the disclosure ledger. It is part of Store.
type DisclosureStore interface {
	// CreateDisclosure inserts d and its account links in one
	// transaction. A second disclosure with the same authority and
	// reference is Conflict.
	CreateDisclosure(ctx context.Context, d *Disclosure) error
	// Disclosure returns the disclosure with id, with its AccountIDs.
	Disclosure(ctx context.Context, id string) (*Disclosure, error)
	// Disclosures returns the disclosures received in [from, to), oldest
	// first, with their AccountIDs. A zero from or to leaves that side
	// open.
	Disclosures(ctx context.Context, from, to time.Time) ([]Disclosure, error)
	// DisclosuresAbout returns the disclosures naming accountID, oldest
	// first. Their AccountIDs hold only accountID, never the other
	// accounts named.
	DisclosuresAbout(ctx context.Context, accountID string) ([]Disclosure, error)
	// DueDisclosureNotices returns up to limit (disclosure, account) pairs
	// whose notice is due at now: the disclosure has no gag or its gag
	// ended at or before now, and the account has not been claimed for a
	// notice. Oldest disclosures first.
	DueDisclosureNotices(ctx context.Context, now time.Time, limit int) ([]DisclosureNotice, error)
	// ClaimDisclosureNotice marks the account's notice about the disclosure
	// as sent at at, unless it already is, and reports whether this call
	// did. When every account of the disclosure is marked, the
	// disclosure's GagNotifiedAt is set too. Exactly one of any number of
	// concurrent callers gets true.
	ClaimDisclosureNotice(ctx context.Context, disclosureID, accountID string, at time.Time) (bool, error)
	// UnclaimDisclosureNotice undoes a claim whose notice could not be
	// posted, so that a later run retries it.
	UnclaimDisclosureNotice(ctx context.Context, disclosureID, accountID string) error
}
