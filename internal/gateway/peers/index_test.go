package peers

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/wgkey"
)

func TestEntrySize(t *testing.T) {
	if got := unsafe.Sizeof(entry{}); got != entrySize {
		t.Errorf("entry is %d bytes, want %d", got, entrySize)
	}
}

func samePeer(a, b Peer) bool {
	return a.DeviceID == b.DeviceID && a.Key == b.Key && slices.Equal(a.Addrs, b.Addrs)
}

func mustAdmit(t *testing.T, x *Index, p Peer) Admitted {
	t.Helper()
	a, err := x.Admit(p)
	if err != nil {
		t.Fatalf("Admit(%s): %v", p.DeviceID, err)
	}
	return a
}

func TestIndexAdmitLookupRemove(t *testing.T) {
	x := NewIndex()
	a := peer("dev-a", key(1), "100.64.0.2", "fd00:6e6e::2")
	b := peer("dev-b", key(2), "100.64.0.3")

	if got := mustAdmit(t, x, a); !got.New || got.AddrsChanged || !got.Displaced.IsZero() {
		t.Errorf("first Admit: got %+v, want New only", got)
	}
	mustAdmit(t, x, b)
	if got := mustAdmit(t, x, a); got.New || got.AddrsChanged {
		t.Errorf("identical Admit: got %+v, want no change", got)
	}
	if x.Len() != 2 {
		t.Fatalf("Len: got %d, want 2", x.Len())
	}
	if got, ok := x.Peer(key(1)); !ok || !samePeer(got, a) {
		t.Errorf("Peer(a): got %+v %v, want %+v", got, ok, a)
	}
	if id, ok := x.DeviceID(key(2)); !ok || id != "dev-b" {
		t.Errorf("DeviceID(b): got %q %v", id, ok)
	}
	if k, ok := x.KeyOf("dev-a"); !ok || k != key(1) {
		t.Errorf("KeyOf(dev-a): got %v %v", k, ok)
	}
	if x.Has(key(3)) {
		t.Errorf("Has(unknown): got true")
	}

	t.Run("address change", func(t *testing.T) {
		a2 := peer("dev-a", key(1), "100.64.0.9", "fd00:6e6e::2")
		if got := mustAdmit(t, x, a2); got.New || !got.AddrsChanged {
			t.Errorf("got %+v, want AddrsChanged", got)
		}
		if got, _ := x.Peer(key(1)); !samePeer(got, a2) {
			t.Errorf("Peer: got %+v, want %+v", got, a2)
		}
		a = a2
	})
	t.Run("device ID change only", func(t *testing.T) {
		a3 := peer("dev-a3", key(1), a.Addrs[0].String(), a.Addrs[1].String())
		if got := mustAdmit(t, x, a3); got.New || got.AddrsChanged || !got.Displaced.IsZero() {
			t.Errorf("got %+v, want no address change", got)
		}
		if _, ok := x.KeyOf("dev-a"); ok {
			t.Errorf("old device ID still maps to a key")
		}
		if k, ok := x.KeyOf("dev-a3"); !ok || k != key(1) {
			t.Errorf("KeyOf(dev-a3): got %v %v", k, ok)
		}
	})
	t.Run("rotation displaces the old key", func(t *testing.T) {
		got := mustAdmit(t, x, peer("dev-b", key(7), "100.64.0.3"))
		if !got.New || got.Displaced != key(2) {
			t.Errorf("got %+v, want New and Displaced=key(2)", got)
		}
		if x.Has(key(2)) || !x.Has(key(7)) || x.Len() != 2 {
			t.Errorf("after rotation: has old %v, has new %v, len %d", x.Has(key(2)), x.Has(key(7)), x.Len())
		}
	})
	t.Run("key moves to a device that had another key", func(t *testing.T) {
		// key(1) (dev-a3) is re-registered as dev-b, whose key was key(7).
		got := mustAdmit(t, x, peer("dev-b", key(1), "100.64.0.3"))
		if got.New || got.Displaced != key(7) {
			t.Errorf("got %+v, want Displaced=key(7)", got)
		}
		if x.Len() != 1 || x.Has(key(7)) {
			t.Errorf("len %d, has key(7) %v; want 1, false", x.Len(), x.Has(key(7)))
		}
		if _, ok := x.KeyOf("dev-a3"); ok {
			t.Errorf("dev-a3 still admitted")
		}
	})
	t.Run("remove", func(t *testing.T) {
		if !x.Remove(key(1)) || x.Remove(key(1)) || x.Len() != 0 {
			t.Errorf("Remove: wrong results, len %d", x.Len())
		}
		mustAdmit(t, x, b)
		if k, ok := x.RemoveDevice("dev-b"); !ok || k != key(2) || x.Len() != 0 {
			t.Errorf("RemoveDevice: got %v %v len %d", k, ok, x.Len())
		}
		if _, ok := x.RemoveDevice("dev-b"); ok {
			t.Errorf("RemoveDevice twice: got ok")
		}
	})
}

