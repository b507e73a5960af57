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
	// stream counts the entries of a snapshot in progress.
	stream Result
	// Counts since the start, for the gateway's log; never per key.
	ensureFailed uint64
}

// live is a peer configured on the device.
type live struct {
	// active is the latest of: when it was configured, its latest
	// initiation accepted by Ensure, and its latest handshake seen by Trim.
	active time.Time
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
	// Unconfigured lists the dropped keys that were configured on the
	// device and have been removed from it.
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
		m.unconfigureLocked(a.Displaced, &res)
	}
	switch {
	case a.New:
		res.Added++
	case a.AddrsChanged:
		res.Updated++
		if _, ok := m.live[p.Key]; ok {
			if err := m.dev.IpcSet(addUAPI(p)); err != nil {
				res.Failed++
				m.unconfigureLocked(p.Key, &res)
			}
		}
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
	m.unconfigureLocked(key, res)
}

// RemoveDevice drops the key of device id from the index and, if it is
// configured, from the device.
func (m *Manager) RemoveDevice(id string) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	var res Result
	if key, ok := m.index.RemoveDevice(id); ok {
		res.Dropped++
		m.unconfigureLocked(key, &res)
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
		m.unconfigureLocked(key, &res)
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

// unconfigureLocked removes key from the device if it is configured there.
func (m *Manager) unconfigureLocked(key wgkey.PublicKey, res *Result) {
	if _, ok := m.live[key]; !ok {
		return
	}
	delete(m.live, key)
	if err := m.dev.IpcSet(removeUAPI(key)); err != nil {
		res.Failed++
	}
	res.Unconfigured = append(res.Unconfigured, key)
}

// Ensure makes sure key is configured on the device if it is admitted, and
// reports whether it is: the handshake gate calls it with the static key of
// each initiation before handing the initiation to wireguard-go. For a key
// that is not admitted it returns false and records nothing.
func (m *Manager) Ensure(key wgkey.PublicKey) bool {
	now := m.clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.live[key]; ok {
		l.active = later(l.active, now)
		return true
	}
	p, ok := m.index.Peer(key)
	if !ok {
		return false
	}
	if len(m.live) >= m.maxLive {
		m.ensureFailed++
		return false
	}
	if err := m.dev.IpcSet(addUAPI(p)); err != nil {
		m.ensureFailed++
		return false
	}
	m.live[key] = &live{active: now}
	return true
}

// Trim removes from the device every configured peer that has been idle
// for longer than the idle timeout at now: no initiation accepted by Ensure,
// no handshake in hs (the device's handshake times) and no configuration
// within that time. The keys stay admitted; Trim returns those it removed.
func (m *Manager) Trim(now time.Time, hs []sessions.Handshake) []wgkey.PublicKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range hs {
		if l, ok := m.live[h.Key]; ok {
			l.active = later(l.active, h.Last)
		}
	}
	var out []wgkey.PublicKey
	for key, l := range m.live {
		if now.Sub(l.active) <= m.idle {
			continue
		}
		var res Result
		m.unconfigureLocked(key, &res)
		out = append(out, key)
	}
	return out
}

// DeviceID returns the device ID admitted with key, and whether key is
// admitted.
func (m *Manager) DeviceID(key wgkey.PublicKey) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.index.DeviceID(key)
}

// Stats are a Manager's counts.
type Stats struct {
	Admitted     int    // keys in the index
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
