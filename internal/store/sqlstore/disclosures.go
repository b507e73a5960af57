package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// disclosureCols are the columns scanDisclosure reads, in order.
const disclosureCols = "id, reference, authority, jurisdiction, legal_basis, type, received_at, scope_requested, " +
	"decision, categories_disclosed, fields_disclosed, gag_until, gag_notified_at, recorded_by, recorded_at"

// disclosureColsOf returns disclosureCols with each name prefixed, e.g. by
// a table alias.
func disclosureColsOf(prefix string) string {
	return prefix + strings.ReplaceAll(disclosureCols, ", ", ", "+prefix)
}

// marshalStrings stores a string list as a JSON array ("[]" for none).
func marshalStrings(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

// unmarshalStrings reads a list stored by marshalStrings.
func unmarshalStrings(s string) ([]string, error) {
	out := []string{}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decode list column: %w", err)
	}
	return out, nil
}

func scanDisclosure(row interface{ Scan(...any) error }) (*store.Disclosure, error) {
	var d store.Disclosure
	var received, recorded int64
	var gag, notified sql.NullInt64
	var cats, fields string
	if err := row.Scan(&d.ID, &d.Reference, &d.Authority, &d.Jurisdiction, &d.LegalBasis, &d.Type, &received,
		&d.ScopeRequested, &d.Decision, &cats, &fields, &gag, &notified, &d.RecordedBy, &recorded); err != nil {
		return nil, err
	}
	var err error
	if d.CategoriesDisclosed, err = unmarshalStrings(cats); err != nil {
		return nil, err
	}
	if d.FieldsDisclosed, err = unmarshalStrings(fields); err != nil {
		return nil, err
	}
	d.ReceivedAt, d.RecordedAt = fromUnix(received), fromUnix(recorded)
	d.GagUntil, d.GagNotifiedAt = nullTime(gag), nullTime(notified)
	d.AccountIDs = []string{}
	return &d, nil
}

// CreateDisclosure implements store.DisclosureStore.
func (s *Store) CreateDisclosure(ctx context.Context, d *store.Disclosure) error {
	if d.ID == "" || d.Reference == "" || d.Authority == "" || d.Decision == "" || d.RecordedBy == "" {
		return errs.E(errs.Invalid, "disclosure id, reference, authority, decision and recorder are required")
	}
	return s.write(ctx, "create disclosure", func(tx *sql.Tx) error {
		var gag, notified sql.NullInt64
		if d.GagUntil != nil {
			gag = sql.NullInt64{Int64: unix(*d.GagUntil), Valid: true}
		}
		if d.GagNotifiedAt != nil {
			notified = sql.NullInt64{Int64: unix(*d.GagNotifiedAt), Valid: true}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO disclosures (`+disclosureCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			d.ID, d.Reference, d.Authority, d.Jurisdiction, d.LegalBasis, d.Type, unix(d.ReceivedAt), d.ScopeRequested,
			d.Decision, marshalStrings(d.CategoriesDisclosed), marshalStrings(d.FieldsDisclosed), gag, notified,
			d.RecordedBy, unix(d.RecordedAt))
		if err != nil {
			return mapErr(err, "a disclosure with this authority and reference is already recorded")
		}
		for _, a := range d.AccountIDs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO disclosure_accounts (disclosure_id, account_id) VALUES ($1, $2)`,
				d.ID, a); err != nil {
				return mapErr(err, "an account is named twice")
			}
		}
		return nil
	})
}

