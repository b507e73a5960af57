package sqlstore

import "context"

// MainSchemaHousekeeping turns s's schema back, for a benchmark's
// comparison, to what the start-up housekeeping read through before
// migration 00030: no partial indexes of the plaintext rows, and
// devices_unindexed over every device without a name index.
func (s *Store) MainSchemaHousekeeping(ctx context.Context) error {
	for _, q := range []string{
		`DROP INDEX privacy_requests_plain`,
		`DROP INDEX inbox_plain`,
		`DROP INDEX devices_plain_name`,
		`DROP INDEX devices_unindexed`,
		`CREATE INDEX devices_unindexed ON devices (account_id) WHERE name_index IS NULL`,
	} {
		if _, err := s.wdb.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if s.d.name == "postgres" {
		_, err := s.wdb.ExecContext(ctx, `ANALYZE devices`)
		return err
	}
	return nil
}