func TestIndexAdmitInvalid(t *testing.T) {
	x := NewIndex()
	many := make([]string, MaxAddrs+1)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}).String()
	}
	for name, p := range map[string]Peer{
		"empty device ID":      peer("", key(1), "100.64.0.2"),
		"device ID too long":   {DeviceID: string(make([]byte, MaxDeviceIDLen+1)), Key: key(1), Addrs: []netip.Addr{netip.MustParseAddr("100.64.0.2")}},
		"no address":           peer("d", key(1)),
		"invalid address":      {DeviceID: "d", Key: key(1), Addrs: []netip.Addr{{}}},
		"zone":                 peer("d", key(1), "fe80::1%eth0"),
		"too many of a family": peer("d", key(1), many...),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := x.Admit(p); err == nil {
				t.Errorf("got nil error")
			}
			if x.Len() != 0 {
				t.Errorf("Len: got %d, want 0", x.Len())
			}
		})
	}
}

// TestIndexFull checks that the index refuses a key beyond its entry
// limit (MaxEntries, lowered here), changing nothing, and takes one again
// once a key has left.
func TestIndexFull(t *testing.T) {
	x := NewIndex(pools...)
	x.maxEntries = 3
	for i := range 3 {
		mustAdmit(t, x, peer("d"+strconv.Itoa(i), key(byte(i+1)), "100.64.0."+strconv.Itoa(i+2)))
	}
	if _, err := x.Admit(peer("d3", key(4), "100.64.0.5")); err != errFull {
		t.Fatalf("Admit beyond the limit: got %v, want errFull", err)
	}
	if x.Len() != 3 || x.Has(key(4)) {
		t.Fatalf("after a refused Admit: Len %d, has the key %v", x.Len(), x.Has(key(4)))
	}
	// A key already admitted may still change.
	if a := mustAdmit(t, x, peer("d0", key(1), "100.64.0.9")); !a.AddrsChanged {
		t.Errorf("readdressing at the limit: got %+v", a)
	}
	x.Remove(key(2))
	mustAdmit(t, x, peer("d3", key(4), "100.64.0.5"))
	for _, k := range []byte{1, 3, 4} {
		if !x.Has(key(k)) {
			t.Errorf("key %d not admitted", k)
		}
	}
}

func TestIndexSnapshot(t *testing.T) {
	x := NewIndex()
	for i := range 10 {
		mustAdmit(t, x, peer("dev-"+strconv.Itoa(i), key(byte(i+1)), fmt.Sprintf("100.64.0.%d", i+2)))
	}
	x.Begin(0)
	// Entries 0-4 again, 5 with a new address, 20 new; 6-9 are missing.
	for i := range 5 {
		mustAdmit(t, x, peer("dev-"+strconv.Itoa(i), key(byte(i+1)), fmt.Sprintf("100.64.0.%d", i+2)))
	}
	mustAdmit(t, x, peer("dev-5", key(6), "100.64.1.1"))
	mustAdmit(t, x, peer("dev-20", key(21), "100.64.0.22"))
	// Before Commit, lookups still see the old entries.
	if !x.Has(key(9)) {
		t.Errorf("an old entry vanished before Commit")
	}
	var removed []wgkey.PublicKey
	x.Commit(func(k wgkey.PublicKey) { removed = append(removed, k) })
	slices.SortFunc(removed, func(a, b wgkey.PublicKey) int { return int(a[0]) - int(b[0]) })
	if want := []wgkey.PublicKey{key(7), key(8), key(9), key(10)}; !slices.Equal(removed, want) {
		t.Errorf("removed: got %v, want keys 7-10", removed)
	}
	if x.Len() != 7 {
		t.Errorf("Len: got %d, want 7", x.Len())
	}
	// Admits after Commit, outside a snapshot, survive the next Commit.
	mustAdmit(t, x, peer("dev-30", key(31), "100.64.0.31"))
	x.Commit(nil)
	if !x.Has(key(31)) || x.Len() != 8 {
		t.Errorf("an incremental Admit did not survive a Commit without Begin")
	}
}