// accountsOf fills the AccountIDs of ds from disclosure_accounts.
func accountsOf(ctx context.Context, tx *sql.Tx, ds []*store.Disclosure) error {
	for _, d := range ds {
		rows, err := tx.QueryContext(ctx, `SELECT account_id FROM disclosure_accounts WHERE disclosure_id = $1
			ORDER BY account_id`, d.ID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var a string
			if err := rows.Scan(&a); err != nil {
				rows.Close()
				return err
			}
			d.AccountIDs = append(d.AccountIDs, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Disclosure implements store.DisclosureStore.
func (s *Store) Disclosure(ctx context.Context, id string) (*store.Disclosure, error) {
	var out *store.Disclosure
	err := s.readSnapshot(ctx, "disclosure", func(tx *sql.Tx) error {
		d, err := scanDisclosure(tx.QueryRowContext(ctx, `SELECT `+disclosureCols+` FROM disclosures WHERE id = $1`, id))
		if err != nil {
			return notFound(err, "no such disclosure")
		}
		if err := accountsOf(ctx, tx, []*store.Disclosure{d}); err != nil {
			return err
		}
		out = d
		return nil
	})
	return out, err
}

// queryDisclosures scans every disclosure the query returns.
func queryDisclosures(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]*store.Disclosure, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Disclosure
	for rows.Next() {
		d, err := scanDisclosure(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func disclosureValues(ds []*store.Disclosure) []store.Disclosure {
	out := make([]store.Disclosure, 0, len(ds))
	for _, d := range ds {
		out = append(out, *d)
	}
	return out
}

// Disclosures implements store.DisclosureStore.
func (s *Store) Disclosures(ctx context.Context, from, to time.Time) ([]store.Disclosure, error) {
	lo, hi := int64(-1<<62), int64(1<<62)
	if !from.IsZero() {
		lo = unix(from)
	}
	if !to.IsZero() {
		hi = unix(to)
	}
	var out []store.Disclosure
	err := s.readSnapshot(ctx, "disclosures", func(tx *sql.Tx) error {
		ds, err := queryDisclosures(ctx, tx, `SELECT `+disclosureCols+` FROM disclosures
			WHERE received_at >= $1 AND received_at < $2 ORDER BY received_at, id`, lo, hi)
		if err != nil {
			return err
		}
		if err := accountsOf(ctx, tx, ds); err != nil {
			return err
		}
		out = disclosureValues(ds)
		return nil
	})
	return out, err
}

// DisclosuresAbout implements store.DisclosureStore.
func (s *Store) DisclosuresAbout(ctx context.Context, accountID string) ([]store.Disclosure, error) {
	var out []store.Disclosure
	err := s.read(ctx, "disclosures about account", func(tx *sql.Tx) error {
		ds, err := queryDisclosures(ctx, tx, `SELECT `+disclosureColsOf("d.")+` FROM disclosures d
			JOIN disclosure_accounts da ON da.disclosure_id = d.id
			WHERE da.account_id = $1 ORDER BY d.received_at, d.id`, accountID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			d.AccountIDs = []string{accountID}
		}
		out = disclosureValues(ds)
		return nil
	})
	return out, err
}

// DueDisclosureNotices implements store.DisclosureStore.
func (s *Store) DueDisclosureNotices(ctx context.Context, now time.Time, limit int) ([]store.DisclosureNotice, error) {
	if limit < 1 {
		return nil, errs.E(errs.Invalid, "limit must be positive")
	}
	var out []store.DisclosureNotice
	err := s.read(ctx, "due disclosure notices", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+disclosureColsOf("d.")+`, da.account_id FROM disclosures d
			JOIN disclosure_accounts da ON da.disclosure_id = d.id
			WHERE da.notified_at IS NULL AND (d.gag_until IS NULL OR d.gag_until <= $1)
			ORDER BY d.received_at, d.id, da.account_id LIMIT $2`, unix(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var account string
			d, err := scanDisclosure(rowScanFunc(func(dest ...any) error { return rows.Scan(append(dest, &account)...) }))
			if err != nil {
				return err
			}
			d.AccountIDs = []string{account}
			out = append(out, store.DisclosureNotice{Disclosure: *d, AccountID: account})
		}
		return rows.Err()
	})
	return out, err
}

// rowScanFunc adapts a function to the Scan interface.
type rowScanFunc func(dest ...any) error

func (f rowScanFunc) Scan(dest ...any) error { return f(dest...) }

// ClaimDisclosureNotice implements store.DisclosureStore.
func (s *Store) ClaimDisclosureNotice(ctx context.Context, disclosureID, accountID string, at time.Time) (bool, error) {
	claimed := false
	err := s.write(ctx, "claim disclosure notice", func(tx *sql.Tx) error {
		claimed = false
		res, err := tx.ExecContext(ctx, `UPDATE disclosure_accounts SET notified_at = $1
			WHERE disclosure_id = $2 AND account_id = $3 AND notified_at IS NULL`, unix(at), disclosureID, accountID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM disclosure_accounts WHERE disclosure_id = $1 AND account_id = $2`,
				disclosureID, accountID).Scan(&one)
			return notFound(err, "the disclosure does not name this account")
		}
		claimed = true
		_, err = tx.ExecContext(ctx, `UPDATE disclosures SET gag_notified_at = $1 WHERE id = $2 AND gag_notified_at IS NULL
			AND NOT EXISTS (SELECT 1 FROM disclosure_accounts WHERE disclosure_id = $2 AND notified_at IS NULL)`,
			unix(at), disclosureID)
		return err
	})
	return claimed, err
}

// UnclaimDisclosureNotice implements store.DisclosureStore.
func (s *Store) UnclaimDisclosureNotice(ctx context.Context, disclosureID, accountID string) error {
	return s.write(ctx, "unclaim disclosure notice", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE disclosure_accounts SET notified_at = NULL
			WHERE disclosure_id = $1 AND account_id = $2`, disclosureID, accountID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE disclosures SET gag_notified_at = NULL WHERE id = $1`, disclosureID)
		return err
	})
}
