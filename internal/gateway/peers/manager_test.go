package peers

import (
	"crypto/rand"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/nitronet/nitronet/internal/gateway/sessions"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// fakeClock is a test clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newDevice returns a real wireguard-go device, up, with a private key and
// no peers.
func newDevice(t testing.TB) *device.Device {
	t.Helper()
	dev := device.NewDevice(tuntest.NewChannelTUN().TUN(), conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.IpcSet("private_key=" + k.Hex() + "\nlisten_port=0\n"); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	return dev
}

// configured returns the device's peers as "key-hex allowed,allowed" lines,
// sorted.
func configured(t *testing.T, dev *device.Device) []string {
	t.Helper()
	s, err := dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "public_key":
			out = append(out, v+" ")
		case "allowed_ip":
			out[len(out)-1] += v + ","
		}
	}
	slices.Sort(out)
	return out
}

func line(k wgkey.PublicKey, allowed ...string) string {
	return k.Hex() + " " + strings.Join(allowed, ",") + ","
}

func newManager(t *testing.T) (*Manager, *device.Device, *fakeClock) {
	dev := newDevice(t)
	clk := &fakeClock{t: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)}
	m := NewManager(ManagerConfig{Device: dev, Pools: pools, Clock: clk.Now})
	return m, dev, clk
}

func TestManagerConfiguresOnDemand(t *testing.T) {
	m, dev, _ := newManager(t)
	res := m.ApplyFull([]gwproto.Peer{
		proto("a", 1, "100.64.0.2/32", "fd00:6e6e::2/128"),
		proto("b", 2, "100.64.0.3/32"),
		proto("bad", 3, "8.8.8.8/32"),
	})
	if res.Added != 2 || res.Rejected != 1 {
		t.Fatalf("snapshot: got %+v, want 2 added, 1 rejected", res)
	}
	if got := configured(t, dev); len(got) != 0 {
		t.Fatalf("device peers after the snapshot: got %v, want none", got)
	}
	if m.Ensure(key(3)) || m.Ensure(key(9)) {
		t.Errorf("Ensure of a rejected or unknown key: got true")
	}
	if !m.Ensure(key(1)) {
		t.Fatalf("Ensure(admitted): got false")
	}
	if !m.Ensure(key(1)) {
		t.Fatalf("Ensure(configured): got false")
	}
	if got, want := configured(t, dev), []string{line(key(1), "100.64.0.2/32", "fd00:6e6e::2/128")}; !slices.Equal(got, want) {
		t.Errorf("device peers: got %v, want %v", got, want)
	}
	if st := m.Stats(); st.Admitted != 2 || st.Configured != 1 {
		t.Errorf("Stats: got %+v, want 2 admitted, 1 configured", st)
	}
}

