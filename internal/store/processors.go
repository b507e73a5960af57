package store

import (
	"context"
	"time"
)

// Processor is an entry of the processor register: a third party that
// processes personal data on the operator's behalf, and the inventory
// categories (IDs) it may receive. The table holds no personal data.
type Processor struct {
	ID         string
	Name       string // unique, compared case-insensitively
	Purpose    string
	Categories []string
	CreatedAt  time.Time
}

// ProcessorTransfer says that a processor (by register name) was handed
// data of one inventory category of an account, first and last when. It
// never holds the content.
type ProcessorTransfer struct {
	AccountID string
	Processor string
	Category  string
	FirstAt   time.Time
	LastAt    time.Time
}

// ProcessorStore keeps the processor register. It is part of Store.
type ProcessorStore interface {
	// CreateProcessor inserts p; a name already registered (in any case)
	// is Conflict.
	CreateProcessor(ctx context.Context, p *Processor) error
	// Processors lists the register by name.
	Processors(ctx context.Context) ([]Processor, error)
	// ProcessorByName returns the processor named name, compared
	// case-insensitively.
	ProcessorByName(ctx context.Context, name string) (*Processor, error)
	// DeleteProcessor removes the processor with id or, failing that, the
	// one named idOrName, and returns what it removed.
	DeleteProcessor(ctx context.Context, idOrName string) (*Processor, error)

	// RecordTransfer records that processor was handed categories of
	// account accountID's data at at, in one transaction: a new
	// (processor, category) pair starts at at, a known one moves its
	// LastAt. NotFound for an unknown account.
	RecordTransfer(ctx context.Context, accountID, processor string, categories []string, at time.Time) error
	// ProcessorTransfers returns the account's transfers, by processor
	// name and category.
	ProcessorTransfers(ctx context.Context, accountID string) ([]ProcessorTransfer, error)
}

// DailyUsage is the use one privacy unit (an account) made of one region on
// one UTC day: the number of sessions that started that day and their
// total duration. Unit is a number standing for the account, meaningful
// only within one result: it lets a caller bound each account's
// contribution without learning who it is.
type DailyUsage struct {
	Unit     int
	Day      time.Time // 00:00 UTC
	Region   string
	Sessions int64
	Seconds  int64
}

// StatsStore reads aggregates for statistical reports and keeps the
// ledger of the privacy budget they spend. It is part of Store.
type StatsStore interface {
	// DailyUsage returns per-account, per-day, per-region totals of the
	// closed sessions that started in [from, to), ordered by unit, day and
	// region. Sessions of accounts that are not active, of accounts with
	// any flag that exclude sets (processing.Excluding decides which), and
	// anonymised sessions, are left out.
	DailyUsage(ctx context.Context, from, to time.Time, exclude Flags) ([]DailyUsage, error)
	// SpendStatsBudget adds e to the ledger if the entries of e.Quarter
	// and e together spend at most budgetMicro (epsilon in millionths);
	// otherwise it adds nothing and returns Precondition with field
	// "epsilon". Concurrent calls are serialised, so two reports can
	// never together overspend a quarter.
	SpendStatsBudget(ctx context.Context, e *StatsSpend, budgetMicro int64) error
	// StatsLedger returns the entries of quarter, oldest first.
	StatsLedger(ctx context.Context, quarter string) ([]StatsSpend, error)
}

// StatsSpend is one entry of the statistics budget ledger: a released
// report. It names no account.
type StatsSpend struct {
	ID        string
	Quarter   string // calendar quarter, "2026-Q1"
	Report    string // what was released, e.g. "usage 2026-01-01..2026-01-31"
	StaffID   string
	StaffRole string
	// MicroEpsilon is the report's epsilon in millionths, rounded up.
	MicroEpsilon int64
	MinGroup     int
	// Override is the privacy officer's reason for a report beyond the
	// per-report limits, or "".
	Override string
	SpentAt  time.Time
}
