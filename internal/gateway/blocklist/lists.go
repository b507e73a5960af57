// Package blocklist loads the DNS blocklists a gateway's operator provides,
// one or more files per category (see package dnsblock), and decides
// whether a query name is blocked for a set of categories.
//
// The lists are held in one Index; Lists swaps in a new one atomically on
// Reload, so queries in flight never see a half-loaded list. Nothing here
// keeps a query name: Blocker.Blocked looks it up and adds one to a
// counter per category, a total over every client. Those totals are all a
// gateway may tell about blocking.
package blocklist

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitronet/nitronet/internal/dnsblock"
)

// Source is one list file of a category.
type Source struct {
	Category dnsblock.Category
	Path     string
}

// FileStats is what loading one Source found.
type FileStats struct {
	Source
	Stats
}

// Report is the outcome of one load.
type Report struct {
	Files   []FileStats
	Names   int           // distinct names in the index
	Bytes   int           // memory the index holds
	Elapsed time.Duration // time to read, parse and index every file
}

// Load reads every source and returns their index. A file that cannot be
// read, or that lists no name although it has entries (nothing valid, some
// skipped), is an error naming the file; skipped entries in a file that
// has valid ones are only reported.
func Load(sources []Source) (*Index, Report, error) {
	start := time.Now()
	var rep Report
	// A name takes at most its line's length in the arena: the file sizes
	// bound it, and a line averages some 24 bytes.
	size := 0
	for _, s := range sources {
		if fi, err := os.Stat(s.Path); err == nil {
			size += int(fi.Size())
		}
	}
	b := NewBuilder(size/24, size)
	for _, src := range sources {
		if src.Category.String() == "" {
			return nil, rep, fmt.Errorf("blocklist %s: invalid category", src.Path)
		}
		st, err := loadFile(b, src)
		if err != nil {
			return nil, rep, err
		}
		rep.Files = append(rep.Files, FileStats{Source: src, Stats: st})
	}
	ix := b.Index()
	rep.Names, rep.Bytes, rep.Elapsed = ix.Len(), ix.Bytes(), time.Since(start)
	return ix, rep, nil
}

func loadFile(b *Builder, src Source) (Stats, error) {
	f, err := os.Open(src.Path)
	if err != nil {
		return Stats{}, fmt.Errorf("blocklist %s (%s): %w", src.Path, src.Category, err)
	}
	defer f.Close()
	full := false
	st, err := Parse(f, func(name []byte) {
		if !b.Add(name, dnsblock.Set(src.Category)) {
			full = true
		}
	})
	if err != nil {
		return st, fmt.Errorf("blocklist %s (%s): read: %w", src.Path, src.Category, err)
	}
	if full {
		return st, fmt.Errorf("blocklist %s (%s): the lists exceed 4 GB of names", src.Path, src.Category)
	}
	if st.Names == 0 && st.Skipped > 0 {
		return st, fmt.Errorf("blocklist %s (%s): no valid domain name: %d entries skipped, the first on line %d (want one domain per line, or hosts lines \"0.0.0.0 domain\")",
			src.Path, src.Category, st.Skipped, st.FirstSkipped)
	}
	return st, nil
}

// Lists is the loaded blocklists of a gateway, reloadable. Its methods are
// safe for concurrent use.
type Lists struct {
	sources []Source
	reload  sync.Mutex // one reload at a time
	cur     atomic.Pointer[Index]
	blocked [8]atomic.Uint64 // by category bit
}

// New loads sources (see Load) and returns the Lists with its first report.
// With no sources it returns empty Lists, which block nothing.
func New(sources []Source) (*Lists, Report, error) {
	l := &Lists{sources: append([]Source(nil), sources...)}
	rep, err := l.Reload()
	if err != nil {
		return nil, rep, err
	}
	return l, rep, nil
}

// Reload reads the sources again and, if that succeeds, puts the new index
// in force for every Blocker at once. On an error the index in force stays.
// The counters are kept across reloads.
func (l *Lists) Reload() (Report, error) {
	l.reload.Lock()
	defer l.reload.Unlock()
	ix, rep, err := Load(l.sources)
	if err != nil {
		return rep, err
	}
	l.cur.Store(ix)
	return rep, nil
}

// Len returns the number of distinct names in force.
func (l *Lists) Len() int { return l.cur.Load().Len() }

// Categories returns the categories that have at least one source.
func (l *Lists) Categories() dnsblock.Set {
	var s dnsblock.Set
	for _, src := range l.sources {
		s |= dnsblock.Set(src.Category)
	}
	return s
}

// Totals returns, by category name, how many queries each category's lists
// have blocked since New: totals over every client, the only figures kept.
// A query blocked by the lists of two chosen categories counts for both.
func (l *Lists) Totals() map[string]uint64 {
	out := map[string]uint64{}
	for _, c := range dnsblock.Categories() {
		out[c.String()] = l.blocked[bitIndex(c)].Load()
	}
	return out
}

func bitIndex(c dnsblock.Category) int {
	for i := range 8 {
		if c == 1<<i {
			return i
		}
	}
	return 7
}

// ErrNoSet is returned by Blocker for the empty set.
var ErrNoSet = errors.New("blocklist: a blocker needs at least one category")

// Blocker returns what blocks the names listed for the categories in s, as
// the lists stand at each query. s must be a valid, non-empty set.
func (l *Lists) Blocker(s dnsblock.Set) (*Blocker, error) {
	if s == 0 || !s.Valid() {
		return nil, ErrNoSet
	}
	return &Blocker{l: l, set: s}, nil
}

// Blocker blocks the names of one set of categories. It is safe for
// concurrent use.
type Blocker struct {
	l   *Lists
	set dnsblock.Set
}

// Set returns the blocker's categories.
func (b *Blocker) Set() dnsblock.Set { return b.set }

// Blocked reports whether name (canonical, see Canonical) is listed, or is
// a subdomain of a name listed, by the lists of one of the blocker's
// categories. A blocked name adds one to the total of each such category;
// the name itself is not kept.
func (b *Blocker) Blocked(name []byte) bool {
	hit := b.l.cur.Load().Match(name) & b.set
	if hit == 0 {
		return false
	}
	for _, c := range dnsblock.Categories() {
		if hit.Has(c) {
			b.l.blocked[bitIndex(c)].Add(1)
		}
	}
	return true
}
