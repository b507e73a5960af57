package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

const breachCols = `id, detected_at, nature, categories, people, records, consequences, measures_taken,
	measures_proposed, risk, status, authority_notified_at, authority_reference, recorded_by, recorded_at,
	updated_at, closed_at`

func scanBreach(row interface{ Scan(...any) error }) (*store.Breach, error) {
	var b store.Breach
	var cats string
	var detected, recorded, updated int64
	var people, records, notified, closed sql.NullInt64
	if err := row.Scan(&b.ID, &detected, &b.Nature, &cats, &people, &records, &b.Consequences, &b.MeasuresTaken,
		&b.MeasuresProposed, &b.Risk, &b.Status, &notified, &b.AuthorityReference, &b.RecordedBy, &recorded,
		&updated, &closed); err != nil {
		return nil, err
	}
	var err error
	if b.Categories, err = unmarshalStrings(cats); err != nil {
		return nil, err
	}
	b.DetectedAt, b.RecordedAt, b.UpdatedAt = fromUnix(detected), fromUnix(recorded), fromUnix(updated)
	b.People, b.Records = nullInt(people), nullInt(records)
	b.AuthorityNotifiedAt, b.ClosedAt = nullTime(notified), nullTime(closed)
	return &b, nil
}

// nullInt converts an optional stored number.
func nullInt(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.Int64
	return &v
}

// optInt stores an optional number (nil as NULL).
func optInt(n *int64) sql.NullInt64 {
	if n == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *n, Valid: true}
}

// CreateBreach implements store.BreachStore. It returns Invalid for an
// empty id, nature, status or staff member.
func (s *Store) CreateBreach(ctx context.Context, b *store.Breach) error {
	if b.ID == "" || b.Nature == "" || b.Status == "" || b.RecordedBy == "" {
		return errs.E(errs.Invalid, "breach id, nature, status and recorder are required")
	}
	return s.write(ctx, "create breach", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO breaches (`+breachCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
			b.ID, unix(b.DetectedAt), b.Nature, marshalStrings(b.Categories), optInt(b.People), optInt(b.Records),
			b.Consequences, b.MeasuresTaken, b.MeasuresProposed, b.Risk, b.Status, optUnix(b.AuthorityNotifiedAt),
			b.AuthorityReference, b.RecordedBy, unix(b.RecordedAt), unix(b.UpdatedAt), optUnix(b.ClosedAt))
		return mapErr(err, "breach already exists")
	})
}

// Breach implements store.BreachStore.
func (s *Store) Breach(ctx context.Context, id string) (*store.Breach, error) {
	var b *store.Breach
	err := s.read(ctx, "breach", func(tx *sql.Tx) error {
		var err error
		b, err = scanBreach(tx.QueryRowContext(ctx, `SELECT `+breachCols+` FROM breaches WHERE id = $1`, id))
		return notFound(err, "breach not found")
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Breaches implements store.BreachStore.
func (s *Store) Breaches(ctx context.Context) ([]store.Breach, error) {
	out := []store.Breach{}
	err := s.read(ctx, "breaches", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+breachCols+` FROM breaches ORDER BY detected_at DESC, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			b, err := scanBreach(rows)
			if err != nil {
				return err
			}
			out = append(out, *b)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateBreach implements store.BreachStore.
func (s *Store) UpdateBreach(ctx context.Context, id string, fn func(*store.Breach) error) (*store.Breach, error) {
	var b *store.Breach
	err := s.write(ctx, "update breach", func(tx *sql.Tx) error {
		var err error
		b, err = scanBreach(tx.QueryRowContext(ctx, `SELECT `+breachCols+` FROM breaches WHERE id = $1`+s.d.forUpdate, id))
		if err != nil {
			return notFound(err, "breach not found")
		}
		if err := fn(b); err != nil {
			return err
		}
		if b.Nature == "" || b.Status == "" {
			return errs.E(errs.Invalid, "a breach keeps its nature and status")
		}
		_, err = tx.ExecContext(ctx, `UPDATE breaches SET detected_at = $1, nature = $2, categories = $3, people = $4,
				records = $5, consequences = $6, measures_taken = $7, measures_proposed = $8, risk = $9, status = $10,
				authority_notified_at = $11, authority_reference = $12, updated_at = $13, closed_at = $14
			WHERE id = $15`,
			unix(b.DetectedAt), b.Nature, marshalStrings(b.Categories), optInt(b.People), optInt(b.Records),
			b.Consequences, b.MeasuresTaken, b.MeasuresProposed, b.Risk, b.Status, optUnix(b.AuthorityNotifiedAt),
			b.AuthorityReference, unix(b.UpdatedAt), optUnix(b.ClosedAt), id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.Breach(ctx, id)
}

// CountUnnotifiedBreaches implements store.BreachStore.
func (s *Store) CountUnnotifiedBreaches(ctx context.Context, detectedBefore time.Time, riskUnlikely string) (int, error) {
	var n int
	err := s.read(ctx, "count unnotified breaches", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM breaches
			WHERE status = $1 AND authority_notified_at IS NULL AND risk <> $2 AND detected_at < $3`,
			store.BreachOpen, riskUnlikely, unix(detectedBefore)).Scan(&n)
	})
	return n, err
}
