package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

const privacyColumns = `id, account_id, type, status, details, received_at, due_at, extended_reason,
	extended_at, verified_at, confirmed_at, completed_at, denied_reason, outcome, channel, check_by, check_method, check_at, sealed,
	ext_notice_at, ext_notice_attempts, ext_notice_error, ext_notice_retry_at`

func scanPrivacyRequest(row interface{ Scan(...any) error }) (*store.PrivacyRequest, error) {
	var r store.PrivacyRequest
	var account, checkBy, checkMethod sql.NullString
	var received, due int64
	var extended, verified, confirmed, completed, checkAt, noticeAt, noticeRetry sql.NullInt64
	if err := row.Scan(&r.ID, &account, &r.Type, &r.Status, &r.Details, &received, &due, &r.ExtendedReason,
		&extended, &verified, &confirmed, &completed, &r.DeniedReason, &r.Outcome,
		&r.Channel, &checkBy, &checkMethod, &checkAt, &r.Sealed,
		&noticeAt, &r.ExtensionNotice.Attempts, &r.ExtensionNotice.Error, &noticeRetry); err != nil {
		return nil, err
	}
	r.AccountID = account.String
	r.ReceivedAt, r.DueAt = fromUnix(received), fromUnix(due)
	r.ExtendedAt, r.VerifiedAt, r.ConfirmedAt, r.CompletedAt = nullTime(extended), nullTime(verified), nullTime(confirmed), nullTime(completed)
	r.ExtensionNotice.DeliveredAt, r.ExtensionNotice.RetryAt = nullTime(noticeAt), nullTime(noticeRetry)
	if checkAt.Valid {
		r.Check = &store.IdentityCheck{By: checkBy.String, Method: checkMethod.String, At: fromUnix(checkAt.Int64)}
	}
	return &r, nil
}

func optUnix(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: unix(*t), Valid: true}
}