func TestIndexEpochWrap(t *testing.T) {
	x := NewIndex()
	mustAdmit(t, x, peer("stale", key(1), "100.64.0.2"))
	mustAdmit(t, x, peer("kept", key(2), "100.64.0.3"))
	// 256 snapshots that keep only "kept" but are never committed would
	// bring the epoch back to stale's mark without a reset.
	for range 256 {
		x.Begin(0)
		mustAdmit(t, x, peer("kept", key(2), "100.64.0.3"))
	}
	x.Commit(nil)
	if x.Has(key(1)) || !x.Has(key(2)) {
		t.Errorf("after 256 snapshots: stale %v, kept %v; want false, true", x.Has(key(1)), x.Has(key(2)))
	}
}

// TestIndexModel runs random operations against the index and a map
// model, and checks they agree, including after table growth, many
// backward-shift deletions, snapshots and arena compaction.
func TestIndexModel(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	x := NewIndex(pools...)
	model := map[wgkey.PublicKey]Peer{}
	byDev := map[string]wgkey.PublicKey{}
	keys := make([]wgkey.PublicKey, 3000)
	for i := range keys {
		binary.LittleEndian.PutUint64(keys[i][:], rng.Uint64())
		keys[i][31] = byte(i)
	}
	admit := func(p Peer) {
		got, err := x.Admit(p)
		if err != nil {
			t.Fatal(err)
		}
		old, had := model[p.Key]
		if got.New == had {
			t.Fatalf("Admit New: got %v, model had %v", got.New, had)
		}
		if had && old.DeviceID != p.DeviceID {
			delete(byDev, old.DeviceID)
		}
		if other, ok := byDev[p.DeviceID]; ok && other != p.Key {
			if got.Displaced != other {
				t.Fatalf("Displaced: got %v, want %v", got.Displaced, other)
			}
			delete(model, other)
		} else if !got.Displaced.IsZero() {
			t.Fatalf("Displaced: got %v, want none", got.Displaced)
		}
		model[p.Key] = p
		byDev[p.DeviceID] = p.Key
	}
	remove := func(k wgkey.PublicKey) {
		p, had := model[k]
		if x.Remove(k) != had {
			t.Fatalf("Remove: got %v, want %v", !had, had)
		}
		delete(model, k)
		if had {
			delete(byDev, p.DeviceID)
		}
	}
	// Device IDs: half in the control server's packable form.
	devs := make([]string, len(keys))
	for i := range devs {
		if i%2 == 0 {
			var b [16]byte
			binary.LittleEndian.PutUint64(b[:], rng.Uint64())
			binary.LittleEndian.PutUint64(b[8:], uint64(i))
			devs[i] = unpackID(b[:])
		} else {
			devs[i] = "dev_" + strconv.Itoa(i)
		}
	}
	randPeer := func() Peer {
		k := keys[rng.IntN(len(keys))]
		dev := devs[rng.IntN(len(devs))]
		off := rng.Uint32N(1 << 22)
		v4 := netip.AddrFrom4([4]byte{100, 64 + byte(off>>16), byte(off >> 8), byte(off)})
		p := Peer{DeviceID: dev, Key: k, Addrs: []netip.Addr{v4}}
		switch rng.IntN(3) {
		case 0: // paired, as the control server allocates
			p.Addrs = append(p.Addrs, netip.AddrFrom16([16]byte{0xfd, 0, 0x6e, 0x6e, 12: byte(off >> 24), byte(off >> 16), byte(off >> 8), byte(off)}))
		case 1: // not paired
			p.Addrs = append(p.Addrs, netip.AddrFrom16([16]byte{0xfd, 0, 0x6e, 0x6e, 15: byte(off + 1)}))
		}
		return p
	}
	check := func() {
		if x.Len() != len(model) {
			t.Fatalf("Len: got %d, model %d", x.Len(), len(model))
		}
		for _, k := range keys {
			want, ok := model[k]
			got, gok := x.Peer(k)
			if ok != gok || (ok && !samePeer(got, want)) {
				t.Fatalf("Peer(%x): got %+v %v, want %+v %v", k[:4], got, gok, want, ok)
			}
		}
		for dev, k := range byDev {
			if got, ok := x.KeyOf(dev); !ok || got != k {
				t.Fatalf("KeyOf(%s): got %x %v, want %x", dev, got[:4], ok, k[:4])
			}
			if id, _ := x.DeviceID(k); id != dev {
				t.Fatalf("DeviceID: got %q, want %q", id, dev)
			}
		}
	}
	for round := range 20 {
		for range 2000 {
			switch r := rng.IntN(10); {
			case r < 6:
				admit(randPeer())
			case r < 9:
				remove(keys[rng.IntN(len(keys))])
			default:
				if k, ok := byDev["dev_"+strconv.Itoa(rng.IntN(len(keys)))]; ok {
					got, _ := x.RemoveDevice(model[k].DeviceID)
					if got != k {
						t.Fatalf("RemoveDevice: got %x, want %x", got[:4], k[:4])
					}
					delete(byDev, model[k].DeviceID)
					delete(model, k)
				}
			}
		}
		check()
		if round%4 == 3 {
			// A snapshot keeping a random half.
			x.Begin(0)
			keep := map[wgkey.PublicKey]bool{}
			for k, p := range model {
				if rng.IntN(2) == 0 {
					admit(p)
					keep[k] = true
				}
			}
			x.Commit(func(k wgkey.PublicKey) {
				if keep[k] {
					t.Fatalf("Commit removed a kept key")
				}
				p := model[k]
				delete(model, k)
				delete(byDev, p.DeviceID)
			})
			check()
		}
	}
	if x.garbage > len(x.arena) {
		t.Errorf("garbage %d exceeds the arena %d", x.garbage, len(x.arena))
	}
}

