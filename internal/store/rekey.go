package store

import (
	"context"
	"time"
)

// KeyedAccount is what a key-encryption-key rotation needs of one
// account: its wrapped data key, and what is stored under keys derived
// from the KEK (blind indexes) with the sealed values they index.
type KeyedAccount struct {
	ID           string
	WrappedKey   []byte
	EmailSealed  []byte
	MobileSealed []byte
	EmailIndex   []byte
	MobileIndex  []byte
	// Pending are the account's pending contact changes (each sealed
	// under the data key, with its blind index).
	Pending []ContactChange
}

// AccountRekey is one account's re-wrapped data key and re-derived blind
// indexes.
type AccountRekey struct {
	ID string
	// OldWrappedKey is the wrapped key the rekey was computed from: the
	// rekey applies only if the account still holds it, so an account
	// erased or re-keyed meanwhile is left alone.
	OldWrappedKey []byte
	WrappedKey    []byte
	EmailIndex    []byte // nil leaves the column as it is
	MobileIndex   []byte
	// Pending holds the new blind index of each pending contact change,
	// by channel.
	Pending map[Channel][]byte
}

// StaffSecret is a staff member's TOTP seed as sealed under a KEK.
type StaffSecret struct {
	StaffID string
	Sealed  []byte
}

// KEKRotation is the record of one key-encryption-key rotation (package
// rekey), which lets a rotation resume after a crash. It holds no
// personal data: ids of KEKs, counts and times.
type KEKRotation struct {
	ID        string
	StartedAt time.Time
	StartedBy string // staff id, or "system"
	// Target is the KEK everything is being re-wrapped under, its target
	// since TargetSince (a newer KEK can become the target midway).
	Target      uint32
	TargetSince time.Time
	// Cursor is the last account id the current pass has done; "" at the
	// start of a pass.
	Cursor string
	// Passes counts the passes over every account completed so far.
	Passes int
	// PassDoneAt is when the last complete pass ended; nil during the
	// first.
	PassDoneAt *time.Time
	Rewrapped  int64 // accounts re-wrapped
	Resealed   int64 // staff secrets and outbound-queue jobs re-sealed
	// Problem says what keeps the rotation from finishing, if anything
	// (counts and ids only); "" if nothing.
	Problem    string
	FinishedAt *time.Time
	// Destroyed lists the KEKs destroyed when the rotation finished.
	Destroyed []uint32
}

// RekeyStore keeps what a KEK rotation needs. It is part of Store.
type RekeyStore interface {
	// KeyedAccounts returns up to limit accounts that hold a wrapped data
	// key, with id greater than after, in id order.
	KeyedAccounts(ctx context.Context, after string, limit int) ([]KeyedAccount, error)
	// RekeyAccounts applies rs in one transaction and returns how many
	// applied; a rekey whose account no longer holds its OldWrappedKey is
	// skipped. A blind index another account holds is Conflict, and then
	// nothing applies.
	RekeyAccounts(ctx context.Context, rs []AccountRekey) (int, error)

	// StartKEKRotation stores r as the rotation in progress. It returns
	// Conflict if another rotation is in progress.
	StartKEKRotation(ctx context.Context, r *KEKRotation) error
	// CurrentKEKRotation returns the rotation in progress, NotFound if none.
	CurrentKEKRotation(ctx context.Context) (*KEKRotation, error)
	// SaveKEKRotation stores r's progress (every field but ID, StartedAt
	// and StartedBy); a FinishedAt ends it. An unknown or finished
	// rotation is NotFound.
	SaveKEKRotation(ctx context.Context, r *KEKRotation) error
	// KEKRotations returns the newest limit rotations, newest first.
	KEKRotations(ctx context.Context, limit int) ([]KEKRotation, error)
}
