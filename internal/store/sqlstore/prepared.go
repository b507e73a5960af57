package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Statements of the registration path, prepared once when the store opens
// (see hotStatements).
const (
	sqlReserveFeed = `UPDATE peer_feed SET version = version + $1 WHERE id = 1 RETURNING version`
	sqlAllocFree   = `DELETE FROM ipam_free
		WHERE addr_offset = (SELECT min(addr_offset) FROM ipam_free)
		RETURNING addr_offset`
	// sqlAllocNext takes the allocator's next offset, up to $1, unless a
	// released offset is waiting (those go first).
	sqlAllocNext = `UPDATE ipam_state SET next_offset = next_offset + 1
		WHERE id = 1 AND next_offset <= $1 AND NOT EXISTS (SELECT 1 FROM ipam_free)
		RETURNING next_offset - 1`
	sqlInsertChange = `INSERT INTO peer_changes
		(version, device_id, public_key, ipv4, ipv6, removed, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	// sqlCreateDevice runs a whole registration on PostgreSQL, in its own
	// transaction (migration 00029; see createDeviceCall).
	sqlCreateDevice = `SELECT nitronet_create_device($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
)

// hotStatements are the statements every registration runs, prepared on
// the write pool when the store opens and used in transactions through
// Tx.StmtContext, which reuses a statement already prepared on the
// transaction's connection. On SQLite the driver otherwise compiles each
// statement anew: 15% of a registration's CPU time with a million devices
// present. (PostgreSQL's driver caches prepared statements itself.)
//
// They are prepared before any transaction runs: on SQLite the pool has a
// single connection, which a transaction holds.
type hotStatements struct {
	reserveFeed, allocFree, allocNext, insertDevice, insertChange *sql.Stmt
	// createDevice calls nitronet_create_device; nil unless
	// Store.createInOne.
	createDevice *sql.Stmt
}

func (s *Store) prepareHot(ctx context.Context) error {
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&s.hot.reserveFeed, sqlReserveFeed},
		{&s.hot.allocFree, sqlAllocFree},
		{&s.hot.allocNext, sqlAllocNext},
		{&s.hot.insertDevice, sqlInsertDevice},
		{&s.hot.insertChange, sqlInsertChange},
		{&s.hot.createDevice, sqlCreateDevice},
	} {
		if p.st == &s.hot.createDevice && !s.createInOne {
			continue
		}
		st, err := s.wdb.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare statements: %w", err)
		}
		*p.st = st
	}
	return nil
}

// close closes the prepared statements.
func (h *hotStatements) close() error {
	var err error
	for _, st := range []*sql.Stmt{h.reserveFeed, h.allocFree, h.allocNext, h.insertDevice, h.insertChange, h.createDevice} {
		if st != nil {
			err = errors.Join(err, st.Close())
		}
	}
	return err
}
