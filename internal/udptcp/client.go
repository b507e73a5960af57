package udptcp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// DialFunc opens a stream connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// ClientConfig configures a ClientBind.
type ClientConfig struct {
	// Dial opens the TCP connection to a gateway; nil means a net.Dialer
	// that applies the mark set with SetMark (SO_MARK, on Linux), so that
	// the connection to the gateway bypasses the tunnel as WireGuard's UDP
	// does.
	Dial DialFunc
	// DialTimeout bounds one dial; 0 means 10 s.
	DialTimeout time.Duration
}

// ClientBind is a client's conn.Bind that sends every datagram over TCP,
// as frames, to the endpoint's TCP port (a gateway's ServerBind). It dials
// an endpoint when it first sends to it and again after the connection
// fails or the gateway closes it; a datagram sent while the dial fails is
// lost, as a UDP datagram may be, and WireGuard's retransmissions carry
// on. It listens on no port: Open returns the port it is given.
//
// A ClientBind is safe for concurrent use.
type ClientBind struct {
	cfg  ClientConfig
	mark atomic.Uint32

	dialMu sync.Mutex // one dial at a time, outside mu

	mu     sync.Mutex
	q      *queue // nil while closed
	ctx    context.Context
	cancel context.CancelFunc // aborts dials in progress at Close
	wg     sync.WaitGroup
	conns  map[netip.AddrPort]*stream
}

// NewClientBind returns a ClientBind for cfg.
func NewClientBind(cfg ClientConfig) *ClientBind {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	b := &ClientBind{cfg: cfg}
	if b.cfg.Dial == nil {
		b.cfg.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
			d := net.Dialer{Control: markControl(b.mark.Load())}
			return d.DialContext(ctx, network, address)
		}
	}
	return b
}

// Open makes the Bind ready and returns its one receive function.
func (b *ClientBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.q != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	b.q = newQueue(128, MaxPayload)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.conns = map[netip.AddrPort]*stream{}
	return []conn.ReceiveFunc{b.q.receive}, port, nil
}

// Close closes every connection and waits for their readers.
func (b *ClientBind) Close() error {
	b.mu.Lock()
	q := b.q
	b.q = nil
	if q != nil {
		close(q.done)
		b.cancel()
		for _, s := range b.conns {
			s.close()
		}
		b.conns = nil
	}
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

// SetMark sets the SO_MARK of connections dialled from now on (Linux; a
// no-op elsewhere). It has no effect with ClientConfig.Dial.
func (b *ClientBind) SetMark(mark uint32) error {
	b.mark.Store(mark)
	return nil
}

// ParseEndpoint parses an IP:port endpoint.
func (b *ClientBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, fmt.Errorf("udptcp: endpoint: %w", err)
	}
	return &Endpoint{addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// BatchSize returns conn.IdealBatchSize.
func (b *ClientBind) BatchSize() int { return conn.IdealBatchSize }

// Send sends bufs to ep over its connection, dialling it first if there
// is none.
func (b *ClientBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(*Endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	s, err := b.stream(e)
	if err != nil {
		return err
	}
	return s.send(bufs)
}

// stream returns the open connection to e, dialling it if needed. Dials
// happen one at a time and outside b.mu, so Close aborts one in progress
// instead of waiting for it.
func (b *ClientBind) stream(e *Endpoint) (*stream, error) {
	s, ctx, err := b.open(e)
	if s != nil || err != nil {
		return s, err
	}
	b.dialMu.Lock()
	defer b.dialMu.Unlock()
	// Another send may have dialled while this one waited.
	if s, _, err := b.open(e); s != nil || err != nil {
		return s, err
	}
	dctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()
	c, err := b.cfg.Dial(dctx, "tcp", e.addr.String())
	if err != nil {
		return nil, fmt.Errorf("udptcp: dial gateway: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.q == nil || b.ctx != ctx { // closed (and perhaps reopened) meanwhile
		c.Close()
		return nil, net.ErrClosed
	}
	s = &stream{c: c, ep: &Endpoint{addr: e.addr}}
	b.conns[e.addr] = s
	q := b.q
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		q.serve(s, MaxPayload, -1)
		b.mu.Lock()
		if b.conns[e.addr] == s {
			delete(b.conns, e.addr)
		}
		b.mu.Unlock()
	}()
	return s, nil
}

// open returns the open connection to e if there is one, and otherwise
// the context of the current Open; net.ErrClosed if the Bind is closed.
func (b *ClientBind) open(e *Endpoint) (*stream, context.Context, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.q == nil {
		return nil, nil, net.ErrClosed
	}
	if s := b.conns[e.addr]; s != nil && !s.closed.Load() {
		return s, nil, nil
	}
	return nil, b.ctx, nil
}

var _ conn.Bind = (*ClientBind)(nil)
