package udptcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// Defaults for ServerConfig.
const (
	// DefaultMaxConns is the default bound on open TCP connections.
	DefaultMaxConns = 4096
	// DefaultIdleTimeout closes a connection that has sent nothing for
	// WireGuard's RejectAfterTime (180 s), after which no session it
	// carried is usable anyway; the client dials again when it next sends.
	DefaultIdleTimeout = 180 * time.Second
	// DefaultMaxDatagram is the default largest datagram a gateway accepts
	// in a frame: a WireGuard message for a tunnel MTU of up to 4,000 or
	// so. A larger frame closes the connection.
	DefaultMaxDatagram = 4096
)

// ListenError is Open's error when the TCP port cannot be bound.
type ListenError struct {
	Port int
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("udptcp: listen on TCP port %d: %v", e.Port, e.Err)
}

// Unwrap returns the listener's error.
func (e *ListenError) Unwrap() error { return e.Err }

// ServerConfig configures a ServerBind.
type ServerConfig struct {
	// Inner is the gateway's UDP transport, which keeps working beside the
	// TCP port. Required.
	Inner conn.Bind
	// Port is the TCP port to listen on, on every address; 0 picks a free
	// port at the first Open and keeps it for later ones.
	Port int
	// Listen opens the TCP listener; nil means net.Listen("tcp", address).
	Listen func(network, address string) (net.Listener, error)
	// Admit, if set, is asked about each accepted connection's source
	// address; a connection it refuses is closed at once. It must record
	// nothing.
	Admit func(netip.Addr) bool
	// MaxConns bounds the open connections; one accepted beyond it is
	// closed at once. 0 means DefaultMaxConns.
	MaxConns int
	// IdleTimeout closes a connection that sends nothing for this long; 0
	// means DefaultIdleTimeout, negative means never.
	IdleTimeout time.Duration
	// MaxDatagram is the largest datagram accepted in a frame; 0 means
	// DefaultMaxDatagram. At most MaxPayload.
	MaxDatagram int
}

// ServerBind is a gateway's conn.Bind: its inner UDP Bind, plus a TCP
// listener whose connections carry framed datagrams into the same
// wireguard-go device. A datagram received over TCP comes with an
// *Endpoint naming its connection, so WireGuard answers over that
// connection, and a peer roams between UDP and TCP as it would between
// addresses. Open returns the inner receive functions and one more for
// TCP; Send sends to an *Endpoint over its connection and to any other
// endpoint through the inner Bind.
//
// Nothing is logged or counted per connection or address. A ServerBind is
// safe for concurrent use.
type ServerBind struct {
	conn.Bind
	cfg ServerConfig

	mu   sync.Mutex
	port int // the TCP port, once bound
	run  *serverRun
}

// serverRun is the state of one Open.
type serverRun struct {
	q     *queue
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[*stream]struct{}
}

// NewServerBind returns a ServerBind for cfg, which it checks.
func NewServerBind(cfg ServerConfig) (*ServerBind, error) {
	if cfg.Inner == nil {
		return nil, errors.New("udptcp: ServerConfig.Inner is required")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, errors.New("udptcp: TCP port out of range")
	}
	if cfg.Listen == nil {
		cfg.Listen = net.Listen
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxDatagram == 0 {
		cfg.MaxDatagram = DefaultMaxDatagram
	}
	if cfg.MaxDatagram < 0 || cfg.MaxDatagram > MaxPayload {
		return nil, fmt.Errorf("udptcp: MaxDatagram must be 1 to %d", MaxPayload)
	}
	return &ServerBind{Bind: cfg.Inner, cfg: cfg, port: cfg.Port}, nil
}

// TCPPort returns the TCP port, or 0 before the first successful Open
// when the configured port was 0.
func (b *ServerBind) TCPPort() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.port
}

// Open opens the inner Bind on port and listens on the TCP port. It
// returns the inner receive functions followed by the one for TCP.
func (b *ServerBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	fns, actual, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	ln, err := b.cfg.Listen("tcp", ":"+strconv.Itoa(b.port))
	if err != nil {
		b.Bind.Close()
		return nil, 0, &ListenError{Port: b.port, Err: err}
	}
	if b.port == 0 {
		b.port = int(addrOf(ln.Addr()).Port())
	}
	r := &serverRun{q: newQueue(1024, b.cfg.MaxDatagram), ln: ln, conns: map[*stream]struct{}{}}
	b.run = r
	r.wg.Add(1)
	go b.accept(r)
	return append(fns, r.q.receive), actual, nil
}

// Close stops listening, closes every TCP connection, waits for their
// readers, and closes the inner Bind.
func (b *ServerBind) Close() error {
	b.mu.Lock()
	r := b.run
	b.run = nil
	b.mu.Unlock()
	if r != nil {
		close(r.q.done)
		r.ln.Close()
		r.mu.Lock()
		for s := range r.conns {
			s.close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	}
	return b.Bind.Close()
}

// stopped reports whether Close has begun. Checked under r.mu, it orders
// a new connection before or after Close's sweep of r.conns.
func (r *serverRun) stopped() bool {
	select {
	case <-r.q.done:
		return true
	default:
		return false
	}
}

// accept serves r's listener until it is closed.
func (b *ServerBind) accept(r *serverRun) {
	defer r.wg.Done()
	var delay time.Duration
	for {
		c, err := r.ln.Accept()
		if err != nil {
			select {
			case <-r.q.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// As net/http: back off on errors such as EMFILE.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		addr := addrOf(c.RemoteAddr())
		if b.cfg.Admit != nil && !b.cfg.Admit(addr.Addr()) {
			c.Close()
			continue
		}
		s := &stream{c: c}
		s.ep = &Endpoint{addr: addr, c: s}
		r.mu.Lock()
		stopped, full := r.stopped(), len(r.conns) >= b.cfg.MaxConns
		if !stopped && !full {
			r.conns[s] = struct{}{}
		}
		r.mu.Unlock()
		if stopped {
			c.Close()
			return
		}
		if full {
			c.Close()
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.q.serve(s, b.cfg.MaxDatagram, b.cfg.IdleTimeout)
			r.mu.Lock()
			delete(r.conns, s)
			r.mu.Unlock()
		}()
	}
}

// Send sends bufs over ep's TCP connection if ep is an *Endpoint, and
// through the inner Bind otherwise. A connection that has closed is an
// error until the peer connects again.
func (b *ServerBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(*Endpoint)
	if !ok {
		return b.Bind.Send(bufs, ep)
	}
	if e.c == nil {
		return conn.ErrWrongEndpointType
	}
	if e.c.closed.Load() {
		return net.ErrClosed
	}
	return e.c.send(bufs)
}

var _ conn.Bind = (*ServerBind)(nil)
