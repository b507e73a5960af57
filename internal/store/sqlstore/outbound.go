package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// EnqueueOutbound implements store.OutboundStore.
func (s *Store) EnqueueOutbound(ctx context.Context, j *store.OutboundJob) error {
	if j.ID == "" || len(j.Sealed) == 0 {
		return errs.E(errs.Invalid, "outbound job has no id or content")
	}
	return s.write(ctx, "enqueue outbound", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO outbound_queue (id, sealed, attempts, due_at, created_at)
			VALUES ($1, $2, $3, $4, $5)`, j.ID, j.Sealed, j.Attempts, unix(j.DueAt), unix(j.CreatedAt))
		return mapErr(err, "outbound job already exists")
	})
}

// ClaimOutbound implements store.OutboundStore. On PostgreSQL the claimed
// rows are locked with SKIP LOCKED, so concurrent workers take different
// jobs instead of waiting for each other; SQLite serialises writers.
func (s *Store) ClaimOutbound(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.OutboundJob, error) {
	if limit < 1 || lease <= 0 {
		return nil, errs.E(errs.Invalid, "claim needs a positive limit and lease")
	}
	lock := ""
	if s.d.name == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []store.OutboundJob
	err := s.write(ctx, "claim outbound", func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE outbound_queue SET due_at = $1, attempts = attempts + 1
			WHERE id IN (SELECT id FROM outbound_queue WHERE due_at <= $2 ORDER BY due_at, id LIMIT $3`+lock+`)
			RETURNING id, sealed, attempts, due_at, created_at`, unix(now.Add(lease)), unix(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var j store.OutboundJob
			var due, created int64
			if err := rows.Scan(&j.ID, &j.Sealed, &j.Attempts, &due, &created); err != nil {
				return err
			}
			j.DueAt, j.CreatedAt = fromUnix(due), fromUnix(created)
			out = append(out, j)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	// RETURNING gives no order.
	slices.SortFunc(out, func(a, b store.OutboundJob) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RescheduleOutbound implements store.OutboundStore.
func (s *Store) RescheduleOutbound(ctx context.Context, id string, due time.Time) error {
	return s.write(ctx, "reschedule outbound", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbound_queue SET due_at = $1 WHERE id = $2`, unix(due), id)
		return affected(res, err, "outbound job not found")
	})
}

// DeleteOutbound implements store.OutboundStore.
func (s *Store) DeleteOutbound(ctx context.Context, id string) error {
	return s.write(ctx, "delete outbound", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM outbound_queue WHERE id = $1`, id)
		return err
	})
}

// CountOutbound implements store.OutboundStore.
func (s *Store) CountOutbound(ctx context.Context) (int, error) {
	var n int
	err := s.read(ctx, "count outbound", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM outbound_queue`).Scan(&n)
	})
	return n, err
}

// OutboundSealed implements store.OutboundStore.
func (s *Store) OutboundSealed(ctx context.Context, after string, limit int) ([]store.OutboundJob, error) {
	if limit < 1 {
		return nil, errs.E(errs.Invalid, "limit must be positive")
	}
	var out []store.OutboundJob
	err := s.read(ctx, "outbound sealed", func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT id, sealed FROM outbound_queue WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var j store.OutboundJob
			if err := rows.Scan(&j.ID, &j.Sealed); err != nil {
				return err
			}
			out = append(out, j)
		}
		return rows.Err()
	})
	return out, err
}

// ResealOutbound implements store.OutboundStore.
func (s *Store) ResealOutbound(ctx context.Context, id string, old, sealed []byte) (bool, error) {
	if len(old) == 0 || len(sealed) == 0 {
		return false, errs.E(errs.Invalid, "reseal without a sealed job")
	}
	var done bool
	err := s.write(ctx, "reseal outbound", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbound_queue SET sealed = $1 WHERE id = $2 AND sealed = $3`, sealed, id, old)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		done = n > 0
		return err
	})
	return done, err
}
