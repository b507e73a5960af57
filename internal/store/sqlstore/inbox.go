package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// Email states of inbox messages posted by a notice run.
const (
	emailPending = "pending"
	emailClaimed = "claimed"
	emailQueued  = "queued"
	emailSent    = "sent"
	emailFailed  = "failed"
)

// PostMessage implements store.InboxStore.
func (s *Store) PostMessage(ctx context.Context, m *store.Message) error {
	if m.ID == "" || m.AccountID == "" || m.Kind == "" || len(m.Sealed) == 0 {
		return errs.E(errs.Invalid, "message id, account, kind and sealed content are required")
	}
	if m.Subject != "" || m.Body != "" || m.NoticeRun != "" {
		return errs.E(errs.Invalid, "a message to one account is stored sealed, without plaintext or a notice run")
	}
	return s.write(ctx, "post message", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO inbox (id, account_id, kind, subject, body, sealed, created_at, request_id)
			VALUES ($1, $2, $3, '', '', $4, $5, $6)`,
			m.ID, m.AccountID, m.Kind, m.Sealed, unix(m.CreatedAt), nullString(m.RequestID))
		return mapErr(err, "message already exists")
	})
}

// Messages implements store.InboxStore.
func (s *Store) Messages(ctx context.Context, accountID string, limit int) ([]store.Message, int, error) {
	if limit < 1 {
		return nil, 0, errs.E(errs.Invalid, "limit must be positive")
	}
	out := []store.Message{}
	var unread int
	err := s.readSnapshot(ctx, "messages", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, account_id, kind, sealed, subject, body, created_at, read_at, notice_run, request_id
			FROM inbox WHERE account_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT $2`, accountID, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m store.Message
			var created int64
			var read sql.NullInt64
			var run, req sql.NullString
			if err := rows.Scan(&m.ID, &m.AccountID, &m.Kind, &m.Sealed, &m.Subject, &m.Body, &created, &read, &run, &req); err != nil {
				return err
			}
			m.CreatedAt, m.ReadAt, m.NoticeRun, m.RequestID = fromUnix(created), nullTime(read), run.String, req.String
			out = append(out, m)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM inbox WHERE account_id = $1 AND read_at IS NULL AND deleted_at IS NULL`,
			accountID).Scan(&unread)
	})
	if err != nil {
		return nil, 0, err
	}
	return out, unread, nil
}

// MarkRead implements store.InboxStore.
func (s *Store) MarkRead(ctx context.Context, accountID, id string, at time.Time) error {
	return s.write(ctx, "mark read", func(tx *sql.Tx) error {
		var read sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT read_at FROM inbox WHERE id = $1 AND account_id = $2`,
			id, accountID).Scan(&read); err != nil {
			return notFound(err, "message not found")
		}
		if read.Valid {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE inbox SET read_at = $1 WHERE id = $2`, unix(at), id)
		return err
	})
}

// DeleteMessage implements store.InboxStore.
func (s *Store) DeleteMessage(ctx context.Context, accountID, id string, at time.Time) error {
	return s.write(ctx, "delete message", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE inbox SET subject = '', body = '', sealed = NULL, deleted_at = $1, read_at = COALESCE(read_at, $1),
			email_state = CASE WHEN email_state = $2 THEN NULL ELSE email_state END
			WHERE id = $3 AND account_id = $4 AND deleted_at IS NULL`, unix(at), emailPending, id, accountID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errs.E(errs.NotFound, "message not found")
		}
		return nil
	})
}

const noticeRunCols = `id, kind, document_id, subject, body, email, created_at, finished_at, audience`

func scanNoticeRun(row interface{ Scan(...any) error }) (*store.NoticeRun, error) {
	var r store.NoticeRun
	var doc sql.NullString
	var created int64
	var finished sql.NullInt64
	if err := row.Scan(&r.ID, &r.Kind, &doc, &r.Subject, &r.Body, &r.Email, &created, &finished, &r.Audience); err != nil {
		return nil, err
	}
	r.DocumentID, r.CreatedAt, r.FinishedAt = doc.String, fromUnix(created), nullTime(finished)
	return &r, nil
}

// insertNoticeRun inserts r inside tx; an empty Audience is stored as
// store.AudienceAll.
func insertNoticeRun(ctx context.Context, tx *sql.Tx, r *store.NoticeRun) error {
	if r.ID == "" || r.Kind == "" {
		return errs.E(errs.Invalid, "notice run id and kind are required")
	}
	if r.Audience == "" {
		r.Audience = store.AudienceAll
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO notice_runs (id, kind, document_id, subject, body, email, created_at, audience)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.ID, r.Kind, nullString(r.DocumentID), r.Subject, r.Body, r.Email, unix(r.CreatedAt), r.Audience)
	return mapErr(err, "notice run already exists")
}

