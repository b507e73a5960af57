package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

const staffCols = `id, email, role, password_hash, created_at, disabled, totp_sealed, totp_step`

func scanStaff(row interface{ Scan(...any) error }) (*store.Staff, error) {
	var st store.Staff
	var created int64
	if err := row.Scan(&st.ID, &st.Email, &st.Role, &st.PasswordHash, &created, &st.Disabled, &st.TOTPSealed, &st.TOTPStep); err != nil {
		return nil, err
	}
	st.CreatedAt = fromUnix(created)
	return &st, nil
}

// CreateStaff implements store.StaffStore.
func (s *Store) CreateStaff(ctx context.Context, st *store.Staff) error {
	if st.ID == "" || st.Email == "" || st.Role == "" || st.PasswordHash == "" {
		return errs.E(errs.Invalid, "staff id, email, role and password are required")
	}
	return s.write(ctx, "create staff", func(tx *sql.Tx) error { return insertStaff(ctx, tx, st) })
}

func insertStaff(ctx context.Context, tx *sql.Tx, st *store.Staff) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO staff (`+staffCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, 0)`,
		st.ID, st.Email, st.Role, st.PasswordHash, unix(st.CreatedAt), st.Disabled, nullBytes(st.TOTPSealed))
	return mapErr(err, "a staff account with this email already exists")
}

// BootstrapStaff implements store.StaffStore. The audit entry is appended
// first: that locks the audit head, which serialises bootstraps, so the
// count of enabled admins that follows cannot miss one another bootstrap
// is adding.
func (s *Store) BootstrapStaff(ctx context.Context, st *store.Staff, e auditchain.Entry) (auditchain.Entry, error) {
	if st.ID == "" || st.Email == "" || st.Role == "" || st.PasswordHash == "" {
		return e, errs.E(errs.Invalid, "staff id, email, role and password are required")
	}
	if err := e.Validate(); err != nil {
		return e, errs.Wrap(errs.Invalid, err, "invalid audit entry")
	}
	var out auditchain.Entry
	err := s.write(ctx, "bootstrap staff", func(tx *sql.Tx) error {
		var err error
		if out, err = s.appendAudit(ctx, tx, e); err != nil {
			return err
		}
		var admins int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM staff WHERE role = $1 AND NOT disabled`,
			store.StaffAdminRole).Scan(&admins); err != nil {
			return err
		}
		if admins > 0 {
			return errs.E(errs.Precondition, "an enabled admin exists")
		}
		return insertStaff(ctx, tx, st)
	})
	return out, err
}

// keepAdmin returns Precondition if staff id is the last enabled admin,
// in tx. On PostgreSQL it locks the enabled admins' rows first, so two
// transactions each removing a different admin cannot both pass.
func (s *Store) keepAdmin(ctx context.Context, tx *sql.Tx, id string) error {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM staff WHERE role = $1 AND NOT disabled ORDER BY id`+s.d.forUpdate,
		store.StaffAdminRole)
	if err != nil {
		return err
	}
	defer rows.Close()
	var admins []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return err
		}
		admins = append(admins, a)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(admins) == 1 && admins[0] == id {
		return errs.E(errs.Precondition, "the last enabled admin must stay")
	}
	return nil
}

// SetStaffRole implements store.StaffStore.
func (s *Store) SetStaffRole(ctx context.Context, id, role string) error {
	if role == "" {
		return errs.E(errs.Invalid, "staff role is required")
	}
	return s.write(ctx, "set staff role", func(tx *sql.Tx) error {
		if role != store.StaffAdminRole {
			if err := s.keepAdmin(ctx, tx, id); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE staff SET role = $1 WHERE id = $2`, role, id)
		return affected(res, err, "staff account not found")
	})
}

// StaffByEmail implements store.StaffStore.
func (s *Store) StaffByEmail(ctx context.Context, email string) (*store.Staff, error) {
	var out *store.Staff
	err := s.read(ctx, "staff by email", func(tx *sql.Tx) error {
		st, err := scanStaff(tx.QueryRowContext(ctx, `SELECT `+staffCols+` FROM staff WHERE email = $1`, email))
		if err != nil {
			return notFound(err, "staff account not found")
		}
		out = st
		return nil
	})
	return out, err
}

// StaffByID implements store.StaffStore.
func (s *Store) StaffByID(ctx context.Context, id string) (*store.Staff, error) {
	var out *store.Staff
	err := s.read(ctx, "staff by id", func(tx *sql.Tx) error {
		st, err := scanStaff(tx.QueryRowContext(ctx, `SELECT `+staffCols+` FROM staff WHERE id = $1`, id))
		if err != nil {
			return notFound(err, "staff account not found")
		}
		out = st
		return nil
	})
	return out, err
}

// ListStaff implements store.StaffStore.
func (s *Store) ListStaff(ctx context.Context) ([]store.Staff, error) {
	var out []store.Staff
	err := s.read(ctx, "list staff", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+staffCols+` FROM staff ORDER BY created_at, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			st, err := scanStaff(rows)
			if err != nil {
				return err
			}
			out = append(out, *st)
		}
		return rows.Err()
	})
	return out, err
}

