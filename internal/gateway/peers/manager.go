package peers

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/nitronet/nitronet/internal/gateway/sessions"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Device is the part of *device.Device that Manager needs.
type Device interface {
	IpcSet(uapiConf string) error
}

// MaxConfigured is wireguard-go's limit on the peers of one device
// (device.MaxPeers).
const MaxConfigured = 1 << 16

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Device is the wireguard-go device; Manager is the only writer of its
	// peers, which must have none at the start.
	Device Device
	// Pools are the tunnel pools: feed entries with addresses outside them
	// are refused.
	Pools []netip.Prefix
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// IdleTimeout is how long a configured peer may go without a handshake
	// before Trim removes it from the device; 0 means
	// sessions.RejectAfterTime (180 s), after which its session keys are
	// dead anyway.
	IdleTimeout time.Duration
	// MaxConfigured caps the peers configured at once; 0 means
	// MaxConfigured, wireguard-go's own limit.
	MaxConfigured int
}

// Manager keeps the admitted peers (an Index fed by the control server's
// feed) and configures an admitted peer on the device only when it
// connects (Ensure), dropping it again when it is idle (Trim). A key the
// feed removes is dropped from both at once.
//
// A Manager is safe for concurrent use.
type Manager struct {
	dev     Device
	pools   []netip.Prefix
	clock   func() time.Time
	idle    time.Duration
	maxLive int

	mu    sync.Mutex
	index *Index
	live  map[wgkey.PublicKey]*live
	// pending holds the keys Ensure is creating on the device outside mu
	// (see Ensure); they are in neither live nor owners yet.
	pending map[wgkey.PublicKey]*pending
	// Ephemeral peers (see alias.go): by ephemeral key, and each device
	// key's one alias.
	aliases map[wgkey.PublicKey]*alias
	aliasOf map[wgkey.PublicKey]wgkey.PublicKey
	// owners maps each tunnel address to the configured key that holds it
	// as an allowed IP on the device, as wireguard-go's own table does.
	owners map[netip.Addr]wgkey.PublicKey
	// stream counts the entries of a snapshot in progress.
	stream Result
	// scratch holds AddRecord's address lists.
	scratch [2][2]netip.Addr
	// Counts since the start, for the gateway's log; never per key.
	ensureFailed uint64
}

// live is a peer configured on the device.
type live struct {
	// active is the latest of: when it was configured, its latest
	// initiation accepted by Ensure, and its latest handshake seen by Trim.
	active time.Time
	// device is the device's long-term key: the key itself, or the one
	// an ephemeral key is an alias of.
	device wgkey.PublicKey
	// owner is true when the peer holds the device's addresses as its
	// allowed IPs. A key configured while another key of its device held
	// them is not an owner until its handshake completes (Responded).
	owner bool
	// addrs are the addresses an owner holds.
	addrs []netip.Addr
}

// pending is a key being created on the device by one Ensure; other
// Ensure calls for the key (or for another key of its device) wait on done.
type pending struct {
	done    chan struct{}
	ok      bool // set before done is closed: the key is configured
	waiters int  // Ensure calls waiting on done, under m.mu
}

// NewManager returns a Manager with no admitted peers.
func NewManager(cfg ManagerConfig) *Manager {
	m := &Manager{
		dev:     cfg.Device,
		pools:   slices.Clone(cfg.Pools),
		clock:   cfg.Clock,
		idle:    cfg.IdleTimeout,
		maxLive: cfg.MaxConfigured,
		index:   NewIndex(cfg.Pools...),
		live:    map[wgkey.PublicKey]*live{},
		pending: map[wgkey.PublicKey]*pending{},
		aliases: map[wgkey.PublicKey]*alias{},
		aliasOf: map[wgkey.PublicKey]wgkey.PublicKey{},
		owners:  map[netip.Addr]wgkey.PublicKey{},
	}
	if m.clock == nil {
		m.clock = time.Now
	}
	if m.idle <= 0 {
		m.idle = sessions.RejectAfterTime
	}
	if m.maxLive <= 0 || m.maxLive > MaxConfigured {
		m.maxLive = MaxConfigured
	}
	return m
}

