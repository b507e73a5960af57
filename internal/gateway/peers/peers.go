// Package peers mirrors the control server's peer feed onto a wireguard-go
// device.
//
// It keeps the gateway's view of the peers that are configured on the
// device, computes the difference to a wanted set, and renders each
// difference as a minimal UAPI "set" request: one peer per request, never a
// full reconfiguration.
package peers

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Peer is a validated device as configured on the WireGuard device.
type Peer struct {
	DeviceID string
	Key      wgkey.PublicKey
	Allowed  []netip.Prefix // host prefixes, sorted, without duplicates
}

// equal reports whether p and q configure the device identically and carry
// the same device ID.
func (p Peer) equal(q Peer) bool {
	return p.DeviceID == q.DeviceID && p.Key.Equal(q.Key) && slices.Equal(p.Allowed, q.Allowed)
}

// FromProto validates a feed entry. The key must parse, there must be at
// least one address, and every address must be a host prefix (/32 or /128)
// inside one of pools, so a bad or hostile feed entry cannot route other
// traffic to a peer. The returned Allowed list is sorted and deduplicated.
func FromProto(p gwproto.Peer, pools []netip.Prefix) (Peer, error) {
	key, err := wgkey.ParsePublic(p.PublicKey)
	if err != nil {
		return Peer{}, fmt.Errorf("peer %s: %w", p.DeviceID, err)
	}
	if len(p.Addresses) == 0 {
		return Peer{}, fmt.Errorf("peer %s: no addresses", p.DeviceID)
	}
	allowed := make([]netip.Prefix, 0, len(p.Addresses))
	for _, s := range p.Addresses {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return Peer{}, fmt.Errorf("peer %s: invalid address", p.DeviceID)
		}
		pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-unmapBits(pfx.Addr()))
		if pfx.Bits() != pfx.Addr().BitLen() {
			return Peer{}, fmt.Errorf("peer %s: address is not a host prefix", p.DeviceID)
		}
		in := false
		for _, pool := range pools {
			if pool.Contains(pfx.Addr()) {
				in = true
				break
			}
		}
		if !in {
			return Peer{}, fmt.Errorf("peer %s: address outside the tunnel pools", p.DeviceID)
		}
		allowed = append(allowed, pfx)
	}
	sort.Slice(allowed, func(i, j int) bool { return comparePrefix(allowed[i], allowed[j]) < 0 })
	allowed = slices.Compact(allowed)
	return Peer{DeviceID: p.DeviceID, Key: key, Allowed: allowed}, nil
}

func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// Set is a set of peers keyed by public key.
type Set map[wgkey.PublicKey]Peer

// Kind is the kind of an Op.
type Kind int

// The kinds of change to the device.
const (
	Add Kind = iota + 1
	Update
	Remove
)

func (k Kind) String() string {
	switch k {
	case Add:
		return "add"
	case Update:
		return "update"
	case Remove:
		return "remove"
	}
	return "unknown"
}

// Op is one change to one peer.
type Op struct {
	Kind Kind
	Peer Peer // for Remove only Key and DeviceID are meaningful
}

