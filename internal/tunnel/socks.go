package tunnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SOCKS5 constants from RFC 1928.
const (
	socksVersion = 5

	socksMethodNoAuth       = 0x00
	socksMethodNoAcceptable = 0xff

	socksCmdConnect = 0x01

	socksAtypIPv4   = 0x01
	socksAtypDomain = 0x03
	socksAtypIPv6   = 0x04

	socksRepSuccess             = 0x00
	socksRepGeneralFailure      = 0x01
	socksRepNetworkUnreachable  = 0x03
	socksRepHostUnreachable     = 0x04
	socksRepConnectionRefused   = 0x05
	socksRepTTLExpired          = 0x06
	socksRepCommandNotSupported = 0x07
	socksRepAddrNotSupported    = 0x08
)

// socksRequest is a parsed SOCKS5 request.
type socksRequest struct {
	Cmd  byte
	Atyp byte
	Host string // IP literal or domain name
	Port uint16
}

// Addr returns the request's destination as "host:port".
func (r socksRequest) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port))) }

// socksError is a parse failure with the reply code to send, if any.
type socksError struct {
	Rep byte // reply code to send; 0 means close without a reply
	Msg string
}

func (e *socksError) Error() string { return "socks: " + e.Msg }

// readSOCKSGreeting reads the client's method selection message and reports
// whether it offers "no authentication".
func readSOCKSGreeting(r io.Reader) (noAuth bool, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return false, err
	}
	if hdr[0] != socksVersion {
		return false, &socksError{Msg: "unsupported version"}
	}
	if hdr[1] == 0 {
		return false, &socksError{Msg: "no methods offered"}
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return false, err
	}
	for _, m := range methods {
		if m == socksMethodNoAuth {
			return true, nil
		}
	}
	return false, nil
}

// readSOCKSRequest reads a SOCKS5 request (after the method negotiation). It
// reads exactly the request's bytes, so data the client pipelines behind it
// stays in r. A *socksError tells which reply code to send.
func readSOCKSRequest(r io.Reader) (socksRequest, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return socksRequest{}, err
	}
	if hdr[0] != socksVersion {
		return socksRequest{}, &socksError{Msg: "unsupported version in request"}
	}
	if hdr[2] != 0 {
		return socksRequest{}, &socksError{Rep: socksRepGeneralFailure, Msg: "reserved byte is not zero"}
	}
	req := socksRequest{Cmd: hdr[1], Atyp: hdr[3]}
	switch req.Atyp {
	case socksAtypIPv4:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return socksRequest{}, err
		}
		req.Host = netip.AddrFrom4(b).String()
	case socksAtypIPv6:
		var b [16]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return socksRequest{}, err
		}
		req.Host = netip.AddrFrom16(b).String()
	case socksAtypDomain:
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return socksRequest{}, err
		}
		if n[0] == 0 {
			return socksRequest{}, &socksError{Rep: socksRepHostUnreachable, Msg: "empty domain name"}
		}
		b := make([]byte, n[0])
		if _, err := io.ReadFull(r, b); err != nil {
			return socksRequest{}, err
		}
		if strings.IndexFunc(string(b), func(c rune) bool { return c <= ' ' || c >= 0x7f }) >= 0 {
			return socksRequest{}, &socksError{Rep: socksRepHostUnreachable, Msg: "invalid domain name"}
		}
		req.Host = string(b)
	default:
		return socksRequest{}, &socksError{Rep: socksRepAddrNotSupported, Msg: "unsupported address type"}
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return socksRequest{}, err
	}
	req.Port = binary.BigEndian.Uint16(p[:])
	if req.Cmd != socksCmdConnect {
		return socksRequest{}, &socksError{Rep: socksRepCommandNotSupported, Msg: "only CONNECT is supported"}
	}
	return req, nil
}

// marshal encodes r in the wire format read by readSOCKSRequest.
func (r socksRequest) marshal() []byte {
	b := []byte{socksVersion, r.Cmd, 0, r.Atyp}
	switch r.Atyp {
	case socksAtypIPv4, socksAtypIPv6:
		a := netip.MustParseAddr(r.Host)
		b = append(b, a.AsSlice()...)
	default:
		b = append(b, byte(len(r.Host)))
		b = append(b, r.Host...)
	}
	return binary.BigEndian.AppendUint16(b, r.Port)
}

