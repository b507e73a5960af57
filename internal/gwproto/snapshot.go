package gwproto

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// The binary snapshot format, version 1. docs/gateway-protocol.md is its
// reference; this summary must agree with it.
//
// A gateway asks for it by listing SnapshotMediaType in its Accept header;
// a server that sends it answers with that Content-Type. All integers are
// big-endian.
//
//	header   24 bytes: magic "NNPS", format version (1), 3 zero bytes,
//	         feed version (uint64, at most 2^63-1), expected peers (uint64,
//	         a hint for sizing, not checked)
//	records  each: type (1 byte), body length L (1 byte), L bytes of body
//	  0x01 peer: public key (32), address flags (1: bit 0 IPv4, bit 1
//	       IPv6, at least one, no other bit), IPv4 (4) if bit 0, IPv6 (16)
//	       if bit 1, device ID length n (1), device ID (n bytes, 1..64,
//	       each 0x21..0x7e). L must be exactly the sum.
//	  0x02 end: peer count (uint64, 8 bytes). Must be the last record and
//	       count the peer records exactly; the stream ends right after it.
//
// Any other record type, a body of the wrong length, an all-zero key, an
// IPv4-mapped address in the IPv6 field, bytes after the end record or a
// stream that ends before it is an error.
const (
	// SnapshotMediaType names format version 1 in Accept and Content-Type.
	SnapshotMediaType = "application/vnd.nitronet.peer-snapshot.v1"
	// SnapshotFormat is the format version this package reads and writes.
	SnapshotFormat = 1
	// MaxDeviceIDLen is the longest device ID a peer record can carry.
	MaxDeviceIDLen = 64
	// DefaultMaxSnapshotPeers is how many peer records DecodeSnapshot
	// accepts unless told otherwise: 2^24, four times the devices a /10
	// IPv4 pool can address.
	DefaultMaxSnapshotPeers = 1 << 24
)

const (
	snapshotMagic  = "NNPS"
	headerLen      = 24
	recPeer        = 0x01
	recEnd         = 0x02
	flagIPv4       = 1 << 0
	flagIPv6       = 1 << 1
	endBodyLen     = 8
	minPeerBodyLen = wgkey.Len + 1 + 4 + 1 + 1
	maxRecordLen   = 2 + 255
)

// PeerRecord is one peer of a snapshot, parsed: a fixed-size key and host
// addresses (a zero netip.Addr means the peer has no address of that
// family). The binary snapshot carries exactly this.
type PeerRecord struct {
	DeviceID string
	Key      wgkey.PublicKey
	IPv4     netip.Addr
	IPv6     netip.Addr
}

// Peer returns r in the JSON message form: the base64 key and host
// prefixes (/32, /128).
func (r PeerRecord) Peer() Peer {
	p := Peer{DeviceID: r.DeviceID, PublicKey: r.Key.String(), Addresses: make([]string, 0, 2)}
	if r.IPv4.IsValid() {
		p.Addresses = append(p.Addresses, netip.PrefixFrom(r.IPv4, 32).String())
	}
	if r.IPv6.IsValid() {
		p.Addresses = append(p.Addresses, netip.PrefixFrom(r.IPv6, 128).String())
	}
	return p
}

// Check reports whether r can be encoded: a device ID of 1 to
// MaxDeviceIDLen bytes in 0x21..0x7e, a non-zero key, at least one address,
// an IPv4 address in IPv4 and an IPv6 address that is not IPv4-mapped in
// IPv6.
func (r PeerRecord) Check() error {
	if err := checkDeviceID(r.DeviceID); err != nil {
		return err
	}
	if r.Key.IsZero() {
		return errors.New("all-zero public key")
	}
	if !r.IPv4.IsValid() && !r.IPv6.IsValid() {
		return errors.New("no address")
	}
	if r.IPv4.IsValid() && !r.IPv4.Is4() {
		return errors.New("IPv4 field holds a non-IPv4 address")
	}
	if r.IPv6.IsValid() && (!r.IPv6.Is6() || r.IPv6.Is4In6() || r.IPv6.Zone() != "") {
		return errors.New("IPv6 field holds an IPv4-mapped, zoned or non-IPv6 address")
	}
	return nil
}

func checkDeviceID(id string) error {
	if len(id) == 0 || len(id) > MaxDeviceIDLen {
		return fmt.Errorf("device id length %d outside 1..%d", len(id), MaxDeviceIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Errorf("device id byte 0x%02x at %d is not printable ASCII", id[i], i)
		}
	}
	return nil
}