// SetStaffDisabled implements store.StaffStore.
func (s *Store) SetStaffDisabled(ctx context.Context, id string, disabled bool) error {
	return s.write(ctx, "disable staff", func(tx *sql.Tx) error {
		if disabled {
			if err := s.keepAdmin(ctx, tx, id); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE staff SET disabled = $1 WHERE id = $2`, disabled, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.E(errs.NotFound, "staff account not found")
		}
		if disabled {
			if _, err := tx.ExecContext(ctx, `DELETE FROM staff_tokens WHERE staff_id = $1`, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreateStaffToken implements store.StaffStore.
func (s *Store) CreateStaffToken(ctx context.Context, hash []byte, staffID string, created, expires time.Time) error {
	return s.write(ctx, "create staff token", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO staff_tokens (hash, staff_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
			hash, staffID, unix(created), unix(expires))
		return mapErr(err, "token already exists")
	})
}

// StaffByToken implements store.StaffStore.
func (s *Store) StaffByToken(ctx context.Context, hash []byte, now time.Time) (*store.Staff, error) {
	var out *store.Staff
	err := s.read(ctx, "staff by token", func(tx *sql.Tx) error {
		st, err := scanStaff(tx.QueryRowContext(ctx, `SELECT s.id, s.email, s.role, s.password_hash, s.created_at, s.disabled,
			s.totp_sealed, s.totp_step FROM staff_tokens t JOIN staff s ON s.id = t.staff_id
			WHERE t.hash = $1 AND t.expires_at > $2 AND NOT s.disabled`, hash, unix(now)))
		if err != nil {
			return notFound(err, "staff token not found")
		}
		out = st
		return nil
	})
	return out, err
}

// DeleteStaffToken implements store.StaffStore.
func (s *Store) DeleteStaffToken(ctx context.Context, hash []byte) error {
	return s.write(ctx, "delete staff token", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM staff_tokens WHERE hash = $1`, hash)
		return err
	})
}

// SetStaffTOTP implements store.StaffStore.
func (s *Store) SetStaffTOTP(ctx context.Context, id string, sealed []byte) error {
	return s.write(ctx, "set staff totp", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE staff SET totp_sealed = $1, totp_step = 0 WHERE id = $2`, nullBytes(sealed), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.E(errs.NotFound, "staff account not found")
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM staff_tokens WHERE staff_id = $1`, id)
		return err
	})
}

