package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// heldBy returns an SQL condition true when the account in column col has
// a legal hold active at $2.
//
// The subquery is not correlated, so the engine evaluates it once per
// statement rather than once per row (this keeps a sweep above 100,000
// rows/s on SQLite). A NULL account (anonymised rows) is never held.
func heldBy(col string) string {
	return `(` + col + ` IS NOT NULL AND ` + col + ` IN (SELECT h.account_id FROM legal_holds h
		WHERE h.released_at IS NULL AND (h.until IS NULL OR h.until > $2)))`
}

// sweepTarget is one allowlisted retention deletion. Statements take $1 =
// cutoff and $2 = now (unix seconds); del also takes $3 = limit.
type sweepTarget struct {
	table    string
	requires [][2]string // (table, column) pairs that must exist
	del      string      // deletes up to $3 due, unheld rows
	held     string      // counts due rows kept by a hold
	perRow   bool        // del only selects (key pairs); rows are deleted one by one
}

// keyed builds a target that deletes rows of table by key column where due
// (a condition on alias t) holds and the account in t.<account> has no
// active hold.
func keyed(table, key, account, due string, requires ...[2]string) sweepTarget {
	notHeld := "NOT " + heldBy("t."+account)
	return sweepTarget{
		table:    table,
		requires: requires,
		del: `DELETE FROM ` + table + ` WHERE ` + key + ` IN (SELECT t.` + key + ` FROM ` + table + ` t
			WHERE (` + due + `) AND ` + notHeld + ` LIMIT $3)`,
		held: `SELECT count(*) FROM ` + table + ` t WHERE (` + due + `) AND ` + heldBy("t."+account),
	}
}

// closedBefore is the condition "account <col> was closed before $1".
func closedBefore(col string) string {
	return col + ` IN (SELECT c.id FROM accounts c WHERE c.status = 'closed' AND c.closed_at < $1)`
}

