package gwproto_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

func key(n int) wgkey.PublicKey {
	var k wgkey.PublicKey
	k[0] = 0x4e
	binary.BigEndian.PutUint64(k[24:], uint64(n))
	return k
}

// records returns n distinct valid records: dual-stack, IPv4-only and
// IPv6-only in turn, with device IDs of varying length.
func records(n int) []gwproto.PeerRecord {
	rs := make([]gwproto.PeerRecord, n)
	for i := range rs {
		r := gwproto.PeerRecord{DeviceID: fmt.Sprintf("dev_%0*d", 1+i%40, i), Key: key(i)}
		v4 := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
		v6 := netip.MustParseAddr(fmt.Sprintf("fd00:6e6e::%x", i+2))
		switch i % 3 {
		case 0:
			r.IPv4, r.IPv6 = v4, v6
		case 1:
			r.IPv4 = v4
		case 2:
			r.IPv6 = v6
		}
		rs[i] = r
	}
	return rs
}

func encode(t testing.TB, w gwproto.SnapshotWriter, version int64, rs []gwproto.PeerRecord) {
	t.Helper()
	encodeExpecting(t, w, version, int64(len(rs)), rs)
}

func encodeExpecting(t testing.TB, w gwproto.SnapshotWriter, version, expected int64, rs []gwproto.PeerRecord) {
	t.Helper()
	if err := w.Begin(version, expected); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := w.Peer(r); err != nil {
			t.Fatalf("Peer(%+v): %v", r, err)
		}
	}
	if err := w.End(int64(len(rs))); err != nil {
		t.Fatal(err)
	}
}

func binarySnapshot(t testing.TB, version int64, rs []gwproto.PeerRecord) []byte {
	t.Helper()
	var buf bytes.Buffer
	encode(t, gwproto.NewSnapshotEncoder(&buf, 0), version, rs)
	return buf.Bytes()
}

func decodeAll(data []byte, maxPeers int64) ([]gwproto.PeerRecord, gwproto.SnapshotInfo, error) {
	var got []gwproto.PeerRecord
	info, err := gwproto.DecodeSnapshot(bytes.NewReader(data), maxPeers, nil, func(r gwproto.PeerRecord) error {
		got = append(got, r)
		return nil
	})
	return got, info, err
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			want := records(n)
			data := binarySnapshot(t, 42+int64(n), want)
			var hdr gwproto.SnapshotHeader
			var got []gwproto.PeerRecord
			info, err := gwproto.DecodeSnapshot(bytes.NewReader(data), 0, func(h gwproto.SnapshotHeader) error {
				if got != nil {
					t.Error("begin called after a peer")
				}
				hdr = h
				return nil
			}, func(r gwproto.PeerRecord) error {
				got = append(got, r)
				return nil
			})
			if err != nil {
				t.Fatalf("DecodeSnapshot: %v", err)
			}
			if hdr.Version != info.Version || hdr.Expected != int64(n) {
				t.Fatalf("header: got %+v, want version %d, %d expected", hdr, info.Version, n)
			}
			if info.Version != 42+int64(n) || info.Peers != int64(n) {
				t.Fatalf("got %+v, want version %d and %d peers", info, 42+n, n)
			}
			if n == 0 {
				got = []gwproto.PeerRecord{}
				want = []gwproto.PeerRecord{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip differs")
			}
		})
	}
}

// TestSnapshotLayout pins the byte layout documented in
// docs/gateway-protocol.md.
func TestSnapshotLayout(t *testing.T) {
	r := gwproto.PeerRecord{DeviceID: "dev_a", Key: key(7),
		IPv4: netip.MustParseAddr("100.64.0.2"), IPv6: netip.MustParseAddr("fd00:6e6e::2")}
	got := binarySnapshot(t, 258, []gwproto.PeerRecord{r})
	want := []byte("NNPS\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x00\x00\x00\x01")
	want = append(want, 0x01, 32+1+4+16+1+5)
	want = append(want, r.Key[:]...)
	want = append(want, 0x03, 100, 64, 0, 2)
	want = append(want, 0xfd, 0, 0x6e, 0x6e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2)
	want = append(want, 5, 'd', 'e', 'v', '_', 'a')
	want = append(want, 0x02, 8, 0, 0, 0, 0, 0, 0, 0, 1)
	if !bytes.Equal(got, want) {
		t.Fatalf("got\n% x\nwant\n% x", got, want)
	}
}

