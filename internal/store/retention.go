package store

import (
	"context"
	"time"
)

// Sweep targets: the deletions the retention sweeper may make, each over
// one table. Their rules are fixed in the store (an allowlist); the
// sweeper only chooses the cutoff.
const (
	// SweepTokens deletes login tokens that expired before the cutoff.
	SweepTokens = "tokens"
	// SweepResetTokens deletes reset tokens that expired before the cutoff.
	SweepResetTokens = "reset_tokens"
	// SweepCodes deletes codes used, or expired unused, before the cutoff.
	SweepCodes = "codes"
	// SweepPeerChanges deletes peer-feed entries written before the cutoff.
	SweepPeerChanges = "peer_changes"
	// SweepSessions deletes session intervals that ended before the cutoff.
	SweepSessions = "usage_sessions"
	// SweepInbox deletes the inbox messages of accounts closed before the
	// cutoff.
	SweepInbox = "inbox"
	// SweepClosedDevices deletes the devices of accounts closed before the
	// cutoff (freeing their addresses and telling gateways).
	SweepClosedDevices = "devices"
	// SweepClosedAccounts deletes the rows of accounts closed before the
	// cutoff that have no devices left; rows that reference them cascade,
	// except policy acceptances, which keep the closing time and follow
	// their own rule (SweepAcceptances).
	SweepClosedAccounts = "accounts"
	// SweepUnverified deletes active accounts created before the cutoff
	// whose email and mobile were both never verified, with everything
	// that references them (their acceptances too).
	SweepUnverified = "unverified_accounts"
	// SweepAcceptances deletes the policy acceptances of accounts closed
	// before the cutoff (kept after closure as evidence of the terms that
	// applied), whether or not the account's row is still there.
	SweepAcceptances = "policy_acceptances"
	// SweepRequests deletes privacy requests completed before the cutoff.
	SweepRequests = "privacy_requests"
	// SweepAudit deletes the oldest audit entries written before the
	// cutoff, as a prefix of the chain.
	SweepAudit = "audit_log"
	// SweepExportTokens deletes export download tokens that expired
	// before the cutoff.
	SweepExportTokens = "export_tokens"
	// SweepStaffTokens deletes staff login tokens that expired before the
	// cutoff (staff accounts have no legal holds).
	SweepStaffTokens = "staff_tokens"
	// SweepPendingContacts deletes pending contact changes that expired
	// before the cutoff.
	SweepPendingContacts = "pending_contact_changes"
	// SweepBreaches deletes breach records closed before the cutoff (the
	// register names no account, so no hold applies).
	SweepBreaches = "breaches"
	// SweepStatsLedger deletes statistics budget ledger entries written
	// before the cutoff (the ledger names no account: no hold applies).
	SweepStatsLedger = "stats_ledger"
	// SweepOutbound deletes outbound-queue jobs queued before the cutoff
	// (undeliverable ones; the worker deletes the rest as it goes).
	SweepOutbound = "outbound_queue"
)

// RetentionRun is the record of one sweep: counts, never contents.
type RetentionRun struct {
	ID         string
	Cause      string // "schedule" or "manual"
	StartedAt  time.Time
	FinishedAt time.Time
	Counts     []SweepCount
}

// SweepCount is what one sweep did for one category.
type SweepCount struct {
	Category   string `json:"category"` // inventory category id
	Target     string `json:"target"`   // Sweep* target
	Days       int    `json:"days"`
	Deleted    int64  `json:"deleted"`
	KeptByHold int64  `json:"kept_by_hold"`
	Batches    int    `json:"batches"`
	Skipped    string `json:"skipped,omitempty"` // why the target was not swept
	Error      string `json:"error,omitempty"`
	// Closed counts the open session intervals closed before the
	// sessions were swept (CloseStaleSessions).
	Closed int64 `json:"closed,omitempty"`
}

// RetentionStore carries out retention deletions. It is part of Store.
type RetentionStore interface {
	// SweepBatch deletes, in one transaction, up to limit records of
	// target whose retention ended before cutoff, except those of accounts
	// with a legal hold active at now. It returns how many it deleted;
	// fewer than limit means none are left. A target whose table (or
	// column) is not in this database is Precondition; an unknown target
	// is Invalid.
	SweepBatch(ctx context.Context, target string, cutoff, now time.Time, limit int) (int64, error)
	// SweepHeld counts the records of target that are due but kept by a
	// hold active at now.
	SweepHeld(ctx context.Context, target string, cutoff, now time.Time) (int64, error)
	// SaveRetentionRun stores r and deletes all but the newest 100 runs.
	SaveRetentionRun(ctx context.Context, r *RetentionRun) error
	// LastRetentionRun returns the newest run, NotFound if none.
	LastRetentionRun(ctx context.Context) (*RetentionRun, error)
	// CloseStaleSessions closes, in one transaction, up to limit open
	// session intervals that will not be closed by their gateway: those
	// whose gateway was last seen before deadBefore (or never, or was
	// removed), and those that started before openBefore, which no gateway
	// reports as open any more (see gwproto.MaxSession). Each ends at the
	// minute its gateway was last seen, at most maxLen after its start;
	// one whose gateway was never seen or is unknown ends at its start.
	// It returns how many it closed.
	CloseStaleSessions(ctx context.Context, deadBefore, openBefore time.Time, maxLen time.Duration, limit int) (int64, error)
}