// CreatePrivacyRequest implements store.PrivacyStore. It returns Invalid
// for an empty id, type or status, for a request without an account
// unless it came from outside the app with an identity check, for an
// identity check without a staff member or method, for a request of an
// account without sealed text or with plaintext details or reasons, and
// for a request without an account with sealed text or plaintext reasons.
// An empty Channel is stored as store.ChannelApp.
func (s *Store) CreatePrivacyRequest(ctx context.Context, r *store.PrivacyRequest) error {
	if r.ID == "" || r.Type == "" || r.Status == "" {
		return errs.E(errs.Invalid, "request id, type and status are required")
	}
	if r.Channel == "" {
		r.Channel = store.ChannelApp
	}
	if r.AccountID == "" && (r.Channel == store.ChannelApp || r.Check == nil) {
		return errs.E(errs.Invalid, "a request without an account must come from outside the app, with an identity check")
	}
	if err := checkRequestText(r); err != nil {
		return err
	}
	var checkBy, checkMethod any
	var checkAt sql.NullInt64
	if c := r.Check; c != nil {
		if c.By == "" || c.Method == "" {
			return errs.E(errs.Invalid, "an identity check needs the staff member and the method")
		}
		checkBy, checkMethod, checkAt = c.By, c.Method, sql.NullInt64{Int64: unix(c.At), Valid: true}
	}
	return s.write(ctx, "create privacy request", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO privacy_requests (`+privacyColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $9, $10, $11, '', $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
			r.ID, nullString(r.AccountID), r.Type, r.Status, r.Details, unix(r.ReceivedAt), unix(r.DueAt),
			optUnix(r.ExtendedAt), optUnix(r.VerifiedAt), optUnix(r.ConfirmedAt), optUnix(r.CompletedAt),
			r.Outcome, r.Channel, checkBy, checkMethod, checkAt, nullBytes(r.Sealed),
			optUnix(r.ExtensionNotice.DeliveredAt), r.ExtensionNotice.Attempts, r.ExtensionNotice.Error, optUnix(r.ExtensionNotice.RetryAt))
		return mapErr(err, "privacy request already exists")
	})
}

// checkRequestText returns Invalid unless r's free text is where it
// belongs: sealed for a request of an account, the staff's note in
// Details for one without (which has no key to seal under); never reasons
// in plaintext.
func checkRequestText(r *store.PrivacyRequest) error {
	switch {
	case r.ExtendedReason != "" || r.DeniedReason != "":
		return errs.E(errs.Invalid, "request texts are stored sealed, not in plaintext")
	case r.AccountID != "" && (len(r.Sealed) == 0 || r.Details != ""):
		return errs.E(errs.Invalid, "the text of an account's request is stored sealed under its key, not in plaintext")
	case r.AccountID == "" && len(r.Sealed) > 0:
		return errs.E(errs.Invalid, "a request without an account has no key to seal its text under")
	}
	return nil
}

// PrivacyRequest implements store.PrivacyStore.
func (s *Store) PrivacyRequest(ctx context.Context, id string) (*store.PrivacyRequest, error) {
	var r *store.PrivacyRequest
	err := s.read(ctx, "privacy request", func(tx *sql.Tx) error {
		var err error
		r, err = scanPrivacyRequest(tx.QueryRowContext(ctx, `SELECT `+privacyColumns+` FROM privacy_requests WHERE id = $1`, id))
		return notFound(err, "privacy request not found")
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// PrivacyRequests implements store.PrivacyStore.
func (s *Store) PrivacyRequests(ctx context.Context, f store.PrivacyFilter) ([]store.PrivacyRequest, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	overdue := int64(-1)
	if f.OverdueAt != nil {
		overdue = unix(*f.OverdueAt)
	}
	noticeDue := int64(-1)
	if f.ExtensionNoticeDueAt != nil {
		noticeDue = unix(*f.ExtensionNoticeDueAt)
	}
	out := []store.PrivacyRequest{}
	err := s.read(ctx, "privacy requests", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+privacyColumns+` FROM privacy_requests
			WHERE ($1 = '' OR account_id = $1)
			  AND ($2 = '' OR status = $2)
			  AND ($3 = '' OR type = $3)
			  AND (CAST($4 AS BIGINT) < 0 OR (due_at < CAST($4 AS BIGINT) AND status NOT IN ($5, $6, $7)))
			  AND (CAST($9 AS BIGINT) < 0 OR (ext_notice_at IS NULL AND ext_notice_retry_at <= CAST($9 AS BIGINT)))
			ORDER BY received_at DESC, id LIMIT $8`,
			f.AccountID, f.Status, f.Type, overdue, store.RequestCompleted, store.RequestDenied, store.RequestHeld, limit, noticeDue)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanPrivacyRequest(rows)
			if err != nil {
				return err
			}
			out = append(out, *r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdatePrivacyRequest implements store.PrivacyStore. The id, account,
// received time, channel and identity check cannot be changed through it.
func (s *Store) UpdatePrivacyRequest(ctx context.Context, id string, fn func(*store.PrivacyRequest) error) (*store.PrivacyRequest, error) {
	var r *store.PrivacyRequest
	err := s.write(ctx, "update privacy request", func(tx *sql.Tx) error {
		var err error
		r, err = scanPrivacyRequest(tx.QueryRowContext(ctx,
			`SELECT `+privacyColumns+` FROM privacy_requests WHERE id = $1`+s.d.forUpdate, id))
		if err != nil {
			return notFound(err, "privacy request not found")
		}
		if err := fn(r); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE privacy_requests SET type = $1, status = $2, details = $3, due_at = $4,
				extended_reason = $5, extended_at = $6, verified_at = $7, confirmed_at = $8, completed_at = $9,
				denied_reason = $10, outcome = $11, sealed = $12, ext_notice_at = $14, ext_notice_attempts = $15,
				ext_notice_error = $16, ext_notice_retry_at = $17
			WHERE id = $13`,
			r.Type, r.Status, r.Details, unix(r.DueAt), r.ExtendedReason, optUnix(r.ExtendedAt), optUnix(r.VerifiedAt),
			optUnix(r.ConfirmedAt), optUnix(r.CompletedAt), r.DeniedReason, r.Outcome, nullBytes(r.Sealed), id,
			optUnix(r.ExtensionNotice.DeliveredAt), r.ExtensionNotice.Attempts, r.ExtensionNotice.Error, optUnix(r.ExtensionNotice.RetryAt))
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.PrivacyRequest(ctx, id)
}

// CountOverduePrivacyRequests implements store.PrivacyStore.
func (s *Store) CountOverduePrivacyRequests(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.read(ctx, "count overdue privacy requests", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM privacy_requests
			WHERE due_at < $1 AND status NOT IN ($2, $3, $4)`,
			unix(now), store.RequestCompleted, store.RequestDenied, store.RequestHeld).Scan(&n)
	})
	return n, err
}

// CreateExportToken implements store.PrivacyStore.
func (s *Store) CreateExportToken(ctx context.Context, t *store.ExportToken) error {
	if len(t.Hash) == 0 || t.RequestID == "" || t.AccountID == "" {
		return errs.E(errs.Invalid, "export token hash, request and account are required")
	}
	return s.write(ctx, "create export token", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO export_tokens (hash, request_id, account_id, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, t.Hash, t.RequestID, t.AccountID, unix(t.CreatedAt), unix(t.ExpiresAt))
		return mapErr(err, "export token already exists")
	})
}

// ConsumeExportToken implements store.PrivacyStore. Only one of several
// concurrent callers succeeds.
func (s *Store) ConsumeExportToken(ctx context.Context, hash []byte, requestID, accountID string, now time.Time) error {
	if len(hash) == 0 {
		return errs.E(errs.Gone, "export link invalid, used or expired")
	}
	return s.write(ctx, "consume export token", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE export_tokens SET used_at = $1
			WHERE hash = $2 AND request_id = $3 AND account_id = $4 AND used_at IS NULL AND expires_at > $1`,
			unix(now), hash, requestID, accountID)
		if err := affected(res, err, "export token"); errs.Is(err, errs.NotFound) {
			return errs.E(errs.Gone, "export link invalid, used or expired")
		} else if err != nil {
			return err
		}
		return nil
	})
}

