package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// KeyedAccounts implements store.RekeyStore.
func (s *Store) KeyedAccounts(ctx context.Context, after string, limit int) ([]store.KeyedAccount, error) {
	if limit < 1 {
		return nil, errs.E(errs.Invalid, "limit must be positive")
	}
	var out []store.KeyedAccount
	err := s.readSnapshot(ctx, "keyed accounts", func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT id, wrapped_key, email_sealed, mobile_sealed, email_index, mobile_index
			FROM accounts WHERE wrapped_key IS NOT NULL AND id > $1 ORDER BY id LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		byID := map[string]int{}
		for rows.Next() {
			var a store.KeyedAccount
			if err := rows.Scan(&a.ID, &a.WrappedKey, &a.EmailSealed, &a.MobileSealed, &a.EmailIndex, &a.MobileIndex); err != nil {
				return err
			}
			byID[a.ID] = len(out)
			out = append(out, a)
		}
		if err := rows.Err(); err != nil || len(out) == 0 {
			return err
		}
		prows, err := tx.QueryContext(ctx, `SELECT account_id, channel, sealed, blind_index, created_at, expires_at
			FROM pending_contact_changes WHERE account_id > $1 AND account_id <= $2`, after, out[len(out)-1].ID)
		if err != nil {
			return err
		}
		defer prows.Close()
		for prows.Next() {
			var c store.ContactChange
			var ch string
			var created, expires int64
			if err := prows.Scan(&c.AccountID, &ch, &c.Sealed, &c.Index, &created, &expires); err != nil {
				return err
			}
			c.Channel, c.CreatedAt, c.ExpiresAt = store.Channel(ch), fromUnix(created), fromUnix(expires)
			if i, ok := byID[c.AccountID]; ok {
				out[i].Pending = append(out[i].Pending, c)
			}
		}
		return prows.Err()
	})
	return out, err
}

