package control

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

func testRecords(n int) []gwproto.PeerRecord {
	rs := make([]gwproto.PeerRecord, n)
	for i := range rs {
		var k wgkey.PublicKey
		k[0] = 1
		binary.BigEndian.PutUint64(k[24:], uint64(i))
		rs[i] = gwproto.PeerRecord{DeviceID: fmt.Sprintf("dev_%d", i), Key: k,
			IPv4: netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}),
			IPv6: netip.AddrFrom16([16]byte{0xfd, 15: byte(i)})}
	}
	return rs
}

func snapshotBytes(t *testing.T, enc func(*bytes.Buffer) gwproto.SnapshotWriter, version int64, rs []gwproto.PeerRecord) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := enc(&buf)
	if err := w.Begin(version, int64(len(rs))); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := w.Peer(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End(int64(len(rs))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func binaryEnc(b *bytes.Buffer) gwproto.SnapshotWriter { return gwproto.NewSnapshotEncoder(b, 0) }
func jsonEnc(b *bytes.Buffer) gwproto.SnapshotWriter   { return gwproto.NewJSONSnapshotEncoder(b, 0) }

// serve returns a client for a server that checks the request and answers
// with contentType and body.
func serve(t *testing.T, contentType string, body []byte) *Client {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/gateway/peers" || r.Header.Get("Authorization") != "Bearer cred" ||
			!strings.Contains(r.Header.Get("Accept"), gwproto.SnapshotMediaType) {
			t.Errorf("unexpected request %s %v", r.URL, r.Header)
		}
		w.Header().Set("Content-Type", contentType)
		w.Write(body)
	}))
	t.Cleanup(hs.Close)
	c, err := New(hs.URL, hs.Client())
	if err != nil {
		t.Fatal(err)
	}
	c.SetCredential("cred")
	return c
}

// collect polls c and returns what Peers passed on: the expected counts
// Begin got and the peers.
func collect(t *testing.T, c *Client) (Update, []int, []gwproto.PeerRecord, error) {
	var begins []int
	var got []gwproto.PeerRecord
	u, err := c.Peers(t.Context(), 0, time.Second, Snapshot{
		Begin: func(n int) { begins = append(begins, n) },
		Peer: func(r gwproto.PeerRecord) error {
			if len(begins) != 1 {
				t.Errorf("peer after %d calls of Begin, want 1", len(begins))
			}
			got = append(got, r)
			return nil
		},
	})
	return u, begins, got, err
}

func peerFunc(f func(gwproto.PeerRecord) error) Snapshot { return Snapshot{Peer: f} }

func TestPeersSnapshot(t *testing.T) {
	want := testRecords(300)
	bin := snapshotBytes(t, binaryEnc, 12, want)
	js := snapshotBytes(t, jsonEnc, 12, want)
	for _, tc := range []struct {
		name, ct string
		body     []byte
		expected int // what Begin gets
	}{
		{"binary", gwproto.SnapshotMediaType, bin, 300},
		{"json", "application/json; charset=utf-8", js, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, begins, got, err := collect(t, serve(t, tc.ct, tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(begins) != 1 || begins[0] != tc.expected {
				t.Fatalf("Begin got %v, want [%d]", begins, tc.expected)
			}
			if !u.Full || u.Version != 12 || u.Peers != 300 || u.Rejected != 0 || len(u.Changes) != 0 {
				t.Fatalf("got %+v, want a full snapshot of 300 at version 12", u)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatal("peers differ from those sent")
			}
		})
	}
}

func TestPeersJSONAnswers(t *testing.T) {
	k := testRecords(1)[0].Key.String()
	changes := []gwproto.Change{{Peer: gwproto.Peer{DeviceID: "d", PublicKey: k, Addresses: []string{"100.64.0.2/32"}}, Removed: true}}
	ch, _ := json.Marshal(gwproto.PeerUpdate{Version: 9, Changes: changes})
	// An older server's snapshot: fields in another order, one entry a
	// gateway cannot use, an unknown field.
	old := `{"full":true,"extra":{"x":[1]},"peers":[{"device_id":"a","public_key":"` + k +
		`","addresses":["100.64.0.2/32"]},{"device_id":"b","public_key":"bad","addresses":["100.64.0.3/32"]}],"version":4}`
	cases := []struct {
		name   string
		body   string
		want   Update
		n      int
		begins int
	}{
		{"changes", string(ch), Update{Version: 9, Changes: changes}, 0, 0},
		{"nothing new", `{"version":9,"full":false}`, Update{Version: 9}, 0, 0},
		// An empty peers array is no snapshot: Begin is not called, so a
		// caller is not left with a snapshot begun and never ended.
		{"nothing new, empty peers", `{"version":9,"peers":[],"full":false}`, Update{Version: 9}, 0, 0},
		{"old snapshot", old, Update{Version: 4, Full: true, Peers: 1, Rejected: 1}, 1, 1},
		{"empty old snapshot", `{"version":0,"full":true}`, Update{Full: true}, 0, 1},
		{"empty old snapshot, empty peers", `{"peers":[],"version":0,"full":true}`, Update{Full: true}, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, begins, got, err := collect(t, serve(t, "application/json", []byte(tc.body)))
			if err != nil || !reflect.DeepEqual(u, tc.want) || len(got) != tc.n || len(begins) != tc.begins {
				t.Fatalf("got %+v (%d peers, Begin %v), %v; want %+v (%d peers, %d Begin)", u, len(got), begins, err, tc.want, tc.n, tc.begins)
			}
		})
	}
}

