package peers

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/device"

	"github.com/nitronet/nitronet/internal/gateway/sessions"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// psks returns the device's peers' pre-shared keys, hex, by key hex.
func psks(t *testing.T, dev *device.Device) map[string]string {
	t.Helper()
	s, err := dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var cur string
	for _, l := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "public_key":
			cur = v
		case "preshared_key":
			out[cur] = v
		}
	}
	return out
}

func pskOf(b byte) [32]byte {
	var p [32]byte
	for i := range p {
		p[i] = b
	}
	return p
}

const zeroPSK = "0000000000000000000000000000000000000000000000000000000000000000"

// TestManagerAliasSwitch follows a quantum-resistant switch: the device's
// key connects, an alias is installed, the alias's initiation configures it
// without addresses, and its completed handshake moves the addresses to it
// and takes the long-term key off the device.
func TestManagerAliasSwitch(t *testing.T) {
	m, dev, _ := newManager(t)
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32", "fd00:6e6e::2/128"), proto("b", 2, "100.64.0.3/32")})
	addr := netip.MustParseAddr("100.64.0.2")
	if _, err := m.DeviceByAddr(addr); !errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("DeviceByAddr before any handshake: got %v, want ErrNotAdmitted", err)
	}
	if !m.Ensure(key(1)) {
		t.Fatal("Ensure(1): false")
	}
	if got, err := m.DeviceByAddr(addr); err != nil || got != key(1) {
		t.Fatalf("DeviceByAddr: got %v, %v; want key 1", got, err)
	}

	if err := m.AddAlias(key(1), key(9), pskOf(7)); err != nil {
		t.Fatalf("AddAlias: %v", err)
	}
	if got := configured(t, dev); len(got) != 1 {
		t.Fatalf("an alias is configured before its initiation: %v", got)
	}
	if !m.Ensure(key(9)) {
		t.Fatal("Ensure(alias): false")
	}
	// Configured with its pre-shared key but no addresses: the long-term
	// key still holds them.
	want := []string{line(key(1), "100.64.0.2/32", "fd00:6e6e::2/128"), key(9).Hex() + " "}
	slices.Sort(want)
	if got := configured(t, dev); !slices.Equal(got, want) {
		t.Fatalf("after the alias's initiation: got %v, want %v", got, want)
	}
	ps := psks(t, dev)
	if ps[key(9).Hex()] != strings.Repeat("07", 32) || ps[key(1).Hex()] != zeroPSK {
		t.Fatalf("pre-shared keys: got %v, want 07… on the alias and none on the device key", ps)
	}

	m.Responded(key(9))
	if got, want := configured(t, dev), []string{line(key(9), "100.64.0.2/32", "fd00:6e6e::2/128")}; !slices.Equal(got, want) {
		t.Fatalf("after the alias's handshake: got %v, want only the alias with the addresses %v", got, want)
	}
	if got, err := m.DeviceByAddr(addr); err != nil || got != key(1) {
		t.Errorf("DeviceByAddr after the switch: got %v, %v; want the device's key 1", got, err)
	}
	if id, ok := m.DeviceID(key(9)); !ok || id != "a" {
		t.Errorf("DeviceID(alias): got %q %v, want a", id, ok)
	}
	if st := m.Stats(); st.Admitted != 2 || st.Aliases != 1 || st.Configured != 1 {
		t.Errorf("Stats: got %+v, want 2 admitted, 1 alias, 1 configured", st)
	}
	// The long-term key stays admitted and may connect again.
	if !m.Ensure(key(1)) {
		t.Fatal("Ensure(1) after the switch: false")
	}
	t.Run("an initiation alone moves nothing", func(t *testing.T) {
		want := []string{line(key(9), "100.64.0.2/32", "fd00:6e6e::2/128"), key(1).Hex() + " "}
		slices.Sort(want)
		if got := configured(t, dev); !slices.Equal(got, want) {
			t.Fatalf("after a (possibly replayed) initiation of key 1: got %v, want %v", got, want)
		}
		m.Responded(key(2)) // another device's handshake changes nothing here
		if got := configured(t, dev); !slices.Equal(got, want) {
			t.Fatalf("after another device's handshake: got %v, want %v", got, want)
		}
	})
	t.Run("a handshake of the long-term key drops the alias", func(t *testing.T) {
		m.Responded(key(1))
		if got, want := configured(t, dev), []string{line(key(1), "100.64.0.2/32", "fd00:6e6e::2/128")}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		if m.Ensure(key(9)) {
			t.Errorf("Ensure(alias) after the long-term key's handshake: got true, want the alias forgotten")
		}
		if st := m.Stats(); st.Aliases != 0 {
			t.Errorf("aliases: got %d, want 0", st.Aliases)
		}
	})
}