// Result summarises what a feed update did, in counts, plus the keys that
// were removed from the device, so that their sessions can be closed.
type Result struct {
	Added, Updated int // admitted keys added, or changed
	Dropped        int // admitted keys no longer admitted
	Rejected       int // feed entries that failed validation
	Failed         int // device updates that failed
	// Unconfigured lists the devices, by long-term key, that had a key
	// configured on the device (their own or an ephemeral alias) and now
	// have none: their sessions are over.
	Unconfigured []wgkey.PublicKey
}

func (r *Result) add(o Result) {
	r.Added += o.Added
	r.Updated += o.Updated
	r.Dropped += o.Dropped
	r.Rejected += o.Rejected
	r.Failed += o.Failed
	r.Unconfigured = append(r.Unconfigured, o.Unconfigured...)
}

// Changed reports whether r records anything at all.
func (r Result) Changed() bool {
	return r.Added+r.Updated+r.Dropped+r.Rejected+r.Failed > 0
}

// Admit admits p, replacing what was admitted for its key or its device
// (a device admitted under a new key loses its old key: a rotation). A
// configured peer whose addresses change is updated on the device; a
// displaced key is removed from it. A p that fails Check counts as
// Rejected and drops its key, since the server wants it in a form the
// gateway refuses.
func (m *Manager) Admit(p Peer) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp, err := p.Check(m.pools)
	if err != nil {
		res := Result{Rejected: 1}
		m.removeLocked(p.Key, &res)
		return res
	}
	return m.admitLocked(cp)
}

func (m *Manager) admitLocked(p Peer) Result {
	var res Result
	a, err := m.index.Admit(p)
	if err != nil {
		res.Rejected++
		return res
	}
	if !a.Displaced.IsZero() {
		res.Dropped++
		m.dropDeviceLocked(a.Displaced, &res)
	}
	switch {
	case a.New:
		res.Added++
	case a.AddrsChanged:
		res.Updated++
		m.readdressLocked(p, &res)
	default:
		// Unchanged, or only the device ID changed: nothing to tell the
		// device.
	}
	return res
}

// Remove drops key from the index and, if it is configured, from the
// device.
func (m *Manager) Remove(key wgkey.PublicKey) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	var res Result
	m.removeLocked(key, &res)
	return res
}

func (m *Manager) removeLocked(key wgkey.PublicKey, res *Result) {
	if m.index.Remove(key) {
		res.Dropped++
	}
	m.dropDeviceLocked(key, res)
}

// RemoveDevice drops the key of device id from the index and, if it is
// configured, from the device.
func (m *Manager) RemoveDevice(id string) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	var res Result
	if key, ok := m.index.RemoveDevice(id); ok {
		res.Dropped++
		m.dropDeviceLocked(key, &res)
	}
	return res
}