// socksReply encodes a reply with the bound address bound (zero if invalid).
func socksReply(rep byte, bound netip.AddrPort) []byte {
	a := bound.Addr().Unmap()
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	atyp := byte(socksAtypIPv4)
	if a.Is6() {
		atyp = socksAtypIPv6
	}
	b := append([]byte{socksVersion, rep, 0, atyp}, a.AsSlice()...)
	return binary.BigEndian.AppendUint16(b, bound.Port())
}

// dialFunc dials through the tunnel; names are resolved through it too.
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// socksServer is a SOCKS5 server (RFC 1928: CONNECT, no authentication)
// whose outgoing connections go through dial.
type socksServer struct {
	ctx     context.Context // canceled when the tunnel closes
	dial    dialFunc
	log     *slog.Logger
	conns   *connSet
	timeout time.Duration // handshake and connect deadline
}

// serve accepts connections on ln until it is closed.
func (s *socksServer) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !s.conns.add(c) {
			c.Close()
			return
		}
		go func() {
			defer s.conns.remove(c)
			s.handle(c)
		}()
	}
}

func (s *socksServer) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(s.timeout))
	noAuth, err := readSOCKSGreeting(c)
	if err != nil {
		s.log.Debug("socks: bad greeting")
		return
	}
	if !noAuth {
		_, _ = c.Write([]byte{socksVersion, socksMethodNoAcceptable})
		return
	}
	if _, err := c.Write([]byte{socksVersion, socksMethodNoAuth}); err != nil {
		return
	}
	req, err := readSOCKSRequest(c)
	if err != nil {
		var se *socksError
		if errors.As(err, &se) && se.Rep != 0 {
			_, _ = c.Write(socksReply(se.Rep, netip.AddrPort{}))
		}
		s.log.Debug("socks: bad request")
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	up, err := s.dial(ctx, "tcp", req.Addr())
	cancel()
	if err != nil {
		// The error text names the destination: do not log it.
		_, _ = c.Write(socksReply(dialErrorReply(err), netip.AddrPort{}))
		s.log.Debug("socks: connect through tunnel failed")
		return
	}
	if !s.conns.add(up) {
		up.Close()
		return
	}
	defer s.conns.remove(up)
	bound, _ := netip.ParseAddrPort(up.LocalAddr().String())
	if _, err := c.Write(socksReply(socksRepSuccess, bound)); err != nil {
		up.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	splice(c, up)
}

// dialErrorReply maps a dial error to a SOCKS5 reply code.
func dialErrorReply(err error) byte {
	var dnsErr *net.DNSError
	msg := err.Error()
	switch {
	case errors.As(err, &dnsErr), strings.Contains(msg, "no such host"), strings.Contains(msg, "host unreachable"):
		return socksRepHostUnreachable
	case strings.Contains(msg, "refused"):
		return socksRepConnectionRefused
	case strings.Contains(msg, "network is unreachable"), strings.Contains(msg, "no route"):
		return socksRepNetworkUnreachable
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(msg, "timed out"), strings.Contains(msg, "timeout"):
		return socksRepTTLExpired
	}
	return socksRepGeneralFailure
}

// splice copies between a and b in both directions, passing half-closes on,
// until both directions are done, then closes both.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// connSet tracks open connections so that shutting down closes them all.
type connSet struct {
	mu     sync.Mutex
	closed bool
	m      map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newConnSet() *connSet { return &connSet{m: map[net.Conn]struct{}{}} }

// add tracks c; it returns false if the set is already closed.
func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.m[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[c]; ok {
		delete(s.m, c)
		s.wg.Done()
	}
}

// close closes every tracked connection, refuses new ones and waits for
// their handlers to finish.
func (s *connSet) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.m {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// listenLoopback listens on addr, which must be a loopback IP and a port.
func listenLoopback(addr string) (net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("proxy listen address must be a loopback IP and port")
	}
	return net.Listen("tcp", ap.String())
}