func TestManagerFeedChangesReachTheDevice(t *testing.T) {
	m, dev, _ := newManager(t)
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32"), proto("c", 3, "100.64.0.4/32")})
	for _, k := range []byte{1, 2, 3} {
		if !m.Ensure(key(k)) {
			t.Fatalf("Ensure(%d): false", k)
		}
	}

	t.Run("address change of a configured peer", func(t *testing.T) {
		res := m.Apply(gwproto.Change{Peer: proto("a", 1, "100.64.0.9/32")})
		if res.Updated != 1 || res.Failed != 0 {
			t.Errorf("got %+v, want 1 updated", res)
		}
		if got := configured(t, dev); !slices.Contains(got, line(key(1), "100.64.0.9/32")) {
			t.Errorf("device peers: got %v, want key 1 on 100.64.0.9", got)
		}
	})
	t.Run("removal drops a configured peer from both", func(t *testing.T) {
		res := m.Apply(gwproto.Change{Peer: gwproto.Peer{PublicKey: key(2).String()}, Removed: true})
		if res.Dropped != 1 || !slices.Equal(res.Unconfigured, []wgkey.PublicKey{key(2)}) {
			t.Errorf("got %+v, want key 2 dropped and unconfigured", res)
		}
		if got := configured(t, dev); len(got) != 2 || slices.Contains(got, line(key(2), "100.64.0.3/32")) {
			t.Errorf("device peers: got %v, want keys 1 and 3", got)
		}
		if m.Ensure(key(2)) {
			t.Errorf("Ensure after removal: got true")
		}
	})
	t.Run("rotation drops the old key from both", func(t *testing.T) {
		// The store sends the old key's removal, then the new key; a
		// feed that sends only the new key must rotate as well.
		res := m.Apply(gwproto.Change{Peer: proto("c", 7, "100.64.0.4/32")})
		if res.Added != 1 || res.Dropped != 1 || !slices.Equal(res.Unconfigured, []wgkey.PublicKey{key(3)}) {
			t.Errorf("got %+v, want key 7 added, key 3 dropped and unconfigured", res)
		}
		if got := configured(t, dev); len(got) != 1 {
			t.Errorf("device peers: got %v, want only key 1", got)
		}
		if m.Ensure(key(3)) || !m.Ensure(key(7)) {
			t.Errorf("after rotation: old key accepted or new key refused")
		}
	})
	t.Run("invalid update drops the key", func(t *testing.T) {
		res := m.Apply(gwproto.Change{Peer: proto("a", 1, "0.0.0.0/0")})
		if res.Rejected != 1 || res.Dropped != 1 || len(res.Unconfigured) != 1 {
			t.Errorf("got %+v, want rejected, dropped and unconfigured", res)
		}
	})
	t.Run("snapshot drops what it lacks", func(t *testing.T) {
		res := m.ApplyFull([]gwproto.Peer{proto("d", 4, "100.64.0.5/32")})
		if res.Added != 1 || res.Dropped != 1 || !slices.Equal(res.Unconfigured, []wgkey.PublicKey{key(7)}) {
			t.Errorf("got %+v, want key 4 added, key 7 dropped and unconfigured", res)
		}
		if got := configured(t, dev); len(got) != 0 {
			t.Errorf("device peers: got %v, want none", got)
		}
	})
	t.Run("remove device", func(t *testing.T) {
		m.Ensure(key(4))
		res := m.RemoveDevice("d")
		if res.Dropped != 1 || len(res.Unconfigured) != 1 || len(configured(t, dev)) != 0 {
			t.Errorf("got %+v, want key 4 dropped and unconfigured", res)
		}
	})
}

func TestManagerTrimsIdlePeers(t *testing.T) {
	m, dev, clk := newManager(t)
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32"), proto("c", 3, "100.64.0.4/32")})
	t0 := clk.Now()
	m.Ensure(key(1))
	m.Ensure(key(2))
	m.Ensure(key(3))

	// At 100 s: a has a handshake at 90 s, c sends a new initiation.
	clk.Advance(100 * time.Second)
	hs := []sessions.Handshake{{Key: key(1), Last: t0.Add(90 * time.Second)}, {Key: key(2)}, {Key: key(3)}}
	if got := m.Trim(clk.Now(), hs); len(got) != 0 {
		t.Fatalf("Trim at 100 s: got %d removed, want 0", len(got))
	}
	m.Ensure(key(3))

	// At exactly 180 s nothing is idle for longer than 180 s yet.
	clk.Advance(80 * time.Second)
	if got := m.Trim(clk.Now(), hs); len(got) != 0 {
		t.Fatalf("Trim at 180 s: got %d removed, want 0", len(got))
	}
	// At 181 s b, configured at 0 s without a handshake, goes.
	clk.Advance(time.Second)
	if got := m.Trim(clk.Now(), hs); !slices.Equal(got, []wgkey.PublicKey{key(2)}) {
		t.Fatalf("Trim at 181 s: got %v, want [key 2]", got)
	}
	// At 271 s a (handshake at 90 s) goes; c (initiation at 100 s) stays.
	clk.Advance(90 * time.Second)
	if got := m.Trim(clk.Now(), hs); !slices.Equal(got, []wgkey.PublicKey{key(1)}) {
		t.Fatalf("Trim at 271 s: got %v, want [key 1]", got)
	}
	if got := configured(t, dev); !slices.Equal(got, []string{line(key(3), "100.64.0.4/32")}) {
		t.Errorf("device peers: got %v, want only key 3", got)
	}
	// Trimmed keys stay admitted and come back on their next initiation.
	if st := m.Stats(); st.Admitted != 3 || st.Configured != 1 {
		t.Errorf("Stats: got %+v, want 3 admitted, 1 configured", st)
	}
	if !m.Ensure(key(1)) || len(configured(t, dev)) != 2 {
		t.Errorf("a trimmed key was not configured again")
	}
}

