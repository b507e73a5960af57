package store

import (
	"context"
	"time"
)

// Privacy request types (GDPR Art. 15 to 21).
const (
	RequestAccess        = "access"
	RequestPortability   = "portability"
	RequestRectification = "rectification"
	RequestErasure       = "erasure"
	RequestRestriction   = "restriction"
	RequestObjection     = "objection"
)

// Privacy request statuses.
const (
	// RequestPending: received, waiting for identity proof.
	RequestPending = "pending_verification"
	// RequestVerified: identity proven; being handled (by staff, or for
	// erasure waiting for the user's final confirmation).
	RequestVerified = "verified"
	// RequestHeld: erasure done except for data a legal hold keeps; the
	// user was told what is kept. Finished when the hold ends.
	RequestHeld = "held"
	// RequestCompleted: answered and fulfilled.
	RequestCompleted = "completed"
	// RequestDenied: refused, with a reason given to the user.
	RequestDenied = "denied"
)

// Answered reports whether a request with status st has been answered, so
// it can no longer be overdue.
func Answered(st string) bool {
	return st == RequestCompleted || st == RequestDenied || st == RequestHeld
}

// Request channels: how a request reached the controller.
const (
	// ChannelApp: the account holder made it, logged in (API, portal or
	// CLI).
	ChannelApp = "app"
	// ChannelEmail, ChannelPhone and ChannelPost: it arrived outside the
	// app and staff recorded it.
	ChannelEmail = "email"
	ChannelPhone = "phone"
	ChannelPost  = "post"
)

// IdentityCheck is a staff member's check of a requester's identity, for
// a request from outside the app that no account's verified contacts can
// prove: who checked, how (a fixed method name, never a copy of a
// document) and when.
type IdentityCheck struct {
	By     string // staff ID
	Method string
	At     time.Time
}

// PrivacyRequest is a data-subject request. AccountID is empty once the
// account was erased, or for a request from outside the app that matched
// no account (Check is then set).
//
// The free text of a request of an account (the user's details or the
// note staff recorded with a request from outside the app, the staff's
// extension and denial reasons and notes) is stored sealed under the
// account's data key, in Sealed (see package acctkey); Sealed is emptied
// at erasure. Details, ExtendedReason and DeniedReason hold free text in
// plaintext only in a request written before request texts were sealed,
// until the sealing job seals them, and in a request from outside the app
// that matched no account, which has no key to seal under (Details: the
// staff's note).
type PrivacyRequest struct {
	ID        string
	AccountID string
	Type      string
	Status    string
	// Channel is how the request arrived (Channel*); empty means
	// ChannelApp.
	Channel        string
	Sealed         []byte
	Details        string
	Check          *IdentityCheck
	ReceivedAt     time.Time
	DueAt          time.Time
	ExtendedReason string
	ExtendedAt     *time.Time
	VerifiedAt     *time.Time
	ConfirmedAt    *time.Time // erasure: the user's final confirmation
	CompletedAt    *time.Time // completed, held or denied
	DeniedReason   string
	// Outcome is what was done, in words the service chose, without
	// personal data or staff free text (those are sealed).
	Outcome string
	// ExtensionNotice is the delivery of the notice telling the user of
	// the latest extension.
	ExtensionNotice NoticeDelivery
}

// NoticeDelivery is the delivery state of a notice to a user: when it
// was delivered (nil until then), how many attempts failed, the last
// failure's error code (errs.Code, never error text) and when the next
// attempt is due (nil when none is: delivered, or nothing to send).
type NoticeDelivery struct {
	DeliveredAt *time.Time
	Attempts    int
	Error       string
	RetryAt     *time.Time
}

// Recipient communication states (Art. 19): whether a recipient was told
// of a rectification or erasure.
const (
	RecipientPending    = "pending"
	RecipientTold       = "told"
	RecipientImpossible = "impossible"
)

// RequestRecipient is a processor that received the data of a
// rectification or erasure request's account: which categories (inventory
// IDs), first and last when, and whether it was told of the request
// (Status, one of Recipient*), by which staff member, when and with what
// note: sealed under the account's data key in NoteSealed while the
// request has an account, in Note otherwise. It holds no content and no
// contact data.
type RequestRecipient struct {
	RequestID  string
	Processor  string
	Categories []string
	FirstAt    time.Time
	LastAt     time.Time
	Status     string
	NotedAt    *time.Time
	NotedBy    string
	Note       string
	NoteSealed []byte
}

// PrivacyFilter selects privacy requests. Zero fields do not filter.
type PrivacyFilter struct {
	AccountID string
	// OverdueAt, when set, keeps only requests not answered whose DueAt is
	// before it.
	OverdueAt *time.Time
	// Status keeps only requests with that status.
	Status string
	// ExtensionNoticeDueAt, when set, keeps only requests whose extension
	// notice is not delivered and whose next attempt is due at or before
	// it.
	ExtensionNoticeDueAt *time.Time
	// Type keeps only requests of that type.
	Type  string
	Limit int // 0 means 1000
}

