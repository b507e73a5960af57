package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/wgkey"
)

const deviceColumns = `id, account_id, name_sealed, name, public_key, ipv4, ipv6, dns_blocking, created_at, updated_at, key_created_at, name_index`

func scanDevice(row interface{ Scan(...any) error }) (*store.Device, error) {
	var d store.Device
	var v4, v6 string
	var created, updated, keyCreated int64
	if err := row.Scan(&d.ID, &d.AccountID, &d.SealedName, &d.Name, &d.PublicKey, &v4, &v6, &d.DNSBlocking, &created, &updated, &keyCreated, &d.NameIndex); err != nil {
		return nil, err
	}
	var err error
	if d.IPv4, err = netip.ParseAddr(v4); err != nil {
		return nil, fmt.Errorf("device %s: bad ipv4: %w", d.ID, err)
	}
	if d.IPv6, err = netip.ParseAddr(v6); err != nil {
		return nil, fmt.Errorf("device %s: bad ipv6: %w", d.ID, err)
	}
	d.CreatedAt, d.UpdatedAt, d.KeyCreatedAt = fromUnix(created), fromUnix(updated), fromUnix(keyCreated)
	return &d, nil
}

// checkPublicKey returns Invalid unless k is a base64 WireGuard public key
// (44 characters, 32 bytes, not all zero).
func checkPublicKey(k string) error {
	if _, err := wgkey.ParsePublic(k); err != nil {
		return errs.Wrap(errs.Invalid, err, "malformed public key")
	}
	return nil
}

// CreateDevice allocates d's tunnel addresses, inserts d and appends it to
// the peer feed, in one transaction. On success d.IPv4 and d.IPv6 are set,
// a zero d.UpdatedAt is set to d.CreatedAt, and both times are set to their
// stored form (whole seconds, UTC).
//
// It returns Invalid for an empty ID, a malformed public key or a plaintext
// Name (names are stored sealed), NotFound for
// an unknown account, Precondition if the account is not active or already
// has limit devices (so limit <= 0 allows none), Conflict if the public key
// or the device ID is taken, Conflict with field "name" if another device
// of the account has d.NameIndex (a nil NameIndex is not checked: the
// device is left for IndexDeviceNames), and Unavailable "address pool
// exhausted" when no address is left. d.KeyCreatedAt is set to
// d.CreatedAt.
//
// Allocation pops the lowest offset from the free list, or else takes the
// allocator's next offset; it never scans the device table. On PostgreSQL
// the transaction is one call of a database function (createDeviceCall).
func (s *Store) CreateDevice(ctx context.Context, d *store.Device, limit int) error {
	if d.ID == "" {
		return errs.E(errs.Invalid, "device id is empty")
	}
	if d.Name != "" {
		return errs.E(errs.Invalid, "device names are stored sealed, not in plaintext")
	}
	if err := checkPublicKey(d.PublicKey); err != nil {
		return err
	}
	if !d.DNSBlocking.Valid() {
		return errs.E(errs.Invalid, "invalid DNS blocking set %d", d.DNSBlocking)
	}
	updated := d.UpdatedAt
	if updated.IsZero() {
		updated = d.CreatedAt
	}
	if s.createInOne {
		off, err := s.createDeviceCall(ctx, d, limit, updated)
		if err == nil {
			d.IPv4, d.IPv6 = s.pool.addrs(off)
			d.CreatedAt, d.UpdatedAt = fromUnix(unix(d.CreatedAt)), fromUnix(unix(updated))
			d.KeyCreatedAt = d.CreatedAt
			return nil
		}
		if !errors.Is(err, errRefused) {
			return fmt.Errorf("create device: %w", err)
		}
		// Refused: the transaction below finds out why, or registers the
		// device if what refused it has changed since.
	}
	var v4, v6 netip.Addr
	err := s.write(ctx, "create device", func(tx *sql.Tx) error {
		base, err := s.reserveFeed(ctx, tx, 1)
		if err != nil {
			return err
		}
		offset, err := s.allocate(ctx, tx)
		if err != nil {
			return err
		}
		v4, v6 = s.pool.addrs(offset)
		// The admission rules are conditions of the INSERT itself, so the
		// usual case is one round trip; only a refusal asks why.
		res, err := tx.StmtContext(ctx, s.hot.insertDevice).ExecContext(ctx,
			d.ID, d.AccountID, nullBytes(d.SealedName), d.PublicKey, offset, v4.String(), v6.String(),
			unix(d.CreatedAt), unix(updated), limit, d.DNSBlocking, nullBytes(d.NameIndex))
		if err != nil {
			return mapDeviceErr(err, "device already exists")
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return refusal(ctx, tx, d, limit)
		}
		return s.insertChanges(ctx, tx, base, store.PeerChange{Peer: store.Peer{
			DeviceID: d.ID, PublicKey: d.PublicKey, IPv4: v4, IPv6: v6,
		}})
	})
	if err != nil {
		return err
	}
	d.IPv4, d.IPv6 = v4, v6
	d.CreatedAt, d.UpdatedAt = fromUnix(unix(d.CreatedAt)), fromUnix(unix(updated))
	d.KeyCreatedAt = d.CreatedAt
	return nil
}

