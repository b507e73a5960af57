package peers

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/device"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// holdDevice is a real device whose first configuration of one key blocks
// until release is closed; creates counts the configurations of that key
// (not its removals).
type holdDevice struct {
	*device.Device
	hold    wgkey.PublicKey
	entered chan struct{} // closed when the held creation starts
	release chan struct{}
	once    sync.Once
	creates atomic.Int32
}

func newHoldDevice(t *testing.T, hold wgkey.PublicKey) *holdDevice {
	return &holdDevice{Device: newDevice(t), hold: hold, entered: make(chan struct{}), release: make(chan struct{})}
}

func (d *holdDevice) IpcSet(s string) error {
	if strings.HasPrefix(s, "public_key="+d.hold.Hex()+"\n") && !strings.Contains(s, "remove=") {
		d.creates.Add(1)
		d.once.Do(func() {
			close(d.entered)
			<-d.release
		})
	}
	return d.Device.IpcSet(s)
}

// within runs f and fails t if it does not return within a few seconds:
// it would be waiting for the held creation.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s waited for another key's configuration", what)
	}
}

func newHoldManager(t *testing.T, hold wgkey.PublicKey) (*Manager, *holdDevice, *fakeClock) {
	dev := newHoldDevice(t, hold)
	clk := &fakeClock{t: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)}
	m := NewManager(ManagerConfig{Device: dev, Pools: pools, Clock: clk.Now})
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32", "fd00:6e6e::3/128")})
	return m, dev, clk
}

// ensureAsync starts Ensure(k) and returns its result channel.
func ensureAsync(m *Manager, k wgkey.PublicKey) chan bool {
	c := make(chan bool, 1)
	go func() { c <- m.Ensure(k) }()
	return c
}

func TestEnsureDoesNotHoldTheLockWhileConfiguring(t *testing.T) {
	m, dev, _ := newHoldManager(t, key(2))
	if !m.Ensure(key(1)) {
		t.Fatal("Ensure(a) failed")
	}
	got := ensureAsync(m, key(2))
	<-dev.entered
	within(t, "Ensure of a configured key", func() {
		if !m.Ensure(key(1)) {
			t.Error("Ensure(a) while b is being configured: got false")
		}
	})
	within(t, "Stats", func() { m.Stats() })
	within(t, "DeviceByAddr", func() {
		if k, err := m.DeviceByAddr(mustAddr("100.64.0.2")); err != nil || k != key(1) {
			t.Errorf("DeviceByAddr(a's address) = %v, %v", k, err)
		}
		// b holds its addresses only once it is configured.
		if _, err := m.DeviceByAddr(mustAddr("100.64.0.3")); err != ErrNotAdmitted {
			t.Errorf("DeviceByAddr(b's address) before b is configured: got %v", err)
		}
	})
	close(dev.release)
	if !<-got {
		t.Fatal("Ensure(b): got false")
	}
	want := []string{line(key(1), "100.64.0.2/32"), line(key(2), "100.64.0.3/32", "fd00:6e6e::3/128")}
	if got := configured(t, dev.Device); !slices.Equal(got, want) {
		t.Errorf("device peers: got %v, want %v", got, want)
	}
}

func TestEnsureSameKeyConfiguresOnce(t *testing.T) {
	m, dev, _ := newHoldManager(t, key(2))
	const n = 8
	results := make([]chan bool, n)
	results[0] = ensureAsync(m, key(2))
	<-dev.entered
	for i := 1; i < n; i++ {
		results[i] = ensureAsync(m, key(2))
	}
	// Wait until every other call waits on the first one's result.
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		w := m.pending[key(2)].waiters
		m.mu.Unlock()
		if w == n-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d Ensure calls wait for the first", w, n-1)
		}
		time.Sleep(time.Millisecond)
	}
	close(dev.release)
	for i, c := range results {
		if !<-c {
			t.Errorf("Ensure call %d: got false", i)
		}
	}
	if c := dev.creates.Load(); c != 1 {
		t.Errorf("peer created %d times, want once", c)
	}
	if st := m.Stats(); st.Configured != 1 || st.EnsureFailed != 0 {
		t.Errorf("Stats: got %+v, want 1 configured, no failure", st)
	}
	if got, want := configured(t, dev.Device), []string{line(key(2), "100.64.0.3/32", "fd00:6e6e::3/128")}; !slices.Equal(got, want) {
		t.Errorf("device peers: got %v, want %v", got, want)
	}
}