// CreateNoticeRun implements store.InboxStore.
func (s *Store) CreateNoticeRun(ctx context.Context, r *store.NoticeRun) error {
	if r.Audience != "" && r.Audience != store.AudienceAll {
		return errs.E(errs.Invalid, "a listed notice run is created with its accounts (CreateListedNoticeRun)")
	}
	return s.write(ctx, "create notice run", func(tx *sql.Tx) error { return insertNoticeRun(ctx, tx, r) })
}

// CreateListedNoticeRun implements store.InboxStore.
func (s *Store) CreateListedNoticeRun(ctx context.Context, r *store.NoticeRun, accounts, ids []string) error {
	if len(accounts) == 0 || len(ids) < len(accounts) {
		return errs.E(errs.Invalid, "need at least one account and one message id per account")
	}
	seen := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		if seen[a] {
			return errs.Field(errs.Invalid, "accounts", "account %s is listed twice", a)
		}
		seen[a] = true
	}
	r.Audience = store.AudienceListed
	var state any
	if r.Email {
		state = emailPending
	}
	return s.write(ctx, "create listed notice run", func(tx *sql.Tx) error {
		if err := insertNoticeRun(ctx, tx, r); err != nil {
			return err
		}
		check, err := tx.PrepareContext(ctx, `SELECT 1 FROM accounts WHERE id = $1 AND status = $2`)
		if err != nil {
			return err
		}
		defer check.Close()
		ins, err := tx.PrepareContext(ctx, `INSERT INTO inbox (id, account_id, kind, subject, body, created_at, notice_run, email_state)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i, acc := range accounts {
			var one int
			if err := check.QueryRowContext(ctx, acc, store.StatusActive).Scan(&one); err != nil {
				return errs.WithField(notFound(err, "no active account "+acc), "accounts")
			}
			if _, err := ins.ExecContext(ctx, ids[i], acc, r.Kind, r.Subject, r.Body, unix(r.CreatedAt), r.ID, state); err != nil {
				return mapErr(err, "message already exists")
			}
		}
		return nil
	})
}

// NoticeRuns implements store.InboxStore.
func (s *Store) NoticeRuns(ctx context.Context, unfinishedOnly bool) ([]store.NoticeRun, error) {
	var out []store.NoticeRun
	err := s.read(ctx, "notice runs", func(tx *sql.Tx) error {
		q := `SELECT ` + noticeRunCols + ` FROM notice_runs`
		if unfinishedOnly {
			q += ` WHERE finished_at IS NULL`
		}
		rows, err := tx.QueryContext(ctx, q+` ORDER BY created_at DESC, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanNoticeRun(rows)
			if err != nil {
				return err
			}
			out = append(out, *r)
		}
		return rows.Err()
	})
	return out, err
}

// NoticeRun implements store.InboxStore.
func (s *Store) NoticeRun(ctx context.Context, id string) (*store.NoticeRun, error) {
	var r *store.NoticeRun
	err := s.read(ctx, "notice run", func(tx *sql.Tx) error {
		var err error
		r, err = scanNoticeRun(tx.QueryRowContext(ctx, `SELECT `+noticeRunCols+` FROM notice_runs WHERE id = $1`, id))
		return notFound(err, "notice run not found")
	})
	return r, err
}