func TestPeersErrors(t *testing.T) {
	bin := snapshotBytes(t, binaryEnc, 3, testRecords(50))
	js := snapshotBytes(t, jsonEnc, 3, testRecords(50))
	bad := bytes.Clone(bin)
	bad[24] = 0x09 // first record's type
	cases := []struct {
		name, ct  string
		body      []byte
		transport bool   // a *TransportError (retry; the answer was cut)
		msg       string // in the error
	}{
		{"binary cut", gwproto.SnapshotMediaType, bin[:len(bin)-20], true, "connection closed"},
		{"binary without end", gwproto.SnapshotMediaType, bin[:len(bin)-10], true, "connection closed"},
		{"binary malformed", gwproto.SnapshotMediaType, bad, false, "malformed snapshot: peer snapshot: byte 24: unknown record type 0x09"},
		{"json cut", "application/json", js[:len(js)/2], true, "connection closed"},
		{"json garbage", "application/json", []byte(`{"version":[}`), false, "malformed response"},
		{"peers without full", "application/json", []byte(`{"version":1,"peers":[` + string(mustJSON(testRecords(1)[0].Peer())) + `]}`), false, "malformed response"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := collect(t, serve(t, tc.ct, tc.body))
			var te *TransportError
			if err == nil || errors.As(err, &te) != tc.transport || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want an error containing %q (transport %v)", err, tc.msg, tc.transport)
			}
		})
	}

	t.Run("callback error", func(t *testing.T) {
		stop := errors.New("index full")
		for _, body := range [][]byte{bin, js} {
			ct := gwproto.SnapshotMediaType
			if body[0] == '{' {
				ct = "application/json"
			}
			n := 0
			_, err := serve(t, ct, body).Peers(t.Context(), 0, time.Second, peerFunc(func(gwproto.PeerRecord) error {
				n++
				if n == 3 {
					return stop
				}
				return nil
			}))
			if err != stop || n != 3 {
				t.Fatalf("%s: got %v after %d peers, want the callback's error after 3", ct, err, n)
			}
		}
	})

	t.Run("status", func(t *testing.T) {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", http.StatusUnauthorized)
		}))
		defer hs.Close()
		c, _ := New(hs.URL, nil)
		_, err := c.Peers(t.Context(), 0, time.Second, Snapshot{})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 401 || !se.Permanent() {
			t.Fatalf("got %v, want a permanent HTTP 401", err)
		}
	})
}

// TestPeersStall checks that a snapshot whose body stops arriving ends
// with a timeout after the stall limit, not after the whole poll's time.
func TestPeersStall(t *testing.T) {
	bin := snapshotBytes(t, binaryEnc, 3, testRecords(50))
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", gwproto.SnapshotMediaType)
		w.Write(bin[:200])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hs.Close()
	defer close(release)
	c, _ := New(hs.URL, nil)
	c.stall = 100 * time.Millisecond
	start := time.Now()
	n := 0
	_, err := c.Peers(t.Context(), 0, 30*time.Second, peerFunc(func(gwproto.PeerRecord) error { n++; return nil }))
	var te *TransportError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("got %v, want a timeout", err)
	}
	if n == 0 {
		t.Fatal("no peer was passed on before the stall: the body was not streamed")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up after %v, want about the stall limit", d)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
