// Package devices manages users' WireGuard devices. The server only ever
// sees a device's public key; the private key stays on the device. A
// device's name is stored sealed under its account's data key (package
// acctkey), so an erasure leaves it unreadable; its public key and tunnel
// addresses stay readable to the server, which gateways need, and are
// deleted when the device is.
package devices

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/dnsblock"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// DefaultLimit is the default number of devices per account.
const DefaultLimit = 5

// Config holds the service's dependencies.
type Config struct {
	Store store.Store
	// Keys seals and opens device names under their account's data key.
	Keys         *acctkey.Keys
	Logger       *slog.Logger
	Clock        func() time.Time
	Rand         io.Reader
	Limit        int    // devices per account; 0 means DefaultLimit
	OnPeerChange func() // called after a change that gateways must see; may be nil
	// Gateways lists the gateways device configurations may name (a
	// *gateways.Service); without it, Gateway and WireGuard are
	// Unavailable.
	Gateways Gateways
	// DNS are the gateways' tunnel-side DNS resolvers, put into the
	// configurations of devices that block nothing.
	DNS []netip.Addr
	// Pool6 is the IPv6 tunnel pool, which holds the gateways' DNS
	// blocking resolvers (see package dnsblock): the configuration of a
	// device that chose categories names its set's resolver instead of
	// DNS. Without it (or with a pool too small), choosing categories is
	// Unavailable.
	Pool6 netip.Prefix
}

// Service manages devices. It is safe for concurrent use.
type Service struct{ cfg Config }

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Keys == nil || cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("devices: missing dependency")
	}
	if cfg.Limit <= 0 {
		cfg.Limit = DefaultLimit
	}
	if cfg.OnPeerChange == nil {
		cfg.OnPeerChange = func() {}
	}
	return &Service{cfg: cfg}, nil
}

// Device is a device as its owner sees it.
type Device struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	PublicKey string   `json:"public_key"`
	Addresses []string `json:"addresses"`
	// DNSBlocking names the DNS blocking categories the device chose, in
	// canonical order (see package dnsblock); empty blocks nothing.
	DNSBlocking []string  `json:"dns_blocking"`
	CreatedAt   time.Time `json:"created_at"`
	// KeyCreatedAt is when the current public key was registered (at
	// creation or the last rotation).
	KeyCreatedAt time.Time `json:"key_created_at"`
}

// Blocks reports whether the device chose the DNS blocking category
// named c.
func (d Device) Blocks(c string) bool { return slices.Contains(d.DNSBlocking, c) }

// view returns d as its owner sees it, its name opened with key.
func view(key *acctkey.Key, d *store.Device) (Device, error) {
	name, err := Name(key, d)
	if err != nil {
		return Device{}, err
	}
	v := Device{ID: d.ID, Name: name, PublicKey: d.PublicKey, CreatedAt: d.CreatedAt.UTC(), Addresses: []string{},
		DNSBlocking: d.DNSBlocking.Names(), KeyCreatedAt: d.KeyCreatedAt.UTC()}
	if d.IPv4.IsValid() {
		v.Addresses = append(v.Addresses, d.IPv4.String()+"/32")
	}
	if d.IPv6.IsValid() {
		v.Addresses = append(v.Addresses, d.IPv6.String()+"/128")
	}
	return v, nil
}

// Name returns the name of d, a device of key's account: its sealed name
// opened, or the plaintext name of a device written before names were
// sealed.
func Name(key *acctkey.Key, d *store.Device) (string, error) {
	return key.OpenOr(acctkey.DeviceName, d.ID, d.SealedName, d.Name)
}

// SealPlaintext seals the names of devices written before names were
// sealed (see acctkey.Keys.SealPlainTexts, which returns the counts).
func (s *Service) SealPlaintext(ctx context.Context) (done, skipped int, err error) {
	return s.cfg.Keys.SealPlainTexts(ctx, s.cfg.Store, store.PlainDevices, acctkey.DeviceName,
		func(p store.PlainText) (string, map[string]string, error) { return p.Fields["name"], nil, nil })
}

// ValidateName checks a device name: 1 to 64 printable characters. A bad
// name is Invalid with field "name".
func ValidateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > 64 {
		return "", errs.Field(errs.Invalid, "name", "enter a device name of 1 to 64 characters")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", errs.Field(errs.Invalid, "name", "name must contain only printable characters")
		}
	}
	return name, nil
}

func parseKey(s string) (string, error) {
	k, err := wgkey.ParsePublic(strings.TrimSpace(s))
	if err != nil {
		e := errs.Wrap(errs.Invalid, err, "public_key must be a base64 WireGuard public key (44 characters)")
		e.Field = "public_key"
		return "", e
	}
	return k.String(), nil
}