func TestManagerCapsConfiguredPeers(t *testing.T) {
	dev := newDevice(t)
	m := NewManager(ManagerConfig{Device: dev, Pools: pools, MaxConfigured: 2})
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32"), proto("c", 3, "100.64.0.4/32")})
	if !m.Ensure(key(1)) || !m.Ensure(key(2)) {
		t.Fatal("Ensure below the cap failed")
	}
	if m.Ensure(key(3)) {
		t.Errorf("Ensure above the cap: got true")
	}
	if st := m.Stats(); st.Configured != 2 || st.EnsureFailed != 1 {
		t.Errorf("Stats: got %+v, want 2 configured, 1 failure", st)
	}
}

func TestManagerStreamedSnapshotKeepsServing(t *testing.T) {
	m, _, _ := newManager(t)
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32")})
	m.Begin(2)
	m.Add(proto("b", 2, "100.64.0.3/32"))
	// Mid-stream, a key of the old snapshot still connects ...
	if !m.Ensure(key(1)) {
		t.Fatalf("Ensure mid-stream: got false")
	}
	m.Add(proto("c", 3, "100.64.0.4/32"))
	// ... and is dropped from both at Commit, as it is not in the new one.
	res := m.Commit()
	if res.Added != 1 || res.Dropped != 1 || !slices.Equal(res.Unconfigured, []wgkey.PublicKey{key(1)}) {
		t.Errorf("Commit: got %+v, want c added, a dropped and unconfigured", res)
	}
}

