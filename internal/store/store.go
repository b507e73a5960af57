// Package store defines Nitronet's persistent records and the Store
// interface over them. Implementations live in sub-packages (sqlstore, for
// SQLite and PostgreSQL); the same test suite (storetest) runs against each.
//
// Contracts shared by every method:
//   - Each exported method runs in its own transaction and leaves nothing
//     half-written when it returns an error.
//   - Lookups that find nothing return an *errs.Error with code NotFound.
//   - Unique-constraint violations return code Conflict.
//   - Times are stored with second precision, in UTC.
//   - A Store is safe for concurrent use.
//
// Personal data (email, mobile) never reaches the store in plaintext: the
// vault seals it first, and lookups use keyed blind indexes.
package store

import (
	"context"
	"github.com/nitronet/nitronet/internal/dnsblock"
	"net/netip"
	"time"
)

// Channel names a contact channel of an account.
type Channel string

// The contact channels.
const (
	Email  Channel = "email"
	Mobile Channel = "mobile"
)

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool { return c == Email || c == Mobile }

// Account status values.
const (
	StatusActive = "active"
	StatusClosed = "closed" // erased; only a tombstone remains
)

// Account is a user account. EmailSealed and MobileSealed are AES-GCM
// ciphertexts under the account's data key; WrappedKey is that data key
// wrapped by the key-encryption key. EmailIndex and MobileIndex are keyed
// blind indexes (HMAC) of the normalised values.
type Account struct {
	ID             string
	EmailSealed    []byte
	MobileSealed   []byte
	WrappedKey     []byte
	EmailIndex     []byte
	MobileIndex    []byte
	PasswordHash   string // argon2id PHC string
	EmailVerified  bool
	MobileVerified bool
	Status         string
	CreatedAt      time.Time
}