// noDevice is the error for a device id that is malformed, unknown or
// another account's.
func noDevice() error { return errs.Field(errs.NotFound, "id", "no such device") }

// Limit returns the number of devices an account may have.
func (s *Service) Limit() int { return s.cfg.Limit }

// keyTaken is the error for a public key another device already has.
func keyTaken() error {
	return errs.Field(errs.Conflict, "public_key", "this public key is already registered")
}

// NewDevice is what Create registers.
type NewDevice struct {
	Name      string
	PublicKey string
	// DNSBlocking names DNS blocking categories (see ParseBlocking); nil
	// blocks nothing.
	DNSBlocking []string
}

// ParseBlocking returns the set of DNS blocking categories named by names
// (ads, trackers, malware, adult, gambling; any case, repeats allowed).
// An unknown name is Invalid with field "dns_blocking", and a non-empty
// set is Unavailable when the service has no IPv6 pool to put its
// resolver in.
func (s *Service) ParseBlocking(names []string) (dnsblock.Set, error) {
	set, err := dnsblock.ParseSet(names)
	if err != nil {
		return 0, errs.Field(errs.Invalid, "dns_blocking", "%v", err)
	}
	if set != 0 {
		if _, err := dnsblock.Resolver(s.cfg.Pool6, set); err != nil {
			return 0, errs.Wrap(errs.Unavailable, err, "DNS blocking is not available on this service")
		}
	}
	return set, nil
}

// Add registers a device that blocks nothing: Create with only a name and
// a public key.
func (s *Service) Add(ctx context.Context, accountID, name, publicKey string) (*Device, error) {
	return s.Create(ctx, accountID, NewDevice{Name: name, PublicKey: publicKey})
}