// errRefused is createDeviceCall's error when an admission condition of
// the insert refused the device.
var errRefused = errors.New("device refused")

// createDeviceCall registers d through nitronet_create_device (PostgreSQL,
// migration 00029): the statements of CreateDevice's transaction, run by
// the server in one call, which is its own transaction. It returns the
// address offset, errRefused if the insert's admission conditions refused
// the device, Unavailable if the pool is exhausted and otherwise what
// CreateDevice returns. On any error nothing is stored.
//
// One round trip instead of six (begin, the five statements, commit):
// the feed lock is held only while the server runs the function, not
// across round trips, so concurrent registrations wait for each other
// that much less.
func (s *Store) createDeviceCall(ctx context.Context, d *store.Device, limit int, updated time.Time) (int64, error) {
	var off int64
	err := s.hot.createDevice.QueryRowContext(ctx,
		d.ID, d.AccountID, nullBytes(d.SealedName), d.PublicKey, unix(d.CreatedAt), unix(updated),
		limit, d.DNSBlocking, nullBytes(d.NameIndex), s.pool.maxOffset,
		s.pool.v4.Addr().String(), s.pool.v6.Addr().String(), unix(s.now())).Scan(&off)
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return off, nil
	case errors.As(err, &pe) && pe.Code == "NN001":
		return 0, errs.E(errs.Unavailable, "address pool exhausted")
	case errors.As(err, &pe) && pe.Code == "NN002":
		return 0, errRefused
	}
	return 0, mapDeviceErr(err, "device already exists")
}

// sqlInsertDevice inserts a device ($1..$9 and $11, its DNS blocking set;
// $3 is its sealed name, $12 its name index, and its key is registered
// when it was created, $8) if its account ($2) is active, has fewer than
// $10 devices, no device has its key ($4) and none of the account's its
// name index. Every condition is an indexed lookup: accounts by primary
// key, the account's devices through devices_account (covering), the key
// through devices_public_key, the name index through
// devices_account_name_index.
const sqlInsertDevice = `INSERT INTO devices
	(id, account_id, name, name_sealed, public_key, addr_offset, ipv4, ipv6, created_at, updated_at, dns_blocking, key_created_at, name_index)
	SELECT $1, $2, '', $3, $4, $5, $6, $7, $8, $9, $11, $8, $12
	WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $2 AND status = 'active')
	AND (SELECT count(*) FROM devices WHERE account_id = $2) < $10
	AND NOT EXISTS (SELECT 1 FROM devices WHERE public_key = $4)
	AND NOT EXISTS (SELECT 1 FROM devices WHERE account_id = $2 AND name_index = $12)`

// sqlRefusal reads what sqlInsertDevice checks, for account $1, key $2
// and name index $3.
const sqlRefusal = `SELECT status,
		(SELECT count(*) FROM devices WHERE account_id = $1),
		EXISTS (SELECT 1 FROM devices WHERE public_key = $2),
		EXISTS (SELECT 1 FROM devices WHERE account_id = $1 AND name_index = $3)
	FROM accounts WHERE id = $1`

