package store

import (
	"context"
	"time"
)

// OutboundJob is one job of the durable outbound queue (package outbound):
// a message to send or a piece of deferred account work. Sealed holds the
// whole job, recipients and contents included, sealed by the vault; the
// store sees nothing else of it.
type OutboundJob struct {
	ID     string
	Sealed []byte
	// Attempts counts the claims of the job so far, the current one
	// included.
	Attempts  int
	DueAt     time.Time // when it may next be claimed
	CreatedAt time.Time
}

// OutboundStore keeps the outbound queue. It is part of Store.
type OutboundStore interface {
	// EnqueueOutbound inserts j. An empty ID or Sealed is Invalid, a
	// taken ID Conflict.
	EnqueueOutbound(ctx context.Context, j *OutboundJob) error
	// ClaimOutbound picks up to limit jobs due at or before now (those due
	// first, and then those of the lowest IDs) and returns them in ID
	// order, so that IDs that sort by queueing time keep the queue's
	// order; in the same transaction it moves each one's DueAt
	// to now+lease and counts an attempt: until the lease ends no other
	// caller claims them. A job neither deleted nor rescheduled by then is
	// claimed again, so a job whose worker died is retried. Concurrent
	// callers never claim the same job.
	ClaimOutbound(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboundJob, error)
	// RescheduleOutbound sets the DueAt of job id (a retry after a
	// failure); an absent job is NotFound.
	RescheduleOutbound(ctx context.Context, id string, due time.Time) error
	// DeleteOutbound deletes job id, done or abandoned. Deleting an absent
	// job is not an error.
	DeleteOutbound(ctx context.Context, id string) error
	// CountOutbound returns how many jobs the queue holds, due or not.
	CountOutbound(ctx context.Context) (int, error)
	// OutboundSealed returns up to limit jobs with ID after after, in ID
	// order, with their ID and Sealed only, due or not and leased or not
	// (a KEK rotation re-seals them).
	OutboundSealed(ctx context.Context, after string, limit int) ([]OutboundJob, error)
	// ResealOutbound replaces job id's Sealed with sealed if it is still
	// old, and reports whether it did; an absent job or one sealed
	// differently meanwhile is left as it is (false). An empty old or
	// sealed is Invalid.
	ResealOutbound(ctx context.Context, id string, old, sealed []byte) (bool, error)
}
