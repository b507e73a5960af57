// Package ephemeral is the ephemeral-peer protocol of quantum-resistant
// tunnels: over a classical WireGuard tunnel that is already up, a client
// asks its gateway for an ephemeral peer, and both derive a WireGuard
// pre-shared key from an ML-KEM-1024 key exchange.
//
// The exchange runs over TCP to the gateway's own tunnel address, port
// Port (1337): the address the client uses as its DNS server. The client
// sends a fresh WireGuard public key and an ML-KEM-1024 encapsulation key;
// the gateway encapsulates a shared secret to it and answers with the
// ciphertext. Both sides derive the pre-shared key with DerivePSK from the
// shared secret and the transcript. The gateway installs the ephemeral key
// as an alias of the device whose tunnel the connection came from (it
// knows the device by the connection's tunnel source address, which
// WireGuard authenticates), with that pre-shared key; the client then
// switches its tunnel to the ephemeral key and the pre-shared key. A
// quantum computer that later breaks the X25519 of the recorded handshakes
// still lacks the pre-shared key, which rests on ML-KEM.
//
// The wire format is documented byte by byte in docs/gateway-protocol.md
// ("Ephemeral peers"). Every message is one frame:
//
//	magic "NNEP" (4 bytes) | version (1) | type (1) | body length (2, big endian) | body
//
// Nothing in this package logs; the server keeps only global counts.
package ephemeral