// TestIndexMemory reports the index's bytes per entry for 200,000 entries
// with production-shaped device IDs and two addresses, and checks it stays
// small. The million-entry figure is in BenchmarkIndexLoad.
func TestIndexMemory(t *testing.T) {
	const n = 200_000
	x := NewIndex(pools...)
	x.Begin(n)
	for i, p := range genPeers(n) {
		if _, err := x.Admit(p); err != nil {
			t.Fatal(i, err)
		}
	}
	x.Commit(nil)
	per := float64(x.Bytes()) / n
	t.Logf("index: %d entries, %d bytes, %.1f bytes/entry", n, x.Bytes(), per)
	if per > 100 {
		t.Errorf("index uses %.1f bytes/entry, want at most 100", per)
	}
}

// genPeers returns n peers as the control server makes them: random keys,
// device IDs from package ident, and an IPv4 and IPv6 address at the same
// pool offset.
func genPeers(n int) []Peer {
	ps := make([]Peer, n)
	for i := range ps {
		rand.Read(ps[i].Key[:])
		id, err := ident.New(rand.Reader, "dev")
		if err != nil {
			panic(err)
		}
		off := uint32(i + 2)
		ps[i].DeviceID = id
		ps[i].Addrs = []netip.Addr{
			netip.AddrFrom4([4]byte{100, 64 + byte(off>>16)&63, byte(off >> 8), byte(off)}),
			netip.AddrFrom16([16]byte{0xfd, 0, 0x6e, 0x6e, 12: byte(off >> 24), byte(off >> 16), byte(off >> 8), byte(off)}),
		}
	}
	return ps
}