func TestSnapshotMalformed(t *testing.T) {
	good := binarySnapshot(t, 9, records(2))
	// Offsets in good: header 0..23, first peer record at 24.
	peer0 := 24
	peer0Len := int(good[peer0+1])
	peer1 := peer0 + 2 + peer0Len
	end := len(good) - 10
	set := func(off int, b ...byte) []byte {
		c := bytes.Clone(good)
		copy(c[off:], b)
		return c
	}
	// withPeer replaces the first peer record's body.
	withPeer := func(body []byte) []byte {
		c := bytes.Clone(good[:peer0])
		c = append(c, 0x01, byte(len(body)))
		c = append(c, body...)
		c = append(c, good[peer1:end]...)
		return append(c, 0x02, 8, 0, 0, 0, 0, 0, 0, 0, 2)
	}
	k := key(1)
	body := func(flags byte, tail ...byte) []byte {
		b := append(bytes.Clone(k[:]), flags)
		return append(b, tail...)
	}
	v4 := []byte{100, 64, 0, 9}
	v6 := netip.MustParseAddr("fd00::9").As16()
	mapped := netip.MustParseAddr("::ffff:1.2.3.4").As16()
	id := []byte{3, 'd', 'e', 'v'}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	cases := []struct {
		name string
		data []byte
		want string // in the error message
		eof  bool   // wraps io.ErrUnexpectedEOF
	}{
		{"empty", nil, "empty stream", true},
		{"short header", good[:10], "truncated header", true},
		{"bad magic", set(0, 'X'), "bad magic", false},
		{"json instead", []byte(`{"version":1,"full":true,"peers":[]}`), "bad magic", false},
		{"format 2", set(4, 2), "format version 2, want 1", false},
		{"reserved", set(6, 1), "reserved header bytes", false},
		{"version overflow", set(8, 0x80), "feed version out of range", false},
		{"expects too many", set(16, 0, 0, 0, 0, 1), "header expects 16777218 peers, more than 1000", false},
		{"no end record", good[:end], "stream ended before the end record", true},
		{"cut in record", good[:peer1+5], "truncated record", true},
		{"cut in end", good[:len(good)-3], "truncated record", true},
		{"trailing byte", append(bytes.Clone(good), 0), "data after the end record", false},
		{"unknown record", set(peer0, 0x07), "unknown record type 0x07", false},
		{"end count", set(len(good)-1, 3), "end record counts 3 peers, read 2", false},
		{"end length", set(end+1, 7), "end record length 7", false},
		{"zero key", withPeer(cat(make([]byte, 32), []byte{1}, v4, id)), "all-zero public key", false},
		{"no address", withPeer(cat(body(0), v4, id)), "no address", false},
		{"unknown flag", withPeer(cat(body(5), v4, id)), "unknown address flags 0x05", false},
		{"short body", withPeer(body(1, 1, 2)), "too short", false},
		{"v6 truncated", withPeer(cat(body(2), v6[:3], id)), "truncated IPv6", false},
		{"mapped v6", withPeer(cat(body(2), mapped[:], id)), "IPv4-mapped", false},
		{"id length too long", withPeer(cat(body(1), v4, []byte{9, 'd', 'e', 'v'})), "device id length 9, but 3 bytes remain", false},
		{"id length too short", withPeer(cat(body(1), v4, []byte{1, 'd', 'e', 'v'})), "device id length 1, but 3 bytes remain", false},
		{"empty id", withPeer(cat(body(2), v6[:], []byte{0})), "device id length 0", false},
		{"id not printable", withPeer(cat(body(1), v4, []byte{3, 'd', ' ', 'v'})), "not printable", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeAll(tc.data, 1000)
			var se *gwproto.SnapshotError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *SnapshotError", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "peer snapshot: byte ") {
				t.Fatalf("got %q, want it to contain %q", err, tc.want)
			}
			if got := errors.Is(err, io.ErrUnexpectedEOF); got != tc.eof {
				t.Fatalf("errors.Is(%v, io.ErrUnexpectedEOF) = %v, want %v", err, got, tc.eof)
			}
		})
	}
}