// refusal returns why sqlInsertDevice inserted nothing: NotFound for an
// unknown account, Precondition if it is not active or has limit devices,
// Conflict if the key is taken.
func refusal(ctx context.Context, tx *sql.Tx, d *store.Device, limit int) error {
	var status string
	var n int
	var taken, nameTaken bool
	err := tx.QueryRowContext(ctx, sqlRefusal, d.AccountID, d.PublicKey, nullBytes(d.NameIndex)).Scan(&status, &n, &taken, &nameTaken)
	switch {
	case err != nil:
		return notFound(err, "account not found")
	case status != store.StatusActive:
		return errs.E(errs.Precondition, "account is not active")
	case n >= limit:
		return errs.E(errs.Precondition, "device limit of %d reached", limit)
	case taken:
		return errs.E(errs.Conflict, "public key already registered")
	case nameTaken:
		return nameInUse()
	}
	return fmt.Errorf("device %s was not inserted for no known reason", d.ID)
}

// nameInUse is the Conflict for a name index another device of the
// account has.
func nameInUse() error {
	return errs.Field(errs.Conflict, "name", "another device of the account has this name")
}

// mapDeviceErr is mapErr for a statement on devices: a unique violation
// of devices_account_name_index is Conflict with field "name".
func mapDeviceErr(err error, conflictMsg string) error {
	if violates(err, "devices_account_name_index", "devices.name_index") {
		return nameInUse()
	}
	return mapErr(err, conflictMsg)
}

// nameFree returns nameInUse if a device of the account other than
// exceptID has name index ix.
func nameFree(ctx context.Context, tx *sql.Tx, accountID, exceptID string, ix []byte) error {
	var taken bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM devices
		WHERE account_id = $1 AND name_index = $2 AND id <> $3)`, accountID, ix, exceptID).Scan(&taken); err != nil {
		return err
	}
	if taken {
		return nameInUse()
	}
	return nil
}

// keyFree returns Conflict if a device already has public key k.
func keyFree(ctx context.Context, tx *sql.Tx, k string) error {
	var taken bool
	if err := tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM devices WHERE public_key = $1)`, k).Scan(&taken); err != nil {
		return err
	}
	if taken {
		return errs.E(errs.Conflict, "public key already registered")
	}
	return nil
}

// allocate returns a free address offset: the lowest released one, or else
// the allocator's next offset. The caller holds the feed lock.
//
// Each of the two statements finds nothing when the other applies, so
// allocate first tries the one that served the previous allocation: while
// the free list stays empty (or stays full) an allocation is one
// statement, and one round trip on PostgreSQL.
func (s *Store) allocate(ctx context.Context, tx *sql.Tx) (int64, error) {
	fromFree := func() (int64, bool, error) {
		var off int64
		err := tx.StmtContext(ctx, s.hot.allocFree).QueryRowContext(ctx).Scan(&off)
		return off, err == nil, noRows(err)
	}
	fromNext := func() (int64, bool, error) {
		var off int64
		err := tx.StmtContext(ctx, s.hot.allocNext).QueryRowContext(ctx, s.pool.maxOffset).Scan(&off)
		return off, err == nil, noRows(err)
	}
	first, second := fromFree, fromNext
	nextFirst := s.allocFromNext.Load()
	if nextFirst {
		first, second = fromNext, fromFree
	}
	off, ok, err := first()
	if err == nil && !ok {
		off, ok, err = second()
		nextFirst = !nextFirst
	}
	if err != nil {
		return 0, fmt.Errorf("allocate address: %w", err)
	}
	if !ok {
		return 0, errs.E(errs.Unavailable, "address pool exhausted")
	}
	s.allocFromNext.Store(nextFirst)
	return off, nil
}

// noRows returns nil for sql.ErrNoRows and err otherwise.
func noRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}

// lockFeed locks the feed counter row (on PostgreSQL; SQLite has a single
// writer) and returns the current feed version. Every transaction that
// changes devices calls it first, so such transactions are serialised and
// take their locks in one order.
func (s *Store) lockFeed(ctx context.Context, tx *sql.Tx) (int64, error) {
	var v int64
	if err := tx.QueryRowContext(ctx,
		`SELECT version FROM peer_feed WHERE id = 1`+s.d.forUpdate).Scan(&v); err != nil {
		return 0, fmt.Errorf("lock peer feed: %w", err)
	}
	return v, nil
}

// reserveFeed locks the feed counter row, as lockFeed does, and advances
// it by n in the same statement: it returns base, and the transaction's n
// changes get versions base+1 to base+n (see insertChanges). A transaction
// that knows up front how many changes it appends uses it instead of
// lockFeed and appendChanges, saving a round trip.
func (s *Store) reserveFeed(ctx context.Context, tx *sql.Tx, n int64) (int64, error) {
	var v int64
	if err := tx.StmtContext(ctx, s.hot.reserveFeed).QueryRowContext(ctx, n).Scan(&v); err != nil {
		return 0, fmt.Errorf("lock peer feed: %w", err)
	}
	return v - n, nil
}