// Create registers a device for the account. Both contacts must be
// verified first (Precondition); the device limit gives Precondition; a
// public key already in use gives Conflict (field "public_key"), a name
// another of the account's devices has (compared case-insensitively, see
// FoldName) Conflict (field "name"); a bad name and a bad key are Invalid
// (fields "name" and "public_key", both reported at once with errs.Join),
// a bad category Invalid (field "dns_blocking").
func (s *Service) Create(ctx context.Context, accountID string, nd NewDevice) (*Device, error) {
	name, nErr := ValidateName(nd.Name)
	key, kErr := parseKey(nd.PublicKey)
	if err := errs.Join(nErr, kErr); err != nil {
		return nil, err
	}
	blocking, err := s.ParseBlocking(nd.DNSBlocking)
	if err != nil {
		return nil, err
	}
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	if !a.EmailVerified || !a.MobileVerified {
		return nil, errs.E(errs.Precondition, "verify both your email and your mobile number before adding a device")
	}
	id, err := ident.New(s.cfg.Rand, "dev")
	if err != nil {
		return nil, err
	}
	k, err := s.cfg.Keys.OpenAccount(a)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	sealed, err := k.Seal(acctkey.DeviceName, id, name)
	if err != nil {
		return nil, err
	}
	ix, err := nameIndex(k, name)
	if err != nil {
		return nil, err
	}
	// Devices written before names were indexed are indexed first, so
	// that the new name is compared with theirs too.
	if _, err := s.indexAccount(ctx, k, accountID); err != nil {
		return nil, err
	}
	now := s.cfg.Clock()
	d := &store.Device{ID: id, AccountID: accountID, SealedName: sealed, NameIndex: ix, PublicKey: key, DNSBlocking: blocking, CreatedAt: now, UpdatedAt: now}
	if err := s.cfg.Store.CreateDevice(ctx, d, s.cfg.Limit); err != nil {
		switch errs.CodeOf(err) {
		case errs.Conflict:
			return nil, conflict(err, name)
		case errs.Precondition:
			return nil, errs.E(errs.Precondition, "device limit of %d reached; remove a device first", s.cfg.Limit)
		}
		return nil, err
	}
	s.cfg.OnPeerChange()
	s.cfg.Logger.Info("device added", "account", accountID, "device", id)
	v, err := view(k, d)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// List returns the account's devices, oldest first.
func (s *Service) List(ctx context.Context, accountID string) ([]Device, error) {
	ds, err := s.cfg.Store.Devices(ctx, accountID)
	if err != nil {
		return nil, err
	}
	out := make([]Device, 0, len(ds))
	if len(ds) == 0 {
		return out, nil
	}
	k, err := s.cfg.Keys.Open(ctx, accountID)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	for i := range ds {
		v, err := view(k, &ds[i])
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// viewOne returns the account's device d as its owner sees it.
func (s *Service) viewOne(ctx context.Context, accountID string, d *store.Device) (*Device, error) {
	k, err := s.cfg.Keys.Open(ctx, accountID)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	v, err := view(k, d)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// Get returns one of the account's devices; another account's is NotFound
// (field "id").
func (s *Service) Get(ctx context.Context, accountID, id string) (*Device, error) {
	if !ident.Valid(id, "dev") {
		return nil, noDevice()
	}
	d, err := s.cfg.Store.Device(ctx, accountID, id)
	if errs.Is(err, errs.NotFound) {
		return nil, noDevice()
	}
	if err != nil {
		return nil, err
	}
	return s.viewOne(ctx, accountID, d)
}

// Update renames the device and/or rotates its public key: Change with
// only those.
func (s *Service) Update(ctx context.Context, accountID, id string, name, publicKey *string) (*Device, error) {
	return s.Change(ctx, accountID, id, Changes{Name: name, PublicKey: publicKey})
}

// Changes are the changes Change makes; nil fields are left as they are.
type Changes struct {
	Name, PublicKey *string
	// DNSBlocking replaces the device's DNS blocking categories (see
	// ParseBlocking); an empty slice blocks nothing.
	DNSBlocking *[]string
}

// Change renames the device, rotates its public key and/or replaces its
// DNS blocking categories; at least one change must be given. Errors name
// their field as Create's do; an unknown device is NotFound (field "id").
// A new choice of categories takes effect when the device uses a
// configuration fetched afterwards, which names the new set's resolver.
func (s *Service) Change(ctx context.Context, accountID, id string, c Changes) (*Device, error) {
	if !ident.Valid(id, "dev") {
		return nil, noDevice()
	}
	name, publicKey := c.Name, c.PublicKey
	if name == nil && publicKey == nil && c.DNSBlocking == nil {
		return nil, errs.E(errs.Invalid, "give a new name, a new public_key or the dns_blocking categories")
	}
	var u store.DeviceUpdate
	if c.DNSBlocking != nil {
		set, err := s.ParseBlocking(*c.DNSBlocking)
		if err != nil {
			return nil, err
		}
		u.DNSBlocking = &set
	}
	var nErr, kErr error
	var n string // the new name, validated
	if name != nil {
		n, nErr = ValidateName(*name)
		if nErr == nil {
			k, err := s.cfg.Keys.Open(ctx, accountID)
			if err != nil {
				return nil, err
			}
			u.SealedName, u.NameIndex, err = s.sealName(ctx, k, accountID, id, n)
			k.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if publicKey != nil {
		var k string
		k, kErr = parseKey(*publicKey)
		u.PublicKey = &k
	}
	if err := errs.Join(nErr, kErr); err != nil {
		return nil, err
	}
	d, err := s.cfg.Store.UpdateDevice(ctx, accountID, id, u, s.cfg.Clock())
	switch errs.CodeOf(err) {
	case "":
	case errs.Conflict:
		return nil, conflict(err, n)
	case errs.NotFound:
		return nil, noDevice()
	default:
		return nil, err
	}
	if u.PublicKey != nil {
		s.cfg.OnPeerChange()
		s.cfg.Logger.Info("device key rotated", "account", accountID, "device", id)
	}
	if u.DNSBlocking != nil {
		s.cfg.Logger.Info("device DNS blocking chosen", "account", accountID, "device", id)
	}
	return s.viewOne(ctx, accountID, d)
}

// sealName returns device id's new name sealed and indexed, after
// indexing the account's devices written before names were indexed.
func (s *Service) sealName(ctx context.Context, k *acctkey.Key, accountID, id, name string) (sealed, ix []byte, err error) {
	if sealed, err = k.Seal(acctkey.DeviceName, id, name); err != nil {
		return nil, nil, err
	}
	if ix, err = nameIndex(k, name); err != nil {
		return nil, nil, err
	}
	if _, err := s.indexAccount(ctx, k, accountID); err != nil {
		return nil, nil, err
	}
	return sealed, ix, nil
}

// Remove deletes the device; gateways drop its peer at once. An unknown
// device is NotFound (field "id").
func (s *Service) Remove(ctx context.Context, accountID, id string) error {
	if !ident.Valid(id, "dev") {
		return noDevice()
	}
	if err := s.cfg.Store.DeleteDevice(ctx, accountID, id); errs.Is(err, errs.NotFound) {
		return noDevice()
	} else if err != nil {
		return err
	}
	s.cfg.OnPeerChange()
	s.cfg.Logger.Info("device removed", "account", accountID, "device", id)
	return nil
}
