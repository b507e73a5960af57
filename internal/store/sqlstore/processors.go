package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

const processorCols = `id, name, purpose, categories, created_at`

func scanProcessor(row interface{ Scan(...any) error }) (*store.Processor, error) {
	var p store.Processor
	var cats string
	var created int64
	if err := row.Scan(&p.ID, &p.Name, &p.Purpose, &cats, &created); err != nil {
		return nil, err
	}
	var err error
	if p.Categories, err = unmarshalStrings(cats); err != nil {
		return nil, err
	}
	p.CreatedAt = fromUnix(created)
	return &p, nil
}

// CreateProcessor implements store.ProcessorStore.
func (s *Store) CreateProcessor(ctx context.Context, p *store.Processor) error {
	if p.ID == "" || p.Name == "" || p.Purpose == "" {
		return errs.E(errs.Invalid, "processor id, name and purpose are required")
	}
	return s.write(ctx, "create processor", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO processors (`+processorCols+`) VALUES ($1, $2, $3, $4, $5)`,
			p.ID, p.Name, p.Purpose, marshalStrings(p.Categories), unix(p.CreatedAt))
		return mapErr(err, "a processor with this name is already registered")
	})
}

// Processors implements store.ProcessorStore.
func (s *Store) Processors(ctx context.Context) ([]store.Processor, error) {
	var out []store.Processor
	err := s.read(ctx, "processors", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+processorCols+` FROM processors ORDER BY lower(name), id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanProcessor(rows)
			if err != nil {
				return err
			}
			out = append(out, *p)
		}
		return rows.Err()
	})
	return out, err
}

// ProcessorByName implements store.ProcessorStore.
func (s *Store) ProcessorByName(ctx context.Context, name string) (*store.Processor, error) {
	var out *store.Processor
	err := s.read(ctx, "processor by name", func(tx *sql.Tx) error {
		p, err := scanProcessor(tx.QueryRowContext(ctx, `SELECT `+processorCols+` FROM processors WHERE lower(name) = lower($1)`, name))
		if err != nil {
			return notFound(err, "no such processor")
		}
		out = p
		return nil
	})
	return out, err
}

// DeleteProcessor implements store.ProcessorStore.
func (s *Store) DeleteProcessor(ctx context.Context, idOrName string) (*store.Processor, error) {
	var out *store.Processor
	err := s.write(ctx, "delete processor", func(tx *sql.Tx) error {
		p, err := scanProcessor(tx.QueryRowContext(ctx, `SELECT `+processorCols+` FROM processors WHERE id = $1`, idOrName))
		if err != nil {
			p, err = scanProcessor(tx.QueryRowContext(ctx, `SELECT `+processorCols+` FROM processors WHERE lower(name) = lower($1)`, idOrName))
		}
		if err != nil {
			return notFound(err, "no such processor")
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM processors WHERE id = $1`, p.ID); err != nil {
			return err
		}
		out = p
		return nil
	})
	return out, err
}

// RecordTransfer implements store.ProcessorStore.
func (s *Store) RecordTransfer(ctx context.Context, accountID, processor string, categories []string, at time.Time) error {
	if accountID == "" || processor == "" {
		return errs.E(errs.Invalid, "a transfer needs an account and a processor")
	}
	return s.write(ctx, "record transfer", func(tx *sql.Tx) error {
		for _, c := range categories {
			_, err := tx.ExecContext(ctx, `INSERT INTO processor_transfers (account_id, processor, category, first_at, last_at)
				VALUES ($1, $2, $3, $4, $4)
				ON CONFLICT (account_id, processor, category) DO UPDATE SET last_at = excluded.last_at`,
				accountID, processor, c, unix(at))
			if err != nil {
				return mapErr(err, "transfer already recorded")
			}
		}
		return nil
	})
}

// ProcessorTransfers implements store.ProcessorStore.
func (s *Store) ProcessorTransfers(ctx context.Context, accountID string) ([]store.ProcessorTransfer, error) {
	out := []store.ProcessorTransfer{}
	err := s.read(ctx, "processor transfers", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT account_id, processor, category, first_at, last_at
			FROM processor_transfers WHERE account_id = $1 ORDER BY processor, category`, accountID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t store.ProcessorTransfer
			var first, last int64
			if err := rows.Scan(&t.AccountID, &t.Processor, &t.Category, &first, &last); err != nil {
				return err
			}
			t.FirstAt, t.LastAt = fromUnix(first), fromUnix(last)
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