func TestEnsureDroppedWhileConfiguring(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop func(m *Manager) Result
	}{
		{"remove", func(m *Manager) Result { return m.Remove(key(2)) }},
		{"remove device", func(m *Manager) Result { return m.RemoveDevice("b") }},
		{"feed removal", func(m *Manager) Result {
			return m.Apply(gwproto.Change{Peer: gwproto.Peer{PublicKey: key(2).String()}, Removed: true})
		}},
		{"snapshot", func(m *Manager) Result {
			return m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32")})
		}},
		{"rotation", func(m *Manager) Result {
			return m.Admit(peer("b", key(3), "100.64.0.3"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, dev, _ := newHoldManager(t, key(2))
			got := ensureAsync(m, key(2))
			<-dev.entered
			var res Result
			within(t, "the drop", func() { res = tc.drop(m) })
			if res.Dropped != 1 || len(res.Unconfigured) != 0 {
				t.Errorf("drop: got %+v, want 1 dropped, none unconfigured (b was not configured yet)", res)
			}
			close(dev.release)
			if <-got {
				t.Error("Ensure of a key dropped while it was configured: got true")
			}
			if got := configured(t, dev.Device); len(got) != 0 {
				t.Errorf("device peers: got %v, want none", got)
			}
			if st := m.Stats(); st.Configured != 0 || st.EnsureFailed != 0 {
				t.Errorf("Stats: got %+v, want none configured, no failure", st)
			}
			if m.Ensure(key(2)) {
				t.Error("a later Ensure of the dropped key: got true")
			}
		})
	}
}

func TestEnsureReaddressedWhileConfiguring(t *testing.T) {
	m, dev, _ := newHoldManager(t, key(2))
	got := ensureAsync(m, key(2))
	<-dev.entered
	within(t, "the readdress", func() {
		if res := m.Admit(peer("b", key(2), "100.64.0.9")); res.Updated != 1 {
			t.Errorf("Admit: got %+v, want 1 updated", res)
		}
	})
	close(dev.release)
	if !<-got {
		t.Fatal("Ensure(b): got false")
	}
	if got, want := configured(t, dev.Device), []string{line(key(2), "100.64.0.9/32")}; !slices.Equal(got, want) {
		t.Errorf("device peers: got %v, want %v (the new address)", got, want)
	}
	if k, err := m.DeviceByAddr(mustAddr("100.64.0.9")); err != nil || k != key(2) {
		t.Errorf("DeviceByAddr(new address) = %v, %v", k, err)
	}
}

func TestEnsureTrimWhileConfiguring(t *testing.T) {
	m, dev, clk := newHoldManager(t, key(2))
	if !m.Ensure(key(1)) {
		t.Fatal("Ensure(a) failed")
	}
	clk.Advance(200 * time.Second)
	got := ensureAsync(m, key(2))
	<-dev.entered
	var gone []wgkey.PublicKey
	within(t, "Trim", func() { gone = m.Trim(clk.Now(), nil) })
	if !slices.Equal(gone, []wgkey.PublicKey{key(1)}) {
		t.Errorf("Trim: got %v, want [key 1] (idle), not b (being configured)", gone)
	}
	close(dev.release)
	if !<-got {
		t.Fatal("Ensure(b): got false")
	}
	if got, want := configured(t, dev.Device), []string{line(key(2), "100.64.0.3/32", "fd00:6e6e::3/128")}; !slices.Equal(got, want) {
		t.Errorf("device peers: got %v, want %v", got, want)
	}
	// b counts as active from its initiation, and is trimmed only once idle.
	clk.Advance(180 * time.Second)
	if gone := m.Trim(clk.Now(), nil); len(gone) != 0 {
		t.Errorf("Trim 180 s after b's initiation: got %v, want none", gone)
	}
	clk.Advance(time.Second)
	if gone := m.Trim(clk.Now(), nil); !slices.Equal(gone, []wgkey.PublicKey{key(2)}) {
		t.Errorf("Trim 181 s after b's initiation: got %v, want [key 2]", gone)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestEnsureSiblingWaits: while an ephemeral alias is being configured, an
// Ensure of its device's long-term key waits for it, and then finds the
// addresses held by the alias, so that the two keys never both take them.
func TestEnsureSiblingWaits(t *testing.T) {
	m, dev, _ := newHoldManager(t, key(9))
	if err := m.AddAlias(key(2), key(9), pskOf(7)); err != nil {
		t.Fatal(err)
	}
	eph := ensureAsync(m, key(9))
	<-dev.entered
	long := ensureAsync(m, key(2))
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		w := m.pending[key(9)].waiters
		m.mu.Unlock()
		if w == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Ensure of the long-term key does not wait for its alias")
		}
		time.Sleep(time.Millisecond)
	}
	close(dev.release)
	if !<-eph || !<-long {
		t.Fatal("Ensure: got false")
	}
	want := []string{line(key(2)), line(key(9), "100.64.0.3/32", "fd00:6e6e::3/128")}
	want[0] = key(2).Hex() + " "
	slices.Sort(want)
	if got := configured(t, dev.Device); !slices.Equal(got, want) {
		t.Errorf("device peers: got %v, want %v", got, want)
	}
	if k, err := m.DeviceByAddr(mustAddr("100.64.0.3")); err != nil || k != key(2) {
		t.Errorf("DeviceByAddr = %v, %v; want the long-term key", k, err)
	}
}
