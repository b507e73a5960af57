package sessions

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

func key(b byte) wgkey.PublicKey {
	var k wgkey.PublicKey
	for i := range k {
		k[i] = b
	}
	return k
}

func TestParseUAPI(t *testing.T) {
	in := "private_key=" + strings.Repeat("ab", 32) + "\n" +
		"listen_port=51820\n" +
		"public_key=" + key(1).Hex() + "\n" +
		"preshared_key=" + strings.Repeat("00", 32) + "\n" +
		"protocol_version=1\n" +
		"endpoint=198.51.100.7:41000\n" +
		"last_handshake_time_sec=1700000000\n" +
		"last_handshake_time_nsec=5\n" +
		"tx_bytes=123\nrx_bytes=456\n" +
		"persistent_keepalive_interval=0\n" +
		"allowed_ip=100.64.0.2/32\n" +
		"public_key=" + key(2).Hex() + "\n" +
		"last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
	got, err := ParseUAPI(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []Handshake{{Key: key(1), Last: time.Unix(1700000000, 5)}, {Key: key(2)}}
	if len(got) != len(want) {
		t.Fatalf("got %d peers, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Key != want[i].Key || !got[i].Last.Equal(want[i].Last) {
			t.Errorf("peer %d: got %v %v, want %v %v", i, got[i].Key, got[i].Last, want[i].Key, want[i].Last)
		}
	}
	// The parsed form has nowhere to keep an endpoint or counters.
	if s := fmt.Sprintf("%+v", got); strings.Contains(s, "198.51.100.7") || strings.Contains(s, "456") {
		t.Errorf("parsed output retains discarded fields: %s", s)
	}
}

func TestParseUAPIErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"no equals", "public_key\n"},
		{"bad key hex", "public_key=zz\n"},
		{"short key", "public_key=abcd\n"},
		{"handshake outside peer", "last_handshake_time_sec=1\n"},
		{"negative", "public_key=" + key(1).Hex() + "\nlast_handshake_time_sec=-1\n"},
		{"nsec too large", "public_key=" + key(1).Hex() + "\nlast_handshake_time_nsec=1000000000\n"},
		{"not a number", "public_key=" + key(1).Hex() + "\nlast_handshake_time_sec=x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseUAPI(tt.in); err == nil {
				t.Errorf("got nil error, want an error")
			}
		})
	}
}

func FuzzParseUAPI(f *testing.F) {
	f.Add("public_key=" + key(1).Hex() + "\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=1\nendpoint=1.2.3.4:5\n")
	f.Add("private_key=00\n\n\n=\n")
	f.Add("public_key=" + key(2).Hex() + "\nlast_handshake_time_sec=99999999999999999999\n")
	f.Fuzz(func(t *testing.T, s string) {
		hs, err := ParseUAPI(s)
		if err != nil && hs != nil {
			t.Errorf("got peers and an error")
		}
	})
}

// clock is a fake clock driven by the test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time            { return c.t }
func (c *clock) advance(d time.Duration)   { c.t = c.t.Add(d) }
func known(wgkey.PublicKey) (string, bool) { return "dev-1", true }

func ivString(ivs []gwproto.Interval) string {
	var parts []string
	for _, iv := range ivs {
		end := "open"
		if iv.End != nil {
			end = iv.End.Format("15:04:05")
		}
		parts = append(parts, iv.DeviceID+" "+iv.Start.Format("15:04:05")+"-"+end)
	}
	return strings.Join(parts, "; ")
}