// sweepTargets is the allowlist of retention deletions, by store.Sweep*.
func sweepTargets() map[string]sweepTarget {
	peerHeld := `EXISTS (SELECT 1 FROM devices d JOIN legal_holds h ON h.account_id = d.account_id
		WHERE d.id = t.device_id AND h.released_at IS NULL AND (h.until IS NULL OR h.until > $2))`
	auditDue := `t.at < $1 AND t.seq < COALESCE((SELECT min(a.seq) FROM audit_log a
		WHERE a.at >= $1 OR ` + heldBy("a.subject") + `), 9223372036854775807)`
	return map[string]sweepTarget{
		store.SweepTokens:      keyed("tokens", "hash", "account_id", "t.expires_at < $1"),
		store.SweepResetTokens: keyed("reset_tokens", "hash", "account_id", "t.expires_at < $1"),
		store.SweepCodes: keyed("codes", "id", "account_id",
			"(t.used_at IS NOT NULL AND t.used_at < $1) OR (t.used_at IS NULL AND t.expires_at < $1)"),
		store.SweepPeerChanges: {
			table: "peer_changes",
			del: `DELETE FROM peer_changes WHERE version IN (SELECT t.version FROM peer_changes t
				WHERE t.created_at < $1 AND NOT ` + peerHeld + ` LIMIT $3)`,
			held: `SELECT count(*) FROM peer_changes t WHERE t.created_at < $1 AND ` + peerHeld,
		},
		// started_at < $1 lets the started_at index find the candidates.
		store.SweepSessions: keyed("usage_sessions", "id", "account_id",
			"t.started_at < $1 AND t.ended_at IS NOT NULL AND t.ended_at < $1"),
		store.SweepInbox: keyed("inbox", "id", "account_id", closedBefore("t.account_id")),
		store.SweepClosedDevices: {
			table:  "devices",
			perRow: true,
			del: `SELECT t.account_id, t.id FROM devices t WHERE ` + closedBefore("t.account_id") +
				` AND NOT ` + heldBy("t.account_id") + ` ORDER BY t.seq LIMIT $3`,
			held: `SELECT count(*) FROM devices t WHERE ` + closedBefore("t.account_id") + ` AND ` + heldBy("t.account_id"),
		},
		store.SweepClosedAccounts: keyed("accounts", "id", "id",
			"t.status = 'closed' AND t.closed_at < $1 AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.account_id = t.id)"),
		// The created_at condition lets accounts_unverified find them.
		store.SweepUnverified: keyed("accounts", "id", "id",
			"t.status = 'active' AND NOT t.email_verified AND NOT t.mobile_verified AND t.created_at < $1"+
				" AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.account_id = t.id)"),
		// Acceptances carry their account's closing time: they outlive
		// its row. Bounded by accounts per batch.
		store.SweepAcceptances: {
			table:    "policy_acceptances",
			requires: [][2]string{{"policy_acceptances", "closed_at"}},
			del: `DELETE FROM policy_acceptances WHERE account_id IN (SELECT DISTINCT t.account_id FROM policy_acceptances t
				WHERE t.closed_at IS NOT NULL AND t.closed_at < $1 AND NOT ` + heldBy("t.account_id") + ` LIMIT $3)`,
			held: `SELECT count(*) FROM policy_acceptances t WHERE t.closed_at IS NOT NULL AND t.closed_at < $1 AND ` + heldBy("t.account_id"),
		},
		store.SweepRequests: keyed("privacy_requests", "id", "account_id",
			"t.completed_at IS NOT NULL AND t.completed_at < $1",
			[2]string{"privacy_requests", "completed_at"}, [2]string{"privacy_requests", "account_id"}),
		store.SweepExportTokens: keyed("export_tokens", "hash", "account_id", "t.expires_at < $1",
			[2]string{"export_tokens", "expires_at"}),
		// Few rows and a composite key: one unbounded statement ($3 unused
		// but bound, as every del takes it).
		store.SweepPendingContacts: {
			table:    "pending_contact_changes",
			requires: [][2]string{{"pending_contact_changes", "expires_at"}},
			del: `DELETE FROM pending_contact_changes WHERE expires_at < $1 AND CAST($3 AS BIGINT) > 0
				AND NOT ` + heldBy("pending_contact_changes.account_id"),
			held: `SELECT count(*) FROM pending_contact_changes t WHERE t.expires_at < $1 AND ` + heldBy("t.account_id"),
		},
		// Staff accounts are not subject to legal holds.
		store.SweepStaffTokens: {
			table: "staff_tokens",
			del: `DELETE FROM staff_tokens WHERE hash IN (SELECT t.hash FROM staff_tokens t
				WHERE t.expires_at < $1 AND CAST($2 AS BIGINT) > 0 LIMIT $3)`,
			held: `SELECT count(*) FROM staff_tokens WHERE 1 = 0 AND CAST($1 AS BIGINT) < CAST($2 AS BIGINT)`,
		},
		// The register names no account: no hold applies.
		store.SweepBreaches: {
			table: "breaches",
			del: `DELETE FROM breaches WHERE id IN (SELECT t.id FROM breaches t
				WHERE t.closed_at IS NOT NULL AND t.closed_at < $1 AND CAST($2 AS BIGINT) > 0 LIMIT $3)`,
			held: `SELECT count(*) FROM breaches WHERE 1 = 0 AND CAST($1 AS BIGINT) < CAST($2 AS BIGINT)`,
		},
		store.SweepStatsLedger: {
			table: "stats_ledger",
			del: `DELETE FROM stats_ledger WHERE id IN (SELECT t.id FROM stats_ledger t
				WHERE t.spent_at < $1 AND CAST($2 AS BIGINT) > 0 LIMIT $3)`,
			held: `SELECT count(*) FROM stats_ledger WHERE 1 = 0 AND CAST($1 AS BIGINT) < CAST($2 AS BIGINT)`,
		},
		// Queued messages belong to no account row, so no hold applies.
		store.SweepOutbound: {
			table: "outbound_queue",
			del: `DELETE FROM outbound_queue WHERE id IN (SELECT t.id FROM outbound_queue t
				WHERE t.created_at < $1 AND CAST($2 AS BIGINT) > 0 LIMIT $3)`,
			held: `SELECT count(*) FROM outbound_queue WHERE 1 = 0 AND CAST($1 AS BIGINT) < CAST($2 AS BIGINT)`,
		},
		store.SweepAudit: {
			table: "audit_log",
			del: `DELETE FROM audit_log WHERE seq IN (SELECT t.seq FROM audit_log t WHERE ` + auditDue +
				` ORDER BY t.seq LIMIT $3)`,
			held: `SELECT count(*) FROM audit_log t WHERE t.at < $1 AND ` + heldBy("t.subject"),
		},
	}
}

