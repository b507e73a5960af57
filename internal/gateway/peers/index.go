package peers

import (
	"bytes"
	"errors"
	"hash/maphash"
	"math"
	"net/netip"
	"slices"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// entry is one admitted peer: its key, and where its device ID and
// addresses lie in the arena. It holds no pointer, so the garbage collector
// never scans the entry slab.
type entry struct {
	key  wgkey.PublicKey
	off  uint32 // arena offset of the record; next free entry+1 when free
	meta        // lengths and forms of the record; meta.id 0 marks a free entry
	mark uint8  // epoch of the last Admit, for snapshot sweeps
}

func (e *entry) free() bool { return e.id == 0 }

// Index is the set of admitted peers: every key the control server's feed
// lets connect, with its device ID and tunnel addresses. It is built for a
// million entries: entries live in one pointer-free slab, device IDs and
// addresses in one byte arena, and the two lookup tables (by key and by
// device ID) are open-addressed arrays of 32-bit slots, each an entry
// number and 8 bits of its hash, so that a probe reads the slab only for
// a likely match (a lookup of an absent key usually reads no entry). No entry
// costs a Go string, slice or map bucket of its own, and the usual device
// IDs and address pairs are stored in compact forms (see record.go). See
// Bytes.
//
// One device has at most one key: admitting a device ID under a new key
// drops its old key (a key rotation), and admitting a key under another
// device ID moves it.
//
// The zero Index is not usable; call NewIndex. An Index is not safe for
// concurrent use.
type Index struct {
	seed    maphash.Seed
	pools   poolPair
	byKey   []uint32 // slots: tag | entry number+1, or 0 when empty
	byDev   []uint32
	entries []entry
	free    uint32 // first free entry number+1, or 0
	arena   []byte
	garbage int // arena bytes no record refers to
	live    int
	epoch   uint8
	// maxEntries is MaxEntries; tests lower it.
	maxEntries int
}

// NewIndex returns an empty Index. pools, the tunnel pools (one IPv4 and
// one IPv6 prefix), are optional: with them, an address pair at the same
// offset in both pools is stored as its IPv4 address alone.
func NewIndex(pools ...netip.Prefix) *Index {
	x := &Index{seed: maphash.MakeSeed(), pools: newPools(pools), maxEntries: MaxEntries}
	x.byKey = make([]uint32, 1024)
	x.byDev = make([]uint32, 1024)
	return x
}

// Len returns the number of admitted keys.
func (x *Index) Len() int { return x.live }

// Bytes returns the memory the index holds: its tables, slab and arena at
// their current capacities.
func (x *Index) Bytes() int {
	return 4*(len(x.byKey)+len(x.byDev)) + cap(x.entries)*entrySize + cap(x.arena)
}

const entrySize = 40 // size of entry, checked by a test

// Errors of Admit.
var (
	errInvalid = errors.New("peers: invalid device ID or addresses")
	errFull    = errors.New("peers: index full (16,777,215 keys, or 4 GiB of device IDs and addresses)")
)

// Admitted describes what one Admit changed.
type Admitted struct {
	// New is true if the key was not admitted before.
	New bool
	// AddrsChanged is true if the key was admitted before with other
	// addresses.
	AddrsChanged bool
	// Displaced is the device's previous key when the device was admitted
	// under another key (a rotation), or the zero key. Displaced is no
	// longer admitted.
	Displaced wgkey.PublicKey
}

// Admit admits p.Key for device p.DeviceID with addresses p.Addrs,
// replacing whatever the index held for that key or device. It returns an
// error, and changes nothing, if the device ID is empty or longer than
// MaxDeviceIDLen, if p has no address or more than MaxAddrs of a family,
// or if the index would pass MaxEntries keys or 4 GiB of device IDs and
// addresses. Addresses
// are kept in the order given, IPv4 first; FromProto sorts them.
func (x *Index) Admit(p Peer) (Admitted, error) {
	var res Admitted
	n4, n6, err := validate(p)
	if err != nil {
		return res, err
	}
	need := len(p.DeviceID) + 4*n4 + 16*n6
	if uint64(len(x.arena))+uint64(need) > math.MaxUint32 {
		x.compact()
		if uint64(len(x.arena))+uint64(need) > math.MaxUint32 {
			return res, errFull
		}
	}
	// The new record goes at the arena's tail, and is cut off again if
	// nothing changed.
	start := len(x.arena)
	var m meta
	x.arena, m = x.appendRecord(x.arena, p, n4, n6)
	rec := x.arena[start:]
	ei, found := x.lookupKey(&p.Key)
	if found {
		e := &x.entries[ei]
		if e.meta == m && bytes.Equal(x.record(e), rec) {
			e.mark = x.epoch
			x.arena = x.arena[:start]
			return res, nil
		}
	}
	if !found && x.free == 0 && len(x.entries) >= x.maxEntries {
		x.arena = x.arena[:start]
		return res, errFull
	}
	// A device has one key: its other key, if any, is displaced. Entry
	// numbers are stable, so ei survives the removal.
	if other, ok := x.lookupStored(rec[:m.id&lenMask], m.id); ok && (!found || other != ei) {
		res.Displaced = x.entries[other].key
		x.removeEntry(other)
	}
	if found {
		e := &x.entries[ei]
		idLen := int(m.id & lenMask)
		res.AddrsChanged = e.n4 != m.n4 || e.n6 != m.n6 ||
			!bytes.Equal(x.record(e)[e.id&lenMask:], rec[idLen:])
		x.deleteSlot(x.byDev, ei, x.devHash) // before the record changes
		x.garbage += e.recordLen()
	} else {
		x.growIfNeeded()
		ei = x.allocEntry()
		x.entries[ei].key = p.Key
		x.insertSlot(x.byKey, ei, x.keyHash(&p.Key))
		x.live++
		res.New = true
	}
	e := &x.entries[ei]
	e.off, e.meta, e.mark = uint32(start), m, x.epoch
	x.insertSlot(x.byDev, ei, x.devHash(ei))
	return res, nil
}

// storedIDOf returns entry e's device ID as stored.
func (x *Index) storedIDOf(e *entry) []byte {
	return x.arena[e.off : e.off+uint32(e.id&lenMask)]
}

// sameDevice reports whether entry ei is stored under the device ID whose
// stored form is sid with length byte sm.
func (x *Index) sameDevice(ei uint32, sid []byte, sm uint8) bool {
	e := &x.entries[ei]
	return e.id == sm && bytes.Equal(x.storedIDOf(e), sid)
}

func (x *Index) record(e *entry) []byte { return x.arena[e.off : int(e.off)+e.recordLen()] }

func (x *Index) deviceID(e *entry) string {
	if e.id&idPacked != 0 {
		return unpackID(x.storedIDOf(e))
	}
	return string(x.storedIDOf(e))
}

// peer decodes entry e.
func (x *Index) peer(e *entry) Peer { return x.decode(e.key, x.record(e), e.meta) }

// Has reports whether key is admitted.
func (x *Index) Has(key wgkey.PublicKey) bool {
	_, ok := x.lookupKey(&key)
	return ok
}

// Peer returns the admitted peer with key, and whether there is one.
func (x *Index) Peer(key wgkey.PublicKey) (Peer, bool) {
	ei, ok := x.lookupKey(&key)
	if !ok {
		return Peer{}, false
	}
	return x.peer(&x.entries[ei]), true
}

// DeviceID returns the device ID admitted with key, and whether key is
// admitted.
func (x *Index) DeviceID(key wgkey.PublicKey) (string, bool) {
	ei, ok := x.lookupKey(&key)
	if !ok {
		return "", false
	}
	return x.deviceID(&x.entries[ei]), true
}

// KeyOf returns the key admitted for device id, and whether there is one.
func (x *Index) KeyOf(id string) (wgkey.PublicKey, bool) {
	ei, ok := x.lookupDev(id)
	if !ok {
		return wgkey.PublicKey{}, false
	}
	return x.entries[ei].key, true
}

// Remove drops key and reports whether it was admitted.
func (x *Index) Remove(key wgkey.PublicKey) bool {
	ei, ok := x.lookupKey(&key)
	if ok {
		x.removeEntry(ei)
	}
	return ok
}

// RemoveDevice drops the key of device id and returns it, and whether the
// device was admitted.
func (x *Index) RemoveDevice(id string) (wgkey.PublicKey, bool) {
	ei, ok := x.lookupDev(id)
	if !ok {
		return wgkey.PublicKey{}, false
	}
	key := x.entries[ei].key
	x.removeEntry(ei)
	return key, true
}

// Begin starts replacing the index's contents with a snapshot streamed
// through Admit, which Commit ends. Until Commit, lookups see both the old
// entries and those admitted since Begin; nothing is copied. hint, if
// positive, is the expected number of entries, reserved up front so that
// loading does not regrow the tables.
func (x *Index) Begin(hint int) {
	x.epoch++
	if x.epoch == 0 {
		// The 8-bit epoch wrapped: reset every mark so that no stale mark
		// can equal the new epoch.
		for i := range x.entries {
			x.entries[i].mark = 0
		}
		x.epoch = 1
	}
	if hint > 0 {
		x.reserve(hint)
	}
}

// Commit ends a snapshot begun with Begin: every key not admitted since
// Begin is dropped, and removed, if not nil, is called with each. Commit
// then returns unused arena space if more than half of it is garbage.
// Commit without Begin drops nothing that was admitted since the last
// Commit or Abort.
func (x *Index) Commit(removed func(wgkey.PublicKey)) {
	for i := range x.entries {
		e := &x.entries[i]
		if e.free() || e.mark == x.epoch {
			continue
		}
		key := e.key
		x.removeEntry(uint32(i))
		if removed != nil {
			removed(key)
		}
	}
	if x.garbage > len(x.arena)/2 {
		x.compact()
	}
}

// Abort ends a snapshot begun with Begin without dropping anything: every
// entry stays, whether or not it was admitted since Begin.
func (x *Index) Abort() {
	for i := range x.entries {
		x.entries[i].mark = x.epoch
	}
}

// reserve sizes the tables and slab for n entries.
func (x *Index) reserve(n int) {
	for n > len(x.byKey)*3/4 {
		x.resize(2 * len(x.byKey))
	}
	if cap(x.entries) < n {
		x.entries = slices.Grow(x.entries, n-len(x.entries))
	}
	const typical = packedIDLen + 4 // a packed device ID and a paired address
	if want := n * typical; cap(x.arena) < want {
		x.arena = slices.Grow(x.arena, want-len(x.arena))
	}
}

func (x *Index) allocEntry() uint32 {
	if x.free != 0 {
		ei := x.free - 1
		x.free = x.entries[ei].off
		return ei
	}
	x.entries = append(x.entries, entry{})
	return uint32(len(x.entries) - 1)
}

// removeEntry drops entry ei from both tables and frees it.
func (x *Index) removeEntry(ei uint32) {
	e := &x.entries[ei]
	x.deleteSlot(x.byKey, ei, x.keyHashOf)
	x.deleteSlot(x.byDev, ei, x.devHash)
	x.garbage += e.recordLen()
	*e = entry{off: x.free}
	x.free = ei + 1
	x.live--
}

// compact moves the live records down over the garbage, in place, in
// arena order, and returns the arena's unused tail.
func (x *Index) compact() {
	order := make([]uint32, 0, x.live)
	for i := range x.entries {
		if !x.entries[i].free() {
			order = append(order, uint32(i))
		}
	}
	slices.SortFunc(order, func(a, b uint32) int { return int(x.entries[a].off) - int(x.entries[b].off) })
	w := 0
	for _, ei := range order {
		e := &x.entries[ei]
		n := e.recordLen()
		copy(x.arena[w:], x.arena[e.off:int(e.off)+n])
		e.off = uint32(w)
		w += n
	}
	x.arena = slices.Clip(x.arena[:w])
	if cap(x.arena) > 2*w+4096 {
		x.arena = append([]byte(nil), x.arena...)
	}
	x.garbage = 0
}

// The hash tables: linear probing over power-of-two arrays of slots, with
// backward-shift deletion, so there are no tombstones. A slot holds an
// entry number+1 in its low 24 bits and the top 8 bits of the entry's hash
// (its tag) above them; 0 is an empty slot. The low bits of the hash pick
// the home slot. Keys are hashed with a per-index random seed: the feed's
// keys are chosen by users, who must not be able to pick colliding ones.

// MaxEntries is the most keys an Index holds: entry numbers take 24 bits
// of a slot.
const MaxEntries = 1<<24 - 1

const (
	slotIndex = 1<<24 - 1 // the entry number+1 bits of a slot
	tagShift  = 24
)

// slotOf returns the slot of entry ei with hash h.
func slotOf(ei uint32, h uint64) uint32 { return uint32(h>>56)<<tagShift | (ei + 1) }

// tagOf returns the tag bits a slot for hash h carries.
func tagOf(h uint64) uint32 { return uint32(h>>56) << tagShift }

func (x *Index) keyHash(k *wgkey.PublicKey) uint64 { return maphash.Bytes(x.seed, k[:]) }

func (x *Index) keyHashOf(ei uint32) uint64 { return x.keyHash(&x.entries[ei].key) }

// devHash hashes the stored form of entry ei's device ID, as lookupDev
// does.
func (x *Index) devHash(ei uint32) uint64 { return maphash.Bytes(x.seed, x.storedIDOf(&x.entries[ei])) }

func (x *Index) lookupKey(k *wgkey.PublicKey) (uint32, bool) {
	h := x.keyHash(k)
	tag, mask := tagOf(h), len(x.byKey)-1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		v := x.byKey[i]
		if v == 0 {
			return 0, false
		}
		if v&^slotIndex == tag && x.entries[v&slotIndex-1].key == *k {
			return v&slotIndex - 1, true
		}
	}
}

