package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// DailyUsage implements store.StatsStore. Account ids never leave this
// method: each account is replaced by a small number, assigned in order of
// first appearance within this one result.
func (s *Store) DailyUsage(ctx context.Context, from, to time.Time, exclude store.Flags) ([]store.DailyUsage, error) {
	if !from.Before(to) {
		return nil, errs.E(errs.Invalid, "the start of the range must be before its end")
	}
	var out []store.DailyUsage
	err := s.read(ctx, "daily usage", func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT u.account_id, u.started_at / 86400 AS day, u.region,
				COUNT(*), SUM(u.ended_at - u.started_at)
			FROM usage_sessions u JOIN accounts a ON a.id = u.account_id
			WHERE u.started_at >= $1 AND u.started_at < $2 AND u.ended_at IS NOT NULL AND u.ended_at >= u.started_at
				AND a.status = $3`+excludeFlags("a", exclude)+`
			GROUP BY u.account_id, u.started_at / 86400, u.region
			ORDER BY u.account_id, day, u.region`, unix(from), unix(to), store.StatusActive)
		if err != nil {
			return err
		}
		defer rows.Close()
		units := map[string]int{}
		for rows.Next() {
			var account string
			var day int64
			var r store.DailyUsage
			if err := rows.Scan(&account, &day, &r.Region, &r.Sessions, &r.Seconds); err != nil {
				return err
			}
			u, ok := units[account]
			if !ok {
				u = len(units)
				units[account] = u
			}
			r.Unit, r.Day = u, fromUnix(day*86400)
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// excludeFlags returns the SQL condition, starting with " AND", that
// leaves out the accounts (table alias alias) with any flag exclude
// sets, or "" if it sets none. Which flags exclude an account from which
// processing is decided by package processing, never here.
func excludeFlags(alias string, exclude store.Flags) string {
	var q string
	if exclude.Restricted {
		q += " AND NOT " + alias + ".processing_restricted"
	}
	if exclude.Objected {
		q += " AND NOT " + alias + ".processing_objected"
	}
	return q
}

// SpendStatsBudget implements store.StatsStore. On PostgreSQL the ledger
// is locked against other spenders for the transaction (readers go on);
// SQLite has a single writer.
func (s *Store) SpendStatsBudget(ctx context.Context, e *store.StatsSpend, budgetMicro int64) error {
	if e.ID == "" || e.Quarter == "" || e.Report == "" || e.StaffID == "" || e.MicroEpsilon <= 0 {
		return errs.E(errs.Invalid, "a ledger entry needs an id, a quarter, a report, a staff member and a positive epsilon")
	}
	return s.write(ctx, "spend statistics budget", func(tx *sql.Tx) error {
		if s.d.name == "postgres" {
			if _, err := tx.ExecContext(ctx, `LOCK TABLE stats_ledger IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		var spent int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(epsilon_micro), 0) FROM stats_ledger WHERE quarter = $1`,
			e.Quarter).Scan(&spent); err != nil {
			return err
		}
		if spent+e.MicroEpsilon > budgetMicro {
			return errs.Field(errs.Precondition, "epsilon",
				"the statistics budget of %s is spent up to epsilon %g of %g: a report of epsilon %g would exceed it",
				e.Quarter, float64(spent)/1e6, float64(budgetMicro)/1e6, float64(e.MicroEpsilon)/1e6)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO stats_ledger
			(id, quarter, report, staff_id, staff_role, epsilon_micro, min_group, override_reason, spent_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			e.ID, e.Quarter, e.Report, e.StaffID, e.StaffRole, e.MicroEpsilon, e.MinGroup, e.Override, unix(e.SpentAt))
		return mapErr(err, "ledger entry already exists")
	})
}

// StatsLedger implements store.StatsStore.
func (s *Store) StatsLedger(ctx context.Context, quarter string) ([]store.StatsSpend, error) {
	var out []store.StatsSpend
	err := s.read(ctx, "statistics ledger", func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT id, quarter, report, staff_id, staff_role, epsilon_micro, min_group,
				override_reason, spent_at
			FROM stats_ledger WHERE quarter = $1 ORDER BY spent_at, id`, quarter)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e store.StatsSpend
			var at int64
			if err := rows.Scan(&e.ID, &e.Quarter, &e.Report, &e.StaffID, &e.StaffRole, &e.MicroEpsilon, &e.MinGroup,
				&e.Override, &at); err != nil {
				return err
			}
			e.SpentAt = fromUnix(at)
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}