func TestSnapshotLimitsAndCallbackError(t *testing.T) {
	data := binarySnapshot(t, 1, records(5))
	if _, _, err := decodeAll(data, 4); err == nil || !strings.Contains(err.Error(), "header expects 5 peers, more than 4") {
		t.Fatalf("maxPeers 4: got %v, want a limit error", err)
	}
	// The expected count is a hint: more records than expected are read
	// up to maxPeers, and no more.
	var buf bytes.Buffer
	encodeExpecting(t, gwproto.NewSnapshotEncoder(&buf, 0), 1, 2, records(5))
	if _, info, err := decodeAll(buf.Bytes(), 5); err != nil || info.Peers != 5 {
		t.Fatalf("5 peers, 2 expected: got %+v, %v; want 5 peers", info, err)
	}
	if _, _, err := decodeAll(buf.Bytes(), 4); err == nil || !strings.Contains(err.Error(), "more than 4 peers") {
		t.Fatalf("5 peers, 2 expected, maxPeers 4: got %v, want a limit error", err)
	}
	stop := errors.New("stop")
	if _, err := gwproto.DecodeSnapshot(bytes.NewReader(data), 0, func(gwproto.SnapshotHeader) error { return stop },
		func(gwproto.PeerRecord) error { t.Fatal("peer after begin failed"); return nil }); err != stop {
		t.Fatalf("begin failing: got %v, want its error", err)
	}
	n := 0
	_, err := gwproto.DecodeSnapshot(bytes.NewReader(data), 0, nil, func(gwproto.PeerRecord) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Fatalf("got %v after %d calls, want the callback's error after 2", err, n)
	}
}

// TestSnapshotDecodesIncrementally checks that DecodeSnapshot hands over
// each record as soon as it is read, before the rest of the stream exists.
func TestSnapshotDecodesIncrementally(t *testing.T) {
	data := binarySnapshot(t, 1, records(3))
	pr, pw := io.Pipe()
	first := make(chan gwproto.PeerRecord, 3)
	done := make(chan error, 1)
	go func() {
		_, err := gwproto.DecodeSnapshot(pr, 0, nil, func(r gwproto.PeerRecord) error { first <- r; return nil })
		done <- err
	}()
	rec0 := 24 + 2 + int(data[25])
	if _, err := pw.Write(data[:rec0]); err != nil {
		t.Fatal(err)
	}
	if r := <-first; r.DeviceID != records(1)[0].DeviceID {
		t.Fatalf("got %+v first", r)
	}
	if _, err := pw.Write(data[rec0:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestEncoderRefuses(t *testing.T) {
	ok := records(1)[0]
	mut := func(f func(*gwproto.PeerRecord)) gwproto.PeerRecord { r := ok; f(&r); return r }
	cases := []struct {
		name string
		r    gwproto.PeerRecord
	}{
		{"empty id", mut(func(r *gwproto.PeerRecord) { r.DeviceID = "" })},
		{"long id", mut(func(r *gwproto.PeerRecord) { r.DeviceID = strings.Repeat("d", 65) })},
		{"space in id", mut(func(r *gwproto.PeerRecord) { r.DeviceID = "a b" })},
		{"zero key", mut(func(r *gwproto.PeerRecord) { r.Key = wgkey.PublicKey{} })},
		{"no address", mut(func(r *gwproto.PeerRecord) { r.IPv4, r.IPv6 = netip.Addr{}, netip.Addr{} })},
		{"v6 in v4", mut(func(r *gwproto.PeerRecord) { r.IPv4 = netip.MustParseAddr("fd00::1") })},
		{"mapped in v6", mut(func(r *gwproto.PeerRecord) { r.IPv6 = netip.MustParseAddr("::ffff:1.2.3.4") })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			e := gwproto.NewSnapshotEncoder(&buf, 0)
			if err := e.Begin(1, 1); err != nil {
				t.Fatal(err)
			}
			if err := e.Peer(tc.r); err == nil {
				t.Fatalf("Peer(%+v): got nil, want an error", tc.r)
			}
			if err := e.End(0); err != nil {
				t.Fatal(err)
			}
			if _, info, err := decodeAll(buf.Bytes(), 0); err != nil || info.Peers != 0 {
				t.Fatalf("after a refused peer: got %+v, %v; want a valid empty snapshot", info, err)
			}
		})
	}
	var buf bytes.Buffer
	e := gwproto.NewSnapshotEncoder(&buf, 0)
	if err := e.Peer(ok); err == nil {
		t.Fatal("Peer before Begin: got nil, want an error")
	}
	if err := e.Begin(1, -1); err == nil {
		t.Fatal("Begin with a negative count: got nil, want an error")
	}
	e = gwproto.NewSnapshotEncoder(&buf, 0)
	_ = e.Begin(1, 1)
	_ = e.Peer(ok)
	if err := e.End(2); err == nil {
		t.Fatal("End with a wrong count: got nil, want an error")
	}
}

// TestJSONSnapshot checks that the streamed JSON snapshot is the
// PeerUpdate document older gateways decode.
func TestJSONSnapshot(t *testing.T) {
	for _, n := range []int{0, 1, 4} {
		rs := records(n)
		var buf bytes.Buffer
		encode(t, gwproto.NewJSONSnapshotEncoder(&buf, 0), 77, rs)
		var u gwproto.PeerUpdate
		dec := json.NewDecoder(&buf)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&u); err != nil {
			t.Fatalf("%d peers: %v", n, err)
		}
		if u.Version != 77 || !u.Full || len(u.Peers) != n {
			t.Fatalf("got %+v, want version 77, full, %d peers", u, n)
		}
		for i, p := range u.Peers {
			back, err := gwproto.ParsePeerRecord(p)
			if err != nil || back != rs[i] {
				t.Fatalf("peer %d: got %+v (%v), want %+v", i, back, err, rs[i])
			}
		}
	}
}

func TestParsePeerRecord(t *testing.T) {
	k := key(3).String()
	cases := []struct {
		p       gwproto.Peer
		wantErr string
	}{
		{gwproto.Peer{DeviceID: "d", PublicKey: k, Addresses: []string{"100.64.0.2/32", "fd00::2/128"}}, ""},
		{gwproto.Peer{DeviceID: "d", PublicKey: k, Addresses: []string{"::ffff:100.64.0.2/128"}}, ""},
		{gwproto.Peer{DeviceID: "d", PublicKey: k, Addresses: []string{"100.64.0.0/24"}}, "not a host prefix"},
		{gwproto.Peer{DeviceID: "d", PublicKey: k, Addresses: []string{"100.64.0.2/32", "100.64.0.3/32"}}, "more than one"},
		{gwproto.Peer{DeviceID: "d", PublicKey: k}, "no address"},
		{gwproto.Peer{DeviceID: "d", PublicKey: "nope", Addresses: []string{"100.64.0.2/32"}}, "public key"},
		{gwproto.Peer{DeviceID: "", PublicKey: k, Addresses: []string{"100.64.0.2/32"}}, "device id length 0"},
	}
	for _, tc := range cases {
		_, err := gwproto.ParsePeerRecord(tc.p)
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ParsePeerRecord(%+v): got %v, want %q", tc.p, err, tc.wantErr)
		}
	}
}

