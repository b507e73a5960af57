package store

import (
	"context"
	"time"

	"github.com/nitronet/nitronet/internal/auditchain"
)

// Staff is an operator's staff account. Email is the staff member's work
// address, stored normalised; PasswordHash is argon2id.
type Staff struct {
	ID           string
	Email        string
	Role         string
	PasswordHash string
	CreatedAt    time.Time
	Disabled     bool
	// TOTPSealed is the staff member's TOTP seed sealed by the vault (nil:
	// no second factor enrolled); TOTPStep is the last time step accepted.
	TOTPSealed []byte
	TOTPStep   int64
}

// StaffAdminRole is the role of the staff who manage staff (the staff
// package's RoleAdmin). The store keeps at least one enabled staff account
// with it once one exists: SetStaffRole and SetStaffDisabled refuse to
// remove the last.
const StaffAdminRole = "admin"

// StaffStore keeps staff accounts and their login tokens. It is part of
// Store.
type StaffStore interface {
	// StaffSecrets returns every staff member's sealed TOTP seed, for a
	// key-encryption-key rotation.
	StaffSecrets(ctx context.Context) ([]StaffSecret, error)
	// ResealStaffSecret replaces the staff member's sealed seed old with
	// sealed, and reports whether it did (false if the seed changed or was
	// removed meanwhile).
	ResealStaffSecret(ctx context.Context, staffID string, old, sealed []byte) (bool, error)
	// CreateStaff inserts s; a taken email is Conflict.
	CreateStaff(ctx context.Context, s *Staff) error
	// BootstrapStaff inserts s and appends e to the audit log (as
	// AppendAudit does), in one transaction, only while no enabled staff
	// account has StaffAdminRole: otherwise it returns Precondition and
	// changes nothing. A taken email is Conflict. Concurrent calls are
	// serialised, so at most one of them can add the first admin. It
	// returns the stored entry.
	BootstrapStaff(ctx context.Context, s *Staff, e auditchain.Entry) (auditchain.Entry, error)
	// StaffByEmail returns the staff account with the normalised email.
	StaffByEmail(ctx context.Context, email string) (*Staff, error)
	// StaffByID returns the staff account with id.
	StaffByID(ctx context.Context, id string) (*Staff, error)
	// ListStaff returns every staff account, oldest first.
	ListStaff(ctx context.Context) ([]Staff, error)
	// SetStaffDisabled disables or enables a staff account; disabling also
	// deletes its tokens. Disabling the last enabled account with
	// StaffAdminRole is Precondition and changes nothing.
	SetStaffDisabled(ctx context.Context, id string, disabled bool) error
	// SetStaffRole gives a staff account role. Taking StaffAdminRole from
	// the last enabled account that has it is Precondition and changes
	// nothing.
	SetStaffRole(ctx context.Context, id, role string) error
	// CreateStaffToken stores a staff login token by its hash.
	CreateStaffToken(ctx context.Context, hash []byte, staffID string, created, expires time.Time) error
	// StaffByToken returns the enabled staff account whose unexpired token
	// has hash; otherwise NotFound.
	StaffByToken(ctx context.Context, hash []byte, now time.Time) (*Staff, error)
	// DeleteStaffToken revokes one token; an absent token is not an error.
	DeleteStaffToken(ctx context.Context, hash []byte) error
	// SetStaffTOTP stores (or with nil removes) the sealed TOTP seed,
	// resets the last accepted step and deletes the staff member's login
	// tokens, in one transaction: sessions opened under the old factor
	// end.
	SetStaffTOTP(ctx context.Context, id string, sealed []byte) error
	// UseStaffTOTPStep records step as used if it is later than the last
	// one used; otherwise (a replayed code) it returns Conflict.
	UseStaffTOTPStep(ctx context.Context, id string, step int64) error
}

// AuditStore keeps the hash-chained staff audit log. It is part of Store.
type AuditStore interface {
	// AppendAudit chains e after the newest entry (auditchain.Append) and
	// stores it, atomically with respect to other appends, returning the
	// stored entry.
	AppendAudit(ctx context.Context, e auditchain.Entry) (auditchain.Entry, error)
	// AuditEntries returns up to limit entries with Seq > after, oldest
	// first.
	AuditEntries(ctx context.Context, after int64, limit int) ([]auditchain.Entry, error)
	// AuditEntriesFor returns up to limit entries about subject, newest
	// first.
	AuditEntriesFor(ctx context.Context, subject string, limit int) ([]auditchain.Entry, error)
	// AuditAnchor returns the sequence number and hash of the newest entry
	// retention has deleted (0 and nil if none): the remaining chain must
	// continue from it.
	AuditAnchor(ctx context.Context) (seq int64, hash []byte, err error)
	// AuditHead returns the log's bookkeeping and its newest entry, read
	// together from one snapshot.
	AuditHead(ctx context.Context) (AuditHead, error)
}

// AuditHead is the state of the audit log at one instant.
type AuditHead struct {
	// Counted is the sequence number of the newest entry ever appended (0
	// if none). Sequence numbers are never reused, and only retention
	// deletes entries, from the oldest: so the log holds every entry after
	// Anchor up to Counted, and an entry missing from its end was removed
	// by something else.
	Counted int64
	// Newest is the newest entry the log holds; the zero Checkpoint if it
	// holds none.
	Newest auditchain.Checkpoint
	// Anchor is the newest entry retention deleted (see AuditAnchor); the
	// zero Checkpoint if none.
	Anchor auditchain.Checkpoint
}
