// Package dnsfwd is the gateway's DNS service: a forwarder that relays each
// client query, unchanged, to upstream resolvers and relays the answer back.
//
// It serves DNS over UDP (ServeUDP, on any net.PacketConn) and over TCP
// (ServeTCP, on any net.Listener, with the two-byte length framing of RFC
// 1035 section 4.2.2), so the same code runs on gVisor endpoints in
// userspace mode and on kernel sockets in kernel mode.
//
// # Privacy
//
// The forwarder keeps nothing about the traffic it relays. It reads only
// the header bits it needs and, to build a SERVFAIL, the length of the
// question. Only a forwarder with a Blocker (see WithBlocker) decodes the
// question's name, into a buffer on the stack, to ask the Blocker about
// it. It does not log, and holds a query, its client address and its
// answer only while the exchange is in flight. Its only state that
// outlives a query is one unlabelled counter, Failures. It takes no logger
// because it has nothing it may log.
//
// # Blocking
//
// A forwarder made by WithBlocker answers a query whose name its Blocker
// blocks itself, with NXDOMAIN (the query's header and question, RCODE 3,
// no records), and never forwards it. It answers a query that has not
// exactly one well-formed question with FORMERR (the query's header, no
// question, RCODE 1), since it cannot tell what such a query asks.
//
// # Upstream exchange
//
// Every query, whichever transport it came in on, goes to the upstreams in
// order over UDP from a fresh socket (a random source port), each attempt
// bounded by Config.Timeout. The first reply with the query's ID and the
// response bit set is the answer. For a TCP client, a truncated answer (TC
// bit) is retried over TCP with the same upstream, and the truncated answer
// is relayed if that fails. A UDP client gets a truncated answer as is and
// retries over TCP itself, as RFC 1035 intends.
//
// # Failures
//
// When no upstream answers, a query with exactly one well-formed question
// gets a SERVFAIL response (its header and question, RCODE 2, no other
// records), so the client fails fast instead of waiting for a timeout; any
// other query is dropped (UDP) or its connection closed (TCP). UDP queries
// beyond Config.MaxInFlight and TCP connections beyond Config.MaxConns are
// dropped without an answer. Each of these adds one to Failures. Datagrams
// shorter than a DNS header or with the response bit set are ignored, and
// a TCP connection that sends one, or a length prefix below a header, is
// closed; these are not counted.
package dnsfwd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultIdleTimeout = 10 * time.Second
	DefaultMaxInFlight = 256
	DefaultMaxConns    = 64
)

const (
	headerLen = 12
	// maxMsg is the largest DNS message: the two-byte TCP length limits it,
	// and a UDP datagram cannot be larger.
	maxMsg = 65535
)

// DialFunc opens a connection to an upstream resolver. network is "udp" or
// "tcp"; address is host:port.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Config configures a Forwarder.
type Config struct {
	// Upstreams are the resolvers, tried in order: "host" (port 53) or
	// "host:port"; an IPv6 host may be bracketed. At least one is required.
	Upstreams []string
	// Dial opens upstream connections; nil means a net.Dialer.
	Dial DialFunc
	// Timeout bounds one attempt with one upstream (dial, send and
	// receive); 0 means DefaultTimeout.
	Timeout time.Duration
	// IdleTimeout closes a client TCP connection that sends no complete
	// query for this long; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxInFlight bounds the UDP queries being forwarded at once, across all
	// ServeUDP calls; 0 means DefaultMaxInFlight.
	MaxInFlight int
	// MaxConns bounds the client TCP connections open at once, across all
	// ServeTCP calls; 0 means DefaultMaxConns. Each connection handles its
	// queries one at a time.
	MaxConns int
}

// Forwarder relays DNS queries to upstream resolvers. Create it with New. Its
// methods are safe for concurrent use, and one Forwarder may serve any
// number of sockets at once.
type Forwarder struct {
	upstreams []string
	dial      DialFunc
	timeout   time.Duration
	idle      time.Duration
	inflight  chan struct{} // semaphore for UDP queries
	conns     chan struct{} // semaphore for TCP connections
	failures  *atomic.Uint64
	bufs      *sync.Pool // *[]byte of maxMsg bytes
	block     Blocker    // nil: forward everything
}

