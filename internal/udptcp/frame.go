// Package udptcp carries WireGuard datagrams over TCP, for networks that
// block UDP, in the spirit of Mullvad's udp2tcp.
//
// # Framing
//
// A connection is one TCP stream from a client to a gateway's TCP port.
// Each datagram travels in both directions as one frame: a 2-byte
// big-endian length L, then exactly L bytes of datagram. L is 1 to 65535;
// a zero length is a protocol error, and so is a frame longer than the
// receiver's buffer (see Reader). There is no header, no version and no
// handshake of its own: the first frame is the client's WireGuard
// handshake initiation, and WireGuard authenticates everything. Either side
// may close the stream at any time; the client opens a new one when it next
// has something to send. docs/gateway-protocol.md is the reference.
//
// The package holds the framing (Reader, AppendFrame), the gateway's Bind
// that accepts TCP clients beside its UDP socket (ServerBind), and the
// client's Bind that sends over TCP (ClientBind). Nothing here logs or
// counts anything per connection or per address.
package udptcp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of a frame's length prefix.
const HeaderSize = 2

// MaxPayload is the largest datagram a frame can carry.
const MaxPayload = 1<<16 - 1

// Errors of a Reader. Either leaves the stream unusable: the caller must
// close it.
var (
	// ErrEmptyFrame is returned for a frame of length zero.
	ErrEmptyFrame = errors.New("udptcp: empty frame")
	// ErrFrameTooLarge is returned for a frame longer than the buffer it
	// is read into.
	ErrFrameTooLarge = errors.New("udptcp: frame larger than the receive buffer")
)

// AppendFrame appends the frame of datagram p to dst and returns the
// extended slice. It returns an error, and dst unchanged, if p is empty or
// longer than MaxPayload.
func AppendFrame(dst, p []byte) ([]byte, error) {
	if len(p) == 0 {
		return dst, ErrEmptyFrame
	}
	if len(p) > MaxPayload {
		return dst, fmt.Errorf("udptcp: datagram of %d bytes exceeds %d", len(p), MaxPayload)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(p)))
	return append(dst, p...), nil
}

// Reader reads frames from a stream. It is not safe for concurrent use.
type Reader struct {
	r *bufio.Reader
}

// NewReader returns a Reader on r, with a read buffer of size bytes (at
// least 4096).
func NewReader(r io.Reader, size int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, max(size, 4096))}
}

// ReadFrame reads the next frame into buf and returns its length. At a
// clean end of stream, between frames, it returns io.EOF; a stream that
// ends inside a frame is io.ErrUnexpectedEOF. A zero length is
// ErrEmptyFrame, and a frame longer than buf is ErrFrameTooLarge, without
// reading its payload. Any error leaves the stream out of step: close it.
func (r *Reader) ReadFrame(buf []byte) (int, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	switch {
	case n == 0:
		return 0, ErrEmptyFrame
	case n > len(buf):
		return 0, ErrFrameTooLarge
	}
	if _, err := io.ReadFull(r.r, buf[:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return n, nil
}
