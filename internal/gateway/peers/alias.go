package peers

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/gateway/sessions"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// An alias is an ephemeral peer of a quantum-resistant tunnel (see package
// ephemeral): a key the device's client switched to, with the pre-shared
// key both sides derived. It is never a device of its own: it has the
// device's addresses, its handshakes count as the device's sessions, and it
// goes when the device goes or changes key. It lives in memory only, and
// at most one per device.
//
// The device's two keys are never both on the device with its addresses:
// like wireguard-go's own table of allowed IPs, which gives an address to
// one peer, m.owners gives each address to one configured key. A key whose
// sibling holds the addresses is configured without them, and takes them
// only once its handshake completes (Responded); the sibling then leaves the
// device. So the long-term key leaves the device after the alias's first
// handshake, and an alias leaves (and is forgotten) after a handshake of the
// long-term key, which means its client started anew.
type alias struct {
	device wgkey.PublicKey // the device's long-term key
	psk    [32]byte
	// added is when the alias was installed, or last active on the device;
	// an alias idle for longer than the idle timeout is forgotten.
	added time.Time
}

// Errors of AddAlias and DeviceByAddr.
var (
	// ErrNotAdmitted: the device key is not admitted, or no configured
	// peer holds the address.
	ErrNotAdmitted = errors.New("peers: not an admitted device")
	// ErrAliasRefused: the ephemeral key is a device's key or another
	// device's alias, or there is no room for another alias.
	ErrAliasRefused = errors.New("peers: ephemeral key refused")
)

// AddAlias installs eph as the ephemeral alias of the admitted device key
// device, with pre-shared key psk, replacing the device's previous alias
// (which leaves the device if it is configured there). eph is configured on
// the device only when its handshake initiation arrives (Ensure). It
// returns ErrNotAdmitted if device is not admitted, and ErrAliasRefused if
// eph is an admitted key, another device's alias, or if as many aliases
// exist as peers may be configured.
func (m *Manager) AddAlias(device, eph wgkey.PublicKey, psk [32]byte) error {
	now := m.clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.index.Has(device) {
		return ErrNotAdmitted
	}
	if eph.IsZero() || m.index.Has(eph) {
		return ErrAliasRefused
	}
	if a, ok := m.aliases[eph]; ok && a.device != device {
		return ErrAliasRefused
	}
	old, had := m.aliasOf[device]
	if !had && len(m.aliases) >= m.maxLive {
		return ErrAliasRefused
	}
	if had && old != eph {
		var res Result
		m.unconfigureLocked(old, &res)
		m.forgetAliasLocked(old)
	}
	m.aliases[eph] = &alias{device: device, psk: psk, added: now}
	m.aliasOf[device] = eph
	return nil
}

// DeviceByAddr returns the long-term key of the device whose configured
// peer holds tunnel address a on the device: the peer wireguard-go accepts
// packets from a from. For an alias it is the alias's device. It returns
// ErrNotAdmitted if no configured peer holds a.
func (m *Manager) DeviceByAddr(a netip.Addr) (wgkey.PublicKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key, ok := m.owners[a.Unmap()]
	if !ok {
		return wgkey.PublicKey{}, ErrNotAdmitted
	}
	l, ok := m.live[key]
	if !ok || !m.index.Has(l.device) {
		return wgkey.PublicKey{}, ErrNotAdmitted
	}
	return l.device, nil
}

// Canonical returns hs with every alias's key replaced by its device's
// long-term key, merged with the device's own entry (the latest handshake
// wins), so that session tracking sees one key per device.
func (m *Manager) Canonical(hs []sessions.Handshake) []sessions.Handshake {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]sessions.Handshake, 0, len(hs))
	at := make(map[wgkey.PublicKey]int, len(hs))
	for _, h := range hs {
		if a, ok := m.aliases[h.Key]; ok {
			h.Key = a.device
		}
		if i, ok := at[h.Key]; ok {
			out[i].Last = later(out[i].Last, h.Last)
			continue
		}
		at[h.Key] = len(out)
		out = append(out, h)
	}
	return out
}