// UAPI returns the minimal wireguard-go UAPI "set" text for op: for Remove
// "public_key=<hex>\nremove=true\n"; for Add and Update the public key,
// "replace_allowed_ips=true" and one allowed_ip line per address.
func (op Op) UAPI() string {
	var b strings.Builder
	b.WriteString("public_key=")
	b.WriteString(op.Peer.Key.Hex())
	b.WriteByte('\n')
	if op.Kind == Remove {
		b.WriteString("remove=true\n")
		return b.String()
	}
	b.WriteString("replace_allowed_ips=true\n")
	for _, p := range op.Peer.Allowed {
		b.WriteString("allowed_ip=")
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Diff returns the operations that turn cur into want: removals first, then
// additions and updates, each group ordered by key so the result is
// deterministic. Peers present in both with equal contents produce no Op.
func Diff(cur, want Set) []Op {
	var rm, up []Op
	for k, p := range cur {
		if _, ok := want[k]; !ok {
			rm = append(rm, Op{Kind: Remove, Peer: p})
		}
	}
	for k, p := range want {
		old, ok := cur[k]
		switch {
		case !ok:
			up = append(up, Op{Kind: Add, Peer: p})
		case !old.equal(p):
			up = append(up, Op{Kind: Update, Peer: p})
		}
	}
	byKey := func(ops []Op) {
		sort.Slice(ops, func(i, j int) bool { return bytes.Compare(ops[i].Peer.Key[:], ops[j].Peer.Key[:]) < 0 })
	}
	byKey(rm)
	byKey(up)
	return append(rm, up...)
}

// Device is the part of *device.Device that Table needs.
type Device interface {
	IpcSet(uapiConf string) error
}

// Table is the gateway's record of the peers configured on a device. It is
// the only writer of peers to that device. A Table is safe for concurrent
// use.
type Table struct {
	dev   Device
	pools []netip.Prefix

	mu  sync.Mutex
	cur Set
}

// NewTable returns an empty Table for dev, which must have no peers yet.
// Feed entries with addresses outside pools are refused.
func NewTable(dev Device, pools []netip.Prefix) *Table {
	return &Table{dev: dev, pools: slices.Clone(pools), cur: Set{}}
}

// Result summarises what an apply call did. Removed lists the peers that are
// no longer on the device, so their sessions can be closed.
type Result struct {
	Added, Updated int
	Removed        []Peer
	Rejected       int // feed entries that failed validation
	Failed         int // device updates that failed
}

// ApplyFull makes the device's peers exactly the valid entries of snapshot,
// issuing one UAPI request per differing peer. An invalid entry counts as
// Rejected and, if its key was on the device, removes it.
func (t *Table) ApplyFull(snapshot []gwproto.Peer) Result {
	var res Result
	want := make(Set, len(snapshot))
	for _, gp := range snapshot {
		p, err := FromProto(gp, t.pools)
		if err != nil {
			res.Rejected++
			continue
		}
		want[p.Key] = p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, op := range Diff(t.cur, want) {
		t.applyLocked(op, &res)
	}
	return res
}

// ApplyChange applies one feed entry. A removal of an unknown key is a
// no-op. An invalid non-removal entry counts as Rejected and removes the key
// if it was on the device, since the server wants it configured in a way the
// gateway refuses.
func (t *Table) ApplyChange(c gwproto.Change) Result {
	var res Result
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.Removed {
		key, err := wgkey.ParsePublic(c.PublicKey)
		if err != nil {
			res.Rejected++
			return res
		}
		if old, ok := t.cur[key]; ok {
			t.applyLocked(Op{Kind: Remove, Peer: old}, &res)
		}
		return res
	}
	p, err := FromProto(c.Peer, t.pools)
	if err != nil {
		res.Rejected++
		if key, kerr := wgkey.ParsePublic(c.PublicKey); kerr == nil {
			if old, ok := t.cur[key]; ok {
				t.applyLocked(Op{Kind: Remove, Peer: old}, &res)
			}
		}
		return res
	}
	old, ok := t.cur[p.Key]
	switch {
	case !ok:
		t.applyLocked(Op{Kind: Add, Peer: p}, &res)
	case !old.equal(p):
		t.applyLocked(Op{Kind: Update, Peer: p}, &res)
	}
	return res
}

func (t *Table) applyLocked(op Op, res *Result) {
	if op.Kind == Update && slices.Equal(t.cur[op.Peer.Key].Allowed, op.Peer.Allowed) {
		// Only the device ID changed: nothing to tell the device.
		t.cur[op.Peer.Key] = op.Peer
		res.Updated++
		return
	}
	if err := t.dev.IpcSet(op.UAPI()); err != nil {
		res.Failed++
		return
	}
	switch op.Kind {
	case Add:
		t.cur[op.Peer.Key] = op.Peer
		res.Added++
	case Update:
		t.cur[op.Peer.Key] = op.Peer
		res.Updated++
	case Remove:
		delete(t.cur, op.Peer.Key)
		res.Removed = append(res.Removed, op.Peer)
	}
}

// DeviceID returns the device ID configured for key, and whether key is a
// current peer.
func (t *Table) DeviceID(key wgkey.PublicKey) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.cur[key]
	return p.DeviceID, ok
}

// Len returns the number of peers on the device.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cur)
}
