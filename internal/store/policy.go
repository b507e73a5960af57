package store

import (
	"context"
	"time"
)

// Policy document kinds.
const (
	PolicyPrivacy = "privacy"
	PolicyTerms   = "terms"
)

// PolicyDocument is one published version of the privacy policy or the
// terms. Material versions must be accepted by every user.
type PolicyDocument struct {
	ID          string
	Kind        string // PolicyPrivacy or PolicyTerms
	Version     int    // 1, 2, ... per kind
	Material    bool
	Body        string
	PublishedAt time.Time
	PublishedBy string // a staff id, "operator" or "system"
}

// Acceptance records that an account accepted a policy document.
type Acceptance struct {
	AccountID  string
	DocumentID string
	Kind       string
	Version    int
	AcceptedAt time.Time
}

// PolicyStore keeps policy documents and acceptances. It is part of Store.
type PolicyStore interface {
	// PublishPolicy inserts d with the next version of its kind (set in d)
	// and, if run is not nil, creates the notice run in the same
	// transaction.
	PublishPolicy(ctx context.Context, d *PolicyDocument, run *NoticeRun) error
	// PolicyDocument returns the document with id.
	PolicyDocument(ctx context.Context, id string) (*PolicyDocument, error)
	// PolicyDocuments returns every version of kind ("" for all kinds),
	// newest first.
	PolicyDocuments(ctx context.Context, kind string) ([]PolicyDocument, error)
	// AcceptPolicy records that the account accepted the document at at.
	// Accepting again keeps the first acceptance. An unknown account or
	// document is NotFound.
	AcceptPolicy(ctx context.Context, accountID, documentID string, at time.Time) error
	// Acceptances returns the account's acceptances, newest first.
	Acceptances(ctx context.Context, accountID string) ([]Acceptance, error)
}
