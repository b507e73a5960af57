package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// importRows is how many rows one multi-row INSERT of Import carries:
// 500 rows of at most 11 columns stay under both engines' limits on bound
// parameters (32,766 on SQLite, 65,535 on PostgreSQL).
const importRows = 500

// Import seeds the store in bulk, in one transaction: it inserts the
// accounts of accounts, then registers the devices of devices, and returns
// how many of each it inserted. It is meant for loading large data sets
// (benchmarks, a migration from another system), where one transaction per
// row would take too long; it uses multi-row INSERTs.
//
// Accounts are stored as CreateAccount stores them (an empty Status means
// active). Devices are stored as CreateDevice stores them, name index
// included (a device without one is left for devices.Service.IndexNames,
// as one written before names were indexed), with these
// differences: neither the account's status nor a device limit is checked,
// and addresses come from the allocator's next offsets only, never from
// the free list of released ones. Each device gets one peer-feed entry, in
// order, timestamped with the store's clock.
//
// On PostgreSQL it then vacuums and analyzes the tables it filled.
//
// On any error nothing is stored (an error of that vacuum comes after
// the import has committed). It returns Invalid for an empty ID or a
// malformed public key, Conflict for a taken ID or key, NotFound for a
// device of an unknown account and Unavailable "address pool exhausted"
// when the pool runs out. It holds the write lock (on SQLite, the only
// writer connection) until it is done.
func (s *Store) Import(ctx context.Context, accounts iter.Seq[store.Account], devices iter.Seq[store.Device]) (nAccounts, nDevices int, err error) {
	err = s.write(ctx, "import", func(tx *sql.Tx) error {
		if s.d.name == "sqlite" {
			restore, err := bigCache(ctx, tx)
			if err != nil {
				return err
			}
			defer restore()
		}
		var err error
		if nAccounts, err = s.importAccounts(ctx, tx, accounts); err != nil {
			return err
		}
		nDevices, err = s.importDevices(ctx, tx, devices)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	if s.d.name == "postgres" {
		// Autovacuum would get to the new rows later, in the middle of
		// whatever runs next: gather the planner's statistics and set
		// the visibility map (index-only scans of devices_account) now.
		if _, err := s.wdb.ExecContext(ctx, `VACUUM (ANALYZE) accounts, devices, peer_changes`); err != nil {
			return nAccounts, nDevices, fmt.Errorf("import: vacuum: %w", err)
		}
	}
	return nAccounts, nDevices, nil
}

func (s *Store) importAccounts(ctx context.Context, tx *sql.Tx, accounts iter.Seq[store.Account]) (int, error) {
	if accounts == nil {
		return 0, nil
	}
	ins := s.newBulkInsert(ctx, tx, `INSERT INTO accounts (`+accountColumns+`) VALUES `, 11)
	defer ins.close()
	n := 0
	for a := range accounts {
		if a.ID == "" {
			return 0, errs.E(errs.Invalid, "account id is empty")
		}
		if a.Status == "" {
			a.Status = store.StatusActive
		}
		if err := ins.add(a.ID, nullBytes(a.EmailSealed), nullBytes(a.MobileSealed), nullBytes(a.WrappedKey),
			nullBytes(a.EmailIndex), nullBytes(a.MobileIndex), a.PasswordHash,
			a.EmailVerified, a.MobileVerified, a.Status, unix(a.CreatedAt)); err != nil {
			return 0, mapErr(err, "account already exists")
		}
		n++
	}
	if err := ins.flush(); err != nil {
		return 0, mapErr(err, "account already exists")
	}
	return n, nil
}

func (s *Store) importDevices(ctx context.Context, tx *sql.Tx, devices iter.Seq[store.Device]) (int, error) {
	if devices == nil {
		return 0, nil
	}
	version, err := s.lockFeed(ctx, tx)
	if err != nil {
		return 0, err
	}
	var next int64
	if err := tx.QueryRowContext(ctx, `SELECT next_offset FROM ipam_state WHERE id = 1`).Scan(&next); err != nil {
		return 0, fmt.Errorf("read allocator: %w", err)
	}
	devs := s.newBulkInsert(ctx, tx, `INSERT INTO devices
		(id, account_id, name, name_sealed, public_key, addr_offset, ipv4, ipv6, created_at, updated_at, dns_blocking, key_created_at, name_index) VALUES `, 13)
	defer devs.close()
	feed := s.newBulkInsert(ctx, tx, `INSERT INTO peer_changes
		(version, device_id, public_key, ipv4, ipv6, removed, created_at) VALUES `, 7)
	defer feed.close()
	at := unix(s.now())
	n := 0
	for d := range devices {
		if d.ID == "" {
			return 0, errs.E(errs.Invalid, "device id is empty")
		}
		if d.Name != "" {
			return 0, errs.E(errs.Invalid, "device names are stored sealed, not in plaintext")
		}
		if err := checkPublicKey(d.PublicKey); err != nil {
			return 0, err
		}
		if next > s.pool.maxOffset {
			return 0, errs.E(errs.Unavailable, "address pool exhausted")
		}
		v4, v6 := s.pool.addrs(next)
		updated := d.UpdatedAt
		if updated.IsZero() {
			updated = d.CreatedAt
		}
		if err := devs.add(d.ID, d.AccountID, "", nullBytes(d.SealedName), d.PublicKey, next, v4.String(), v6.String(),
			unix(d.CreatedAt), unix(updated), d.DNSBlocking, unix(d.CreatedAt), nullBytes(d.NameIndex)); err != nil {
			return 0, mapErr(err, "device or public key already registered")
		}
		version++
		if err := feed.add(version, d.ID, d.PublicKey, v4.String(), v6.String(), false, at); err != nil {
			return 0, fmt.Errorf("append peer change: %w", err)
		}
		next++
		n++
	}
	if err := devs.flush(); err != nil {
		return 0, mapErr(err, "device or public key already registered")
	}
	if err := feed.flush(); err != nil {
		return 0, fmt.Errorf("append peer change: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE ipam_state SET next_offset = $1 WHERE id = 1`, next); err != nil {
		return 0, fmt.Errorf("advance allocator: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE peer_feed SET version = $1 WHERE id = 1`, version); err != nil {
		return 0, fmt.Errorf("advance peer feed: %w", err)
	}
	return n, nil
}

// importCacheKiB is the SQLite page cache Import works with: inserting a
// million devices with random keys into the default 2 MiB cache spends
// most of its time re-reading index pages.
const importCacheKiB = 256 << 10

// bigCache raises the page cache of tx's connection (SQLite) for an import
// and returns a function that restores it.
func bigCache(ctx context.Context, tx *sql.Tx) (func(), error) {
	var was int64
	if err := tx.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&was); err != nil {
		return nil, fmt.Errorf("read cache size: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `PRAGMA cache_size = -`+strconv.Itoa(importCacheKiB)); err != nil {
		return nil, fmt.Errorf("set cache size: %w", err)
	}
	return func() {
		_, _ = tx.ExecContext(ctx, `PRAGMA cache_size = `+strconv.FormatInt(was, 10))
	}, nil
}

// bulkInsert batches rows into multi-row INSERT statements of importRows
// rows, prepared once.
type bulkInsert struct {
	ctx        context.Context
	tx         *sql.Tx
	head       string
	cols       int
	positional bool // "?" placeholders instead of "$N"
	args       []any
	full       *sql.Stmt
}

// newBulkInsert returns a bulkInsert for INSERT head with cols columns.
// On SQLite it writes anonymous "?" placeholders: the driver looks up the
// name of every numbered parameter by a linear scan, which makes binding
// thousands of "$N" parameters quadratic.
func (s *Store) newBulkInsert(ctx context.Context, tx *sql.Tx, head string, cols int) *bulkInsert {
	return &bulkInsert{ctx: ctx, tx: tx, head: head, cols: cols, positional: s.d.name == "sqlite",
		args: make([]any, 0, cols*importRows)}
}

// add queues one row, executing a full batch when there is one.
func (b *bulkInsert) add(row ...any) error {
	b.args = append(b.args, row...)
	if len(b.args) < b.cols*importRows {
		return nil
	}
	if b.full == nil {
		stmt, err := b.tx.PrepareContext(b.ctx, b.statement(importRows))
		if err != nil {
			return err
		}
		b.full = stmt
	}
	_, err := b.full.ExecContext(b.ctx, b.args...)
	b.args = b.args[:0]
	return err
}

// flush executes the queued rows.
func (b *bulkInsert) flush() error {
	if len(b.args) == 0 {
		return nil
	}
	_, err := b.tx.ExecContext(b.ctx, b.statement(len(b.args)/b.cols), b.args...)
	b.args = b.args[:0]
	return err
}

func (b *bulkInsert) close() {
	if b.full != nil {
		b.full.Close()
	}
}

// statement returns the INSERT for rows rows: head followed by
// ($1, ..., $cols), ($cols+1, ...), ... or (?, ..., ?), ...
func (b *bulkInsert) statement(rows int) string {
	var sb strings.Builder
	sb.WriteString(b.head)
	p := 1
	for r := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range b.cols {
			if c > 0 {
				sb.WriteString(", ")
			}
			if b.positional {
				sb.WriteByte('?')
			} else {
				sb.WriteByte('$')
				sb.WriteString(strconv.Itoa(p))
				p++
			}
		}
		sb.WriteByte(')')
	}
	return sb.String()
}