// Token is an API bearer token (a login session). Only its hash is stored.
type Token struct {
	Hash      []byte // SHA-256 of the bearer secret
	AccountID string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Code is a one-time verification code for one channel of an account, or for
// a purpose such as identity proof (Purpose distinguishes them). Only its
// hash is stored.
type Code struct {
	AccountID string
	Channel   Channel
	Purpose   string // "verify" for contact verification
	Hash      []byte
	ExpiresAt time.Time
	Attempts  int
	UsedAt    *time.Time
	CreatedAt time.Time
}

// ResetToken is a single-use password-reset token. Only its hash is stored.
type ResetToken struct {
	Hash      []byte
	AccountID string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// Device is a user's WireGuard device. The server knows only its public
// key. The device's name is stored sealed under the account's data key
// (SealedName, see package acctkey), so an erasure leaves it unreadable.
type Device struct {
	ID         string
	AccountID  string
	SealedName []byte
	// Name is the plaintext name of a device written before names were
	// sealed, until the sealing job seals it (see PlainTextStore); empty
	// otherwise. CreateDevice refuses a device with a Name.
	Name      string
	PublicKey string // base64, 44 characters
	IPv4      netip.Addr
	IPv6      netip.Addr
	// DNSBlocking is the set of DNS blocking categories the device chose;
	// its configuration names that set's resolver (package dnsblock).
	DNSBlocking dnsblock.Set
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// KeyCreatedAt is when PublicKey was registered: CreatedAt, or the
	// last key rotation.
	KeyCreatedAt time.Time
	// NameIndex is a keyed index of the case-folded name under the
	// account's key (acctkey.Key.Index), unique per account, so names are
	// unique per account without the store seeing them. It is nil for a
	// device written before names were indexed, until it is indexed (see
	// IndexDeviceNames).
	NameIndex []byte
}

// DeviceNameIndexing indexes the name of a device that has no NameIndex
// yet (see Store.IndexDeviceNames).
type DeviceNameIndexing struct {
	DeviceID  string
	NameIndex []byte
	// SealedName, if not nil, renames the device (and empties a plaintext
	// Name), for a name another device of the account already has.
	SealedName []byte
}

// DeviceUpdate holds the optional changes of UpdateDevice. Nil means
// unchanged.
type DeviceUpdate struct {
	// SealedName replaces the device's sealed name (and empties a
	// plaintext Name written before names were sealed); NameIndex
	// replaces its name index (a SealedName without one leaves the device
	// unindexed).
	SealedName  []byte
	NameIndex   []byte
	PublicKey   *string
	DNSBlocking *dnsblock.Set
}

// Gateway is a data-plane gateway record. The enrollment token and the
// gateway credential are stored hashed. PublicKey is empty until enrolled.
type Gateway struct {
	ID       string
	Region   string
	Endpoint string // host:port that clients dial
	// TCPPort is the port on Endpoint's host where the gateway also takes
	// WireGuard over TCP (UDP-over-TCP), or 0 if it offers none.
	TCPPort int
	// Relays are the gateway's multihop relay ports, in port order.
	Relays         []Relay
	PublicKey      string
	EnrollHash     []byte // hash of the one-time enrollment token; nil once used
	CredentialHash []byte // hash of the gateway credential; nil until enrolled
	CreatedAt      time.Time
	LastSeen       *time.Time
}

// Relay is a multihop relay port of an entry gateway: UDP datagrams that
// reach Port on the entry's endpoint host are forwarded to the gateway
// with id Exit.
type Relay struct {
	Exit string
	Port int
}

// GatewayUpdate holds the optional changes of UpdateGateway. Nil means
// unchanged.
type GatewayUpdate struct {
	Region   *string
	Endpoint *string
	TCPPort  *int
	// Relays, if not nil, replaces the relay ports; an empty slice
	// removes them. Each port is 1 to 65535, once, with an exit id.
	Relays *[]Relay
	// CredentialHash replaces the gateway's credential: the old one stops
	// authenticating.
	CredentialHash []byte
}

// Peer is one device as a gateway sees it.
type Peer struct {
	DeviceID  string
	PublicKey string
	IPv4      netip.Addr
	IPv6      netip.Addr
}

// PeerChange is one entry of the peer change feed. Version is strictly
// increasing. Removed means the peer must be dropped: the one with
// PublicKey, or, when PublicKey is empty (the device is gone and its key
// and addresses are scrubbed from the feed), the one with DeviceID;
// otherwise the peer must be present with the given addresses.
type PeerChange struct {
	Version int64
	Peer
	Removed bool
}

// Pool configures tunnel address allocation.
type Pool struct {
	V4 netip.Prefix // e.g. 100.64.0.0/10
	V6 netip.Prefix // a ULA prefix, e.g. fd00:6e6e::/48
}

// Store is Nitronet's persistence. See the package comment for the
// contracts every method keeps.
type Store interface {
	// Accounts.

	// CreateAccount inserts a. It returns Conflict if the email or mobile
	// blind index is already taken.
	CreateAccount(ctx context.Context, a *Account) error
	// Account returns the account with id.
	Account(ctx context.Context, id string) (*Account, error)
	// AccountByEmailIndex returns the active account with that blind index.
	AccountByEmailIndex(ctx context.Context, index []byte) (*Account, error)
	// AccountByMobileIndex returns the active account with that mobile
	// blind index.
	AccountByMobileIndex(ctx context.Context, index []byte) (*Account, error)
	// AccountByIndex returns the account, whatever its status, whose
	// blind index on channel ch is index; NotFound if none.
	AccountByIndex(ctx context.Context, ch Channel, index []byte) (*Account, error)
	// AttachMobile sets the mobile blind index of an account that has none
	// (its sealed number was taken by another account when it was
	// stored). Conflict if another account holds index, Precondition if the
	// account already has one, NotFound for an unknown account.
	AttachMobile(ctx context.Context, accountID string, index []byte) error
	// SetVerified marks one channel of the account as verified. A mobile
	// number without a blind index (not attached) cannot be verified:
	// Precondition.
	SetVerified(ctx context.Context, accountID string, ch Channel) error
	// SetPassword replaces the password hash and deletes all the account's
	// login tokens and reset tokens, in one transaction.
	SetPassword(ctx context.Context, accountID, hash string) error

	// Tokens.

	// CreateToken inserts t.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash returns the token with hash whose ExpiresAt is after now.
	// An expired or unknown token is NotFound.
	TokenByHash(ctx context.Context, hash []byte, now time.Time) (*Token, error)
	// DeleteToken revokes one token. Deleting an absent token is not an error.
	DeleteToken(ctx context.Context, hash []byte) error
	// DeleteAccountTokens revokes every token of the account.
	DeleteAccountTokens(ctx context.Context, accountID string) error

	// Codes.

	// PutCode stores c, replacing any unused code of the same account,
	// channel and purpose.
	PutCode(ctx context.Context, c *Code) error
	// ActiveCode returns the newest unused code for account, channel and
	// purpose, expired or not (the caller checks expiry and attempts).
	ActiveCode(ctx context.Context, accountID string, ch Channel, purpose string) (*Code, error)
	// CountCodeAttempt increments the attempt counter of the active code and
	// returns the new count.
	CountCodeAttempt(ctx context.Context, accountID string, ch Channel, purpose string) (int, error)
	// UseCode marks the active code used at now. It returns Gone if there is
	// no unused code.
	UseCode(ctx context.Context, accountID string, ch Channel, purpose string, now time.Time) error

	// Password reset.

	// CreateResetToken inserts t and revokes (deletes) every other reset
	// token of its account, in one transaction.
	CreateResetToken(ctx context.Context, t *ResetToken) error
	// ConsumeResetToken atomically deletes the reset token with hash and
	// every other reset token of its account, and returns the account id.
	// Unknown, used or expired tokens return Gone.
	ConsumeResetToken(ctx context.Context, hash []byte, now time.Time) (accountID string, err error)
	// ResetTokenAccount returns the account id of the reset token with
	// hash without consuming it; unknown or expired tokens return Gone.
	ResetTokenAccount(ctx context.Context, hash []byte, now time.Time) (accountID string, err error)

	// Devices.

	// CreateDevice allocates d's tunnel addresses from the pool, inserts d
	// and appends to the peer feed, in one transaction. It returns
	// Precondition if the account already has limit devices, Conflict if
	// the public key is taken and Conflict with field "name" if another
	// device of the account has d.NameIndex. On success d.IPv4 and d.IPv6
	// are set. Allocation never scans the device table.
	CreateDevice(ctx context.Context, d *Device, limit int) error
	// Devices lists the account's devices, oldest first.
	Devices(ctx context.Context, accountID string) ([]Device, error)
	// Device returns the account's device id; another account's is NotFound.
	Device(ctx context.Context, accountID, id string) (*Device, error)
	// UpdateDevice applies u to the account's device and, on a key change,
	// appends to the peer feed. It returns the updated device; Conflict
	// with field "name" if another device of the account has u.NameIndex.
	UpdateDevice(ctx context.Context, accountID, id string, u DeviceUpdate, now time.Time) (*Device, error)
	// UnindexedDeviceAccounts returns, in order, up to limit IDs after
	// after of accounts with a device that has no NameIndex and whose
	// indexing was not deferred (DeferDeviceNameIndexing). It reads only
	// such devices, however many others there are.
	UnindexedDeviceAccounts(ctx context.Context, after string, limit int) ([]string, error)
	// DeferDeviceNameIndexing marks, at now, the account's devices that
	// have no NameIndex as deferred, so that UnindexedDeviceAccounts
	// leaves the account out, and returns how many it marked. Their names
	// are kept as they are; IndexDeviceNames clears the mark.
	DeferDeviceNameIndexing(ctx context.Context, accountID string, now time.Time) (int, error)
	// IndexDeviceNames sets, in one transaction, the name indexes (and
	// new names) of the account's devices in ix that still have no
	// NameIndex, at now, clearing any deferral (DeferDeviceNameIndexing),
	// and returns how many it set; a device indexed
	// or removed meanwhile is left alone. It returns Conflict with field
	// "name" if another device of the account has one of the indexes.
	IndexDeviceNames(ctx context.Context, accountID string, ix []DeviceNameIndexing, now time.Time) (int, error)
	// DeleteDevice removes the account's device, frees its addresses,
	// ends the device's open session intervals and replaces its entries
	// in the peer feed by one removal that names only the device (no key,
	// no addresses).
	DeleteDevice(ctx context.Context, accountID, id string) error

	// Gateways.

	// CreateGateway inserts g (with EnrollHash set).
	CreateGateway(ctx context.Context, g *Gateway) error
	// EnrollGateway consumes the enrollment token with enrollHash, records
	// the gateway's public key and credential hash, and returns the gateway.
	// A used or unknown token is Unauthenticated.
	EnrollGateway(ctx context.Context, enrollHash []byte, publicKey string, credentialHash []byte) (*Gateway, error)
	// GatewayByCredential returns the enrolled gateway with that credential.
	GatewayByCredential(ctx context.Context, credentialHash []byte) (*Gateway, error)
	// Gateways lists all gateways, oldest first.
	Gateways(ctx context.Context) ([]Gateway, error)
	// TouchGateway sets the gateway's LastSeen.
	TouchGateway(ctx context.Context, id string, now time.Time) error
	// UpdateGateway applies u to gateway id and returns the gateway as it
	// now is. An unknown gateway is NotFound; a credential hash another
	// gateway has is Conflict.
	UpdateGateway(ctx context.Context, id string, u GatewayUpdate) (*Gateway, error)
	// DeleteGateway removes gateway id, with its enrollment token and
	// credential hashes, and returns it as it was: its credential no
	// longer authenticates. An unknown gateway is NotFound.
	DeleteGateway(ctx context.Context, id string) (*Gateway, error)

	// Peer feed.

	// PeerSnapshot reads every device as a peer from one database
	// snapshot, streaming rows from the database cursor: it calls begin
	// once with the feed version the snapshot corresponds to and the
	// number of devices, then each for every peer, in no particular
	// order. It stops at and returns the first error begin or each
	// returns. It never holds more than one row.
	PeerSnapshot(ctx context.Context, begin func(version, count int64) error, each func(Peer) error) error
	// PeerChanges returns up to limit changes with Version > since, in
	// order. It returns Gone if since is older than the oldest retained
	// change (the caller must take a new snapshot).
	PeerChanges(ctx context.Context, since int64, limit int) ([]PeerChange, error)

	UsageStore
	StaffStore
	AuditStore
	HoldStore
	DisclosureStore
	ProcessorStore
	StatsStore
	InboxStore
	PolicyStore
	RetentionStore
	PrivacyStore
	BreachStore
	RekeyStore
	PlainTextStore
	OutboundStore

	// Close releases the store.
	Close() error
}

// Interval is one session of use: a device connected through a gateway in
// Region from Start until End (nil while open), at minute granularity.
// DeviceID and AccountID are empty once the interval is anonymised.
type Interval struct {
	DeviceID  string
	AccountID string
	Region    string
	Start     time.Time
	End       *time.Time
	// GatewayID is the gateway that reported the interval. The store
	// keeps it only while the interval is open, to close it if that
	// gateway stops reporting (CloseStaleSessions); Usage never returns
	// it.
	GatewayID string
}

// UsageStore keeps session intervals. It is part of Store.
type UsageStore interface {
	// RecordIntervals stores intervals reported by a gateway in region.
	// Each is keyed by (DeviceID, Start): a repeated report updates the
	// end. An interval of a device that no longer exists only updates an
	// existing row, otherwise it is dropped. It returns how many were kept.
	RecordIntervals(ctx context.Context, region string, ivs []Interval) (int, error)
	// DevicesCreated returns when each of the devices ids was created, by
	// ID. A device that does not exist is absent from the map.
	DevicesCreated(ctx context.Context, ids []string) (map[string]time.Time, error)
	// Usage returns the account's intervals that started at or after
	// since, newest first, at most limit.
	Usage(ctx context.Context, accountID string, since time.Time, limit int) ([]Interval, error)
}