// appendChanges appends changes to the feed with versions version+1,
// version+2, ... and advances the counter. version is the value lockFeed
// returned in the same transaction.
func (s *Store) appendChanges(ctx context.Context, tx *sql.Tx, version int64, changes ...store.PeerChange) error {
	if err := s.insertChanges(ctx, tx, version, changes...); err != nil {
		return err
	}
	version += int64(len(changes))
	if _, err := tx.ExecContext(ctx, `UPDATE peer_feed SET version = $1 WHERE id = 1`, version); err != nil {
		return fmt.Errorf("advance peer feed: %w", err)
	}
	return nil
}

// insertChanges inserts changes into the feed with versions base+1,
// base+2, ... without touching the counter.
func (s *Store) insertChanges(ctx context.Context, tx *sql.Tx, base int64, changes ...store.PeerChange) error {
	at := unix(s.now())
	ins := tx.StmtContext(ctx, s.hot.insertChange)
	for _, c := range changes {
		base++
		if _, err := ins.ExecContext(ctx,
			base, c.DeviceID, c.PublicKey, addrText(c.IPv4), addrText(c.IPv6), c.Removed, at); err != nil {
			return fmt.Errorf("append peer change: %w", err)
		}
	}
	return nil
}

// Devices lists the account's devices, oldest first (ties in creation time
// in insertion order). An unknown account has no devices.
func (s *Store) Devices(ctx context.Context, accountID string) ([]store.Device, error) {
	ds := []store.Device{}
	err := s.read(ctx, "list devices", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices
			WHERE account_id = $1 ORDER BY created_at, seq`, accountID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				return err
			}
			ds = append(ds, *d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// Device returns the account's device id. Another account's device is
// NotFound.
func (s *Store) Device(ctx context.Context, accountID, id string) (*store.Device, error) {
	var d *store.Device
	err := s.read(ctx, "device", func(tx *sql.Tx) error {
		var err error
		d, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices
			WHERE id = $1 AND account_id = $2`, id, accountID))
		return notFound(err, "device not found")
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// UpdateDevice applies u to the account's device, sets UpdatedAt to now if
// anything was given, and returns the updated device. A new public key
// appends to the peer feed a removal of the old key followed by the new
// peer, with the same addresses. A new name index must be free in the
// account; a new sealed name without one leaves the device unindexed. It
// returns NotFound for an unknown device or another account's, Invalid
// for a malformed key, Conflict if another device has the key and
// Conflict with field "name" if another device of the account has the
// name index. An empty u changes nothing.
func (s *Store) UpdateDevice(ctx context.Context, accountID, id string, u store.DeviceUpdate, now time.Time) (*store.Device, error) {
	if u.PublicKey != nil {
		if err := checkPublicKey(*u.PublicKey); err != nil {
			return nil, err
		}
	}
	if u.DNSBlocking != nil && !u.DNSBlocking.Valid() {
		return nil, errs.E(errs.Invalid, "invalid DNS blocking set %d", *u.DNSBlocking)
	}
	var d *store.Device
	err := s.write(ctx, "update device", func(tx *sql.Tx) error {
		var version int64
		if u.PublicKey != nil {
			var err error
			if version, err = s.lockFeed(ctx, tx); err != nil {
				return err
			}
		}
		var err error
		d, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices
			WHERE id = $1 AND account_id = $2`, id, accountID))
		if err != nil {
			return notFound(err, "device not found")
		}
		if u.SealedName == nil && u.NameIndex == nil && u.PublicKey == nil && u.DNSBlocking == nil {
			return nil
		}
		old := peerOf(d)
		if u.NameIndex != nil {
			if err := nameFree(ctx, tx, accountID, id, u.NameIndex); err != nil {
				return err
			}
			d.NameIndex = u.NameIndex
		} else if u.SealedName != nil {
			d.NameIndex = nil
		}
		if u.SealedName != nil {
			d.SealedName, d.Name = u.SealedName, ""
		}
		if u.DNSBlocking != nil {
			d.DNSBlocking = *u.DNSBlocking
		}
		rotated := u.PublicKey != nil && *u.PublicKey != d.PublicKey
		if rotated {
			if err := keyFree(ctx, tx, *u.PublicKey); err != nil {
				return err
			}
			d.PublicKey = *u.PublicKey
			d.KeyCreatedAt = fromUnix(unix(now))
		}
		d.UpdatedAt = fromUnix(unix(now))
		_, err = tx.ExecContext(ctx, `UPDATE devices SET name = $1, name_sealed = $2, public_key = $3, updated_at = $4,
			dns_blocking = $5, key_created_at = $6, name_index = $7 WHERE id = $8`, d.Name, nullBytes(d.SealedName), d.PublicKey, unix(now),
			d.DNSBlocking, unix(d.KeyCreatedAt), nullBytes(d.NameIndex), d.ID)
		if err != nil {
			return mapDeviceErr(err, "public key already registered")
		}
		if !rotated {
			return nil
		}
		return s.appendChanges(ctx, tx, version,
			store.PeerChange{Peer: old, Removed: true},
			store.PeerChange{Peer: peerOf(d)})
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// DeleteDevice removes the account's device, returns its address offset to
// the free list, ends its open session intervals at the current minute and
// replaces its entries in the peer feed by one removal naming only the
// device (see removeDevices). It returns NotFound for an unknown device or
// another account's.
func (s *Store) DeleteDevice(ctx context.Context, accountID, id string) error {
	return s.write(ctx, "delete device", func(tx *sql.Tx) error {
		version, err := s.lockFeed(ctx, tx)
		if err != nil {
			return err
		}
		_, err = s.removeDevices(ctx, tx, version, accountID, []string{id}, s.now())
		return err
	})
}

// removeDevices is the one way devices leave the store: DeleteDevice, the
// retention sweep (through DeleteDevice) and EraseAccount all use it. Inside
// tx, which holds the feed lock (version is what lockFeed returned), it
// deletes each of the account's devices ids, in order, returns its address
// offset to the free list, ends its open session intervals at end (to the
// minute) and turns each of the device's entries in the peer feed, the
// only other place that keeps its public keys (the current one and any it
// rotated away from) and its addresses, into a removal that names only
// the device; then it appends one such removal per device, for gateways
// already past those entries. No trace of its keys or addresses is left.
// Gateways drop such a peer by device ID, and the peer feed serves a
// gateway that cannot a snapshot instead (package peerfeed).
//
// A gateway replaying the feed from before the device's addition thus
// never configures it, and one that has it drops it at the first of its
// entries it reads; either way the device is gone once it caught up. The
// feed keeps its versions, so a cursor's age is judged as before.
//
// It returns the removed peers, and NotFound if an id is not a device of
// the account.
func (s *Store) removeDevices(ctx context.Context, tx *sql.Tx, version int64, accountID string, ids []string, end time.Time) ([]store.Peer, error) {
	changes := make([]store.PeerChange, 0, len(ids))
	peers := make([]store.Peer, 0, len(ids))
	for _, id := range ids {
		var p store.Peer
		var v4, v6 string
		var offset int64
		err := tx.QueryRowContext(ctx, `DELETE FROM devices WHERE id = $1 AND account_id = $2
			RETURNING id, public_key, ipv4, ipv6, addr_offset`, id, accountID).
			Scan(&p.DeviceID, &p.PublicKey, &v4, &v6, &offset)
		if err != nil {
			return nil, notFound(err, "device not found")
		}
		if p.IPv4, err = netip.ParseAddr(v4); err != nil {
			return nil, err
		}
		if p.IPv6, err = netip.ParseAddr(v6); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO ipam_free (addr_offset) VALUES ($1)`, offset); err != nil {
			return nil, fmt.Errorf("free address: %w", err)
		}
		if err := endDeviceSessions(ctx, tx, p.DeviceID, end); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE peer_changes SET public_key = '', ipv4 = '', ipv6 = '', removed = $1
			WHERE device_id = $2`, true, p.DeviceID); err != nil {
			return nil, fmt.Errorf("scrub peer feed: %w", err)
		}
		peers = append(peers, p)
		changes = append(changes, store.PeerChange{Peer: store.Peer{DeviceID: p.DeviceID}, Removed: true})
	}
	if len(changes) == 0 {
		return nil, nil
	}
	if err := s.appendChanges(ctx, tx, version, changes...); err != nil {
		return nil, err
	}
	return peers, nil
}

// addrText is an address as the peer feed stores it: its text form, or ""
// for none (a removal that names only its device).
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// accountDeviceIDs returns the ids of the account's devices in insertion
// order, inside tx.
func accountDeviceIDs(ctx context.Context, tx *sql.Tx, accountID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM devices WHERE account_id = $1 ORDER BY seq`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// PeerSnapshot reads every device as a peer, in no particular order, from
// one database snapshot: it calls begin with the feed version the snapshot
// corresponds to (applying the changes after that version gives the
// current set) and the number of devices, then each for every peer as its
// row is read from the cursor. It stops at and returns the first error begin or each returns,
// unwrapped.
//
// The read transaction stays open until the last row is handed over, so a
// slow each holds a read connection (and on PostgreSQL a snapshot) that
// long.
func (s *Store) PeerSnapshot(ctx context.Context, begin func(version, count int64) error, each func(store.Peer) error) error {
	var cbErr error
	err := s.readSnapshot(ctx, "peer snapshot", func(tx *sql.Tx) error {
		var version, count int64
		if err := tx.QueryRowContext(ctx, sqlSnapshotHead, firstOffset).Scan(&version, &count); err != nil {
			return err
		}
		if cbErr = begin(version, count); cbErr != nil {
			return cbErr
		}
		// The addresses are computed from the offset rather than read
		// and parsed: two text columns fewer per row is most of the cost
		// of reading a million rows.
		rows, err := tx.QueryContext(ctx, sqlSnapshot)
		if err != nil {
			return err
		}
		defer rows.Close()
		var p store.Peer
		var offset int64
		for rows.Next() {
			if err := rows.Scan(&p.DeviceID, &p.PublicKey, &offset); err != nil {
				return err
			}
			if offset < 0 || offset > s.pool.maxOffset+1 {
				return fmt.Errorf("device %s: address offset %d outside the pool", p.DeviceID, offset)
			}
			p.IPv4, p.IPv6 = s.pool.addrs(offset)
			if cbErr = each(p); cbErr != nil {
				return cbErr
			}
		}
		return rows.Err()
	})
	if cbErr != nil {
		return cbErr
	}
	return err
}

// sqlSnapshotHead reads the feed version and the number of devices,
// counted from the allocator instead of the devices table: every device
// holds one offset from firstOffset ($1) up to the next offset, and the
// free list holds the others, so this costs two primary-key lookups and a
// count of the (short) free list rather than a scan of an index with a
// million entries.
const sqlSnapshotHead = `SELECT f.version, s.next_offset - $1 - (SELECT count(*) FROM ipam_free)
	FROM peer_feed f, ipam_state s WHERE f.id = 1 AND s.id = 1`

// sqlSnapshot reads every device for a peer snapshot in storage order: a
// plain scan of the table on both engines (rowid order on SQLite). No
// order is asked for, because none is needed and on PostgreSQL reading a
// million rows through an index in seq order took 1.4-1.7 s against
// 0.8-1.0 s for the sequential scan (EXPLAIN ANALYZE, docs/benchmarks.md).
const sqlSnapshot = `SELECT id, public_key, addr_offset FROM devices`

// peerOf returns d as a peer.
func peerOf(d *store.Device) store.Peer {
	return store.Peer{DeviceID: d.ID, PublicKey: d.PublicKey, IPv4: d.IPv4, IPv6: d.IPv6}
}

// scanPeer scans a peer, from a device or a feed entry. Empty addresses
// (a removal that names only its device) are left invalid.
func scanPeer(row interface{ Scan(...any) error }, extra ...any) (store.Peer, error) {
	var p store.Peer
	var v4, v6 string
	if err := row.Scan(append([]any{&p.DeviceID, &p.PublicKey, &v4, &v6}, extra...)...); err != nil {
		return p, err
	}
	var err error
	if v4 != "" {
		if p.IPv4, err = netip.ParseAddr(v4); err != nil {
			return p, fmt.Errorf("peer %s: bad ipv4: %w", p.DeviceID, err)
		}
	}
	if v6 != "" {
		if p.IPv6, err = netip.ParseAddr(v6); err != nil {
			return p, fmt.Errorf("peer %s: bad ipv6: %w", p.DeviceID, err)
		}
	}
	return p, nil
}

// Statements of the feed path: the current version and the oldest
// retained change (both by primary key), and the changes after a cursor (a
// range of the primary key).
const (
	sqlFeedBounds = `SELECT version,
		(SELECT min(version) FROM peer_changes) FROM peer_feed WHERE id = 1`
	sqlChangesAfter = `SELECT device_id, public_key, ipv4, ipv6, version, removed
		FROM peer_changes WHERE version > $1 ORDER BY version LIMIT $2`
)

// PeerChanges returns up to limit changes with Version > since, in
// increasing version order; an empty slice means nothing is new. It returns
// Invalid for since < 0 or limit < 1, and Gone if changes after since were
// pruned, or if since is beyond the current version (a cursor from another
// database): either way the caller must take a new snapshot.
func (s *Store) PeerChanges(ctx context.Context, since int64, limit int) ([]store.PeerChange, error) {
	if since < 0 {
		return nil, errs.E(errs.Invalid, "negative feed version")
	}
	if limit < 1 {
		return nil, errs.E(errs.Invalid, "limit must be positive")
	}
	var changes []store.PeerChange
	err := s.readSnapshot(ctx, "peer changes", func(tx *sql.Tx) error {
		var current int64
		var oldest sql.NullInt64
		if err := tx.QueryRowContext(ctx, sqlFeedBounds).Scan(&current, &oldest); err != nil {
			return err
		}
		if !oldest.Valid {
			oldest.Int64 = current + 1
		}
		if since < oldest.Int64-1 || since > current {
			return errs.E(errs.Gone, "feed version %d is no longer available", since)
		}
		changes = make([]store.PeerChange, 0, min(int64(limit), current-since))
		rows, err := tx.QueryContext(ctx, sqlChangesAfter, since, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c store.PeerChange
			c.Peer, err = scanPeer(rows, &c.Version, &c.Removed)
			if err != nil {
				return err
			}
			changes = append(changes, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return changes, nil
}

// sqlUnindexedAccounts lists accounts with devices to index, through the
// partial index devices_unindexed (which leaves out deferred devices).
const sqlUnindexedAccounts = `SELECT DISTINCT account_id FROM devices
	WHERE name_index IS NULL AND name_index_deferred IS NULL AND account_id > $1 ORDER BY account_id LIMIT $2`

// UnindexedDeviceAccounts implements store.Store, through the partial
// index devices_unindexed.
func (s *Store) UnindexedDeviceAccounts(ctx context.Context, after string, limit int) ([]string, error) {
	var out []string
	err := s.read(ctx, "unindexed device accounts", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, sqlUnindexedAccounts, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out = append(out, id)
		}
		return rows.Err()
	})
	return out, err
}

// DeferDeviceNameIndexing implements store.Store.
func (s *Store) DeferDeviceNameIndexing(ctx context.Context, accountID string, now time.Time) (int, error) {
	n := 0
	err := s.write(ctx, "defer device name indexing", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices SET name_index_deferred = $1
			WHERE account_id = $2 AND name_index IS NULL AND name_index_deferred IS NULL`, unix(now), accountID)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		n = int(k)
		return err
	})
	return n, err
}

// IndexDeviceNames implements store.Store.
func (s *Store) IndexDeviceNames(ctx context.Context, accountID string, ix []store.DeviceNameIndexing, now time.Time) (int, error) {
	n := 0
	err := s.write(ctx, "index device names", func(tx *sql.Tx) error {
		n = 0
		for _, x := range ix {
			if len(x.NameIndex) == 0 {
				return errs.E(errs.Invalid, "device %s: empty name index", x.DeviceID)
			}
			var res sql.Result
			var err error
			if x.SealedName == nil {
				res, err = tx.ExecContext(ctx, `UPDATE devices SET name_index = $1, name_index_deferred = NULL
					WHERE id = $2 AND account_id = $3 AND name_index IS NULL`, x.NameIndex, x.DeviceID, accountID)
			} else {
				res, err = tx.ExecContext(ctx, `UPDATE devices SET name_index = $1, name_sealed = $2, name = '', updated_at = $3,
					name_index_deferred = NULL WHERE id = $4 AND account_id = $5 AND name_index IS NULL`,
					x.NameIndex, x.SealedName, unix(now), x.DeviceID, accountID)
			}
			if err != nil {
				return mapDeviceErr(err, "name index already used")
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(k)
		}
		return nil
	})
	return n, err
}