// Apply applies one change from the feed. A removal of an unknown key is a
// no-op; a removal without a key (the server keeps none of a removed
// device) drops the key admitted for its device ID, if any. An entry that
// fails validation counts as Rejected and drops its key, since the server
// wants it in a form the gateway refuses.
func (m *Manager) Apply(c gwproto.Change) Result {
	if c.Removed && c.PublicKey == "" {
		if c.DeviceID == "" {
			return Result{}
		}
		return m.RemoveDevice(c.DeviceID)
	}
	if c.Removed {
		key, err := wgkey.ParsePublic(c.PublicKey)
		if err != nil {
			return Result{Rejected: 1}
		}
		return m.Remove(key)
	}
	p, err := FromProto(c.Peer, m.pools)
	if err != nil {
		res := Result{Rejected: 1}
		if key, kerr := wgkey.ParsePublic(c.PublicKey); kerr == nil {
			res.add(m.Remove(key))
		}
		return res
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admitLocked(p)
}

// Begin starts replacing the admitted set with a snapshot, streamed through
// Add or AddPeer and ended by Commit (or Abort). hint, if positive, is the
// expected number of entries. While a snapshot streams, the old entries
// stay admitted, so peers keep connecting; no second copy of the index is
// built. One snapshot streams at a time.
func (m *Manager) Begin(hint int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.index.Begin(hint)
	m.stream = Result{}
}

// Add admits one snapshot entry from the feed (see Begin). An entry that
// fails FromProto counts as Rejected and is not admitted, so Commit drops
// its key.
func (m *Manager) Add(gp gwproto.Peer) {
	p, err := FromProto(gp, m.pools)
	if err != nil {
		m.mu.Lock()
		m.stream.Rejected++
		m.mu.Unlock()
		return
	}
	m.addChecked(p)
}

// AddPeer is Add for an entry the feed's decoder has parsed already. An
// entry that fails Check counts as Rejected and is not admitted.
func (m *Manager) AddPeer(p Peer) {
	cp, err := p.Check(m.pools)
	if err != nil {
		m.mu.Lock()
		m.stream.Rejected++
		m.mu.Unlock()
		return
	}
	m.addChecked(cp)
}

// AddRecord is AddPeer for a record of the binary snapshot, as
// gwproto.DecodeSnapshot hands it over; it allocates nothing (a snapshot
// adds a million entries). A record that fails Check counts as Rejected
// and is not admitted.
func (m *Manager) AddRecord(r gwproto.PeerRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// The index copies what it keeps, so both address lists can live in
	// m's scratch arrays, which the lock guards.
	in := m.scratch[0][:0]
	for _, a := range [2]netip.Addr{r.IPv4, r.IPv6} {
		if a.IsValid() {
			in = append(in, a)
		}
	}
	p, err := Peer{DeviceID: r.DeviceID, Key: r.Key, Addrs: in}.check(m.pools, m.scratch[1][:0])
	if err != nil {
		m.stream.Rejected++
		return
	}
	m.stream.add(m.admitLocked(p))
}

func (m *Manager) addChecked(p Peer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stream.add(m.admitLocked(p))
}

// Commit ends a snapshot: every key not added since Begin is dropped from
// the index and, if configured, from the device. It returns what the whole
// snapshot did.
func (m *Manager) Commit() Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	res := m.stream
	m.stream = Result{}
	m.index.Commit(func(key wgkey.PublicKey) {
		res.Dropped++
		m.dropDeviceLocked(key, &res)
	})
	return res
}

// Abort ends a snapshot that did not arrive whole (the stream broke): no
// key is dropped. The entries added since Begin stay admitted; they come
// from a newer state of the feed than the one they replaced, and the next
// complete snapshot drops whatever that state no longer has. It returns
// what the partial snapshot did.
func (m *Manager) Abort() Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	res := m.stream
	m.stream = Result{}
	m.index.Abort()
	return res
}

// ApplyFull replaces the admitted set with snapshot: Begin, Add for each
// entry, Commit.
func (m *Manager) ApplyFull(snapshot []gwproto.Peer) Result {
	m.Begin(len(snapshot))
	for _, p := range snapshot {
		m.Add(p)
	}
	return m.Commit()
}

// unconfigureLocked removes key from the device if it is configured
// there, and reports whether it was.
func (m *Manager) unconfigureLocked(key wgkey.PublicKey, res *Result) bool {
	l, ok := m.live[key]
	if !ok {
		return false
	}
	delete(m.live, key)
	if l.owner {
		m.disownLocked(key, l)
	}
	if err := m.dev.IpcSet(removeUAPI(key)); err != nil {
		res.Failed++
	}
	return true
}

// dropDeviceLocked removes the device with long-term key device, whose key
// has left the index, from the device: its key and its ephemeral alias,
// which is forgotten too.
func (m *Manager) dropDeviceLocked(device wgkey.PublicKey, res *Result) {
	was := m.unconfigureLocked(device, res)
	if eph, ok := m.aliasOf[device]; ok {
		was = m.unconfigureLocked(eph, res) || was
		m.forgetAliasLocked(eph)
	}
	if was {
		res.Unconfigured = append(res.Unconfigured, device)
	}
}

