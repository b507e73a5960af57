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
func (s *Store) DailyUsage(ctx context.Context, from, to time.Time) ([]store.DailyUsage, error) {
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
				AND a.status = $3 AND NOT a.processing_restricted AND NOT a.processing_objected
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