// UseStaffTOTPStep implements store.StaffStore.
func (s *Store) UseStaffTOTPStep(ctx context.Context, id string, step int64) error {
	return s.write(ctx, "use staff totp step", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE staff SET totp_step = $1 WHERE id = $2 AND totp_step < $1`, step, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.E(errs.Conflict, "this code was already used")
		}
		return nil
	})
}

const auditCols = `seq, at, actor, role, action, subject, detail, prev_hash, hash`

func scanAudit(row interface{ Scan(...any) error }) (auditchain.Entry, error) {
	var e auditchain.Entry
	var at int64
	if err := row.Scan(&e.Seq, &at, &e.Actor, &e.Role, &e.Action, &e.Subject, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
		return e, err
	}
	e.At = fromUnix(at)
	return e, nil
}

// AppendAudit implements store.AuditStore. It returns Conflict if the
// newest entry the log counted is missing and retention did not delete it.
func (s *Store) AppendAudit(ctx context.Context, e auditchain.Entry) (auditchain.Entry, error) {
	if err := e.Validate(); err != nil {
		return e, errs.Wrap(errs.Invalid, err, "invalid audit entry")
	}
	var out auditchain.Entry
	err := s.write(ctx, "append audit", func(tx *sql.Tx) error {
		var err error
		out, err = s.appendAudit(ctx, tx, e)
		return err
	})
	return out, err
}

// appendAudit chains e after the newest entry and stores it, in tx, which
// must be a write transaction. It locks the audit_head row for the rest
// of tx, so concurrent appends (from several control replicas, too) form
// one chain. e must have been validated. It returns Conflict if the
// newest entry the log counted is missing and retention did not delete
// it.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, e auditchain.Entry) (auditchain.Entry, error) {
	var head int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`+s.d.forUpdate).Scan(&head); err != nil {
		return e, fmt.Errorf("lock audit head: %w", err)
	}
	var prev *auditchain.Entry
	if head > 0 {
		p, err := scanAudit(tx.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit_log WHERE seq = $1`, head))
		if errors.Is(err, sql.ErrNoRows) {
			// Retention deleted every entry: chain from the anchor.
			p = auditchain.Entry{}
			err = tx.QueryRowContext(ctx, `SELECT anchor_seq, anchor_hash FROM audit_head WHERE id = 1`).Scan(&p.Seq, &p.Hash)
			if err == nil && p.Seq != head {
				// Retention did not delete the newest entry: something
				// else did. Appending would reuse its number and hide that.
				return e, errs.E(errs.Conflict, "the audit log's newest entries, up to seq %d, are missing: it was truncated", head)
			}
		}
		if err != nil {
			return e, fmt.Errorf("read audit head: %w", err)
		}
		prev = &p
	}
	out := auditchain.Append(prev, e)
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (`+auditCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		out.Seq, unix(out.At), out.Actor, out.Role, out.Action, out.Subject, out.Detail, nullBytes(out.PrevHash), out.Hash); err != nil {
		return e, fmt.Errorf("insert audit entry: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = $1 WHERE id = 1`, out.Seq); err != nil {
		return e, err
	}
	return out, nil
}

// AuditEntries implements store.AuditStore.
func (s *Store) AuditEntries(ctx context.Context, after int64, limit int) ([]auditchain.Entry, error) {
	return s.auditQuery(ctx, `SELECT `+auditCols+` FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
}

// AuditEntriesFor implements store.AuditStore.
func (s *Store) AuditEntriesFor(ctx context.Context, subject string, limit int) ([]auditchain.Entry, error) {
	return s.auditQuery(ctx, `SELECT `+auditCols+` FROM audit_log WHERE subject = $1 ORDER BY seq DESC LIMIT $2`, subject, limit)
}

func (s *Store) auditQuery(ctx context.Context, q string, arg any, limit int) ([]auditchain.Entry, error) {
	if limit < 1 {
		return nil, errs.E(errs.Invalid, "limit must be positive")
	}
	var out []auditchain.Entry
	err := s.read(ctx, "audit entries", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, arg, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// AuditAnchor implements store.AuditStore.
func (s *Store) AuditAnchor(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := s.read(ctx, "audit anchor", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT anchor_seq, anchor_hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash)
	})
	return seq, hash, err
}

// AuditHead implements store.AuditStore.
func (s *Store) AuditHead(ctx context.Context) (store.AuditHead, error) {
	var h store.AuditHead
	err := s.readSnapshot(ctx, "audit head", func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT seq, anchor_seq, anchor_hash FROM audit_head WHERE id = 1`).
			Scan(&h.Counted, &h.Anchor.Seq, &h.Anchor.Hash); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).
			Scan(&h.Newest.Seq, &h.Newest.Hash)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	return h, err
}

// sweepAudit deletes a batch of audit entries with del (which must end
// so that RETURNING can follow) and moves the anchor to the newest deleted
// entry, in tx.
func sweepAudit(ctx context.Context, tx *sql.Tx, del string, args ...any) (int64, error) {
	rows, err := tx.QueryContext(ctx, del+` RETURNING seq, hash`, args...)
	if err != nil {
		return 0, err
	}
	var n, maxSeq int64
	var maxHash []byte
	for rows.Next() {
		var seq int64
		var hash []byte
		if err := rows.Scan(&seq, &hash); err != nil {
			rows.Close()
			return 0, err
		}
		n++
		if seq > maxSeq {
			maxSeq, maxHash = seq, hash
		}
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if n > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET anchor_seq = $1, anchor_hash = $2
			WHERE id = 1 AND anchor_seq < $1`, maxSeq, maxHash); err != nil {
			return 0, fmt.Errorf("move audit anchor: %w", err)
		}
	}
	return n, nil
}