// Ensure makes sure key is configured on the device if it is admitted, or
// is an ephemeral alias of an admitted device (with the alias's pre-shared
// key), and reports whether it is: the handshake gate calls it with the
// static key of each initiation before handing the initiation to
// wireguard-go. For a key that is neither it returns false and records
// nothing.
//
// A key is configured with its device's addresses as allowed IPs, unless
// another key of the same device holds them on the device: then it is
// configured without any until its handshake completes (Responded), so
// that an initiation alone, which may be a replay, moves nothing.
//
// Creating a peer is the costly part (wireguard-go precomputes its static
// shared secret and starts its goroutines), so Ensure does it without
// holding m's lock: other keys' Ensure calls, the feed and Trim go on
// meanwhile. It then takes the lock again and looks the key up anew: if
// the key is no longer admitted (nor an alias) it removes the peer again
// and returns false; if its addresses or ownership changed meanwhile it
// reconfigures the peer. Concurrent Ensure calls for one key create it
// once: the others wait for the first one's result. Calls for the other
// key of the same device, and Responded, wait too, so that the two keys of
// a device never change hands of the addresses at once.
func (m *Manager) Ensure(key wgkey.PublicKey) bool {
	now := m.clock()
	m.mu.Lock()
	for {
		if l, ok := m.live[key]; ok {
			l.active = later(l.active, now)
			m.mu.Unlock()
			return true
		}
		pd, same := m.pendingLocked(key)
		if pd == nil {
			break
		}
		pd.waiters++
		m.mu.Unlock()
		<-pd.done
		if same {
			return pd.ok
		}
		m.mu.Lock()
	}
	p, psk, device, ok := m.resolveLocked(key)
	if !ok {
		m.mu.Unlock()
		return false
	}
	if len(m.live)+len(m.pending) >= m.maxLive {
		m.ensureFailed++
		m.mu.Unlock()
		return false
	}
	if psk != nil {
		// The alias may be forgotten (and its key cleared) meanwhile.
		c := *psk
		psk = &c
		defer clear(c[:])
	}
	made := live{owner: !m.siblingOwnsLocked(key, device)}
	if made.owner {
		made.addrs = p.Addrs
	}
	pd := &pending{done: make(chan struct{})}
	m.pending[key] = pd
	m.mu.Unlock()

	err := m.dev.IpcSet(configUAPI(p, psk, made.owner))

	m.mu.Lock()
	defer m.mu.Unlock()
	defer close(pd.done)
	delete(m.pending, key)
	if err != nil {
		m.ensureFailed++
		return false
	}
	pd.ok = m.publishLocked(key, made, psk, now)
	return pd.ok
}

// deleteLocked removes key, which Ensure created but did not publish, from
// the device.
func (m *Manager) deleteLocked(key wgkey.PublicKey) {
	if err := m.dev.IpcSet(removeUAPI(key)); err != nil {
		m.ensureFailed++
	}
}

// pendingLocked returns the Ensure in progress for key or for the other
// key of its device, if any, and whether it is for key itself.
func (m *Manager) pendingLocked(key wgkey.PublicKey) (*pending, bool) {
	if pd, ok := m.pending[key]; ok {
		return pd, true
	}
	if len(m.pending) == 0 {
		return nil, false
	}
	device := key
	if a, ok := m.aliases[key]; ok {
		device = a.device
	}
	for _, k := range [2]wgkey.PublicKey{device, m.aliasOf[device]} {
		if pd, ok := m.pending[k]; ok && k != key {
			return pd, false
		}
	}
	return nil, false
}

// publishLocked records key, which Ensure has just created on the device
// as made, with pre-shared key psk, as configured. If key is no longer
// admitted (nor an alias) it removes it from the device again and returns
// false; if what configures it changed meanwhile it reconfigures it.
func (m *Manager) publishLocked(key wgkey.PublicKey, made live, psk *[32]byte, now time.Time) bool {
	p, cur, device, ok := m.resolveLocked(key)
	if !ok {
		// Dropped by the feed, a snapshot or an alias change meanwhile.
		m.deleteLocked(key)
		return false
	}
	owner := !m.siblingOwnsLocked(key, device)
	if owner != made.owner || !slices.Equal(p.Addrs, made.addrs) || (cur != nil && (psk == nil || *cur != *psk)) {
		// Changed while the peer was created (rare): a readdress, or the
		// owning sibling left. A sibling cannot have taken the addresses,
		// since it waits for this Ensure.
		if err := m.dev.IpcSet(configUAPI(p, cur, owner)); err != nil {
			m.ensureFailed++
			m.deleteLocked(key)
			return false
		}
	}
	l := &live{active: now, device: device}
	m.live[key] = l
	if owner {
		m.ownLocked(key, l, p.Addrs)
	}
	return true
}