// BenchmarkManagerLoad streams NITRONET_BENCH_KEYS (default 1,000,000)
// feed entries, as the feed's decoder delivers them, into a Manager as one
// snapshot: Begin, Add each (validation included), Commit. The entries are
// built before the timer starts. Metrics: wall and CPU ms per load, and the
// index's bytes per entry.
//
//	go test ./internal/gateway/peers/ -run '^$' -bench ManagerLoad -benchtime 3x
func BenchmarkManagerLoad(b *testing.B) {
	n := benchKeys(b)
	feed := make([]gwproto.Peer, n)
	for i, p := range genPeers(n) {
		feed[i] = gwproto.Peer{DeviceID: p.DeviceID, PublicKey: p.Key.String(),
			Addresses: []string{p.Addrs[0].String() + "/32", p.Addrs[1].String() + "/128"}}
	}
	dev := newDevice(b)
	var m *Manager
	var total, cpu time.Duration
	for b.Loop() {
		m = nil
		runtime.GC()
		start, cpu0 := time.Now(), cpuTime()
		m = NewManager(ManagerConfig{Device: dev, Pools: pools})
		m.Begin(n)
		for _, p := range feed {
			m.Add(p)
		}
		res := m.Commit()
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		if res.Added != n {
			b.Fatalf("Commit: got %+v, want %d added", res, n)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/load")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/load")
	b.ReportMetric(float64(m.Stats().IndexBytes)/float64(n), "index-B/entry")
}

func TestManagerStreamAbortKeepsEverything(t *testing.T) {
	m, _, _ := newManager(t)
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32")})
	m.Begin(0)
	m.AddPeer(peer("c", key(3), "100.64.0.4", "fd00:6e6e::4"))
	m.AddPeer(peer("d", key(4), "8.8.8.8"))           // outside the pools
	m.AddPeer(peer("e", key(5), "::ffff:100.64.0.6")) // mapped: stored as IPv4
	res := m.Abort()
	if res.Added != 2 || res.Rejected != 1 {
		t.Errorf("Abort: got %+v, want 2 added, 1 rejected", res)
	}
	// Nothing is dropped, now or by a later Commit without a new Begin.
	m.Commit()
	for _, k := range []byte{1, 2, 3, 5} {
		if !m.Ensure(key(k)) {
			t.Errorf("key %d not admitted after an aborted snapshot", k)
		}
	}
	if m.Ensure(key(4)) {
		t.Errorf("a rejected entry was admitted")
	}
	if id, _ := m.DeviceID(key(5)); id != "e" {
		t.Errorf("DeviceID(e): got %q", id)
	}
}

func TestManagerAdmitChecks(t *testing.T) {
	m, _, _ := newManager(t)
	if res := m.Admit(peer("a", key(1), "100.64.0.2")); res.Added != 1 {
		t.Fatalf("Admit: got %+v", res)
	}
	m.Ensure(key(1))
	// The same key with an address outside the pools is refused and dropped.
	res := m.Admit(peer("a", key(1), "192.0.2.1"))
	if res.Rejected != 1 || res.Dropped != 1 || len(res.Unconfigured) != 1 {
		t.Errorf("invalid Admit: got %+v, want rejected, dropped and unconfigured", res)
	}
	if st := m.Stats(); st.Admitted != 0 || st.Configured != 0 {
		t.Errorf("Stats: got %+v, want nothing", st)
	}
}

// BenchmarkEnsure measures what a first handshake adds: Ensure of a key
// that is admitted but not configured, which configures it on a real
// wireguard-go device (UAPI, peer creation with its X25519, two
// goroutines). Metrics: p50 and p99 in µs over b.N keys, with the device
// holding more peers as it goes.
func BenchmarkEnsure(b *testing.B) {
	dev := newDevice(b)
	m := NewManager(ManagerConfig{Device: dev, Pools: pools})
	ps := genPeers(b.N)
	m.Begin(b.N)
	for _, p := range ps {
		m.AddPeer(p)
	}
	m.Commit()
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if !m.Ensure(ps[i].Key) {
			b.Fatal("Ensure of an admitted key failed")
		}
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(ds)
	at := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p/100*float64(len(ds))))].Nanoseconds()) / 1000
	}
	b.ReportMetric(at(50), "p50-us")
	b.ReportMetric(at(99), "p99-us")
}

// TestManagerRemovesByDevice: a removal that names only its device (the
// server keeps no key or address of a removed device) drops the peer
// admitted for that device, from the index and the device; an unknown
// device, or a removal naming nothing, changes nothing.
func TestManagerRemovesByDevice(t *testing.T) {
	m, dev, _ := newManager(t)
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32")})
	if !m.Ensure(key(1)) || !m.Ensure(key(2)) {
		t.Fatal("Ensure: false")
	}
	res := m.Apply(gwproto.Change{Peer: gwproto.Peer{DeviceID: "a"}, Removed: true})
	if res.Dropped != 1 || res.Rejected != 0 || !slices.Equal(res.Unconfigured, []wgkey.PublicKey{key(1)}) {
		t.Fatalf("removal by device: got %+v, want key 1 dropped and unconfigured", res)
	}
	if got, want := configured(t, dev), []string{line(key(2), "100.64.0.3/32")}; !slices.Equal(got, want) {
		t.Fatalf("device peers: got %v, want %v", got, want)
	}
	if m.Ensure(key(1)) {
		t.Fatal("Ensure after removal by device: got true")
	}
	for _, c := range []gwproto.Change{
		{Peer: gwproto.Peer{DeviceID: "a"}, Removed: true},
		{Peer: gwproto.Peer{DeviceID: "nobody"}, Removed: true},
		{Peer: gwproto.Peer{}, Removed: true},
	} {
		res := m.Apply(c)
		if res.Dropped != 0 || len(res.Unconfigured) != 0 || m.Stats().Admitted != 1 || len(configured(t, dev)) != 1 {
			t.Fatalf("removal of %q: got %+v, %+v; want nothing changed", c.DeviceID, res, m.Stats())
		}
	}
}