// target returns the allowlisted target, Invalid if unknown and
// Precondition if a table or column it needs is absent.
func (s *Store) target(ctx context.Context, tx *sql.Tx, name string) (sweepTarget, error) {
	t, ok := sweepTargets()[name]
	if !ok {
		return t, errs.E(errs.Invalid, "unknown retention target %q", name)
	}
	for _, tc := range t.requires {
		ok, err := s.hasColumn(ctx, tx, tc[0], tc[1])
		if err != nil {
			return t, err
		}
		if !ok {
			return t, errs.E(errs.Precondition, "table %s has no column %s in this database", tc[0], tc[1])
		}
	}
	return t, nil
}

// hasColumn reports whether table has column in the current schema.
func (s *Store) hasColumn(ctx context.Context, tx *sql.Tx, table, column string) (bool, error) {
	q := `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`
	if s.d.name == "sqlite" {
		q = `SELECT count(*) FROM pragma_table_info($1) WHERE name = $2`
	}
	var n int
	if err := tx.QueryRowContext(ctx, q, table, column).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// SweepBatch implements store.RetentionStore. The devices target deletes
// each device as DeleteDevice does (freeing its addresses and appending a
// removal to the peer feed), in its own transaction.
func (s *Store) SweepBatch(ctx context.Context, target string, cutoff, now time.Time, limit int) (int64, error) {
	if limit < 1 {
		return 0, errs.E(errs.Invalid, "limit must be positive")
	}
	var n int64
	var devices [][2]string
	err := s.write(ctx, "sweep "+target, func(tx *sql.Tx) error {
		t, err := s.target(ctx, tx, target)
		if err != nil {
			return err
		}
		if t.perRow {
			rows, err := tx.QueryContext(ctx, t.del, unix(cutoff), unix(now), limit)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var d [2]string
				if err := rows.Scan(&d[0], &d[1]); err != nil {
					return err
				}
				devices = append(devices, d)
			}
			return rows.Err()
		}
		if target == store.SweepAudit {
			n, err = sweepAudit(ctx, tx, t.del, unix(cutoff), unix(now), limit)
			return err
		}
		res, err := tx.ExecContext(ctx, t.del, unix(cutoff), unix(now), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, d := range devices {
		if err := s.DeleteDevice(ctx, d[0], d[1]); err != nil && !errs.Is(err, errs.NotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

// SweepHeld implements store.RetentionStore.
func (s *Store) SweepHeld(ctx context.Context, target string, cutoff, now time.Time) (int64, error) {
	var n int64
	err := s.read(ctx, "sweep held "+target, func(tx *sql.Tx) error {
		t, err := s.target(ctx, tx, target)
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, t.held, unix(cutoff), unix(now)).Scan(&n)
	})
	return n, err
}

// SaveRetentionRun implements store.RetentionStore.
func (s *Store) SaveRetentionRun(ctx context.Context, r *store.RetentionRun) error {
	counts, err := json.Marshal(r.Counts)
	if err != nil {
		return fmt.Errorf("save retention run: %w", err)
	}
	return s.write(ctx, "save retention run", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO retention_runs (id, cause, started_at, finished_at, counts)
			VALUES ($1, $2, $3, $4, $5)`, r.ID, r.Cause, unix(r.StartedAt), unix(r.FinishedAt), string(counts)); err != nil {
			return mapErr(err, "retention run already recorded")
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM retention_runs WHERE id NOT IN
			(SELECT id FROM retention_runs ORDER BY started_at DESC, id DESC LIMIT 100)`)
		return err
	})
}

// LastRetentionRun implements store.RetentionStore.
func (s *Store) LastRetentionRun(ctx context.Context) (*store.RetentionRun, error) {
	var r store.RetentionRun
	err := s.read(ctx, "last retention run", func(tx *sql.Tx) error {
		var started, finished int64
		var counts string
		if err := tx.QueryRowContext(ctx, `SELECT id, cause, started_at, finished_at, counts FROM retention_runs
			ORDER BY started_at DESC, id DESC LIMIT 1`).Scan(&r.ID, &r.Cause, &started, &finished, &counts); err != nil {
			return notFound(err, "no retention sweep has run yet")
		}
		r.StartedAt, r.FinishedAt = fromUnix(started), fromUnix(finished)
		return json.NewDecoder(strings.NewReader(counts)).Decode(&r.Counts)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}