// resolveLocked returns what configures key: its device's peer record
// under key, the alias's pre-shared key (nil for a device key), and the
// device's long-term key.
func (m *Manager) resolveLocked(key wgkey.PublicKey) (Peer, *[32]byte, wgkey.PublicKey, bool) {
	if p, ok := m.index.Peer(key); ok {
		return p, nil, key, true
	}
	a, ok := m.aliases[key]
	if !ok {
		return Peer{}, nil, wgkey.PublicKey{}, false
	}
	p, ok := m.index.Peer(a.device)
	if !ok {
		return Peer{}, nil, wgkey.PublicKey{}, false
	}
	p.Key = key
	return p, &a.psk, a.device, true
}

// siblingsLocked returns the device's other keys that are configured: its
// long-term key and its alias, except key.
func (m *Manager) siblingsLocked(key, device wgkey.PublicKey) []wgkey.PublicKey {
	var out []wgkey.PublicKey
	cands := []wgkey.PublicKey{device}
	if eph, ok := m.aliasOf[device]; ok {
		cands = append(cands, eph)
	}
	for _, c := range cands {
		if _, ok := m.live[c]; ok && c != key {
			out = append(out, c)
		}
	}
	return out
}

// siblingOwnsLocked reports whether another key of the device holds its
// addresses on the device.
func (m *Manager) siblingOwnsLocked(key, device wgkey.PublicKey) bool {
	for _, s := range m.siblingsLocked(key, device) {
		if m.live[s].owner {
			return true
		}
	}
	return false
}

// deviceLiveLocked reports whether any key of the device is configured.
func (m *Manager) deviceLiveLocked(device wgkey.PublicKey) bool {
	if _, ok := m.live[device]; ok {
		return true
	}
	eph, ok := m.aliasOf[device]
	if !ok {
		return false
	}
	_, ok = m.live[eph]
	return ok
}

// ownLocked records that key, configured as l, holds addrs on the device.
func (m *Manager) ownLocked(key wgkey.PublicKey, l *live, addrs []netip.Addr) {
	l.owner, l.addrs = true, addrs
	for _, a := range addrs {
		m.owners[a] = key
	}
}

// disownLocked forgets the addresses key, configured as l, holds.
func (m *Manager) disownLocked(key wgkey.PublicKey, l *live) {
	for _, a := range l.addrs {
		if m.owners[a] == key {
			delete(m.owners, a)
		}
	}
	l.owner, l.addrs = false, nil
}

// forgetAliasLocked drops the alias record of eph (not the device's peer).
func (m *Manager) forgetAliasLocked(eph wgkey.PublicKey) {
	a, ok := m.aliases[eph]
	if !ok {
		return
	}
	delete(m.aliases, eph)
	if m.aliasOf[a.device] == eph {
		delete(m.aliasOf, a.device)
	}
	clear(a.psk[:])
}

// readdressLocked gives the device of p (whose addresses changed in the
// index) its new addresses on the device, on whichever of its keys holds
// them.
func (m *Manager) readdressLocked(p Peer, res *Result) {
	for _, key := range m.siblingsLocked(wgkey.PublicKey{}, p.Key) {
		l := m.live[key]
		if !l.owner {
			continue
		}
		q, psk, _, ok := m.resolveLocked(key)
		if !ok {
			continue
		}
		m.disownLocked(key, l)
		if err := m.dev.IpcSet(configUAPI(q, psk, true)); err != nil {
			res.Failed++
			m.unconfigureLocked(key, res)
			if !m.deviceLiveLocked(p.Key) {
				res.Unconfigured = append(res.Unconfigured, p.Key)
			}
			continue
		}
		m.ownLocked(key, l, q.Addrs)
	}
}

// configUAPI returns the UAPI "set" text that configures p (under p.Key)
// with pre-shared key psk if not nil, and with p's addresses as allowed
// IPs if withAddrs, or none.
func configUAPI(p Peer, psk *[32]byte, withAddrs bool) string {
	if withAddrs && psk == nil {
		return addUAPI(p)
	}
	var b strings.Builder
	b.WriteString("public_key=")
	b.WriteString(p.Key.Hex())
	b.WriteByte('\n')
	if psk != nil {
		b.WriteString("preshared_key=")
		b.WriteString(hex.EncodeToString(psk[:]))
		b.WriteByte('\n')
	}
	b.WriteString("replace_allowed_ips=true\n")
	if withAddrs {
		for _, a := range p.Addrs {
			b.WriteString("allowed_ip=")
			b.WriteString(netip.PrefixFrom(a, a.BitLen()).String())
			b.WriteByte('\n')
		}
	}
	return b.String()
}
