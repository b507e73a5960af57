package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

const accountColumns = `id, email_sealed, mobile_sealed, wrapped_key, email_index, mobile_index,
	password_hash, email_verified, mobile_verified, status, created_at`

func scanAccount(row interface{ Scan(...any) error }) (*store.Account, error) {
	var a store.Account
	var created int64
	if err := row.Scan(&a.ID, &a.EmailSealed, &a.MobileSealed, &a.WrappedKey, &a.EmailIndex,
		&a.MobileIndex, &a.PasswordHash, &a.EmailVerified, &a.MobileVerified, &a.Status,
		&created); err != nil {
		return nil, err
	}
	a.CreatedAt = fromUnix(created)
	return &a, nil
}

// CreateAccount inserts a. An empty a.Status is stored (and set in a) as
// store.StatusActive. Empty byte slices are stored as NULL. It returns
// Invalid for an empty ID and Conflict if the ID or the email or mobile
// blind index is taken.
func (s *Store) CreateAccount(ctx context.Context, a *store.Account) error {
	if a.ID == "" {
		return errs.E(errs.Invalid, "account id is empty")
	}
	if a.Status == "" {
		a.Status = store.StatusActive
	}
	return s.write(ctx, "create account", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			a.ID, nullBytes(a.EmailSealed), nullBytes(a.MobileSealed), nullBytes(a.WrappedKey),
			nullBytes(a.EmailIndex), nullBytes(a.MobileIndex), a.PasswordHash,
			a.EmailVerified, a.MobileVerified, a.Status, unix(a.CreatedAt))
		return mapErr(err, "account already exists")
	})
}

// Account returns the account with id, whatever its status, or NotFound.
func (s *Store) Account(ctx context.Context, id string) (*store.Account, error) {
	var a *store.Account
	err := s.read(ctx, "account", func(tx *sql.Tx) error {
		var err error
		a, err = scanAccount(tx.QueryRowContext(ctx,
			`SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id))
		return notFound(err, "account not found")
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// AccountByEmailIndex returns the active account with that email blind
// index, or NotFound (also for an empty index).
func (s *Store) AccountByEmailIndex(ctx context.Context, index []byte) (*store.Account, error) {
	return s.accountByIndex(ctx, "email_index", index)
}

// AccountByMobileIndex returns the active account with that mobile blind
// index, or NotFound (also for an empty index).
func (s *Store) AccountByMobileIndex(ctx context.Context, index []byte) (*store.Account, error) {
	return s.accountByIndex(ctx, "mobile_index", index)
}

// accountByIndex returns the active account whose blind-index column col
// (email_index or mobile_index, both uniquely indexed) is index.
func (s *Store) accountByIndex(ctx context.Context, col string, index []byte) (*store.Account, error) {
	if len(index) == 0 {
		return nil, errs.E(errs.NotFound, "account not found")
	}
	var a *store.Account
	err := s.read(ctx, "account by "+col, func(tx *sql.Tx) error {
		var err error
		a, err = scanAccount(tx.QueryRowContext(ctx,
			`SELECT `+accountColumns+` FROM accounts WHERE `+col+` = $1 AND status = $2`,
			index, store.StatusActive))
		return notFound(err, "account not found")
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// AccountByIndex implements store.Store.
func (s *Store) AccountByIndex(ctx context.Context, ch store.Channel, index []byte) (*store.Account, error) {
	col := ""
	switch ch {
	case store.Email:
		col = "email_index"
	case store.Mobile:
		col = "mobile_index"
	default:
		return nil, errs.E(errs.Invalid, "unknown channel %q", ch)
	}
	if len(index) == 0 {
		return nil, errs.E(errs.NotFound, "account not found")
	}
	var a *store.Account
	err := s.read(ctx, "account by index", func(tx *sql.Tx) error {
		var err error
		a, err = scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE `+col+` = $1`, index))
		return notFound(err, "account not found")
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// AttachMobile implements store.Store.
func (s *Store) AttachMobile(ctx context.Context, accountID string, index []byte) error {
	if len(index) == 0 {
		return errs.E(errs.Invalid, "mobile index is empty")
	}
	return s.write(ctx, "attach mobile", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET mobile_index = $1
			WHERE id = $2 AND mobile_index IS NULL AND status = $3`, index, accountID, store.StatusActive)
		if err != nil {
			return mapErr(err, "this mobile number is used by another account")
		}
		return s.notUpdated(ctx, tx, res, accountID, "the account already has a mobile number")
	})
}

// notUpdated returns nil if res affected a row, and otherwise NotFound if
// the account does not exist or Precondition with msg if it does.
func (s *Store) notUpdated(ctx context.Context, tx *sql.Tx, res sql.Result, accountID, msg string) error {
	n, err := res.RowsAffected()
	if err != nil || n > 0 {
		return err
	}
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = $1`, accountID).Scan(&one); err != nil {
		return notFound(err, "account not found")
	}
	return errs.E(errs.Precondition, "%s", msg)
}

// SetVerified marks one channel of the account as verified. It returns
// Invalid for an unknown channel, NotFound for an unknown account and
// Precondition for a mobile number that is not attached (no blind index).
func (s *Store) SetVerified(ctx context.Context, accountID string, ch store.Channel) error {
	var q string
	switch ch {
	case store.Email:
		q = `UPDATE accounts SET email_verified = $1 WHERE id = $2`
	case store.Mobile:
		q = `UPDATE accounts SET mobile_verified = $1 WHERE id = $2 AND mobile_index IS NOT NULL`
	default:
		return errs.E(errs.Invalid, "unknown channel %q", ch)
	}
	return s.write(ctx, "set verified", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, true, accountID)
		if err != nil {
			return err
		}
		return s.notUpdated(ctx, tx, res, accountID, "the mobile number is not attached to the account")
	})
}

// SetPassword replaces the account's password hash and deletes all its
// login tokens and reset tokens in one transaction. It returns NotFound for
// an unknown account.
func (s *Store) SetPassword(ctx context.Context, accountID, hash string) error {
	return s.write(ctx, "set password", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE accounts SET password_hash = $1 WHERE id = $2`, hash, accountID)
		if err := affected(res, err, "account not found"); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM tokens WHERE account_id = $1`,
			`DELETE FROM reset_tokens WHERE account_id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, accountID); err != nil {
				return err
			}
		}
		return nil
	})
}

// affected returns err, or NotFound with msg if no row was affected.
func affected(res sql.Result, err error, msg string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.E(errs.NotFound, "%s", msg)
	}
	return nil
}

// CreateToken inserts t. It returns Invalid for an empty hash, NotFound for
// an unknown account and Conflict for a duplicate hash.
func (s *Store) CreateToken(ctx context.Context, t *store.Token) error {
	if len(t.Hash) == 0 {
		return errs.E(errs.Invalid, "token hash is empty")
	}
	return s.write(ctx, "create token", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, account_id, created_at, expires_at)
			VALUES ($1, $2, $3, $4)`, t.Hash, t.AccountID, unix(t.CreatedAt), unix(t.ExpiresAt))
		return mapErr(err, "token already exists")
	})
}