// ParsePeerRecord converts a JSON-form peer to a record. Every address
// must be a host prefix (/32 or /128, IPv4-mapped IPv6 read as IPv4), at
// most one of each family; the result must pass Check.
func ParsePeerRecord(p Peer) (PeerRecord, error) {
	r := PeerRecord{DeviceID: p.DeviceID}
	var err error
	if r.Key, err = wgkey.ParsePublic(p.PublicKey); err != nil {
		return PeerRecord{}, fmt.Errorf("public key: %w", err)
	}
	for _, s := range p.Addresses {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return PeerRecord{}, fmt.Errorf("address %q: %w", s, err)
		}
		a := pfx.Addr()
		if pfx.Bits() != a.BitLen() {
			return PeerRecord{}, fmt.Errorf("address %q is not a host prefix", s)
		}
		a = a.Unmap()
		slot := &r.IPv6
		if a.Is4() {
			slot = &r.IPv4
		}
		if slot.IsValid() && *slot != a {
			return PeerRecord{}, fmt.Errorf("more than one address of a family")
		}
		*slot = a
	}
	if err := r.Check(); err != nil {
		return PeerRecord{}, err
	}
	return r, nil
}

// SnapshotWriter receives a full snapshot as it is produced: Begin once
// with the feed version and the number of peers expected to follow (a
// hint), then Peer for each peer in order, then End with the number of
// peers. An error from any method stops the snapshot.
type SnapshotWriter interface {
	Begin(version, expected int64) error
	Peer(r PeerRecord) error
	End(count int64) error
}

// SnapshotEncoder writes the binary snapshot format to an io.Writer,
// buffered. It implements SnapshotWriter. It is not safe for concurrent
// use.
type SnapshotEncoder struct {
	w     *bufio.Writer
	buf   [maxRecordLen]byte
	count int64
	state int // 0 before Begin, 1 writing peers, 2 ended
}

// NewSnapshotEncoder returns an encoder writing to w through a buffer of
// size bytes (at least 4096).
func NewSnapshotEncoder(w io.Writer, size int) *SnapshotEncoder {
	return &SnapshotEncoder{w: bufio.NewWriterSize(w, max(size, 4096))}
}

// Begin writes the header with the feed version and the number of peers
// expected to follow, neither of which may be negative.
func (e *SnapshotEncoder) Begin(version, expected int64) error {
	if e.state != 0 {
		return errors.New("peer snapshot: Begin called twice")
	}
	if version < 0 || expected < 0 {
		return fmt.Errorf("peer snapshot: negative feed version %d or peer count %d", version, expected)
	}
	e.state = 1
	h := e.buf[:headerLen]
	copy(h, snapshotMagic)
	h[4] = SnapshotFormat
	h[5], h[6], h[7] = 0, 0, 0
	binary.BigEndian.PutUint64(h[8:], uint64(version))
	binary.BigEndian.PutUint64(h[16:], uint64(expected))
	_, err := e.w.Write(h)
	return err
}

// Peer writes one peer record. It returns an error, writing nothing, if r
// fails Check.
func (e *SnapshotEncoder) Peer(r PeerRecord) error {
	if e.state != 1 {
		return errors.New("peer snapshot: Peer outside Begin and End")
	}
	if err := r.Check(); err != nil {
		return fmt.Errorf("peer snapshot: %w", err)
	}
	b := e.buf[:2]
	b[0] = recPeer
	b = append(b, r.Key[:]...)
	flagAt := len(b)
	b = append(b, 0)
	if r.IPv4.IsValid() {
		b[flagAt] |= flagIPv4
		a := r.IPv4.As4()
		b = append(b, a[:]...)
	}
	if r.IPv6.IsValid() {
		b[flagAt] |= flagIPv6
		a := r.IPv6.As16()
		b = append(b, a[:]...)
	}
	b = append(b, byte(len(r.DeviceID)))
	b = append(b, r.DeviceID...)
	b[1] = byte(len(b) - 2)
	e.count++
	_, err := e.w.Write(b)
	return err
}

// End writes the end record and flushes the buffer. count must be the
// number of peers written.
func (e *SnapshotEncoder) End(count int64) error {
	if e.state != 1 {
		return errors.New("peer snapshot: End outside Begin")
	}
	if count != e.count {
		return fmt.Errorf("peer snapshot: End(%d) after %d peers", count, e.count)
	}
	e.state = 2
	b := e.buf[:2+endBodyLen]
	b[0], b[1] = recEnd, endBodyLen
	binary.BigEndian.PutUint64(b[2:], uint64(count))
	if _, err := e.w.Write(b); err != nil {
		return err
	}
	return e.w.Flush()
}

