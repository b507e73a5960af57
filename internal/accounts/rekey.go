package accounts

import (
	"bytes"
	"context"
	"fmt"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// Rekey computes what a key-encryption-key rotation stores for account a:
// its data key wrapped under the vault's primary KEK, and its blind
// indexes (email, mobile and those of pending contact changes) derived
// from that KEK, from the values sealed under the data key. It reports
// false if nothing would change. The data key itself, and so everything
// sealed under it, is unchanged.
func (s *Service) Rekey(a store.KeyedAccount) (store.AccountRekey, bool, error) {
	wrapped, changed, err := s.cfg.Vault.Rewrap(a.ID, a.WrappedKey)
	if err != nil {
		return store.AccountRekey{}, false, fmt.Errorf("rewrap the data key of %s: %w", a.ID, err)
	}
	dk, err := s.cfg.Vault.Unwrap(a.ID, wrapped)
	if err != nil {
		return store.AccountRekey{}, false, fmt.Errorf("unwrap the data key of %s: %w", a.ID, err)
	}
	defer dk.Destroy()
	r := store.AccountRekey{ID: a.ID, OldWrappedKey: a.WrappedKey, WrappedKey: wrapped}
	index := func(ch store.Channel, sealed, old []byte) ([]byte, error) {
		if sealed == nil {
			return nil, nil
		}
		v, err := dk.Open(sealed, aad(a.ID, string(ch)))
		if err != nil {
			return nil, fmt.Errorf("open the %s of %s: %w", ch, a.ID, err)
		}
		idx := s.cfg.Vault.BlindIndex(string(ch), string(v))
		if !bytes.Equal(idx, old) {
			changed = true
		}
		return idx, nil
	}
	if r.EmailIndex, err = index(store.Email, a.EmailSealed, a.EmailIndex); err != nil {
		return store.AccountRekey{}, false, err
	}
	if r.MobileIndex, err = index(store.Mobile, a.MobileSealed, a.MobileIndex); err != nil {
		return store.AccountRekey{}, false, err
	}
	for _, c := range a.Pending {
		idx, err := index(c.Channel, c.Sealed, c.Index)
		if err != nil {
			return store.AccountRekey{}, false, err
		}
		if r.Pending == nil {
			r.Pending = map[store.Channel][]byte{}
		}
		r.Pending[c.Channel] = idx
	}
	return r, changed, nil
}

// heldUnderOlderKEK reports whether an account holds value on channel ch
// under the index of an older KEK of the keyring, which the unique indexes
// of the store cannot see (they compare indexes, and a rotation may not
// have re-indexed that account yet). Under the primary KEK the store's
// unique indexes decide.
func (s *Service) heldUnderOlderKEK(ctx context.Context, ch store.Channel, value string) (bool, error) {
	idx := s.cfg.Vault.BlindIndexes(string(ch), value)
	for _, i := range idx[min(1, len(idx)):] {
		_, err := s.cfg.Store.AccountByIndex(ctx, ch, i)
		if err == nil {
			return true, nil
		}
		if !errs.Is(err, errs.NotFound) {
			return false, err
		}
	}
	return false, nil
}