// Blocker decides which names a forwarder answers itself with NXDOMAIN.
type Blocker interface {
	// Blocked reports whether name is blocked. name is the question's
	// name in lower case, labels joined by '.', without the final dot (the
	// root is empty); a '.' inside a label is passed as a zero byte, so it
	// never reads as a label boundary. Blocked must be safe for concurrent
	// use and must not keep name.
	Blocked(name []byte) bool
}

// Resolver is a further address of a DNS service and the Blocker that
// applies to the queries it receives there (the resolver of one set of
// blocking categories).
type Resolver struct {
	Addr    netip.Addr
	Blocker Blocker
}

// WithBlocker returns a Forwarder that answers like f, except that it
// answers the queries whose name b blocks with NXDOMAIN itself (see the
// package comment). It shares f's upstreams, limits, buffers and Failures
// counter, so one Forwarder and its blocking variants serve any number of
// sockets within one set of limits.
func (f *Forwarder) WithBlocker(b Blocker) *Forwarder {
	g := *f
	g.block = b
	return &g
}

// New validates cfg and returns a Forwarder. It does no I/O.
func New(cfg Config) (*Forwarder, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("dnsfwd: no upstream resolvers")
	}
	ups := make([]string, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		a, err := normalizeUpstream(u)
		if err != nil {
			return nil, err
		}
		ups = append(ups, a)
	}
	if cfg.Timeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxInFlight < 0 || cfg.MaxConns < 0 {
		return nil, errors.New("dnsfwd: negative limit")
	}
	f := &Forwarder{
		upstreams: ups,
		dial:      cfg.Dial,
		timeout:   orDefault(cfg.Timeout, DefaultTimeout),
		idle:      orDefault(cfg.IdleTimeout, DefaultIdleTimeout),
		inflight:  make(chan struct{}, orDefault(cfg.MaxInFlight, DefaultMaxInFlight)),
		conns:     make(chan struct{}, orDefault(cfg.MaxConns, DefaultMaxConns)),
		failures:  new(atomic.Uint64),
		bufs:      new(sync.Pool),
	}
	if f.dial == nil {
		f.dial = (&net.Dialer{}).DialContext
	}
	f.bufs.New = func() any {
		b := make([]byte, maxMsg)
		return &b
	}
	return f, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// normalizeUpstream returns u as host:port, adding port 53 if u has none.
func normalizeUpstream(u string) (string, error) {
	host, port, err := net.SplitHostPort(u)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(u, "["), "]"), "53"
	}
	if p, err := strconv.Atoi(port); host == "" || err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("dnsfwd: invalid upstream %q", u)
	}
	return net.JoinHostPort(host, port), nil
}

// Failures returns how many queries got no upstream answer (including
// those answered with SERVFAIL) plus how many queries and connections were
// dropped for exceeding a limit. It is a single process-lifetime counter of
// this Forwarder, with no per-client or per-name breakdown.
func (f *Forwarder) Failures() uint64 { return f.failures.Load() }

// ServeUDP answers the DNS queries arriving on pc until ctx is done or
// reading from pc fails. Each query is forwarded on its own goroutine,
// bounded by Config.MaxInFlight. ServeUDP closes pc, and returns only after
// every query it started has finished: nil if ctx ended it, otherwise the
// read error.
func (f *Forwarder) ServeUDP(ctx context.Context, pc net.PacketConn) error {
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	buf := make([]byte, maxMsg)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dnsfwd: udp read: %w", err)
		}
		if !isQuery(buf[:n]) {
			continue
		}
		select {
		case f.inflight <- struct{}{}:
		default:
			f.failures.Add(1) // overloaded: the client retries
			continue
		}
		q := append([]byte(nil), buf[:n]...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-f.inflight }()
			ans, release := f.resolve(ctx, q, false)
			defer release()
			if ans != nil {
				pc.WriteTo(ans, from) // a failed write is the client's loss
			}
		}()
	}
}