func TestTrackerLifecycle(t *testing.T) {
	c := &clock{t: time.Date(2025, 1, 1, 10, 0, 30, 0, time.UTC)}
	tr := NewTracker()
	k := key(1)
	hs := func(last time.Time) []Handshake { return []Handshake{{Key: k, Last: last}} }

	steps := []struct {
		name    string
		advance time.Duration
		obs     func() []gwproto.Interval
		want    string
	}{
		{"no handshake yet", 0, func() []gwproto.Interval { return tr.Observe(c.now(), hs(time.Time{}), known) }, ""},
		{"first handshake opens", 10 * time.Second, func() []gwproto.Interval { return tr.Observe(c.now(), hs(c.now().Add(-time.Second)), known) }, "dev-1 10:00:00-open"},
		{"same handshake is quiet", 5 * time.Second, func() []gwproto.Interval {
			return tr.Observe(c.now(), hs(time.Date(2025, 1, 1, 10, 0, 39, 0, time.UTC)), known)
		}, ""},
		{"rekey keeps it open", 2 * time.Minute, func() []gwproto.Interval { return tr.Observe(c.now(), hs(c.now()), known) }, ""},
		// last handshake at 10:02:45; silence for 180 s is not yet over.
		{"at exactly 180 s still open", 180 * time.Second, func() []gwproto.Interval {
			return tr.Observe(c.now(), hs(time.Date(2025, 1, 1, 10, 2, 45, 0, time.UTC)), known)
		}, ""},
		{"after 180 s it ends at last+180 s, truncated", time.Minute, func() []gwproto.Interval {
			return tr.Observe(c.now(), hs(time.Date(2025, 1, 1, 10, 2, 45, 0, time.UTC)), known)
		}, "dev-1 10:00:00-10:05:00"},
		{"stale handshake does not reopen", time.Minute, func() []gwproto.Interval {
			return tr.Observe(c.now(), hs(time.Date(2025, 1, 1, 10, 2, 45, 0, time.UTC)), known)
		}, ""},
		{"new handshake opens a new session", time.Minute, func() []gwproto.Interval { return tr.Observe(c.now(), hs(c.now()), known) }, "dev-1 10:08:00-open"},
		{"removal ends it now", 90 * time.Second, func() []gwproto.Interval { return tr.Removed(c.now(), k) }, "dev-1 10:08:00-10:10:00"},
		{"stale snapshot after removal does not reopen", 0, func() []gwproto.Interval {
			return tr.Observe(c.now(), hs(time.Date(2025, 1, 1, 10, 8, 45, 0, time.UTC)), known)
		}, ""},
		{"removing again is a no-op", 0, func() []gwproto.Interval { return tr.Removed(c.now(), k) }, ""},
	}
	for _, st := range steps {
		c.advance(st.advance)
		got := ivString(st.obs())
		if got != st.want {
			t.Fatalf("%s (at %s): got %q, want %q", st.name, c.now().Format("15:04:05"), got, st.want)
		}
	}
	if tr.Open() != 0 {
		t.Errorf("Open: got %d, want 0", tr.Open())
	}
}

func TestTrackerPeerVanishesAndCloseAll(t *testing.T) {
	c := &clock{t: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)}
	tr := NewTracker()
	tr.Observe(c.now(), []Handshake{{Key: key(1), Last: c.now()}, {Key: key(2), Last: c.now()}}, known)
	if tr.Open() != 2 {
		t.Fatalf("Open: got %d, want 2", tr.Open())
	}
	c.advance(61 * time.Second)
	got := tr.Observe(c.now(), []Handshake{{Key: key(2), Last: c.now()}}, known)
	if len(got) != 1 || got[0].End == nil || !got[0].End.Equal(time.Date(2025, 1, 1, 10, 1, 0, 0, time.UTC)) {
		t.Errorf("vanished peer: got %q, want one interval ending 10:01:00", ivString(got))
	}
	c.advance(time.Hour)
	got = tr.CloseAll(c.now())
	// key(2)'s last handshake was at 10:01:01, so it ended at 10:04:01.
	if len(got) != 1 || !got[0].End.Equal(time.Date(2025, 1, 1, 10, 4, 0, 0, time.UTC)) {
		t.Errorf("CloseAll: got %q, want one interval ending 10:04:00", ivString(got))
	}
}

func TestTrackerIgnoresUnknownAndOld(t *testing.T) {
	now := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	tr := NewTracker()
	unknown := func(wgkey.PublicKey) (string, bool) { return "", false }
	if got := tr.Observe(now, []Handshake{{Key: key(1), Last: now}}, unknown); len(got) != 0 {
		t.Errorf("unknown key: got %q, want nothing", ivString(got))
	}
	if got := tr.Observe(now, []Handshake{{Key: key(1), Last: now.Add(-181 * time.Second)}}, known); len(got) != 0 {
		t.Errorf("old handshake: got %q, want nothing", ivString(got))
	}
}

