package devices

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// Names are unique per account, compared without regard to case: the
// store holds, beside the sealed name, a keyed index of the folded name
// under the account's data key (acctkey.Key.Index), unique per account.
// An erasure destroys the key, after which an index says nothing about
// its name.

// FoldName returns the form of a device name that uniqueness compares:
// NFC-normalised and Unicode case-folded, so "Laptop", "LAPTOP" and
// "laptop" are one name, and so are "Straße" and "STRASSE".
func FoldName(name string) string {
	return cases.Fold().String(norm.NFC.String(name))
}

// nameIndex returns the index of name under key.
func nameIndex(key *acctkey.Key, name string) ([]byte, error) {
	return key.Index(acctkey.DeviceName, FoldName(name))
}

// nameTaken is the error for a name another of the account's devices has.
func nameTaken(name string) error {
	return errs.Field(errs.Conflict, "name", "you already have a device named %q; choose another name", name)
}

// conflict translates the store's Conflict: a name in use (field "name")
// or a public key in use.
func conflict(err error, name string) error {
	if errs.FieldOf(err) == "name" {
		return nameTaken(name)
	}
	return keyTaken()
}

// numbered returns name with " (n)" appended, its beginning cut so that
// the result has at most 64 characters.
func numbered(name string, n int) string {
	suffix := fmt.Sprintf(" (%d)", n)
	max := 64 - utf8.RuneCountInString(suffix)
	if utf8.RuneCountInString(name) > max {
		name = string([]rune(name)[:max])
	}
	return name + suffix
}

// indexBatch is how many accounts IndexNames reads per query.
const indexBatch = 100

// IndexNames indexes the names of devices written before names were
// indexed, account by account: each device keeps its name unless an
// older device of its account (or one already indexed) has it in another
// or the same case; then it is renamed "NAME (N)" with the lowest N from
// 2 that no device of the account has. Sealed and plaintext names are
// both read; a renamed device's new name is sealed. It reads only the
// devices left to index, so with none it costs an index probe.
//
// An account whose data key will not open, or one of whose names will
// not, is logged once (by ID, with its number of devices left unindexed)
// and deferred (store.DeferDeviceNameIndexing): its devices keep their
// names as they are, and later runs leave them out until the account's
// next device add or rename, which indexes them first (or fails, as
// everything needing that key does), or until the operator clears the
// mark (docs/erasure.md). An account that failed for another reason (the
// database) is retried at the next run.
//
// It returns how many devices it indexed and how many accounts it
// skipped, deferred or not. It is resumable and safe to run concurrently
// with users' changes: a device they renamed meanwhile is left as they
// wrote it.
func (s *Service) IndexNames(ctx context.Context) (done, skipped int, err error) {
	after := ""
	for {
		ids, err := s.cfg.Store.UnindexedDeviceAccounts(ctx, after, indexBatch)
		if err != nil || len(ids) == 0 {
			return done, skipped, err
		}
		after = ids[len(ids)-1]
		for _, id := range ids {
			n, err := s.indexAccountOnce(ctx, id)
			done += n
			var ue unreadableError
			switch {
			case err == nil:
			case ctx.Err() != nil:
				return done, skipped, ctx.Err()
			case errors.As(err, &ue):
				skipped++
				left, derr := s.cfg.Store.DeferDeviceNameIndexing(ctx, id, s.cfg.Clock())
				if derr != nil {
					s.cfg.Logger.Warn("device names not indexed", "account", id, "err", err)
					return done, skipped, derr
				}
				s.cfg.Logger.Warn("device names not indexed; deferred until the account adds or renames a device",
					"account", id, "devices", left, "err", err)
			default:
				skipped++
				s.cfg.Logger.Warn("device names not indexed; retried at the next run", "account", id, "err", err)
			}
		}
	}
}

// unreadableError is an account's data key, or a device name under it,
// that would not open: indexing its names cannot succeed until the key
// does (a missing KEK is configured, a damaged key restored).
type unreadableError struct{ err error }

func (e unreadableError) Error() string { return e.err.Error() }
func (e unreadableError) Unwrap() error { return e.err }

// indexAccountOnce opens the account's key and indexes its devices'
// names. A key or name that will not open is an unreadableError.
func (s *Service) indexAccountOnce(ctx context.Context, accountID string) (int, error) {
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return 0, err
	}
	k, err := s.cfg.Keys.OpenAccount(a)
	if err != nil {
		return 0, unreadableError{err}
	}
	defer k.Close()
	return s.indexAccount(ctx, k, accountID)
}

// indexAccount indexes the names of the account's devices that have no
// index yet (see IndexNames), with the account's key k. It does nothing
// when every device has one. A concurrent change that takes one of the
// chosen names makes it read the devices again, up to three times.
func (s *Service) indexAccount(ctx context.Context, k *acctkey.Key, accountID string) (int, error) {
	var err error
	for range 3 {
		var ds []store.Device
		if ds, err = s.cfg.Store.Devices(ctx, accountID); err != nil {
			return 0, err
		}
		var ix []store.DeviceNameIndexing
		if ix, err = planIndexes(k, ds); err != nil {
			return 0, unreadableError{err}
		}
		if len(ix) == 0 {
			return 0, nil
		}
		var n int
		n, err = s.cfg.Store.IndexDeviceNames(ctx, accountID, ix, s.cfg.Clock())
		if !errs.Is(err, errs.Conflict) {
			return n, err
		}
	}
	return 0, err
}

// planIndexes returns the indexes (and new names) of the devices in ds,
// oldest first, that have no index.
func planIndexes(k *acctkey.Key, ds []store.Device) ([]store.DeviceNameIndexing, error) {
	taken := map[string]bool{}    // indexes devices hold or keep
	reserved := map[string]bool{} // also every unindexed device's own name
	type pending struct {
		d    *store.Device
		name string
		ix   []byte
	}
	var todo []pending
	for i := range ds {
		d := &ds[i]
		if d.NameIndex != nil {
			taken[string(d.NameIndex)] = true
			reserved[string(d.NameIndex)] = true
			continue
		}
		name, err := Name(k, d)
		if err != nil {
			return nil, err
		}
		ix, err := nameIndex(k, name)
		if err != nil {
			return nil, err
		}
		reserved[string(ix)] = true
		todo = append(todo, pending{d, name, ix})
	}
	var out []store.DeviceNameIndexing
	var renames []pending
	for _, p := range todo {
		if taken[string(p.ix)] {
			renames = append(renames, p)
			continue
		}
		taken[string(p.ix)] = true
		out = append(out, store.DeviceNameIndexing{DeviceID: p.d.ID, NameIndex: p.ix})
	}
	for _, p := range renames {
		for n := 2; ; n++ {
			name := numbered(p.name, n)
			ix, err := nameIndex(k, name)
			if err != nil {
				return nil, err
			}
			if reserved[string(ix)] {
				continue
			}
			reserved[string(ix)] = true
			sealed, err := k.Seal(acctkey.DeviceName, p.d.ID, name)
			if err != nil {
				return nil, err
			}
			out = append(out, store.DeviceNameIndexing{DeviceID: p.d.ID, NameIndex: ix, SealedName: sealed})
			break
		}
	}
	return out, nil
}