func (x *Index) lookupDev(id string) (uint32, bool) {
	var buf [packedIDLen]byte
	sid, sm := storedID(id, &buf)
	return x.lookupStored(sid, sm)
}

// lookupStored finds the entry of the device ID whose stored form is sid
// with length byte sm.
func (x *Index) lookupStored(sid []byte, sm uint8) (uint32, bool) {
	h := maphash.Bytes(x.seed, sid)
	tag, mask := tagOf(h), len(x.byDev)-1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		v := x.byDev[i]
		if v == 0 {
			return 0, false
		}
		if v&^slotIndex == tag && x.sameDevice(v&slotIndex-1, sid, sm) {
			return v&slotIndex - 1, true
		}
	}
}

// insertSlot adds entry ei, with hash h, to tab.
func (x *Index) insertSlot(tab []uint32, ei uint32, h uint64) {
	mask := len(tab) - 1
	i := int(h) & mask
	for tab[i] != 0 {
		i = (i + 1) & mask
	}
	tab[i] = slotOf(ei, h)
}

// deleteSlot removes entry ei from tab, whose entries hash with hash,
// shifting later members of its probe run back so that every lookup still
// finds them.
func (x *Index) deleteSlot(tab []uint32, ei uint32, hash func(uint32) uint64) {
	mask := len(tab) - 1
	i := int(hash(ei)) & mask
	for tab[i]&slotIndex != ei+1 {
		if tab[i] == 0 {
			return // not present
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; tab[j] != 0; j = (j + 1) & mask {
		h := int(hash(tab[j]&slotIndex-1)) & mask
		// tab[j] may move to the hole at i unless its home lies
		// cyclically in (i, j].
		if (j > i && (h <= i || h > j)) || (j < i && h <= i && h > j) {
			tab[i] = tab[j]
			i = j
		}
	}
	tab[i] = 0
}

func (x *Index) growIfNeeded() {
	if x.live+1 > len(x.byKey)*3/4 {
		x.resize(2 * len(x.byKey))
	}
}

// resize rebuilds both tables with n slots.
func (x *Index) resize(n int) {
	x.byKey = make([]uint32, n)
	x.byDev = make([]uint32, n)
	for i := range x.entries {
		if x.entries[i].free() {
			continue
		}
		ei := uint32(i)
		x.insertSlot(x.byKey, ei, x.keyHashOf(ei))
		x.insertSlot(x.byDev, ei, x.devHash(ei))
	}
}
