package store

import (
	"context"
	"time"
)

// Hold is a legal hold on an account's data. While a hold is active (not
// released, and Until nil or in the future) neither the retention sweeper
// nor erasure may delete the account's data. AccountID is deliberately not
// a foreign key: a hold can outlive the account row's other data.
type Hold struct {
	ID         string
	AccountID  string
	Reason     string
	CreatedBy  string
	CreatedAt  time.Time
	Until      *time.Time
	ReleasedAt *time.Time
	ReleasedBy string
}

// Active reports whether h is in force at now.
func (h Hold) Active(now time.Time) bool {
	return h.ReleasedAt == nil && (h.Until == nil || now.Before(*h.Until))
}

// Flags are an account's processing restriction and objection (GDPR Art.
// 18 and 21). Either excludes the account from statistics and from every
// processing the inventory marks objectable.
type Flags struct {
	Restricted bool
	Objected   bool
}

// HoldStore keeps legal holds and processing flags. It is part of Store.
type HoldStore interface {
	// CreateHold inserts h. The account must exist (NotFound otherwise).
	CreateHold(ctx context.Context, h *Hold) error
	// Holds lists holds, newest first: of one account if accountID is not
	// empty, and only those active at now if activeOnly.
	Holds(ctx context.Context, accountID string, activeOnly bool, now time.Time) ([]Hold, error)
	// ReleaseHold marks a hold released and returns the account it held;
	// releasing twice is Conflict, an unknown hold NotFound.
	ReleaseHold(ctx context.Context, id, by string, at time.Time) (accountID string, err error)
	// HeldAccounts returns the ids of accounts with a hold active at now.
	HeldAccounts(ctx context.Context, now time.Time) (map[string]bool, error)
	// SetFlags sets the account's processing flags.
	SetFlags(ctx context.Context, accountID string, f Flags) error
	// AccountFlags returns the account's processing flags.
	AccountFlags(ctx context.Context, accountID string) (Flags, error)
}