// PostNoticeBatch implements store.InboxStore. The unique index on
// (notice_run, account_id) makes a repeated batch harmless.
func (s *Store) PostNoticeBatch(ctx context.Context, run *store.NoticeRun, exclude store.Flags, ids []string, at time.Time, limit int) (int, error) {
	if limit < 1 || len(ids) < limit {
		return 0, errs.E(errs.Invalid, "need a positive limit and one id per message")
	}
	if run.Audience == store.AudienceListed {
		return 0, nil // posted when the run was created
	}
	var n int
	err := s.write(ctx, "post notice batch", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT a.id FROM accounts a
			WHERE a.status = $1`+excludeFlags("a", exclude)+`
				AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.notice_run = $2 AND i.account_id = a.id)
			ORDER BY a.id LIMIT $3`, store.StatusActive, run.ID, limit)
		if err != nil {
			return err
		}
		var accounts []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			accounts = append(accounts, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var state any
		if run.Email {
			state = emailPending
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO inbox (id, account_id, kind, subject, body, created_at, notice_run, email_state)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i, acc := range accounts {
			if _, err := ins.ExecContext(ctx, ids[i], acc, run.Kind, run.Subject, run.Body, unix(at), run.ID, state); err != nil {
				return mapErr(err, "message already exists")
			}
		}
		n = len(accounts)
		return nil
	})
	return n, err
}

// ClaimNoticeEmails implements store.InboxStore.
func (s *Store) ClaimNoticeEmails(ctx context.Context, runID string, limit int) ([]store.Recipient, error) {
	if limit < 1 {
		return nil, errs.E(errs.Invalid, "limit must be positive")
	}
	var out []store.Recipient
	err := s.write(ctx, "claim notice emails", func(tx *sql.Tx) error {
		cols := strings.ReplaceAll(accountColumns, "\n\t", " ")
		var acols []string
		for _, c := range strings.Split(cols, ",") {
			acols = append(acols, "a."+strings.TrimSpace(c))
		}
		lock := ""
		if s.d.name == "postgres" {
			// Concurrent senders take disjoint batches.
			lock = " FOR UPDATE OF i SKIP LOCKED"
		}
		rows, err := tx.QueryContext(ctx, `SELECT i.id, `+strings.Join(acols, ", ")+`
			FROM inbox i JOIN accounts a ON a.id = i.account_id
			WHERE i.notice_run = $1 AND i.email_state = $2
			ORDER BY i.account_id LIMIT $3`+lock, runID, emailPending, limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r store.Recipient
			var a store.Account
			var created int64
			if err := rows.Scan(&r.MessageID, &a.ID, &a.EmailSealed, &a.MobileSealed, &a.WrappedKey, &a.EmailIndex,
				&a.MobileIndex, &a.PasswordHash, &a.EmailVerified, &a.MobileVerified, &a.Status, &created); err != nil {
				rows.Close()
				return err
			}
			a.CreatedAt = fromUnix(created)
			r.Account = a
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		return setEmailState(ctx, tx, recipientIDs(out), emailClaimed)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func recipientIDs(rs []store.Recipient) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.MessageID
	}
	return ids
}

// setEmailState sets the email state of the messages ids inside tx. Only
// a claimed email becomes queued or pending again, and only a claimed or
// queued one gets an outcome (sent, failed): an outcome reported before
// the sender marked the email queued stands.
func setEmailState(ctx context.Context, tx *sql.Tx, ids []string, state string) error {
	if len(ids) == 0 {
		return nil
	}
	from := `'` + emailClaimed + `'`
	switch state {
	case emailSent, emailFailed:
		from += `, '` + emailQueued + `'`
	case emailClaimed:
		from = `'` + emailPending + `'`
	}
	st, err := tx.PrepareContext(ctx, `UPDATE inbox SET email_state = $1 WHERE id = $2 AND email_state IN (`+from+`)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, state, id); err != nil {
			return err
		}
	}
	return nil
}

// SetEmailState implements store.InboxStore.
func (s *Store) SetEmailState(ctx context.Context, messageIDs []string, state string) error {
	if state != emailSent && state != emailFailed && state != emailPending && state != emailQueued {
		return errs.E(errs.Invalid, "email state must be sent, failed, pending or queued")
	}
	return s.write(ctx, "set email state", func(tx *sql.Tx) error { return setEmailState(ctx, tx, messageIDs, state) })
}

// NoticeProgress implements store.InboxStore.
func (s *Store) NoticeProgress(ctx context.Context, runID string, exclude store.Flags) (store.NoticeProgress, error) {
	var p store.NoticeProgress
	err := s.readSnapshot(ctx, "notice progress", func(tx *sql.Tx) error {
		var audience string
		if err := tx.QueryRowContext(ctx, `SELECT audience FROM notice_runs WHERE id = $1`, runID).Scan(&audience); err != nil {
			return notFound(err, "notice run not found")
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts a WHERE a.status = $1`+excludeFlags("a", exclude), store.StatusActive).
			Scan(&p.Accounts); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT COALESCE(email_state, ''), count(*) FROM inbox
			WHERE notice_run = $1 GROUP BY email_state`, runID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var state string
			var n int64
			if err := rows.Scan(&state, &n); err != nil {
				return err
			}
			p.Posted += n
			switch state {
			case emailPending:
				p.Pending = n
			case emailClaimed:
				p.Claimed = n
			case emailQueued:
				p.Queued = n
			case emailSent:
				p.Sent = n
			case emailFailed:
				p.Failed = n
			}
		}
		if audience == store.AudienceListed {
			p.Accounts = p.Posted
		}
		return rows.Err()
	})
	return p, err
}

// FinishNoticeRun implements store.InboxStore.
func (s *Store) FinishNoticeRun(ctx context.Context, runID string, at time.Time) error {
	return s.write(ctx, "finish notice run", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE notice_runs SET finished_at = $1 WHERE id = $2`, unix(at), runID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.E(errs.NotFound, "notice run not found")
		}
		return nil
	})
}
