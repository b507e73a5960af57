package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

const policyCols = `id, kind, version, material, body, published_at, published_by`

func scanPolicy(row interface{ Scan(...any) error }) (*store.PolicyDocument, error) {
	var d store.PolicyDocument
	var published int64
	if err := row.Scan(&d.ID, &d.Kind, &d.Version, &d.Material, &d.Body, &published, &d.PublishedBy); err != nil {
		return nil, err
	}
	d.PublishedAt = fromUnix(published)
	return &d, nil
}

// PublishPolicy implements store.PolicyStore. Concurrent publications of
// one kind cannot get the same version: the unique index on (kind,
// version) makes the loser fail with Conflict.
func (s *Store) PublishPolicy(ctx context.Context, d *store.PolicyDocument, run *store.NoticeRun) error {
	if d.ID == "" || (d.Kind != store.PolicyPrivacy && d.Kind != store.PolicyTerms) || d.PublishedBy == "" {
		return errs.E(errs.Invalid, "policy id, kind (privacy or terms) and publisher are required")
	}
	return s.write(ctx, "publish policy", func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(max(version), 0) FROM policy_documents WHERE kind = $1`,
			d.Kind).Scan(&v); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO policy_documents (`+policyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			d.ID, d.Kind, v+1, d.Material, d.Body, unix(d.PublishedAt), d.PublishedBy); err != nil {
			return mapErr(err, "a policy version was published concurrently; try again")
		}
		d.Version = v + 1
		if run != nil {
			return insertNoticeRun(ctx, tx, run)
		}
		return nil
	})
}

// PolicyDocument implements store.PolicyStore.
func (s *Store) PolicyDocument(ctx context.Context, id string) (*store.PolicyDocument, error) {
	var d *store.PolicyDocument
	err := s.read(ctx, "policy document", func(tx *sql.Tx) error {
		var err error
		d, err = scanPolicy(tx.QueryRowContext(ctx, `SELECT `+policyCols+` FROM policy_documents WHERE id = $1`, id))
		return notFound(err, "policy document not found")
	})
	return d, err
}

// PolicyDocuments implements store.PolicyStore.
func (s *Store) PolicyDocuments(ctx context.Context, kind string) ([]store.PolicyDocument, error) {
	out := []store.PolicyDocument{}
	err := s.read(ctx, "policy documents", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+policyCols+` FROM policy_documents
			WHERE ($1 = '' OR kind = $1) ORDER BY kind, version DESC`, kind)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanPolicy(rows)
			if err != nil {
				return err
			}
			out = append(out, *d)
		}
		return rows.Err()
	})
	return out, err
}

// AcceptPolicy implements store.PolicyStore.
func (s *Store) AcceptPolicy(ctx context.Context, accountID, documentID string, at time.Time) error {
	return s.write(ctx, "accept policy", func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM policy_documents WHERE id = $1`, documentID).Scan(&one); err != nil {
			return notFound(err, "policy document not found")
		}
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = $1`, accountID).Scan(&one); err != nil {
			return notFound(err, "account not found")
		}
		// A closed account's acceptance carries its closing time, from
		// which its retention counts (the triggers of migration 00017
		// stamp it for accounts closed later).
		_, err := tx.ExecContext(ctx, `INSERT INTO policy_acceptances (account_id, document_id, accepted_at, closed_at)
			SELECT $1, $2, $3, closed_at FROM accounts WHERE id = $1
			ON CONFLICT (account_id, document_id) DO NOTHING`, accountID, documentID, unix(at))
		return mapErr(err, "already accepted")
	})
}

// Acceptances implements store.PolicyStore.
func (s *Store) Acceptances(ctx context.Context, accountID string) ([]store.Acceptance, error) {
	out := []store.Acceptance{}
	err := s.read(ctx, "acceptances", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT a.account_id, a.document_id, d.kind, d.version, a.accepted_at
			FROM policy_acceptances a JOIN policy_documents d ON d.id = a.document_id
			WHERE a.account_id = $1 ORDER BY a.accepted_at DESC, d.kind, d.version DESC`, accountID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a store.Acceptance
			var at int64
			if err := rows.Scan(&a.AccountID, &a.DocumentID, &a.Kind, &a.Version, &at); err != nil {
				return err
			}
			a.AcceptedAt = fromUnix(at)
			out = append(out, a)
		}
		return rows.Err()
	})
	return out, err
}
