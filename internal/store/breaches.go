package store

import (
	"context"
	"time"
)

// Breach statuses.
const (
	BreachOpen   = "open"
	BreachClosed = "closed"
)

// Breach is an entry of the breach register (GDPR Art. 33(5)): the facts
// of a personal data breach, its effects and the remedial action taken.
// It holds no account IDs: People and Records are approximate numbers
// (nil while unknown). Categories are inventory category IDs. Risk is the
// assessed risk to people ("" while not assessed). AuthorityNotifiedAt and
// AuthorityReference record the notification of the supervisory
// authority. RecordedBy is a staff ID.
type Breach struct {
	ID                  string
	DetectedAt          time.Time
	Nature              string
	Categories          []string
	People              *int64
	Records             *int64
	Consequences        string
	MeasuresTaken       string
	MeasuresProposed    string
	Risk                string
	Status              string
	AuthorityNotifiedAt *time.Time
	AuthorityReference  string
	RecordedBy          string
	RecordedAt          time.Time
	UpdatedAt           time.Time
	ClosedAt            *time.Time
}

// BreachStore keeps the breach register. It is part of Store.
type BreachStore interface {
	// CreateBreach inserts b; a taken id is Conflict.
	CreateBreach(ctx context.Context, b *Breach) error
	// Breach returns the breach with id.
	Breach(ctx context.Context, id string) (*Breach, error)
	// Breaches returns the register, most recently detected first.
	Breaches(ctx context.Context) ([]Breach, error)
	// UpdateBreach reads breach id, applies fn and writes the result
	// back, in one transaction holding the row. An error from fn aborts
	// without change and is returned. The id, RecordedBy and RecordedAt
	// cannot be changed. It returns the updated breach.
	UpdateBreach(ctx context.Context, id string, fn func(*Breach) error) (*Breach, error)
	// CountUnnotifiedBreaches counts open breaches detected before
	// detectedBefore whose authority was not notified and whose risk is
	// not unlikely (riskUnlikely names that assessment).
	CountUnnotifiedBreaches(ctx context.Context, detectedBefore time.Time, riskUnlikely string) (int, error)
}
