package blocklist

import (
	"hash/maphash"
	"math/bits"

	"github.com/nitronet/nitronet/internal/dnsblock"
)

// Index is a set of domain names, each with the set of categories whose
// lists name it, held compactly: the names lie back to back in one byte
// arena, and an open-addressing table of 32-bit arena offsets finds them.
// It costs about len(name)+10 bytes per name and holds no pointers, so a
// million names are some 30 MB that the garbage collector never scans.
//
// Build it with a Builder. An Index is immutable and safe for concurrent
// use.
type Index struct {
	seed  maphash.Seed
	arena []byte   // per name: length, categories, name bytes
	slots []uint32 // arena offset + 1; 0 is an empty slot; len is a power of two
	n     int
}

// Len returns the number of distinct names.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return ix.n
}

// Bytes returns the memory the index holds, in bytes.
func (ix *Index) Bytes() int {
	if ix == nil {
		return 0
	}
	return cap(ix.arena) + 4*cap(ix.slots)
}

// Match returns the categories of every listed name that name is equal to
// or a subdomain of: for a.b.example it looks up a.b.example, b.example
// and example. name must be canonical (see Canonical); a byte that cannot
// occur in a listed name only makes it match less. A nil Index matches
// nothing.
func (ix *Index) Match(name []byte) dnsblock.Set {
	if ix == nil || ix.n == 0 {
		return 0
	}
	var s dnsblock.Set
	for {
		s |= ix.lookup(name)
		i := indexDot(name)
		if i < 0 {
			return s
		}
		name = name[i+1:]
	}
}

func indexDot(b []byte) int {
	for i, c := range b {
		if c == '.' {
			return i
		}
	}
	return -1
}

// lookup returns the categories of name exactly, or 0.
func (ix *Index) lookup(name []byte) dnsblock.Set {
	if len(name) == 0 || len(name) > maxName {
		return 0
	}
	mask := uint64(len(ix.slots) - 1)
	for i := maphash.Bytes(ix.seed, name) & mask; ; i = (i + 1) & mask {
		off := ix.slots[i]
		if off == 0 {
			return 0
		}
		if e := ix.entry(off - 1); string(e) == string(name) {
			return dnsblock.Set(ix.arena[off])
		}
	}
}

// entry returns the name stored at arena offset off.
func (ix *Index) entry(off uint32) []byte {
	l := uint32(ix.arena[off])
	return ix.arena[off+2 : off+2+l]
}

// Builder makes an Index. The zero Builder is ready to use; it is not safe
// for concurrent use.
type Builder struct {
	ix Index
}

// NewBuilder returns a Builder sized for about n names of about size bytes
// in all.
func NewBuilder(n, size int) *Builder {
	b := &Builder{}
	b.init(n, size)
	return b
}

func (b *Builder) init(n, size int) {
	b.ix.seed = maphash.MakeSeed()
	b.ix.slots = make([]uint32, tableSize(n))
	b.ix.arena = make([]byte, 0, max(0, min(size+2*n, 1<<32-1)))
}

// Add adds the canonical name (see Canonical) with categories s, or adds s
// to the categories of a name already added. It reports false, adding
// nothing, for an empty name, one longer than 253 bytes, or when the index
// has reached 4 GB of names.
func (b *Builder) Add(name []byte, s dnsblock.Set) bool {
	if len(name) == 0 || len(name) > maxName {
		return false
	}
	if b.ix.slots == nil {
		b.init(0, 0)
	}
	ix := &b.ix
	mask := uint64(len(ix.slots) - 1)
	i := maphash.Bytes(ix.seed, name) & mask
	for ; ix.slots[i] != 0; i = (i + 1) & mask {
		off := ix.slots[i] - 1
		if string(ix.entry(off)) == string(name) {
			ix.arena[off+1] |= byte(s)
			return true
		}
	}
	if uint64(len(ix.arena))+2+uint64(len(name)) >= 1<<32-1 {
		return false
	}
	off := uint32(len(ix.arena))
	ix.arena = append(ix.arena, byte(len(name)), byte(s))
	ix.arena = append(ix.arena, name...)
	ix.slots[i] = off + 1
	ix.n++
	if 2*ix.n > len(ix.slots) {
		b.grow()
	}
	return true
}

// grow doubles the table and re-inserts every name.
func (b *Builder) grow() { b.rehash(2 * len(b.ix.slots)) }

// tableSize returns the table size for n names: the least power of two of
// at least 2n (a load factor of at most 1/2), and at least 16.
func tableSize(n int) int {
	if n <= 8 {
		return 16
	}
	return 1 << bits.Len(uint(2*n-1))
}

// rehash moves every name into a new table of size slots.
func (b *Builder) rehash(size int) {
	ix := &b.ix
	old := ix.slots
	ix.slots = make([]uint32, size)
	mask := uint64(len(ix.slots) - 1)
	for _, off := range old {
		if off == 0 {
			continue
		}
		i := maphash.Bytes(ix.seed, ix.entry(off-1)) & mask
		for ix.slots[i] != 0 {
			i = (i + 1) & mask
		}
		ix.slots[i] = off
	}
}

// Len returns the number of distinct names added so far.
func (b *Builder) Len() int { return b.ix.n }

// Index returns the index built so far, its table and arena trimmed if the
// hints were generous. The Builder must not be used afterwards.
func (b *Builder) Index() *Index {
	if b.ix.slots == nil {
		b.init(0, 0)
	}
	if size := tableSize(b.ix.n); size < len(b.ix.slots) {
		b.rehash(size)
	}
	ix := b.ix
	if cap(ix.arena) > len(ix.arena)+len(ix.arena)/8 {
		ix.arena = append([]byte(nil), ix.arena...)
	}
	b.ix = Index{}
	return &ix
}
