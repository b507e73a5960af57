package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// RecordIntervals implements store.UsageStore.
func (s *Store) RecordIntervals(ctx context.Context, region string, ivs []store.Interval) (int, error) {
	if region == "" {
		return 0, errs.E(errs.Invalid, "region is required")
	}
	kept := 0
	err := s.write(ctx, "record intervals", func(tx *sql.Tx) error {
		kept = 0
		for _, iv := range ivs {
			if iv.DeviceID == "" {
				return errs.E(errs.Invalid, "interval without a device")
			}
			var end sql.NullInt64
			if iv.End != nil {
				end = sql.NullInt64{Int64: unix(*iv.End), Valid: true}
			}
			var accountID string
			err := tx.QueryRowContext(ctx, `SELECT account_id FROM devices WHERE id = $1`, iv.DeviceID).Scan(&accountID)
			if err == sql.ErrNoRows {
				// The device is gone: only close what was recorded before.
				res, err := tx.ExecContext(ctx, `UPDATE usage_sessions SET ended_at = COALESCE($1, ended_at),
					gateway_id = CASE WHEN COALESCE($1, ended_at) IS NULL THEN gateway_id END
					WHERE device_id = $2 AND started_at = $3`, end, iv.DeviceID, unix(iv.Start))
				if err != nil {
					return fmt.Errorf("close interval: %w", err)
				}
				if n, _ := res.RowsAffected(); n > 0 {
					kept++
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("look up device: %w", err)
			}
			// The gateway is kept only while the interval is open.
			var gw any
			if iv.End == nil && iv.GatewayID != "" {
				gw = iv.GatewayID
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO usage_sessions (account_id, device_id, region, started_at, ended_at, gateway_id)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (device_id, started_at) WHERE device_id IS NOT NULL
				DO UPDATE SET ended_at = COALESCE(excluded.ended_at, usage_sessions.ended_at),
					gateway_id = CASE WHEN COALESCE(excluded.ended_at, usage_sessions.ended_at) IS NULL
						THEN COALESCE(excluded.gateway_id, usage_sessions.gateway_id) END`,
				accountID, iv.DeviceID, region, unix(iv.Start), end, gw); err != nil {
				return fmt.Errorf("record interval: %w", err)
			}
			kept++
		}
		return nil
	})
	return kept, err
}

// DevicesCreated implements store.UsageStore.
func (s *Store) DevicesCreated(ctx context.Context, ids []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(ids))
	err := s.read(ctx, "devices created", func(tx *sql.Tx) error {
		clear(out)
		for _, id := range ids {
			if _, done := out[id]; done {
				continue
			}
			var created int64
			err := tx.QueryRowContext(ctx, `SELECT created_at FROM devices WHERE id = $1`, id).Scan(&created)
			if err == sql.ErrNoRows {
				continue
			}
			if err != nil {
				return err
			}
			out[id] = fromUnix(created)
		}
		return nil
	})
	return out, err
}

// Usage implements store.UsageStore.
func (s *Store) Usage(ctx context.Context, accountID string, since time.Time, limit int) ([]store.Interval, error) {
	if limit < 1 {
		return nil, errs.E(errs.Invalid, "limit must be positive")
	}
	var out []store.Interval
	err := s.read(ctx, "usage", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT device_id, region, started_at, ended_at FROM usage_sessions
			WHERE account_id = $1 AND started_at >= $2 ORDER BY started_at DESC, id DESC LIMIT $3`,
			accountID, unix(since), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var dev sql.NullString
			var start int64
			var end sql.NullInt64
			iv := store.Interval{AccountID: accountID}
			if err := rows.Scan(&dev, &iv.Region, &start, &end); err != nil {
				return err
			}
			iv.DeviceID, iv.Start, iv.End = dev.String, fromUnix(start), nullTime(end)
			out = append(out, iv)
		}
		return rows.Err()
	})
	return out, err
}

// endDeviceSessions closes a device's open intervals inside tx, at end
// truncated to the minute.
func endDeviceSessions(ctx context.Context, tx *sql.Tx, deviceID string, end time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE usage_sessions SET ended_at = $1, gateway_id = NULL
		WHERE device_id = $2 AND ended_at IS NULL`, unix(end.UTC().Truncate(time.Minute)), deviceID); err != nil {
		return fmt.Errorf("end device sessions: %w", err)
	}
	return nil
}

// CloseStaleSessions implements store.RetentionStore.
func (s *Store) CloseStaleSessions(ctx context.Context, deadBefore, openBefore time.Time, maxLen time.Duration, limit int) (int64, error) {
	if limit < 1 {
		return 0, errs.E(errs.Invalid, "limit must be positive")
	}
	var n int64
	err := s.write(ctx, "close stale sessions", func(tx *sql.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, `SELECT u.id, u.started_at, g.last_seen
			FROM usage_sessions u LEFT JOIN gateways g ON g.id = u.gateway_id
			WHERE u.ended_at IS NULL AND (
				(u.gateway_id IS NOT NULL AND (g.id IS NULL OR g.last_seen IS NULL OR g.last_seen < $1))
				OR u.started_at < $2)
			LIMIT $3`, unix(deadBefore), unix(openBefore), limit)
		if err != nil {
			return err
		}
		type stale struct {
			id, end int64
		}
		var todo []stale
		for rows.Next() {
			var id, start int64
			var seen sql.NullInt64
			if err := rows.Scan(&id, &start, &seen); err != nil {
				rows.Close()
				return err
			}
			// Nothing says an interval whose gateway was never seen, was
			// removed, or is not known lasted at all.
			end := start
			if seen.Valid {
				end = min(start+int64(maxLen/time.Second), seen.Int64/60*60)
			}
			todo = append(todo, stale{id, max(end, start)})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, x := range todo {
			if _, err := tx.ExecContext(ctx, `UPDATE usage_sessions SET ended_at = $1, gateway_id = NULL WHERE id = $2 AND ended_at IS NULL`,
				x.end, x.id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