// TokenByHash returns the token with hash if its ExpiresAt is after now
// (compared in whole seconds). An expired or unknown token is NotFound.
func (s *Store) TokenByHash(ctx context.Context, hash []byte, now time.Time) (*store.Token, error) {
	if len(hash) == 0 {
		return nil, errs.E(errs.NotFound, "token not found")
	}
	var t store.Token
	err := s.read(ctx, "token by hash", func(tx *sql.Tx) error {
		var created, expires int64
		err := tx.QueryRowContext(ctx, `SELECT hash, account_id, created_at, expires_at
			FROM tokens WHERE hash = $1 AND expires_at > $2`, hash, unix(now)).
			Scan(&t.Hash, &t.AccountID, &created, &expires)
		t.CreatedAt, t.ExpiresAt = fromUnix(created), fromUnix(expires)
		return notFound(err, "token not found")
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// DeleteToken deletes the token with hash. Deleting an absent token is not
// an error.
func (s *Store) DeleteToken(ctx context.Context, hash []byte) error {
	return s.write(ctx, "delete token", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE hash = $1`, hash)
		return err
	})
}

// DeleteAccountTokens deletes every token of the account. An account
// without tokens, or an unknown account, is not an error.
func (s *Store) DeleteAccountTokens(ctx context.Context, accountID string) error {
	return s.write(ctx, "delete account tokens", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE account_id = $1`, accountID)
		return err
	})
}

// checkCodeKey validates the (channel, purpose) part of a code's key.
func checkCodeKey(ch store.Channel, purpose string) error {
	if !ch.Valid() {
		return errs.E(errs.Invalid, "unknown channel %q", ch)
	}
	if purpose == "" {
		return errs.E(errs.Invalid, "code purpose is empty")
	}
	return nil
}

// PutCode stores c as the unused code of its account, channel and purpose,
// replacing any unused one (used codes are kept). c.UsedAt is ignored: the
// stored code is unused. It returns Invalid for an unknown channel, empty
// purpose or empty hash, and NotFound for an unknown account.
func (s *Store) PutCode(ctx context.Context, c *store.Code) error {
	if err := checkCodeKey(c.Channel, c.Purpose); err != nil {
		return err
	}
	if len(c.Hash) == 0 {
		return errs.E(errs.Invalid, "code hash is empty")
	}
	return s.write(ctx, "put code", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO codes
			(account_id, channel, purpose, hash, expires_at, attempts, used_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)
			ON CONFLICT (account_id, channel, purpose) WHERE used_at IS NULL
			DO UPDATE SET hash = excluded.hash, expires_at = excluded.expires_at,
				attempts = excluded.attempts, created_at = excluded.created_at`,
			c.AccountID, string(c.Channel), c.Purpose, c.Hash, unix(c.ExpiresAt), c.Attempts,
			unix(c.CreatedAt))
		return mapErr(err, "code already exists")
	})
}

// ActiveCode returns the unused code for account, channel and purpose,
// expired or not (the caller checks expiry and attempts), or NotFound.
func (s *Store) ActiveCode(ctx context.Context, accountID string, ch store.Channel, purpose string) (*store.Code, error) {
	var c store.Code
	err := s.read(ctx, "active code", func(tx *sql.Tx) error {
		var expires, created int64
		var ch2 string
		err := tx.QueryRowContext(ctx, `SELECT account_id, channel, purpose, hash, expires_at,
				attempts, created_at
			FROM codes WHERE account_id = $1 AND channel = $2 AND purpose = $3 AND used_at IS NULL
			ORDER BY created_at DESC, id DESC LIMIT 1`, accountID, string(ch), purpose).
			Scan(&c.AccountID, &ch2, &c.Purpose, &c.Hash, &expires, &c.Attempts, &created)
		c.Channel = store.Channel(ch2)
		c.ExpiresAt, c.CreatedAt = fromUnix(expires), fromUnix(created)
		return notFound(err, "no active code")
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// CountCodeAttempt increments the attempt counter of the unused code for
// account, channel and purpose and returns the new count. It returns
// NotFound if there is no unused code.
func (s *Store) CountCodeAttempt(ctx context.Context, accountID string, ch store.Channel, purpose string) (int, error) {
	var n int
	err := s.write(ctx, "count code attempt", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE codes SET attempts = attempts + 1
			WHERE account_id = $1 AND channel = $2 AND purpose = $3 AND used_at IS NULL
			RETURNING attempts`, accountID, string(ch), purpose).Scan(&n)
		return notFound(err, "no active code")
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// UseCode marks the unused code for account, channel and purpose used at
// now. It returns Gone if there is no unused code. Used codes are kept
// until a retention job deletes them.
func (s *Store) UseCode(ctx context.Context, accountID string, ch store.Channel, purpose string, now time.Time) error {
	return s.write(ctx, "use code", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE codes SET used_at = $1
			WHERE account_id = $2 AND channel = $3 AND purpose = $4 AND used_at IS NULL`,
			unix(now), accountID, string(ch), purpose)
		err = affected(res, err, "no active code")
		if errs.Is(err, errs.NotFound) {
			return errs.E(errs.Gone, "code already used or never sent")
		}
		return err
	})
}

// CreateResetToken inserts t and, in the same transaction, deletes every
// other reset token of its account: only the newest one works. It returns
// Invalid for an empty hash, NotFound for an unknown account and Conflict
// for a duplicate hash (leaving the older tokens in place).
func (s *Store) CreateResetToken(ctx context.Context, t *store.ResetToken) error {
	if len(t.Hash) == 0 {
		return errs.E(errs.Invalid, "reset token hash is empty")
	}
	return s.write(ctx, "create reset token", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO reset_tokens (hash, account_id, expires_at, created_at)
			VALUES ($1, $2, $3, $4)`, t.Hash, t.AccountID, unix(t.ExpiresAt), unix(t.CreatedAt))
		if err != nil {
			return mapErr(err, "reset token already exists")
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM reset_tokens WHERE account_id = $1 AND hash <> $2`,
			t.AccountID, t.Hash)
		return err
	})
}

// ConsumeResetToken atomically deletes the reset token with hash, if it
// expires after now, together with every other reset token of its account,
// and returns the account id. Only one of several concurrent callers
// succeeds. Unknown, used or expired tokens return Gone (an expired token
// is left for retention to delete).
func (s *Store) ConsumeResetToken(ctx context.Context, hash []byte, now time.Time) (string, error) {
	var id string
	err := s.write(ctx, "consume reset token", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `DELETE FROM reset_tokens
			WHERE hash = $1 AND expires_at > $2 RETURNING account_id`, hash, unix(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.Gone, "reset token invalid or expired")
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM reset_tokens WHERE account_id = $1`, id)
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// ResetTokenAccount returns the account id of the reset token with hash if
// it expires after now, without consuming it; otherwise Gone.
func (s *Store) ResetTokenAccount(ctx context.Context, hash []byte, now time.Time) (string, error) {
	var id string
	err := s.read(ctx, "reset token account", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT account_id FROM reset_tokens WHERE hash = $1 AND expires_at > $2`,
			hash, unix(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.Gone, "reset token invalid or expired")
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}