func TestQueue(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	end := t0.Add(time.Hour)
	iv := func(dev string, start time.Time, end *time.Time) gwproto.Interval {
		return gwproto.Interval{DeviceID: dev, Start: start, End: end}
	}
	t.Run("coalesces same device and start", func(t *testing.T) {
		q := NewQueue(10)
		q.Add(iv("a", t0, nil), iv("b", t0, nil), iv("a", t0, &end))
		got := q.Take(10)
		if len(got) != 2 || got[0].DeviceID != "a" || got[0].End == nil {
			t.Errorf("got %q, want a closed, b open", ivString(got))
		}
	})
	t.Run("bounded, drops oldest", func(t *testing.T) {
		q := NewQueue(2)
		q.Add(iv("a", t0, nil), iv("b", t0, nil), iv("c", t0, nil))
		if q.Len() != 2 || q.Dropped() != 1 {
			t.Errorf("got len=%d dropped=%d, want 2, 1", q.Len(), q.Dropped())
		}
		if got := q.Take(1); got[0].DeviceID != "b" {
			t.Errorf("oldest kept: got %s, want b", got[0].DeviceID)
		}
	})
	t.Run("requeue keeps newer entries", func(t *testing.T) {
		q := NewQueue(10)
		q.Add(iv("a", t0, nil), iv("b", t0, nil))
		batch := q.Take(2)
		q.Add(iv("a", t0, &end))
		q.Requeue(batch)
		got := q.Take(10)
		if ivString(got) != "b 10:00:00-open; a 10:00:00-11:00:00" {
			t.Errorf("got %q, want b open then a closed", ivString(got))
		}
	})
}

// A poll that comes late (a paused host) must not merge two sessions
// separated by more than RejectAfterTime without a handshake.
func TestTrackerGapBetweenPolls(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	tr := NewTracker()
	k := key(1)
	if got := ivString(tr.Observe(t0, []Handshake{{Key: k, Last: t0}}, known)); got != "dev-1 10:00:00-open" {
		t.Fatalf("first handshake: got %q, want an open session", got)
	}
	// Next poll an hour later sees a fresh handshake.
	later := t0.Add(time.Hour)
	got := ivString(tr.Observe(later, []Handshake{{Key: k, Last: later.Add(-time.Second)}}, known))
	if want := "dev-1 10:00:00-10:03:00; dev-1 10:59:00-open"; got != want {
		t.Fatalf("after a gap: got %q, want %q", got, want)
	}
	if tr.Open() != 1 {
		t.Errorf("Open: got %d, want 1", tr.Open())
	}
}

// TestTrackerSplitsLongSessions: a session kept alive for longer than
// gwproto.MaxSession is reported as consecutive intervals of at most that
// length, with no gap and no overlap.
func TestTrackerSplitsLongSessions(t *testing.T) {
	start := time.Date(2025, 1, 1, 10, 0, 30, 0, time.UTC)
	tr := NewTracker()
	k := key(1)
	var got []gwproto.Interval
	// A handshake every two minutes for 50 hours.
	for at := start; at.Before(start.Add(50 * time.Hour)); at = at.Add(2 * time.Minute) {
		got = append(got, tr.Observe(at, []Handshake{{Key: k, Last: at}}, known)...)
	}
	got = append(got, tr.CloseAll(start.Add(50*time.Hour))...)
	want := "dev-1 10:00:00-open; dev-1 10:00:00-10:00:00; dev-1 10:00:00-open; dev-1 10:00:00-10:00:00; dev-1 10:00:00-open; dev-1 10:00:00-12:00:00"
	if s := ivString(got); s != want {
		t.Fatalf("got %q, want %q", s, want)
	}
	for i, iv := range got {
		if iv.End != nil && iv.End.Sub(iv.Start) > gwproto.MaxSession {
			t.Errorf("interval %d lasts %s, more than %s", i, iv.End.Sub(iv.Start), gwproto.MaxSession)
		}
	}
	if !got[1].Start.Equal(start.Truncate(time.Minute)) || !got[1].End.Equal(got[2].Start) || !got[3].End.Equal(got[4].Start) ||
		got[1].End.Sub(got[1].Start) != gwproto.MaxSession || !got[5].End.Equal(start.Truncate(time.Minute).Add(50*time.Hour)) {
		t.Fatalf("intervals do not follow each other: %+v", got)
	}
}