// ExportToken is a single-use download token for one request's export.
// Only its hash is stored.
type ExportToken struct {
	Hash      []byte
	RequestID string
	AccountID string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ContactChange is a pending change of an account's email or mobile,
// waiting for the code sent to the new contact. Sealed is the new value
// sealed under the account's data key exactly as it will be stored in the
// account (same AAD); Index is its blind index.
type ContactChange struct {
	AccountID string
	Channel   Channel
	Sealed    []byte
	Index     []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Erasure describes one run of the destructive part of an erasure request.
type Erasure struct {
	RequestID string
	AccountID string
	At        time.Time
	// KeepHeld means a legal hold is active: the account row with its
	// wrapped key and sealed contacts, and its session intervals, are
	// kept; everything else goes, and the request becomes RequestHeld.
	KeepHeld bool
	// Outcome is recorded on the request.
	Outcome string
}

// ErasureResult reports what an erasure removed (counts only).
type ErasureResult struct {
	Devices         int   // devices removed (and dropped from the peer feed)
	SessionsDeleted int64 // session intervals deleted
	SessionsKept    int64 // session intervals kept under a hold
}

// Tombstone records that an account was erased: only the request id and
// the date, no personal data.
type Tombstone struct {
	RequestID string
	ErasedAt  time.Time
}

// PrivacyStore keeps privacy requests, export tokens, pending contact
// changes and erasure tombstones. It is part of Store.
type PrivacyStore interface {
	// CreatePrivacyRequest inserts r. A request of an account must carry
	// its sealed text (even if empty) and no plaintext Details, reasons
	// (Invalid otherwise); a request without an account has no sealed
	// text. NotFound for an unknown account, Conflict for a taken id.
	CreatePrivacyRequest(ctx context.Context, r *PrivacyRequest) error
	// PrivacyRequest returns the request with id.
	PrivacyRequest(ctx context.Context, id string) (*PrivacyRequest, error)
	// PrivacyRequests returns the requests f selects, newest first.
	PrivacyRequests(ctx context.Context, f PrivacyFilter) ([]PrivacyRequest, error)
	// UpdatePrivacyRequest reads request id, applies fn and writes the
	// result back, in one transaction holding the row. An error from fn
	// aborts without change and is returned. It returns the updated
	// request.
	UpdatePrivacyRequest(ctx context.Context, id string, fn func(*PrivacyRequest) error) (*PrivacyRequest, error)
	// CountOverduePrivacyRequests counts requests not answered and due
	// before now.
	CountOverduePrivacyRequests(ctx context.Context, now time.Time) (int, error)

	// CreateExportToken inserts t.
	CreateExportToken(ctx context.Context, t *ExportToken) error
	// ConsumeExportToken marks the token with hash used at now, if it
	// belongs to requestID and accountID, is unused and expires after now.
	// Anything else is Gone.
	ConsumeExportToken(ctx context.Context, hash []byte, requestID, accountID string, now time.Time) error

	// PutContactChange stores c, replacing a pending change of the same
	// account and channel.
	PutContactChange(ctx context.Context, c *ContactChange) error
	// ApplyContactChange moves the pending change for account and channel
	// into the account (sealed value, blind index, verified flag) and
	// deletes it, in one transaction. NotFound if none is pending, Gone if
	// it expired, Conflict if the blind index is taken by now.
	ApplyContactChange(ctx context.Context, accountID string, ch Channel, now time.Time) error

	// EraseAccount runs the destructive part of an erasure in one
	// transaction: it deletes the account's tokens, reset tokens, codes,
	// export tokens, pending contact changes and inbox messages; removes
	// its devices exactly as DeleteDevice does (freeing their addresses,
	// ending their open session intervals at At and replacing their
	// entries in the peer feed by removals that name only the device, in
	// the order the devices were created); deletes its session intervals
	// (KeepHeld: closes and keeps them); closes the account, clears its
	// password hash and blind indexes and, unless KeepHeld, its wrapped
	// key and sealed contacts (crypto-shredding); and, unless KeepHeld,
	// detaches every request of the account (account id, sealed text and
	// any plaintext written before texts were sealed cleared) and writes
	// a tombstone. The erasure request becomes RequestCompleted
	// (RequestHeld with KeepHeld). NotFound for an unknown request or
	// account; Precondition if the request is not an erasure of that
	// account awaiting it.
	//
	// After the transaction commits it scrubs what the engine keeps of
	// the old row versions: on SQLite (which overwrites deleted content
	// with zeros) it checkpoints and truncates the write-ahead log; on
	// PostgreSQL it vacuums the tables the erasure changed, so that no
	// live or dead row version holds the erased data. A scrub that cannot
	// finish (a long reader keeps the WAL, say) is logged and does not
	// fail the erasure.
	EraseAccount(ctx context.Context, e Erasure) (*ErasureResult, error)
	// Tombstone returns the tombstone of erasure request requestID.
	Tombstone(ctx context.Context, requestID string) (*Tombstone, error)

	// MergeRequestRecipients records rs as recipients of request
	// requestID, in one transaction: a processor new to the request is
	// added as RecipientPending; one already there gets the union of the
	// categories and the wider time span, and keeps its status. NotFound
	// for an unknown request.
	MergeRequestRecipients(ctx context.Context, requestID string, rs []RequestRecipient) error
	// RequestRecipients returns the recipients of request requestID, by
	// processor name.
	RequestRecipients(ctx context.Context, requestID string) ([]RequestRecipient, error)
	// NoteRequestRecipient sets the communication status of processor's
	// entry on request requestID, with the staff member by, the time at
	// and the note: sealed, or in plaintext for a request without an
	// account (at most one of them). NotFound if the request has no such
	// recipient; Invalid for both a sealed and a plaintext note.
	NoteRequestRecipient(ctx context.Context, requestID, processor, status, note string, sealed []byte, by string, at time.Time) error
}