// Responded tells m that wireguard-go answered a handshake initiation from
// key: the handshake completed. A key that was configured without its
// device's addresses (see Ensure) now takes them, and the device's other
// key leaves the device: after an ephemeral alias's first handshake the
// long-term key is removed (it stays admitted); after a handshake of the
// long-term key the alias is removed and forgotten, since its client has
// started anew. For any other key it does nothing.
func (m *Manager) Responded(key wgkey.PublicKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Let an Ensure of the device's other key finish first (see Ensure).
	for pd, _ := m.pendingLocked(key); pd != nil; pd, _ = m.pendingLocked(key) {
		m.mu.Unlock()
		<-pd.done
		m.mu.Lock()
	}
	l, ok := m.live[key]
	if !ok || l.owner {
		return
	}
	p, psk, device, ok := m.resolveLocked(key)
	if !ok {
		return
	}
	var res Result
	for _, sib := range m.siblingsLocked(key, device) {
		m.unconfigureLocked(sib, &res)
		if _, isAlias := m.aliases[sib]; isAlias {
			m.forgetAliasLocked(sib)
		}
	}
	if err := m.dev.IpcSet(configUAPI(p, psk, true)); err != nil {
		m.ensureFailed++
		m.unconfigureLocked(key, &res)
		return
	}
	m.ownLocked(key, l, p.Addrs)
}

// Trim removes from the device every configured peer that has been idle
// for longer than the idle timeout at now: no initiation accepted by Ensure,
// no handshake in hs (the device's handshake times) and no configuration
// within that time. The keys stay admitted; ephemeral aliases idle for as
// long (configured or not) are forgotten. Trim returns the devices, by
// long-term key, that have no key left on the device.
func (m *Manager) Trim(now time.Time, hs []sessions.Handshake) []wgkey.PublicKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range hs {
		if l, ok := m.live[h.Key]; ok {
			l.active = later(l.active, h.Last)
		}
	}
	var res Result
	gone := map[wgkey.PublicKey]bool{}
	for key, l := range m.live {
		if now.Sub(l.active) <= m.idle {
			continue
		}
		if a, ok := m.aliases[key]; ok {
			a.added = later(a.added, l.active)
		}
		m.unconfigureLocked(key, &res)
		gone[l.device] = true
	}
	for eph, a := range m.aliases {
		_, busy := m.pending[eph]
		if _, ok := m.live[eph]; !ok && !busy && now.Sub(a.added) > m.idle {
			m.forgetAliasLocked(eph)
		}
	}
	var out []wgkey.PublicKey
	for device := range gone {
		if !m.deviceLiveLocked(device) {
			out = append(out, device)
		}
	}
	return out
}

// DeviceID returns the device ID admitted with key, or with the device key
// is an ephemeral alias of, and whether there is one.
func (m *Manager) DeviceID(key wgkey.PublicKey) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.aliases[key]; ok {
		key = a.device
	}
	return m.index.DeviceID(key)
}

// Stats are a Manager's counts.
type Stats struct {
	Admitted     int    // keys in the index
	Aliases      int    // ephemeral keys installed as aliases of admitted keys
	Configured   int    // peers on the device
	IndexBytes   int    // memory held by the index
	EnsureFailed uint64 // admitted keys that could not be configured
}

// Stats returns the current counts.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{
		Admitted:     m.index.Len(),
		Aliases:      len(m.aliases),
		Configured:   len(m.live),
		IndexBytes:   m.index.Bytes(),
		EnsureFailed: m.ensureFailed,
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