// TestManagerAddRecord checks that a binary snapshot's records, streamed
// through AddRecord, are admitted as AddPeer admits the same peers, that
// a record AddPeer would refuse is refused, and that a record costs no
// allocation once Begin has sized the index.
func TestManagerAddRecord(t *testing.T) {
	m, _, _ := newManager(t)
	rec := func(id string, k byte, v4, v6 string) gwproto.PeerRecord {
		r := gwproto.PeerRecord{DeviceID: id, Key: key(k)}
		if v4 != "" {
			r.IPv4 = netip.MustParseAddr(v4)
		}
		if v6 != "" {
			r.IPv6 = netip.MustParseAddr(v6)
		}
		return r
	}
	m.Begin(0)
	m.AddRecord(rec("a", 1, "100.64.0.2", "fd00:6e6e::2"))
	m.AddRecord(rec("b", 2, "100.64.0.3", ""))
	m.AddRecord(rec("c", 3, "", "fd00:6e6e::4"))
	m.AddRecord(rec("d", 4, "8.8.8.8", "fd00:6e6e::5")) // outside the pools
	m.AddRecord(rec("", 5, "100.64.0.6", ""))           // no device ID
	m.AddRecord(rec("f", 6, "", ""))                    // no address
	if res := m.Commit(); res.Added != 3 || res.Rejected != 3 {
		t.Fatalf("Commit: got %+v, want 3 added, 3 rejected", res)
	}
	want := NewManager(ManagerConfig{Device: nopDevice{}, Pools: pools})
	want.Begin(0)
	want.AddPeer(peer("a", key(1), "fd00:6e6e::2", "100.64.0.2"))
	want.AddPeer(peer("b", key(2), "100.64.0.3"))
	want.AddPeer(peer("c", key(3), "fd00:6e6e::4"))
	want.Commit()
	for _, k := range []byte{1, 2, 3, 4, 5, 6} {
		got, gok := m.index.Peer(key(k))
		exp, eok := want.index.Peer(key(k))
		if gok != eok || !samePeer(got, exp) {
			t.Errorf("key %d: AddRecord gave %+v (%v), AddPeer %+v (%v)", k, got, gok, exp, eok)
		}
	}

	recs := make([]gwproto.PeerRecord, 1000)
	for i, p := range genPeers(len(recs)) {
		recs[i] = gwproto.PeerRecord{DeviceID: p.DeviceID, Key: p.Key, IPv4: p.Addrs[0], IPv6: p.Addrs[1]}
	}
	m.Begin(len(recs))
	next := 0
	// AllocsPerRun runs the function once before counting: each run adds
	// half of the records, all new.
	if a := testing.AllocsPerRun(1, func() {
		for _, r := range recs[next : next+len(recs)/2] {
			m.AddRecord(r)
		}
		next += len(recs) / 2
	}); a != 0 {
		t.Errorf("AddRecord of %d new records: %v allocations, want 0", len(recs)/2, a)
	}
	if res := m.Commit(); res.Added != len(recs) || res.Dropped != 3 {
		t.Errorf("Commit: got %+v, want %d added, 3 dropped", res, len(recs))
	}
}

// nopDevice is a device that accepts every configuration.
type nopDevice struct{}

func (nopDevice) IpcSet(string) error { return nil }
