package server

import (
	"context"
	"sync"
	"time"

	"github.com/nitronet/nitronet/internal/jobs"
	"github.com/nitronet/nitronet/internal/metrics"
	"github.com/nitronet/nitronet/internal/ratelimit"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
)

// Control replicas sharing one PostgreSQL database stay in step through
// it (see docs/replicas.md):
//
//   - every transaction that changes the peer feed sends a notification,
//     on which every serving replica listens, to wake its waiting gateway
//     polls at once (sqlstore.Store.ListenPeerFeed);
//   - the housekeeping Jobs run on one replica at a time, the one holding
//     a session-level advisory lock (sqlstore.Store.Lead);
//   - the rate limits' budgets and the per-account slow-downs of failed
//     logins are kept in the database, so that the replicas together
//     allow what one would (sqlstore.Store.SpendBudget and
//     AttemptSlowdown).
//
// On SQLite there is one server process: none of this applies, and the
// housekeeping, the rate limits and the slow-downs stay in process.

// replicaStore is what a store that replicas share offers.
type replicaStore interface {
	Replicated() bool
	ListenPeerFeed(ctx context.Context, wake, ready func()) error
	Lead(ctx context.Context, cfg sqlstore.LeadConfig) error
	ratelimit.Spender
	ExpireBudgets(ctx context.Context, now time.Time) (int64, error)
	ratelimit.SlowdownKeeper
	ExpireSlowdowns(ctx context.Context, now time.Time) (int64, error)
}

// housekeepingLock is the key of the advisory lock whose holder runs the
// housekeeping: the bytes of "nitronet" as a big-endian integer.
const housekeepingLock int64 = 0x6e6974726f6e6574

// replicatedRecheck is how often a waiting gateway poll re-checks the store
// when notifications wake it: only a safety net.
const replicatedRecheck = 30 * time.Second

// replicas returns the store as a replicaStore if replicas may share it.
func (s *Server) replicas() (replicaStore, bool) {
	r, ok := s.Store.(replicaStore)
	return r, ok && r.Replicated()
}

// HousekeepingRole is a serving replica's part in the housekeeping.
type HousekeepingRole int32

const (
	// RoleUnknown: not serving, or not yet known.
	RoleUnknown HousekeepingRole = iota
	// RoleStandby: another replica runs the housekeeping; this one
	// takes over if that one stops.
	RoleStandby
	// RoleLeader: this replica runs the housekeeping (always so on
	// SQLite, while serving).
	RoleLeader
)

// Housekeeping reports the server's part in the housekeeping now.
func (s *Server) Housekeeping() HousekeepingRole { return HousekeepingRole(s.role.Load()) }

// background starts what a serving server runs beside its HTTP server: the
// housekeeping Jobs, the first time at once (which finishes erasures a
// crash interrupted), on this replica or another one (see replicas), and
// on PostgreSQL the listener that wakes gateway polls for changes made
// elsewhere. stop ends them and waits until they have.
func (s *Server) background(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	housekeeping := jobs.New(s.deps.Logger, jobs.RealTicker, s.Jobs()...)
	run := func(ctx context.Context) {
		s.role.Store(int32(RoleLeader))
		housekeeping.Run(ctx)
	}
	rs, replicated := s.replicas()
	switch {
	case replicated:
		wg.Go(func() {
			if err := rs.ListenPeerFeed(ctx, s.Feed.Notify, nil); err != nil {
				s.deps.Logger.Error("peer feed notifications", "err", err)
			}
		})
		wg.Go(func() {
			err := rs.Lead(ctx, sqlstore.LeadConfig{Lock: housekeepingLock, Run: func(ctx context.Context) {
				s.deps.Logger.Info("this replica runs the housekeeping")
				run(ctx)
				s.role.Store(int32(RoleStandby))
			}, Standby: func() { s.role.CompareAndSwap(int32(RoleUnknown), int32(RoleStandby)) }})
			if err != nil {
				s.deps.Logger.Error("housekeeping leadership", "err", err)
			}
		})
	default:
		wg.Go(func() { run(ctx) })
	}
	return func() {
		cancel()
		wg.Wait()
		s.role.Store(int32(RoleUnknown))
	}
}

// replicaJobs returns the housekeeping only replicas need: the expiry of
// the shared rate-limit budgets that are full again, and of the shared
// slow-downs whose count is forgotten.
func (s *Server) replicaJobs() []jobs.Job {
	rs, ok := s.replicas()
	if !ok {
		return nil
	}
	return []jobs.Job{{Name: "expire rate budgets", Every: time.Minute, Run: func(ctx context.Context) (int64, error) {
		return rs.ExpireBudgets(ctx, s.deps.Clock())
	}}, {Name: "expire login slow-downs", Every: time.Minute, Run: func(ctx context.Context) (int64, error) {
		return rs.ExpireSlowdowns(ctx, s.deps.Clock())
	}}}
}

// replicaGauges registers the metrics of a replica's coordination: whether
// it runs the housekeeping, and how many gateway polls wait on it.
func (s *Server) replicaGauges() {
	s.Metrics.Gauge("nitronet_housekeeping_leader", "1 while this replica runs the housekeeping, 0 while another does; absent before it knows.", func() []metrics.Sample {
		switch s.Housekeeping() {
		case RoleLeader:
			return []metrics.Sample{{Value: 1}}
		case RoleStandby:
			return []metrics.Sample{{Value: 0}}
		}
		return nil
	})
	s.Metrics.Gauge("nitronet_gateway_polls_waiting", "Gateway polls waiting for a peer change on this replica.", func() []metrics.Sample {
		return []metrics.Sample{{Value: float64(s.Feed.Waiting())}}
	})
}