// RekeyAccounts implements store.RekeyStore.
func (s *Store) RekeyAccounts(ctx context.Context, rs []store.AccountRekey) (int, error) {
	applied := 0
	err := s.write(ctx, "rekey accounts", func(tx *sql.Tx) error {
		applied = 0
		for _, r := range rs {
			if len(r.OldWrappedKey) == 0 || len(r.WrappedKey) == 0 {
				return errs.E(errs.Invalid, "rekey of %s without a wrapped key", r.ID)
			}
			res, err := tx.ExecContext(ctx, `UPDATE accounts SET wrapped_key = $1,
				email_index = COALESCE($2, email_index), mobile_index = COALESCE($3, mobile_index)
				WHERE id = $4 AND wrapped_key = $5`,
				r.WrappedKey, nullBytes(r.EmailIndex), nullBytes(r.MobileIndex), r.ID, r.OldWrappedKey)
			if err != nil {
				return mapErr(err, "a blind index of account "+r.ID+" is already another account's")
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				continue
			}
			applied++
			for ch, idx := range r.Pending {
				if _, err := tx.ExecContext(ctx, `UPDATE pending_contact_changes SET blind_index = $1
					WHERE account_id = $2 AND channel = $3`, idx, r.ID, string(ch)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return applied, nil
}

// StaffSecrets implements store.RekeyStore.
func (s *Store) StaffSecrets(ctx context.Context) ([]store.StaffSecret, error) {
	var out []store.StaffSecret
	err := s.read(ctx, "staff secrets", func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT id, totp_sealed FROM staff WHERE totp_sealed IS NOT NULL ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var x store.StaffSecret
			if err := rows.Scan(&x.StaffID, &x.Sealed); err != nil {
				return err
			}
			out = append(out, x)
		}
		return rows.Err()
	})
	return out, err
}

// ResealStaffSecret implements store.RekeyStore.
func (s *Store) ResealStaffSecret(ctx context.Context, staffID string, old, sealed []byte) (bool, error) {
	if len(old) == 0 || len(sealed) == 0 {
		return false, errs.E(errs.Invalid, "reseal without a sealed secret")
	}
	var done bool
	err := s.write(ctx, "reseal staff secret", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE staff SET totp_sealed = $1 WHERE id = $2 AND totp_sealed = $3`, sealed, staffID, old)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		done = n > 0
		return err
	})
	return done, err
}

const kekRotationCols = `id, started_at, started_by, target, target_since, after_id, passes, pass_done_at, rewrapped, resealed,
	problem, finished_at, destroyed`

func scanKEKRotation(row interface{ Scan(...any) error }) (*store.KEKRotation, error) {
	var r store.KEKRotation
	var started, since int64
	var target int64
	var passDone, finished sql.NullInt64
	var destroyed string
	if err := row.Scan(&r.ID, &started, &r.StartedBy, &target, &since, &r.Cursor, &r.Passes, &passDone, &r.Rewrapped,
		&r.Resealed, &r.Problem, &finished, &destroyed); err != nil {
		return nil, err
	}
	r.StartedAt, r.TargetSince, r.Target, r.PassDoneAt, r.FinishedAt = fromUnix(started), fromUnix(since), uint32(target), nullTime(passDone), nullTime(finished)
	for _, f := range strings.Fields(destroyed) {
		id, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, err
		}
		r.Destroyed = append(r.Destroyed, uint32(id))
	}
	return &r, nil
}

func joinIDs(ids []uint32) string {
	var b bytes.Buffer
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(uint64(id), 10))
	}
	return b.String()
}

// StartKEKRotation implements store.RekeyStore.
func (s *Store) StartKEKRotation(ctx context.Context, r *store.KEKRotation) error {
	if r.ID == "" {
		return errs.E(errs.Invalid, "rotation id is empty")
	}
	return s.write(ctx, "start kek rotation", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kek_rotations (id, started_at, started_by, target, target_since, in_progress)
			VALUES ($1, $2, $3, $4, $5, 1)`, r.ID, unix(r.StartedAt), r.StartedBy, int64(r.Target), unix(r.TargetSince))
		return mapErr(err, "a key-encryption-key rotation is already in progress")
	})
}

// CurrentKEKRotation implements store.RekeyStore.
func (s *Store) CurrentKEKRotation(ctx context.Context) (*store.KEKRotation, error) {
	var r *store.KEKRotation
	err := s.read(ctx, "current kek rotation", func(tx *sql.Tx) error {
		var err error
		r, err = scanKEKRotation(tx.QueryRowContext(ctx, `SELECT `+kekRotationCols+` FROM kek_rotations WHERE in_progress = 1`))
		return notFound(err, "no key-encryption-key rotation is in progress")
	})
	return r, err
}

// SaveKEKRotation implements store.RekeyStore.
func (s *Store) SaveKEKRotation(ctx context.Context, r *store.KEKRotation) error {
	return s.write(ctx, "save kek rotation", func(tx *sql.Tx) error {
		var inProgress any = 1
		if r.FinishedAt != nil {
			inProgress = nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE kek_rotations SET target = $1, after_id = $2, passes = $3, pass_done_at = $4,
			rewrapped = $5, resealed = $6, problem = $7, finished_at = $8, destroyed = $9, in_progress = $10,
			target_since = $12
			WHERE id = $11 AND in_progress = 1`,
			int64(r.Target), r.Cursor, r.Passes, optUnix(r.PassDoneAt), r.Rewrapped, r.Resealed, r.Problem,
			optUnix(r.FinishedAt), joinIDs(r.Destroyed), inProgress, r.ID, unix(r.TargetSince))
		return affected(res, err, "no such key-encryption-key rotation in progress")
	})
}

// KEKRotations implements store.RekeyStore.
func (s *Store) KEKRotations(ctx context.Context, limit int) ([]store.KEKRotation, error) {
	if limit < 1 {
		return nil, errs.E(errs.Invalid, "limit must be positive")
	}
	var out []store.KEKRotation
	err := s.read(ctx, "kek rotations", func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT `+kekRotationCols+` FROM kek_rotations ORDER BY started_at DESC, id DESC LIMIT $1`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanKEKRotation(rows)
			if err != nil {
				return err
			}
			out = append(out, *r)
		}
		return rows.Err()
	})
	return out, err
}