import (
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// Port is the TCP port of the ephemeral-peer service on a gateway's tunnel
// addresses.
const Port = 1337

// Version is the protocol version this package speaks.
const Version = 1

// Magic opens every frame.
const Magic = "NNEP"

// Sizes of the frame and its bodies.
const (
	HeaderSize = 8
	// MaxBody is the largest body a frame may carry.
	MaxBody = 4096
	// RequestSize is the body of a request: a WireGuard public key and an
	// ML-KEM-1024 encapsulation key.
	RequestSize = wgkey.Len + mlkem.EncapsulationKeySize1024
	// ResponseSize is the body of a response: an ML-KEM-1024 ciphertext.
	ResponseSize = mlkem.CiphertextSize1024
	// MaxMessage bounds the message text of an error frame, in bytes.
	MaxMessage = 200
)

// Type is a frame's message type.
type Type uint8

// Message types.
const (
	// TypeRequest, client to gateway: ephemeral public key (32 bytes) then
	// the ML-KEM-1024 encapsulation key (1568 bytes).
	TypeRequest Type = 1
	// TypeResponse, gateway to client: the ML-KEM-1024 ciphertext (1568
	// bytes). The ephemeral peer is installed when it is sent.
	TypeResponse Type = 2
	// TypeError, gateway to client: a Code (1 byte) and a UTF-8 message.
	TypeError Type = 3
)

// Code says why a gateway refused a request.
type Code uint8

// Error codes.
const (
	// CodeVersion: the gateway does not speak the frame's version; the
	// error frame carries the version it speaks.
	CodeVersion Code = 1
	// CodeMalformed: the frame or its body is not a valid request.
	CodeMalformed Code = 2
	// CodeNotDevice: the connection did not come from the tunnel of an
	// admitted device.
	CodeNotDevice Code = 3
	// CodeRefused: the ephemeral key cannot be installed (already in use,
	// or the gateway holds as many ephemeral peers as it may).
	CodeRefused Code = 4
	// CodeInternal: the gateway failed.
	CodeInternal Code = 5
)

func (c Code) String() string {
	switch c {
	case CodeVersion:
		return "unsupported version"
	case CodeMalformed:
		return "malformed request"
	case CodeNotDevice:
		return "not from a device's tunnel"
	case CodeRefused:
		return "refused"
	case CodeInternal:
		return "gateway error"
	}
	return fmt.Sprintf("code %d", uint8(c))
}

// Frame is one decoded frame.
type Frame struct {
	Version uint8
	Type    Type
	Body    []byte
}

// ErrFrame is wrapped by ReadFrame's errors for input that is not a frame
// of this protocol.
var ErrFrame = errors.New("ephemeral: not a protocol frame")

// AppendFrame appends a frame of type t carrying body, at Version, to b.
// It panics if body is longer than MaxBody.
func AppendFrame(b []byte, t Type, body []byte) []byte {
	return appendFrame(b, Version, t, body)
}

func appendFrame(b []byte, version uint8, t Type, body []byte) []byte {
	if len(body) > MaxBody {
		panic("ephemeral: frame body too long")
	}
	b = append(b, Magic...)
	b = append(b, version, byte(t))
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// ReadFrame reads one frame from r. A frame with the wrong magic, or a
// length above MaxBody, is ErrFrame; a stream that ends inside a frame is
// io.ErrUnexpectedEOF, and one that ends before it io.EOF. Any version is
// returned as read: the caller decides what it speaks.
func ReadFrame(r io.Reader) (Frame, error) {
	var h [HeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	return readBody(r, h)
}

func readBody(r io.Reader, h [HeaderSize]byte) (Frame, error) {
	if string(h[:4]) != Magic {
		return Frame{}, fmt.Errorf("%w: bad magic", ErrFrame)
	}
	n := int(binary.BigEndian.Uint16(h[6:8]))
	if n > MaxBody {
		return Frame{}, fmt.Errorf("%w: body of %d bytes", ErrFrame, n)
	}
	f := Frame{Version: h[4], Type: Type(h[5]), Body: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return f, nil
}

// Request is what a client asks for.
type Request struct {
	// Ephemeral is the public key the client will switch its tunnel to.
	Ephemeral wgkey.PublicKey
	// EncapsulationKey is an ML-KEM-1024 encapsulation key, 1568 bytes.
	EncapsulationKey []byte
}

// Marshal returns r's body.
func (r Request) Marshal() []byte {
	b := make([]byte, 0, RequestSize)
	b = append(b, r.Ephemeral[:]...)
	return append(b, r.EncapsulationKey...)
}

// ParseRequest parses a request body. It checks the sizes and that the
// ephemeral key is not zero; the encapsulation key itself is checked when
// it is used (mlkem.NewEncapsulationKey1024).
func ParseRequest(body []byte) (Request, error) {
	if len(body) != RequestSize {
		return Request{}, fmt.Errorf("ephemeral: request body of %d bytes, want %d", len(body), RequestSize)
	}
	var r Request
	copy(r.Ephemeral[:], body[:wgkey.Len])
	if r.Ephemeral.IsZero() {
		return Request{}, errors.New("ephemeral: zero ephemeral key")
	}
	r.EncapsulationKey = append([]byte(nil), body[wgkey.Len:]...)
	return r, nil
}

// ErrorBody returns the body of an error frame with code c and message msg,
// which is cut to MaxMessage bytes at a rune boundary.
func ErrorBody(c Code, msg string) []byte {
	for len(msg) > MaxMessage {
		_, size := utf8.DecodeLastRuneInString(msg)
		msg = msg[:len(msg)-size]
	}
	return append([]byte{byte(c)}, msg...)
}

// ParseError parses an error body: its code and message. Invalid UTF-8 in
// the message is replaced.
func ParseError(body []byte) (Code, string, error) {
	if len(body) == 0 || len(body) > 1+MaxMessage {
		return 0, "", errors.New("ephemeral: malformed error frame")
	}
	return Code(body[0]), string([]rune(string(body[1:]))), nil
}

// Label is the protocol label mixed into the transcript.
const Label = "nitronet ephemeral peer v1"

// pskInfo is the HKDF info of the pre-shared key.
const pskInfo = "nitronet wireguard psk v1"

// Transcript holds everything both sides bind the pre-shared key to.
type Transcript struct {
	// Device is the device's long-term WireGuard public key: the key of
	// the tunnel the exchange ran through.
	Device wgkey.PublicKey
	// Gateway is the gateway's WireGuard public key.
	Gateway wgkey.PublicKey
	// Ephemeral is the client's new WireGuard public key.
	Ephemeral wgkey.PublicKey
	// EncapsulationKey and Ciphertext are the ML-KEM-1024 values sent.
	EncapsulationKey, Ciphertext []byte
}

// Hash returns SHA-256(Label || 0x00 || Device || Gateway || Ephemeral ||
// EncapsulationKey || Ciphertext). Every part has a fixed length, so the
// concatenation is unambiguous.
func (t Transcript) Hash() [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(Label))
	h.Write([]byte{0})
	h.Write(t.Device[:])
	h.Write(t.Gateway[:])
	h.Write(t.Ephemeral[:])
	h.Write(t.EncapsulationKey)
	h.Write(t.Ciphertext)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// PSK is a WireGuard pre-shared key.
type PSK [32]byte

// Hex returns the key in hex, as wireguard-go's UAPI takes it. Never log
// it.
func (k PSK) Hex() string {
	const digits = "0123456789abcdef"
	b := make([]byte, 64)
	for i, c := range k {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(b)
}

// String hides the key.
func (k PSK) String() string { return "ephemeral.PSK(REDACTED)" }

// DerivePSK returns HKDF-SHA256 with the ML-KEM shared secret as input key
// material, t.Hash() as salt and the info "nitronet wireguard psk v1":
// 32 bytes, the WireGuard pre-shared key.
func DerivePSK(sharedSecret []byte, t Transcript) (PSK, error) {
	salt := t.Hash()
	k, err := hkdf.Key(sha256.New, sharedSecret, salt[:], pskInfo, 32)
	if err != nil {
		return PSK{}, fmt.Errorf("ephemeral: derive: %w", err)
	}
	return PSK(k), nil
}
