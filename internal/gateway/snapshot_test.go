package gateway_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/gwproto"
)

// TestSnapshotStreamed checks how the gateway takes binary snapshots as
// they stream in: a complete one replaces the admitted keys; one cut
// before its end record drops nothing (the keys it brought stay admitted);
// the next complete one drops every key it lacks.
func TestSnapshotStreamed(t *testing.T) {
	f := newFakeControl(t)
	rec := func(i int) gwproto.PeerRecord {
		return gwproto.PeerRecord{DeviceID: "dev-" + string(rune('a'+i)), Key: mustKey(t).Public(),
			IPv4: netip.AddrFrom4([4]byte{100, 64, 0, byte(10 + i)})}
	}
	a, b, c, d := rec(0), rec(1), rec(2), rec(3)
	snapshot := func(version int64, rs ...gwproto.PeerRecord) []byte {
		var buf bytes.Buffer
		e := gwproto.NewSnapshotEncoder(&buf, 0)
		_ = e.Begin(version, int64(len(rs)))
		for _, r := range rs {
			if err := e.Peer(r); err != nil {
				t.Fatal(err)
			}
		}
		_ = e.End(int64(len(rs)))
		return buf.Bytes()
	}
	full := snapshot(7, c)
	cut := snapshot(6, c, d)
	cut = cut[:24+2+int(cut[25])] // the header and c; d and the end record are lost
	answers := [][]byte{snapshot(5, a, b), cut, full}
	proceed := make(chan struct{}) // the test has seen the state after the cut
	var polls atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/gateway/peers" {
			f.ServeHTTP(w, r)
			return
		}
		if !strings.Contains(r.Header.Get("Accept"), gwproto.SnapshotMediaType) {
			t.Errorf("peers poll accepts %q, want the binary snapshot", r.Header.Get("Accept"))
		}
		n := int(polls.Add(1)) - 1
		if n == 2 {
			select {
			case <-proceed:
			case <-r.Context().Done():
				return
			}
		}
		if n >= len(answers) {
			<-r.Context().Done() // nothing new
			return
		}
		w.Header().Set("Content-Type", gwproto.SnapshotMediaType)
		w.Write(answers[n])
	}))
	t.Cleanup(hs.Close)

	g := newGateway(t, f, &syncBuffer{}, func(c *gateway.Config) {
		c.ServerURL = hs.URL
		c.MaxBackoff = 50 * time.Millisecond
	})
	stop := runGateway(t, g.Run)
	defer stop()
	waitReady(t, g)

	// The cut snapshot follows the first at once (the fake treats every
	// cursor as gone): a, b stay and c joins; d never arrived.
	waitFor(t, 10*time.Second, "a, b and c admitted after the cut snapshot", func() bool {
		return polls.Load() >= 3 && g.Peers() == 3
	})
	close(proceed)
	waitFor(t, 10*time.Second, "only c admitted after the complete snapshot", func() bool {
		return polls.Load() >= 4 && g.Peers() == 1
	})
}
