package udptcp

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// Endpoint is a WireGuard endpoint reached over TCP: the peer's address,
// and on a gateway the connection it came in on.
type Endpoint struct {
	addr netip.AddrPort
	c    *stream // the gateway's accepted connection; nil on a client
}

// ClearSrc does nothing: a TCP connection keeps its own source.
func (*Endpoint) ClearSrc() {}

// SrcToString returns "".
func (*Endpoint) SrcToString() string { return "" }

// DstToString returns the peer's address as IP:port.
func (e *Endpoint) DstToString() string { return e.addr.String() }

// DstToBytes returns the peer's address and port, which WireGuard's
// cookies are bound to.
func (e *Endpoint) DstToBytes() []byte {
	b, _ := e.addr.MarshalBinary()
	return b
}

// DstIP returns the peer's IP address: the one the admission policy
// judges.
func (e *Endpoint) DstIP() netip.Addr { return e.addr.Addr() }

// SrcIP returns the zero Addr.
func (*Endpoint) SrcIP() netip.Addr { return netip.Addr{} }

var _ conn.Endpoint = (*Endpoint)(nil)

// stream is one TCP connection carrying frames. Writes are serialised;
// reads belong to the one goroutine that serves it.
type stream struct {
	c      net.Conn
	ep     *Endpoint
	wmu    sync.Mutex
	wbuf   []byte
	closed atomic.Bool
}

// writeTimeout bounds one write of frames, so that a peer that stops
// reading cannot hold WireGuard's send path: the stream is closed instead.
const writeTimeout = 5 * time.Second

// maxKeptWriteBuffer is the largest write buffer a stream keeps between
// writes.
const maxKeptWriteBuffer = 256 << 10

// send writes the datagrams in bufs as frames, in one write.
func (s *stream) send(bufs [][]byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b := s.wbuf[:0]
	for _, p := range bufs {
		var err error
		if b, err = AppendFrame(b, p); err != nil {
			return err
		}
	}
	if cap(b) <= maxKeptWriteBuffer {
		s.wbuf = b
	}
	if err := s.c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if _, err := s.c.Write(b); err != nil {
		s.close()
		return err
	}
	return nil
}

func (s *stream) close() {
	if s.closed.CompareAndSwap(false, true) {
		s.c.Close()
	}
}

// packet is one received datagram on its way to wireguard-go.
type packet struct {
	buf []byte
	n   int
	ep  *Endpoint
}

// queue hands received datagrams to a receive function. Its zero value is
// not usable; see newQueue.
type queue struct {
	ch   chan *packet
	done chan struct{}
	pool sync.Pool
}

func newQueue(size, bufSize int) *queue {
	q := &queue{ch: make(chan *packet, size), done: make(chan struct{})}
	q.pool.New = func() any { return &packet{buf: make([]byte, bufSize)} }
	return q
}

func (q *queue) get() *packet { return q.pool.Get().(*packet) }

func (q *queue) put(p *packet) {
	p.ep = nil
	q.pool.Put(p)
}

// push hands p on, or drops it and reports false once q is closed.
func (q *queue) push(p *packet) bool {
	select {
	case q.ch <- p:
		return true
	case <-q.done:
		q.put(p)
		return false
	}
}

// receive is the queue's conn.ReceiveFunc: it waits for one datagram and
// takes whatever else is already queued, up to len(bufs).
func (q *queue) receive(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	var p *packet
	select {
	case p = <-q.ch:
	case <-q.done:
		return 0, net.ErrClosed
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n], p.buf[:p.n])
		eps[n] = p.ep
		q.put(p)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case p = <-q.ch:
		default:
			return n, nil
		}
	}
}

// serve reads frames from s into q until s fails or q closes, then closes
// s. idle, if positive, closes a stream that sends nothing for that long.
func (q *queue) serve(s *stream, bufSize int, idle time.Duration) {
	defer s.close()
	r := NewReader(s.c, 4*bufSize)
	for {
		if idle > 0 {
			if err := s.c.SetReadDeadline(time.Now().Add(idle)); err != nil {
				return
			}
		}
		p := q.get()
		n, err := r.ReadFrame(p.buf)
		if err != nil {
			q.put(p)
			return
		}
		p.n, p.ep = n, s.ep
		if !q.push(p) {
			return
		}
	}
}

// addrOf returns the address of a TCP net.Addr, unmapped.
func addrOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