// BenchmarkIndexLoad loads NITRONET_BENCH_KEYS (default 1,000,000) peers
// into an empty index as one streamed snapshot (Begin, Admit each, Commit)
// and reports the wall and CPU time per load (CPU time includes the
// garbage collector's), the index's bytes per entry, and the Go heap in use
// after the load.
//
//	go test ./internal/gateway/peers/ -run '^$' -bench IndexLoad -benchtime 3x
func BenchmarkIndexLoad(b *testing.B) {
	n := benchKeys(b)
	ps := genPeers(n)
	var x *Index
	var total, cpu time.Duration
	for b.Loop() {
		x = nil
		runtime.GC()
		start, cpu0 := time.Now(), cpuTime()
		x = NewIndex(pools...)
		x.Begin(n)
		for _, p := range ps {
			if _, err := x.Admit(p); err != nil {
				b.Fatal(err)
			}
		}
		x.Commit(nil)
		total += time.Since(start)
		cpu += cpuTime() - cpu0
	}
	ps = nil
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/load")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/load")
	b.ReportMetric(float64(x.Bytes())/float64(n), "index-B/entry")
	b.ReportMetric(float64(ms.HeapInuse)/float64(n), "heap-B/entry")
	runtime.KeepAlive(x)
}

func TestPackID(t *testing.T) {
	for range 100 {
		id, err := ident.New(rand.Reader, "dev")
		if err != nil {
			t.Fatal(err)
		}
		b, ok := packID(id)
		if !ok {
			t.Fatalf("packID(%q): not packed", id)
		}
		if got := unpackID(b[:]); got != id {
			t.Fatalf("unpackID(packID(%q)) = %q", id, got)
		}
	}
	valid, _ := ident.New(rand.Reader, "dev")
	last := valid[len(valid)-1]
	// The last character carries 2 bits of padding: a set padding bit is
	// not canonical.
	noncanon := valid[:len(valid)-1] + string(base32Lower[(strings.IndexByte(base32Lower, last)|1)])
	for _, id := range []string{"", "dev_", "dev-1", valid[:29], valid + "a", "acc" + valid[3:], strings.ToUpper(valid), valid[:10] + "0" + valid[11:], noncanon} {
		if _, ok := packID(id); ok && id != valid {
			t.Errorf("packID(%q): packed, want not", id)
		}
	}
}

func TestIndexCompactForms(t *testing.T) {
	x := NewIndex(pools...)
	id, _ := ident.New(rand.Reader, "dev")
	paired := peer(id, key(1), "100.64.1.2", "fd00:6e6e::102")
	a := mustAdmit(t, x, paired)
	if !a.New || x.arena == nil || len(x.arena) != packedIDLen+4 {
		t.Errorf("packed and paired record: %d arena bytes, want %d", len(x.arena), packedIDLen+4)
	}
	unpaired := peer(id+"x", key(2), "100.64.1.3", "fd00:6e6e::1:103")
	mustAdmit(t, x, unpaired)
	for _, want := range []Peer{paired, unpaired} {
		if got, ok := x.Peer(want.Key); !ok || !samePeer(got, want) {
			t.Errorf("Peer: got %+v, want %+v", got, want)
		}
	}
	// Pairing a new IPv6 address is an address change.
	if got := mustAdmit(t, x, peer(id, key(1), "100.64.1.2", "fd00:6e6e::9")); !got.AddrsChanged {
		t.Errorf("IPv6 change of a paired record: not reported")
	}
	// Without pools, nothing pairs.
	y := NewIndex()
	mustAdmit(t, y, paired)
	if got, _ := y.Peer(key(1)); !samePeer(got, paired) || len(y.arena) != packedIDLen+4+16 {
		t.Errorf("index without pools: got %+v in %d bytes", got, len(y.arena))
	}
}

// benchKeys returns NITRONET_BENCH_KEYS, by default 1,000,000.
func benchKeys(b *testing.B) int {
	s := os.Getenv("NITRONET_BENCH_KEYS")
	if s == "" {
		return 1_000_000
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		b.Fatalf("NITRONET_BENCH_KEYS=%q: want a positive integer", s)
	}
	return v
}