// PutContactChange implements store.PrivacyStore. It returns Invalid for
// an unknown channel or empty values and NotFound for an unknown account.
func (s *Store) PutContactChange(ctx context.Context, c *store.ContactChange) error {
	if !c.Channel.Valid() || len(c.Sealed) == 0 || len(c.Index) == 0 {
		return errs.E(errs.Invalid, "contact change needs a channel, sealed value and index")
	}
	return s.write(ctx, "put contact change", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pending_contact_changes
			(account_id, channel, sealed, blind_index, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (account_id, channel) DO UPDATE SET sealed = excluded.sealed,
				blind_index = excluded.blind_index, created_at = excluded.created_at, expires_at = excluded.expires_at`,
			c.AccountID, string(c.Channel), c.Sealed, c.Index, unix(c.CreatedAt), unix(c.ExpiresAt))
		return mapErr(err, "contact change already pending")
	})
}

// ApplyContactChange implements store.PrivacyStore.
func (s *Store) ApplyContactChange(ctx context.Context, accountID string, ch store.Channel, now time.Time) error {
	var q string
	switch ch {
	case store.Email:
		q = `UPDATE accounts SET email_sealed = $1, email_index = $2, email_verified = $3 WHERE id = $4 AND status = $5`
	case store.Mobile:
		q = `UPDATE accounts SET mobile_sealed = $1, mobile_index = $2, mobile_verified = $3 WHERE id = $4 AND status = $5`
	default:
		return errs.E(errs.Invalid, "unknown channel %q", ch)
	}
	return s.write(ctx, "apply contact change", func(tx *sql.Tx) error {
		var sealed, index []byte
		var expires int64
		err := tx.QueryRowContext(ctx, `SELECT sealed, blind_index, expires_at FROM pending_contact_changes
			WHERE account_id = $1 AND channel = $2`, accountID, string(ch)).Scan(&sealed, &index, &expires)
		if err != nil {
			return notFound(err, "no contact change is pending")
		}
		if !fromUnix(expires).After(now) {
			return errs.E(errs.Gone, "the contact change has expired; start again")
		}
		res, err := tx.ExecContext(ctx, q, sealed, index, true, accountID, store.StatusActive)
		if err := affected(res, mapErr(err, "this "+string(ch)+" is already used by another account"), "account not found"); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM pending_contact_changes WHERE account_id = $1 AND channel = $2`, accountID, string(ch))
		return err
	})
}