func TestManagerAliasRefusals(t *testing.T) {
	m, _, _ := newManager(t)
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32")})
	cases := []struct {
		name        string
		device, eph wgkey.PublicKey
		want        error
	}{
		{"unknown device", key(5), key(9), ErrNotAdmitted},
		{"an admitted key as alias", key(1), key(2), ErrAliasRefused},
		{"zero key", key(1), wgkey.PublicKey{}, ErrAliasRefused},
	}
	for _, tc := range cases {
		if err := m.AddAlias(tc.device, tc.eph, pskOf(1)); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := m.AddAlias(key(1), key(9), pskOf(1)); err != nil {
		t.Fatal(err)
	}
	if err := m.AddAlias(key(2), key(9), pskOf(1)); !errors.Is(err, ErrAliasRefused) {
		t.Errorf("another device's alias: got %v, want ErrAliasRefused", err)
	}
	// A new alias of the same device replaces the old one.
	if err := m.AddAlias(key(1), key(8), pskOf(2)); err != nil {
		t.Fatal(err)
	}
	if m.Ensure(key(9)) || !m.Ensure(key(8)) {
		t.Errorf("after the replacement: the old alias is accepted or the new one refused")
	}
	if st := m.Stats(); st.Aliases != 1 {
		t.Errorf("aliases: got %d, want 1", st.Aliases)
	}
}

// TestManagerAliasGoesWithTheDevice: removing or re-keying the device, or a
// snapshot without it, removes its alias from the device and forgets it,
// and the device's session ends once.
func TestManagerAliasGoesWithTheDevice(t *testing.T) {
	switched := func(t *testing.T) (*Manager, *device.Device) {
		m, dev, _ := newManager(t)
		m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32")})
		m.Ensure(key(1))
		if err := m.AddAlias(key(1), key(9), pskOf(7)); err != nil {
			t.Fatal(err)
		}
		m.Ensure(key(9))
		m.Responded(key(9))
		m.Ensure(key(2))
		return m, dev
	}
	cases := []struct {
		name string
		do   func(m *Manager) Result
	}{
		{"removal", func(m *Manager) Result {
			return m.Apply(gwproto.Change{Peer: gwproto.Peer{PublicKey: key(1).String()}, Removed: true})
		}},
		{"remove device", func(m *Manager) Result { return m.RemoveDevice("a") }},
		{"rotation", func(m *Manager) Result { return m.Apply(gwproto.Change{Peer: proto("a", 3, "100.64.0.2/32")}) }},
		{"snapshot", func(m *Manager) Result { return m.ApplyFull([]gwproto.Peer{proto("b", 2, "100.64.0.3/32")}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, dev := switched(t)
			res := tc.do(m)
			if !slices.Equal(res.Unconfigured, []wgkey.PublicKey{key(1)}) {
				t.Errorf("Unconfigured: got %v, want the device's key once", res.Unconfigured)
			}
			if got, want := configured(t, dev), []string{line(key(2), "100.64.0.3/32")}; !slices.Equal(got, want) {
				t.Errorf("device peers: got %v, want only device b's %v", got, want)
			}
			if m.Ensure(key(9)) {
				t.Errorf("Ensure(alias): got true, want the alias gone")
			}
			if st := m.Stats(); st.Aliases != 0 {
				t.Errorf("aliases: got %d, want 0", st.Aliases)
			}
			if _, err := m.DeviceByAddr(netip.MustParseAddr("100.64.0.2")); err == nil {
				t.Errorf("DeviceByAddr: the removed device still holds its address")
			}
		})
	}
}

func TestManagerAliasTrimAndSessions(t *testing.T) {
	m, dev, clk := newManager(t)
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32"), proto("b", 2, "100.64.0.3/32")})
	t0 := clk.Now()
	m.Ensure(key(1))
	m.AddAlias(key(1), key(9), pskOf(7))
	m.Ensure(key(9))
	m.Responded(key(9))

	// Sessions see one key per device: the alias's handshakes are the
	// device's.
	hs := []sessions.Handshake{{Key: key(9), Last: t0.Add(10 * time.Second)}, {Key: key(1), Last: t0}, {Key: key(2), Last: t0}}
	got := m.Canonical(hs)
	want := []sessions.Handshake{{Key: key(1), Last: t0.Add(10 * time.Second)}, {Key: key(2), Last: t0}}
	if !slices.Equal(got, want) {
		t.Fatalf("Canonical: got %v, want %v", got, want)
	}

	// An alias installed but never used is forgotten after the idle time.
	m.AddAlias(key(2), key(8), pskOf(3))
	clk.Advance(100 * time.Second)
	live := []sessions.Handshake{{Key: key(9), Last: t0.Add(90 * time.Second)}}
	if got := m.Trim(clk.Now(), live); len(got) != 0 {
		t.Fatalf("Trim at 100 s: got %v, want nothing", got)
	}
	clk.Advance(100 * time.Second) // 200 s: the unused alias is 200 s old
	if got := m.Trim(clk.Now(), live); len(got) != 0 {
		t.Fatalf("Trim at 200 s: got %v, want nothing (the switched alias had a handshake at 90 s)", got)
	}
	if m.Ensure(key(8)) {
		t.Errorf("an alias idle for 200 s is still accepted")
	}
	clk.Advance(100 * time.Second) // 300 s: the switched alias is idle
	if got := m.Trim(clk.Now(), live); !slices.Equal(got, []wgkey.PublicKey{key(1)}) {
		t.Fatalf("Trim at 300 s: got %v, want the device's key", got)
	}
	if len(configured(t, dev)) != 0 || m.Stats().Aliases != 0 {
		t.Errorf("after the trim: %v configured, %d aliases; want none", configured(t, dev), m.Stats().Aliases)
	}
	if !m.Ensure(key(1)) {
		t.Errorf("the long-term key is no longer admitted")
	}
}

func TestManagerAliasReaddress(t *testing.T) {
	m, dev, _ := newManager(t)
	m.ApplyFull([]gwproto.Peer{proto("a", 1, "100.64.0.2/32")})
	m.Ensure(key(1))
	m.AddAlias(key(1), key(9), pskOf(7))
	m.Ensure(key(9))
	m.Responded(key(9))
	m.Apply(gwproto.Change{Peer: proto("a", 1, "100.64.0.7/32")})
	if got, want := configured(t, dev), []string{line(key(9), "100.64.0.7/32")}; !slices.Equal(got, want) {
		t.Errorf("got %v, want the alias on the new address %v", got, want)
	}
	if got, err := m.DeviceByAddr(netip.MustParseAddr("100.64.0.7")); err != nil || got != key(1) {
		t.Errorf("DeviceByAddr(new): got %v, %v", got, err)
	}
	if _, err := m.DeviceByAddr(netip.MustParseAddr("100.64.0.2")); err == nil {
		t.Errorf("DeviceByAddr(old): still held")
	}
}