// ServeTCP accepts DNS-over-TCP connections on ln until ctx is done or
// accepting fails with a permanent error, and serves each on its own
// goroutine, bounded by Config.MaxConns. A connection carries any number of
// length-prefixed queries, answered in order; it is closed after
// Config.IdleTimeout without a query, on a malformed message, or when ctx
// is done. ServeTCP closes ln, and returns only after every connection it
// accepted is closed: nil if ctx ended it, otherwise the accept error.
func (f *Forwarder) ServeTCP(ctx context.Context, ln net.Listener) error {
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("dnsfwd: tcp accept: %w", err)
			}
			// Probably out of file descriptors: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		delay = 0
		select {
		case f.conns <- struct{}{}:
		default:
			f.failures.Add(1)
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-f.conns }()
			f.serveConn(ctx, c)
		}()
	}
}

// serveConn answers the queries on one client TCP connection, then closes
// it.
func (f *Forwarder) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	bp := f.bufs.Get().(*[]byte)
	defer f.bufs.Put(bp)
	for {
		c.SetReadDeadline(time.Now().Add(f.idle))
		q, err := readMsg(c, *bp)
		if err != nil || !isQuery(q) {
			return
		}
		ans, release := f.resolve(ctx, q, true)
		if ans == nil {
			release()
			return // no answer, not even SERVFAIL: the client retries
		}
		c.SetWriteDeadline(time.Now().Add(f.timeout))
		err = writeMsg(c, ans)
		release()
		if err != nil {
			return
		}
	}
}

// resolve returns the answer to q from the first upstream that gives one,
// a SERVFAIL response if none does, or nil if q cannot have a SERVFAIL
// response or ctx is done. stream says the client came over TCP and can take
// an answer of any size. The caller must call release once it is done with
// the answer.
func (f *Forwarder) resolve(ctx context.Context, q []byte, stream bool) (ans []byte, release func()) {
	bp := f.bufs.Get().(*[]byte)
	release = func() { f.bufs.Put(bp) }
	if f.block != nil {
		if ans := f.blockAnswer(q, *bp); ans != nil {
			return ans, release
		}
	}
	for _, up := range f.upstreams {
		if ctx.Err() != nil {
			return nil, release
		}
		ans, err := f.exchangeUDP(ctx, up, q, *bp)
		if err != nil {
			continue // the error may name the upstream: not kept
		}
		if stream && truncated(ans) {
			bp2 := f.bufs.Get().(*[]byte)
			if full, err := f.exchangeTCP(ctx, up, q, *bp2); err == nil {
				return full, func() { f.bufs.Put(bp); f.bufs.Put(bp2) }
			}
			f.bufs.Put(bp2) // relay the truncated answer instead
		}
		return ans, release
	}
	if ctx.Err() != nil {
		return nil, release
	}
	f.failures.Add(1)
	return servfail(q), release
}

// exchangeUDP sends q to upstream up over UDP and returns the first matching
// reply, read into buf.
func (f *Forwarder) exchangeUDP(ctx context.Context, up string, q, buf []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c, err := f.dial(ctx, "udp", up)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(q); err != nil {
		return nil, err
	}
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if answers(q, buf[:n]) {
			return buf[:n], nil
		}
		// A stray or spoofed datagram: keep waiting for the real answer.
	}
}

// exchangeTCP sends q to upstream up over TCP and returns its answer, read
// into buf, which must hold maxMsg bytes.
func (f *Forwarder) exchangeTCP(ctx context.Context, up string, q, buf []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c, err := f.dial(ctx, "tcp", up)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := writeMsg(c, q); err != nil {
		return nil, err
	}
	ans, err := readMsg(c, buf)
	if err != nil {
		return nil, err
	}
	if !answers(q, ans) {
		return nil, errors.New("dnsfwd: mismatched tcp answer")
	}
	return ans, nil
}

// isQuery reports whether m is long enough to be a DNS message and has the
// response bit clear.
func isQuery(m []byte) bool { return len(m) >= headerLen && m[2]&0x80 == 0 }

// answers reports whether m is a response with q's ID.
func answers(q, m []byte) bool {
	return len(m) >= headerLen && m[2]&0x80 != 0 && m[0] == q[0] && m[1] == q[1]
}

// truncated reports whether the TC bit of response m is set.
func truncated(m []byte) bool { return m[2]&0x02 != 0 }