// FuzzDecodeSnapshot feeds arbitrary bytes to the decoder: it must never
// panic, must reject what it cannot fully read, and whatever it accepts
// must re-encode to the same bytes (the format has one encoding per
// snapshot).
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(binarySnapshot(f, 1, nil))
	f.Add(binarySnapshot(f, 7, records(3)))
	f.Add([]byte("NNPS\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []gwproto.PeerRecord
		var hdr gwproto.SnapshotHeader
		info, err := gwproto.DecodeSnapshot(bytes.NewReader(data), 1000, func(h gwproto.SnapshotHeader) error {
			if h.Expected < 0 || h.Expected > 1000 {
				t.Fatalf("header passed on with %d expected", h.Expected)
			}
			hdr = h
			return nil
		}, func(r gwproto.PeerRecord) error {
			if err := r.Check(); err != nil {
				t.Fatalf("decoder passed on an invalid record %+v: %v", r, err)
			}
			got = append(got, r)
			return nil
		})
		if err != nil {
			var se *gwproto.SnapshotError
			if !errors.As(err, &se) {
				t.Fatalf("got %T %v, want a *SnapshotError", err, err)
			}
			return
		}
		if info.Peers != int64(len(got)) {
			t.Fatalf("info says %d peers, callback saw %d", info.Peers, len(got))
		}
		var again bytes.Buffer
		encodeExpecting(t, gwproto.NewSnapshotEncoder(&again, 0), info.Version, hdr.Expected, got)
		if !bytes.Equal(again.Bytes(), data) {
			t.Fatalf("accepted input does not re-encode to itself:\n% x\n% x", data, again.Bytes())
		}
	})
}
