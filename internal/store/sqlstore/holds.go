package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

const holdCols = `id, account_id, reason, created_by, created_at, until, released_at, released_by`

// CreateHold implements store.HoldStore.
func (s *Store) CreateHold(ctx context.Context, h *store.Hold) error {
	if h.ID == "" || h.AccountID == "" || h.Reason == "" || h.CreatedBy == "" {
		return errs.E(errs.Invalid, "hold id, account, reason and creator are required")
	}
	return s.write(ctx, "create hold", func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = $1`, h.AccountID).Scan(&one); err != nil {
			return notFound(err, "no such account")
		}
		var until sql.NullInt64
		if h.Until != nil {
			until = sql.NullInt64{Int64: unix(*h.Until), Valid: true}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO legal_holds (id, account_id, reason, created_by, created_at, until)
			VALUES ($1, $2, $3, $4, $5, $6)`, h.ID, h.AccountID, h.Reason, h.CreatedBy, unix(h.CreatedAt), until)
		return mapErr(err, "hold already exists")
	})
}

// Holds implements store.HoldStore.
func (s *Store) Holds(ctx context.Context, accountID string, activeOnly bool, now time.Time) ([]store.Hold, error) {
	var out []store.Hold
	err := s.read(ctx, "holds", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+holdCols+` FROM legal_holds
			WHERE ($1 = '' OR account_id = $1) ORDER BY created_at DESC, id`, accountID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h store.Hold
			var created int64
			var until, released sql.NullInt64
			var by sql.NullString
			if err := rows.Scan(&h.ID, &h.AccountID, &h.Reason, &h.CreatedBy, &created, &until, &released, &by); err != nil {
				return err
			}
			h.CreatedAt, h.Until, h.ReleasedAt, h.ReleasedBy = fromUnix(created), nullTime(until), nullTime(released), by.String
			if activeOnly && !h.Active(now) {
				continue
			}
			out = append(out, h)
		}
		return rows.Err()
	})
	return out, err
}

// ReleaseHold implements store.HoldStore.
func (s *Store) ReleaseHold(ctx context.Context, id, by string, at time.Time) (string, error) {
	var account string
	err := s.write(ctx, "release hold", func(tx *sql.Tx) error {
		var released sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT account_id, released_at FROM legal_holds WHERE id = $1`, id).Scan(&account, &released); err != nil {
			return notFound(err, "no such hold")
		}
		if released.Valid {
			return errs.E(errs.Conflict, "the hold was already released")
		}
		_, err := tx.ExecContext(ctx, `UPDATE legal_holds SET released_at = $1, released_by = $2 WHERE id = $3`, unix(at), by, id)
		return err
	})
	if err != nil {
		return "", err
	}
	return account, nil
}

// HeldAccounts implements store.HoldStore.
func (s *Store) HeldAccounts(ctx context.Context, now time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.read(ctx, "held accounts", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT account_id FROM legal_holds
			WHERE released_at IS NULL AND (until IS NULL OR until > $1)`, unix(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out[id] = true
		}
		return rows.Err()
	})
	return out, err
}

// SetFlags implements store.HoldStore.
func (s *Store) SetFlags(ctx context.Context, accountID string, f store.Flags) error {
	return s.write(ctx, "set flags", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET processing_restricted = $1, processing_objected = $2 WHERE id = $3`,
			f.Restricted, f.Objected, accountID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.E(errs.NotFound, "account not found")
		}
		return nil
	})
}

// AccountFlags implements store.HoldStore.
func (s *Store) AccountFlags(ctx context.Context, accountID string) (store.Flags, error) {
	var f store.Flags
	err := s.read(ctx, "account flags", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT processing_restricted, processing_objected FROM accounts WHERE id = $1`, accountID).
			Scan(&f.Restricted, &f.Objected)
		return notFound(err, "account not found")
	})
	return f, err
}