// SnapshotError reports a malformed binary snapshot: what is wrong and the
// byte offset in the stream of the header or record where it was found.
// A stream that ends early is a SnapshotError that wraps
// io.ErrUnexpectedEOF.
type SnapshotError struct {
	Offset int64
	Reason string
	Err    error // the underlying read error, if any
}

func (e *SnapshotError) Error() string {
	return "peer snapshot: byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Reason
}

// Unwrap returns the underlying read error, if any.
func (e *SnapshotError) Unwrap() error { return e.Err }

// SnapshotHeader is what a snapshot's header says.
type SnapshotHeader struct {
	Version int64 // the feed version the snapshot corresponds to
	// Expected is how many peers the server expects to send, at most the
	// decoder's maxPeers: a hint for sizing an index, not checked (the
	// end record's count is).
	Expected int64
}

// SnapshotInfo describes a decoded snapshot.
type SnapshotInfo struct {
	Version int64 // the feed version the snapshot corresponds to
	Peers   int64 // peer records read
}

// DecodeSnapshot reads one binary snapshot from r. It calls begin, if not
// nil, with the header, then fn for each peer, in stream order, as soon as
// its record is read; it never holds more than one record. maxPeers bounds
// the peer records accepted, and the header's expected count (0 means
// DefaultMaxSnapshotPeers).
//
// It returns the snapshot's version and peer count once the end record is
// read and r is at EOF. Otherwise it returns the first error: begin's or
// fn's error as it is, a read error, or a *SnapshotError for malformed or
// truncated input. Either way begin and fn may have been called: a caller
// that applies peers as they arrive must discard them when DecodeSnapshot
// fails. DecodeSnapshot never panics on any input.
func DecodeSnapshot(r io.Reader, maxPeers int64, begin func(SnapshotHeader) error, fn func(PeerRecord) error) (SnapshotInfo, error) {
	if maxPeers <= 0 {
		maxPeers = DefaultMaxSnapshotPeers
	}
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < maxRecordLen {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	d := decoder{r: br}
	var info SnapshotInfo
	h, err := d.next(headerLen, "header")
	if err != nil {
		return info, err
	}
	if string(h[:4]) != snapshotMagic {
		return info, d.fail(0, "not a peer snapshot (bad magic)")
	}
	if h[4] != SnapshotFormat {
		return info, d.fail(0, fmt.Sprintf("format version %d, want %d", h[4], SnapshotFormat))
	}
	if h[5]|h[6]|h[7] != 0 {
		return info, d.fail(0, "reserved header bytes are not zero")
	}
	v := binary.BigEndian.Uint64(h[8:])
	if v > math.MaxInt64 {
		return info, d.fail(0, "feed version out of range")
	}
	info.Version = int64(v)
	expected := binary.BigEndian.Uint64(h[16:])
	if expected > uint64(maxPeers) {
		return info, d.fail(0, fmt.Sprintf("header expects %d peers, more than %d", expected, maxPeers))
	}
	d.advance(headerLen)
	if begin != nil {
		if err := begin(SnapshotHeader{Version: info.Version, Expected: int64(expected)}); err != nil {
			return info, err
		}
	}
	for {
		at := d.off
		hdr, err := d.next(2, "record header")
		if err != nil {
			return info, err
		}
		typ, n := hdr[0], int(hdr[1])
		rec, err := d.next(2+n, "record")
		if err != nil {
			return info, err
		}
		body := rec[2:]
		switch typ {
		case recPeer:
			if info.Peers >= maxPeers {
				return info, d.fail(at, fmt.Sprintf("more than %d peers", maxPeers))
			}
			p, reason := parsePeer(body)
			if reason != "" {
				return info, d.fail(at, "peer record: "+reason)
			}
			d.advance(2 + n)
			info.Peers++
			if err := fn(p); err != nil {
				return info, err
			}
		case recEnd:
			if n != endBodyLen {
				return info, d.fail(at, fmt.Sprintf("end record length %d, want %d", n, endBodyLen))
			}
			if c := binary.BigEndian.Uint64(body); c != uint64(info.Peers) {
				return info, d.fail(at, fmt.Sprintf("end record counts %d peers, read %d", c, info.Peers))
			}
			d.advance(2 + n)
			if _, err := d.r.Peek(1); err == nil {
				return info, d.fail(d.off, "data after the end record")
			} else if !errors.Is(err, io.EOF) {
				return info, err
			}
			return info, nil
		default:
			return info, d.fail(at, fmt.Sprintf("unknown record type 0x%02x", typ))
		}
	}
}

// parsePeer parses a peer record body, or returns why it is malformed.
func parsePeer(b []byte) (PeerRecord, string) {
	var p PeerRecord
	if len(b) < minPeerBodyLen {
		return p, fmt.Sprintf("length %d too short", len(b))
	}
	copy(p.Key[:], b)
	if p.Key.IsZero() {
		return p, "all-zero public key"
	}
	flags := b[wgkey.Len]
	rest := b[wgkey.Len+1:]
	if flags&^(flagIPv4|flagIPv6) != 0 {
		return p, fmt.Sprintf("unknown address flags 0x%02x", flags)
	}
	if flags == 0 {
		return p, "no address"
	}
	if flags&flagIPv4 != 0 {
		if len(rest) < 4 {
			return p, "truncated IPv4 address"
		}
		p.IPv4 = netip.AddrFrom4([4]byte(rest[:4]))
		rest = rest[4:]
	}
	if flags&flagIPv6 != 0 {
		if len(rest) < 16 {
			return p, "truncated IPv6 address"
		}
		p.IPv6 = netip.AddrFrom16([16]byte(rest[:16]))
		if p.IPv6.Is4In6() {
			return p, "IPv4-mapped address in the IPv6 field"
		}
		rest = rest[16:]
	}
	if len(rest) < 1 {
		return p, "missing device id length"
	}
	n := int(rest[0])
	rest = rest[1:]
	if n != len(rest) {
		return p, fmt.Sprintf("device id length %d, but %d bytes remain in the record", n, len(rest))
	}
	if err := checkDeviceID(string(rest)); err != nil {
		return p, err.Error()
	}
	p.DeviceID = string(rest)
	return p, ""
}

// decoder tracks the offset of a bufio.Reader.
type decoder struct {
	r   *bufio.Reader
	off int64
}

// next returns the next n bytes without consuming them.
func (d *decoder) next(n int, what string) ([]byte, error) {
	b, err := d.r.Peek(n)
	if err == nil {
		return b, nil
	}
	if errors.Is(err, io.EOF) {
		if len(b) == 0 && what == "header" {
			return nil, &SnapshotError{Offset: d.off, Reason: "empty stream", Err: io.ErrUnexpectedEOF}
		}
		return nil, &SnapshotError{Offset: d.off, Reason: "truncated " + what + " (stream ended before the end record)", Err: io.ErrUnexpectedEOF}
	}
	return nil, err
}

func (d *decoder) advance(n int) {
	_, _ = d.r.Discard(n) // Peek(n) succeeded, so Discard(n) does too
	d.off += int64(n)
}

func (d *decoder) fail(off int64, reason string) error {
	return &SnapshotError{Offset: off, Reason: reason}
}

// JSONSnapshotEncoder writes a full snapshot as the JSON PeerUpdate
// {"version":V,"full":true,"peers":[...]}, one peer at a time, so that
// gateways that do not ask for the binary format get the same document
// as before without the server building it in memory. It implements
// SnapshotWriter and is not safe for concurrent use.
type JSONSnapshotEncoder struct {
	w     *bufio.Writer
	count int64
	state int
}

// NewJSONSnapshotEncoder returns an encoder writing to w through a buffer
// of size bytes (at least 4096).
func NewJSONSnapshotEncoder(w io.Writer, size int) *JSONSnapshotEncoder {
	return &JSONSnapshotEncoder{w: bufio.NewWriterSize(w, max(size, 4096))}
}

// Begin writes the document's head with the feed version; the JSON
// document has no place for the expected count.
func (e *JSONSnapshotEncoder) Begin(version, _ int64) error {
	if e.state != 0 {
		return errors.New("peer snapshot: Begin called twice")
	}
	e.state = 1
	_, err := fmt.Fprintf(e.w, `{"version":%d,"full":true,"peers":[`, version)
	return err
}

// Peer writes one element of the peers array.
func (e *JSONSnapshotEncoder) Peer(r PeerRecord) error {
	if e.state != 1 {
		return errors.New("peer snapshot: Peer outside Begin and End")
	}
	b, err := json.Marshal(r.Peer())
	if err != nil {
		return err
	}
	if e.count > 0 {
		if err := e.w.WriteByte(','); err != nil {
			return err
		}
	}
	e.count++
	_, err = e.w.Write(b)
	return err
}

// End closes the document and flushes the buffer.
func (e *JSONSnapshotEncoder) End(count int64) error {
	if e.state != 1 {
		return errors.New("peer snapshot: End outside Begin")
	}
	if count != e.count {
		return fmt.Errorf("peer snapshot: End(%d) after %d peers", count, e.count)
	}
	e.state = 2
	if _, err := e.w.WriteString("]}\n"); err != nil {
		return err
	}
	return e.w.Flush()
}