// EraseAccount implements store.PrivacyStore. Everything happens in one
// transaction, so an interruption (a crash, a kill, a failed statement)
// leaves the account exactly as it was. The steps, in order: credentials
// and inbox, devices (removeDevices, as DeleteDevice does, which scrubs
// them from the peer feed), session intervals, the account row, the
// requests, the tombstone. Then, outside the transaction, scrub removes
// what the engine keeps of the old row versions.
func (s *Store) EraseAccount(ctx context.Context, e store.Erasure) (*store.ErasureResult, error) {
	var res store.ErasureResult
	err := s.write(ctx, "erase account", func(tx *sql.Tx) error {
		res = store.ErasureResult{}
		version, err := s.lockFeed(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.checkErasure(ctx, tx, e); err != nil {
			return err
		}
		if err := eraseCredentials(ctx, tx, e.AccountID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM inbox WHERE account_id = $1`, e.AccountID); err != nil {
			return fmt.Errorf("delete inbox: %w", err)
		}
		// Devices: gone from the table and, through the feed, from every
		// gateway, exactly as a device delete does.
		ids, err := accountDeviceIDs(ctx, tx, e.AccountID)
		if err != nil {
			return fmt.Errorf("list devices: %w", err)
		}
		removed, err := s.removeDevices(ctx, tx, version, e.AccountID, ids, e.At)
		if err != nil {
			return fmt.Errorf("remove devices: %w", err)
		}
		res.Devices = len(removed)
		if err := eraseSessions(ctx, tx, e, &res); err != nil {
			return err
		}
		if err := closeErasedAccount(ctx, tx, e); err != nil {
			return err
		}
		return finishErasure(ctx, tx, e)
	})
	if err != nil {
		return nil, err
	}
	if err := s.scrub(ctx); err != nil {
		s.log.Warn("scrub after erasure not finished", "err", err)
	}
	return &res, nil
}

// The tables EraseAccount changes, which scrub vacuums on PostgreSQL: those
// whose indexes hold personal data (blind indexes; public keys and
// addresses), whose dead index entries must go whatever their number;
// peer_changes (vacuumed on its own: its rows hold public keys and
// addresses, its indexes only versions and IDs); and the others, whose
// indexes hold only IDs, hashes and times.
const (
	erasedIndexedTables = `accounts, devices`
	erasedTables        = `tokens, reset_tokens, codes, export_tokens, pending_contact_changes, inbox,
	usage_sessions, privacy_requests, request_recipients, processor_transfers`
)

// scrubAttempts is how many times scrub tries to truncate SQLite's WAL (each
// attempt waits up to the busy timeout for readers to leave it) or to vacuum
// PostgreSQL's tables that hold personal data until no dead row version is
// left.
const scrubAttempts = 3

// scrubWait bounds how long scrub waits on PostgreSQL for transactions that
// took their snapshot before the erasure (which VACUUM must leave the old
// row versions for) to end, and scrubPoll is how often it looks.
const (
	scrubWait = 10 * time.Second
	scrubPoll = 25 * time.Millisecond
)

// scrub removes what the engine keeps of row versions an erasure replaced
// or deleted, beyond what its transaction did.
//
// SQLite overwrites deleted content and freed pages with zeros
// (secure_delete), but the write-ahead log still holds the pages as they
// were before the erasure: scrub copies the log into the database file and
// truncates it to zero bytes. That needs every reader to have left the log;
// if readers keep it busy through every attempt, scrub gives up and the
// old frames go at the next restart of the log (journal_size_limit 0 then
// truncates it) or when the last connection to the database closes.
//
// PostgreSQL keeps deleted and replaced row versions (dead tuples) in the
// table and index pages until VACUUM removes them: scrub vacuums the tables
// the erasure changed, with index cleanup forced where indexes hold
// personal data (VACUUM may otherwise skip the indexes when few rows
// died), so that no live or dead tuple holds the erased data; it first
// waits for transactions older than the erasure, whose versions VACUUM
// must keep, and vacuums again while dead versions remain
// (vacuumErased). The bytes of removed versions may stay in the unused space
// of their pages until PostgreSQL reuses it, and in the WAL segments until
// they are recycled; docs/erasure.md states this limit.
func (s *Store) scrub(ctx context.Context) error {
	if s.noScrub {
		return nil
	}
	if s.d.name == "postgres" {
		return s.vacuumErased(ctx)
	}
	return s.truncateWAL(ctx)
}

// vacuumErased vacuums the tables an erasure changed on PostgreSQL. It
// first waits for older snapshots (awaitOlderSnapshots), whose row versions
// VACUUM must keep. Then, since VACUUM also passes over a page it cannot
// lock at once (another session reading it at that moment) without
// removing its dead versions, it checks the dead versions PostgreSQL
// counts in the tables that hold personal data in plaintext or blind
// indexes (accounts, devices, peer_changes) and vacuums those again, up to
// scrubAttempts times in all. Dead versions left by other accounts' changes
// at the same time also count, so a busy server may use every attempt.
func (s *Store) vacuumErased(ctx context.Context) error {
	if err := s.awaitOlderSnapshots(ctx); err != nil {
		// VACUUM still removes what no one can see; autovacuum removes
		// the rest later.
		s.log.Warn("scrub after erasure: older transactions still open", "err", err)
	}
	if _, err := s.wdb.ExecContext(ctx, `VACUUM `+erasedTables); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	for attempt := 1; ; attempt++ {
		for _, q := range []string{`VACUUM (INDEX_CLEANUP ON) ` + erasedIndexedTables, `VACUUM peer_changes`} {
			if _, err := s.wdb.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("vacuum: %w", err)
			}
		}
		var dead int64
		if err := s.wdb.QueryRowContext(ctx, `SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables
			WHERE relid IN ('accounts'::regclass, 'devices'::regclass, 'peer_changes'::regclass)`).Scan(&dead); err != nil {
			return fmt.Errorf("count dead row versions: %w", err)
		}
		if dead == 0 {
			return nil
		}
		if attempt == scrubAttempts {
			return fmt.Errorf("vacuum left %d dead row versions in accounts, devices and peer_changes after %d attempts", dead, attempt)
		}
		s.log.Debug("scrub after erasure: vacuuming again", "dead_row_versions", dead)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(4 * scrubPoll):
		}
	}
}

// awaitOlderSnapshots waits, for at most scrubWait, until no other session
// of this database holds a snapshot taken before now: such a snapshot may
// still see the row versions the erasure replaced, so VACUUM would keep
// them (a gateway's poll, a report, autovacuum's ANALYZE, a replica's
// housekeeping). It returns an error naming the kinds of session (never
// their queries) still holding one when the time is up. It sees only the
// sessions pg_stat_activity shows the store's role (all of them for a
// superuser or a member of pg_read_all_stats); the others it cannot wait
// for.
func (s *Store) awaitOlderSnapshots(ctx context.Context) error {
	var horizon string
	if err := s.wdb.QueryRowContext(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text`).Scan(&horizon); err != nil {
		return fmt.Errorf("current snapshot: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, scrubWait)
	defer cancel()
	tick := time.NewTicker(scrubPoll)
	defer tick.Stop()
	start, waited := time.Now(), ""
	for {
		var n int
		var kinds string
		err := s.wdb.QueryRowContext(ctx, `SELECT count(*), coalesce(string_agg(DISTINCT backend_type, ', '), '')
			FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()
			  AND greatest(age(backend_xmin), age(backend_xid)) > age(xid($1::xid8))`, horizon).Scan(&n, &kinds)
		switch {
		case err != nil && ctx.Err() != nil:
			return fmt.Errorf("list sessions: %w", ctx.Err())
		case err != nil:
			return fmt.Errorf("list sessions: %w", err)
		case n == 0:
			if waited != "" {
				s.log.Debug("scrub after erasure waited for older snapshots", "sessions", waited, "for", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		waited = kinds
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d sessions (%s) still hold a snapshot from before the erasure after %s", n, kinds, scrubWait)
		case <-tick.C:
		}
	}
}

// truncateWAL checkpoints SQLite's write-ahead log into the database file
// and truncates it to zero bytes, trying scrubAttempts times while readers
// keep it busy.
func (s *Store) truncateWAL(ctx context.Context) error {
	for range scrubAttempts {
		var busy, frames, done int
		if err := s.wdb.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
	}
	return errors.New("checkpoint: readers kept the write-ahead log busy")
}

// checkErasure locks e's request and account rows and checks that the
// request is an erasure of that account awaiting execution and, unless
// e.KeepHeld, that no legal hold is active. An erasure whose closed account
// row the retention sweeper purged (which detached the request), typically
// once a hold ended, passes with nothing of the account left.
func (s *Store) checkErasure(ctx context.Context, tx *sql.Tx, e store.Erasure) error {
	r, err := scanPrivacyRequest(tx.QueryRowContext(ctx,
		`SELECT `+privacyColumns+` FROM privacy_requests WHERE id = $1`+s.d.forUpdate, e.RequestID))
	if err != nil {
		return notFound(err, "privacy request not found")
	}
	if r.Type != store.RequestErasure || r.AccountID != e.AccountID ||
		(r.Status != store.RequestVerified && r.Status != store.RequestHeld) {
		return errs.E(errs.Precondition, "the request is not an erasure awaiting execution")
	}
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = $1`+s.d.forUpdate, e.AccountID).Scan(&one); err != nil {
		if !errors.Is(err, sql.ErrNoRows) || e.KeepHeld || r.AccountID != "" {
			return notFound(err, "account not found")
		}
		return nil // purged
	}
	if e.KeepHeld {
		return nil
	}
	// Re-check legal holds here, under the account's row lock: one placed
	// since the caller looked must still keep the data.
	var held int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM legal_holds WHERE account_id = $1
		AND released_at IS NULL AND (until IS NULL OR until > $2)`, e.AccountID, unix(e.At)).Scan(&held); err != nil {
		return fmt.Errorf("check legal holds: %w", err)
	}
	if held > 0 {
		return errs.E(errs.Conflict, "a legal hold is active on the account; try again to erase all but the held data")
	}
	return nil
}

// eraseCredentials deletes the account's login tokens and every other
// credential.
func eraseCredentials(ctx context.Context, tx *sql.Tx, accountID string) error {
	for _, q := range []string{
		`DELETE FROM tokens WHERE account_id = $1`,
		`DELETE FROM reset_tokens WHERE account_id = $1`,
		`DELETE FROM codes WHERE account_id = $1`,
		`DELETE FROM export_tokens WHERE account_id = $1`,
		`DELETE FROM pending_contact_changes WHERE account_id = $1`,
		// Which processors received the account's data: the erasure
		// request keeps its own copy (request_recipients), without the
		// account.
		`DELETE FROM processor_transfers WHERE account_id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, q, accountID); err != nil {
			return fmt.Errorf("delete credentials: %w", err)
		}
	}
	return nil
}

// eraseSessions deletes the account's session intervals or, with
// e.KeepHeld, closes and keeps them, and counts them in res.
func eraseSessions(ctx context.Context, tx *sql.Tx, e store.Erasure, res *store.ErasureResult) error {
	if !e.KeepHeld {
		dr, err := tx.ExecContext(ctx, `DELETE FROM usage_sessions WHERE account_id = $1`, e.AccountID)
		if err != nil {
			return fmt.Errorf("delete sessions: %w", err)
		}
		res.SessionsDeleted, _ = dr.RowsAffected()
		return nil
	}
	end := unix(e.At.UTC().Truncate(time.Minute))
	if _, err := tx.ExecContext(ctx, `UPDATE usage_sessions SET ended_at = $1
		WHERE account_id = $2 AND ended_at IS NULL`, end, e.AccountID); err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	return tx.QueryRowContext(ctx, `SELECT count(*) FROM usage_sessions WHERE account_id = $1`,
		e.AccountID).Scan(&res.SessionsKept)
}

// closeErasedAccount closes the account so that it can neither log in nor
// be found; without a hold its key and sealed fields are destroyed
// (crypto-shredding).
func closeErasedAccount(ctx context.Context, tx *sql.Tx, e store.Erasure) error {
	q := `UPDATE accounts SET status = $1, password_hash = '', email_index = NULL, mobile_index = NULL
		WHERE id = $2`
	if !e.KeepHeld {
		q = `UPDATE accounts SET status = $1, password_hash = '', email_index = NULL, mobile_index = NULL,
			wrapped_key = NULL, email_sealed = NULL, mobile_sealed = NULL,
			email_verified = FALSE, mobile_verified = FALSE
		WHERE id = $2`
	}
	if _, err := tx.ExecContext(ctx, q, store.StatusClosed, e.AccountID); err != nil {
		return fmt.Errorf("close account: %w", err)
	}
	return nil
}

// finishErasure completes (with e.KeepHeld: holds) the request and,
// unless e.KeepHeld, detaches every request of the account, clearing its
// texts, and writes the tombstone.
func finishErasure(ctx context.Context, tx *sql.Tx, e store.Erasure) error {
	status := store.RequestCompleted
	if e.KeepHeld {
		status = store.RequestHeld
	}
	if _, err := tx.ExecContext(ctx, `UPDATE privacy_requests SET status = $1, completed_at = $2, outcome = $3
		WHERE id = $4`, status, unix(e.At), e.Outcome, e.RequestID); err != nil {
		return fmt.Errorf("complete request: %w", err)
	}
	if e.KeepHeld {
		return nil
	}
	// Staff notes on telling the recipients of the account's requests
	// (Art. 19) go; which processors were told, and when, stays.
	if _, err := tx.ExecContext(ctx, `UPDATE request_recipients SET note = '', note_sealed = NULL
		WHERE (note <> '' OR note_sealed IS NOT NULL) AND request_id IN (SELECT id FROM privacy_requests WHERE account_id = $1 OR id = $2)`,
		e.AccountID, e.RequestID); err != nil {
		return fmt.Errorf("clear recipient notes: %w", err)
	}
	// The sealed texts could no longer be opened; plaintext written
	// before texts were sealed goes too, outcome included (it may quote a
	// staff note), except for the erasure's own.
	if _, err := tx.ExecContext(ctx, `UPDATE privacy_requests SET account_id = NULL, details = '',
			extended_reason = '', denied_reason = '', sealed = NULL,
			outcome = CASE WHEN id = $2 OR sealed IS NOT NULL THEN outcome ELSE '' END
		WHERE account_id = $1 OR id = $2`, e.AccountID, e.RequestID); err != nil {
		return fmt.Errorf("detach requests: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO erasure_tombstones (request_id, erased_at) VALUES ($1, $2)`,
		e.RequestID, unix(e.At)); err != nil {
		return fmt.Errorf("write tombstone: %w", mapErr(err, "tombstone already exists"))
	}
	return nil
}

// Tombstone implements store.PrivacyStore.
func (s *Store) Tombstone(ctx context.Context, requestID string) (*store.Tombstone, error) {
	var t store.Tombstone
	err := s.read(ctx, "tombstone", func(tx *sql.Tx) error {
		var at int64
		err := tx.QueryRowContext(ctx, `SELECT request_id, erased_at FROM erasure_tombstones WHERE request_id = $1`,
			requestID).Scan(&t.RequestID, &at)
		t.ErasedAt = fromUnix(at)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.NotFound, "no tombstone for this request")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// MergeRequestRecipients implements store.PrivacyStore.
func (s *Store) MergeRequestRecipients(ctx context.Context, requestID string, rs []store.RequestRecipient) error {
	return s.write(ctx, "merge request recipients", func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM privacy_requests WHERE id = $1`+s.d.forUpdate, requestID).Scan(&one); err != nil {
			return notFound(err, "privacy request not found")
		}
		for _, r := range rs {
			if r.Processor == "" {
				return errs.E(errs.Invalid, "a recipient needs a processor name")
			}
			var cats string
			var first, last int64
			err := tx.QueryRowContext(ctx, `SELECT categories, first_at, last_at FROM request_recipients
				WHERE request_id = $1 AND processor = $2`, requestID, r.Processor).Scan(&cats, &first, &last)
			if errors.Is(err, sql.ErrNoRows) {
				_, err = tx.ExecContext(ctx, `INSERT INTO request_recipients
					(request_id, processor, categories, first_at, last_at, status) VALUES ($1, $2, $3, $4, $5, $6)`,
					requestID, r.Processor, marshalStrings(r.Categories), unix(r.FirstAt), unix(r.LastAt), store.RecipientPending)
				if err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			old, err := unmarshalStrings(cats)
			if err != nil {
				return err
			}
			for _, c := range r.Categories {
				if !slices.Contains(old, c) {
					old = append(old, c)
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE request_recipients SET categories = $1, first_at = $2, last_at = $3
				WHERE request_id = $4 AND processor = $5`,
				marshalStrings(old), min(first, unix(r.FirstAt)), max(last, unix(r.LastAt)), requestID, r.Processor); err != nil {
				return err
			}
		}
		return nil
	})
}

// RequestRecipients implements store.PrivacyStore.
func (s *Store) RequestRecipients(ctx context.Context, requestID string) ([]store.RequestRecipient, error) {
	out := []store.RequestRecipient{}
	err := s.read(ctx, "request recipients", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT request_id, processor, categories, first_at, last_at, status,
				noted_at, noted_by, note, note_sealed
			FROM request_recipients WHERE request_id = $1 ORDER BY processor`, requestID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r store.RequestRecipient
			var cats string
			var first, last int64
			var noted sql.NullInt64
			var by sql.NullString
			if err := rows.Scan(&r.RequestID, &r.Processor, &cats, &first, &last, &r.Status, &noted, &by, &r.Note, &r.NoteSealed); err != nil {
				return err
			}
			if r.Categories, err = unmarshalStrings(cats); err != nil {
				return err
			}
			r.FirstAt, r.LastAt, r.NotedAt, r.NotedBy = fromUnix(first), fromUnix(last), nullTime(noted), by.String
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// NoteRequestRecipient implements store.PrivacyStore.
func (s *Store) NoteRequestRecipient(ctx context.Context, requestID, processor, status, note string, sealed []byte,
	by string, at time.Time) error {
	if note != "" && len(sealed) > 0 {
		return errs.E(errs.Invalid, "a recipient note is sealed or in plaintext, not both")
	}
	return s.write(ctx, "note request recipient", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE request_recipients SET status = $1, note = $2, note_sealed = $3, noted_by = $4,
				noted_at = $5
			WHERE request_id = $6 AND processor = $7`, status, note, nullBytes(sealed), nullString(by), unix(at), requestID, processor)
		return affected(res, err, "the request has no such recipient")
	})
}