// errMsgLen is returned by readMsg for a length prefix too short for a DNS
// header or too long for the buffer.
var errMsgLen = errors.New("dnsfwd: bad message length")

// readMsg reads one length-prefixed DNS message from r into buf and returns
// it. It returns an error, and reads no further, if the length is below a
// DNS header or above len(buf); io.EOF if r ends before the prefix; and
// io.ErrUnexpectedEOF if r ends inside the message.
func readMsg(r io.Reader, buf []byte) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n < headerLen || n > len(buf) {
		return nil, errMsgLen
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf[:n], nil
}

// writeMsg writes m to w with its two-byte length prefix, in one Write.
func writeMsg(w io.Writer, m []byte) error {
	if len(m) > maxMsg {
		return errMsgLen
	}
	b := make([]byte, 2+len(m))
	binary.BigEndian.PutUint16(b, uint16(len(m)))
	copy(b[2:], m)
	_, err := w.Write(b)
	return err
}

// DNS response codes the forwarder makes itself.
const (
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
)

// servfail returns a SERVFAIL response to query q: q's header with QR and
// RA set, AA and TC clear, opcode, RD and CD kept, RCODE 2 and counts of
// one question and no records, followed by q's question. It returns nil
// unless q holds exactly one well-formed question (an uncompressed name of
// at most 255 bytes, then type and class).
func servfail(q []byte) []byte { return respond(nil, q, rcodeServFail) }

// respond appends to dst a response to q with rcode, as servfail
// describes, or returns nil.
func respond(dst, q []byte, rcode byte) []byte {
	if !isQuery(q) || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	end, ok := questionEnd(q)
	if !ok {
		return nil
	}
	r := append(dst[:0], q[:end]...)
	r[2] = r[2]&0x79 | 0x80         // QR; keep opcode and RD; clear AA, TC
	r[3] = r[3]&0x10 | 0x80 | rcode // RA; keep CD; clear Z, AD; RCODE
	clear(r[6:headerLen])           // ANCOUNT, NSCOUNT, ARCOUNT
	return r
}

// blockAnswer returns, in buf, the forwarder's own answer to query q: an
// NXDOMAIN response if its Blocker blocks q's name, a FORMERR response (the
// header alone) if q has not exactly one well-formed question, and nil if
// q is to be forwarded.
func (f *Forwarder) blockAnswer(q, buf []byte) []byte {
	var nb [255]byte
	name, ok := questionName(q, &nb)
	if !ok {
		r := append(buf[:0], q[:headerLen]...)
		r[2] = r[2]&0x79 | 0x80
		r[3] = r[3]&0x10 | 0x80 | rcodeFormErr
		clear(r[4:headerLen])
		return r
	}
	if !f.block.Blocked(name) {
		return nil
	}
	return respond(buf, q, rcodeNXDomain)
}

// questionName writes the name of q's only question into nb in the form
// Blocker.Blocked takes and returns it, or false if q has not exactly one
// well-formed question.
func questionName(q []byte, nb *[255]byte) ([]byte, bool) {
	if binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil, false
	}
	end, ok := questionEnd(q)
	if !ok {
		return nil, false
	}
	n := 0
	for i := headerLen; i < end-4; {
		l := int(q[i])
		if l == 0 {
			break
		}
		if n > 0 {
			nb[n] = '.'
			n++
		}
		for _, c := range q[i+1 : i+1+l] {
			switch {
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case c == '.':
				c = 0
			}
			nb[n] = c
			n++
		}
		i += 1 + l
	}
	return nb[:n], true
}

// questionEnd returns the offset just past the first question of message m,
// and false if it is malformed or truncated or its name is compressed.
func questionEnd(m []byte) (int, bool) {
	i := headerLen
	for {
		if i >= len(m) || i-headerLen >= 255 {
			return 0, false
		}
		l := int(m[i])
		if l == 0 {
			i++
			break
		}
		if l > 63 {
			return 0, false // a compression pointer or reserved label type
		}
		i += 1 + l
	}
	if i-headerLen > 255 {
		return 0, false
	}
	i += 4 // type and class
	if i > len(m) {
		return 0, false
	}
	return i, true
}
