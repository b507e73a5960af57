package handshake

import (
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// Config configures a Bind.
type Config struct {
	// Inner is the transport being wrapped. Required.
	Inner conn.Bind
	// PrivateKey is the wireguard-go device's private key: initiations are
	// opened with it, and their mac1 checked against its public key.
	PrivateKey wgkey.PrivateKey
	// Accept is called by a worker with the static key of an initiation,
	// and returns whether the initiation goes on to wireguard-go. It must
	// configure the key on the device before it returns true, and must
	// record nothing for a key it refuses. It is called from several
	// goroutines at once. Required.
	Accept func(wgkey.PublicKey) bool
	// DeviceUnderLoad reports whether wireguard-go applies its own cookie
	// check (device.IsUnderLoad); nil means never. See the package comment.
	DeviceUnderLoad func() bool
	// Workers is how many goroutines open initiations; 0 means half the
	// CPUs, at least one.
	Workers int
	// QueueSize bounds the initiations waiting for a worker; 0 means 1024,
	// wireguard-go's own handshake queue size. An initiation that finds
	// the queue full is dropped.
	QueueSize int
	// Clock returns the current time; nil means time.Now. It drives the
	// load hysteresis and the per-source limit.
	Clock func() time.Time
	// Responded, if set, is called with the static key of an initiation
	// that Accept passed, once wireguard-go sends its handshake response:
	// the handshake completed, so the initiation was fresh and not a
	// replay. It is called from one goroutine of the Bind, in order, never
	// from the send path; if it falls behind by more than 256 calls, later
	// ones are dropped (counted in Stats.RespondedDropped).
	Responded func(wgkey.PublicKey)
}

// Stats are a Bind's counters since it was created. They are global
// counts, never broken down by client.
type Stats struct {
	Initiations uint64 // initiations received
	BadMAC1     uint64 // dropped on an invalid mac1, before any work
	QueueFull   uint64 // dropped because the queue was full
	Cookies     uint64 // answered with a cookie reply under load
	Limited     uint64 // dropped by the per-source limit under load
	Opened      uint64 // static keys decrypted (one X25519 each)
	Refused     uint64 // dropped: undecryptable, or a key not admitted
	Passed      uint64 // handed on to wireguard-go after Accept
	PassedRaw   uint64 // handed on unopened for wireguard-go's cookie
	// RespondedDropped counts completed handshakes not reported to
	// Config.Responded because it fell behind.
	RespondedDropped uint64
}

// Bind wraps a conn.Bind so that wireguard-go sees a handshake initiation
// only once the initiator's key is configured on the device. It diverts
// every initiation from the receive path into a bounded queue; workers
// check it (mac1; under load the cookie, see the package comment), open
// the initiator's static key, ask Accept, and hand accepted initiations,
// unchanged, to wireguard-go through one extra receive function that Open
// returns. Every other packet passes through untouched, on the goroutine
// that received it, so no public-key operation ever runs on the data path.
//
// Sending passes through unchanged. A Bind is safe for concurrent use.
type Bind struct {
	conn.Bind
	cfg     Config
	resp    *Responder
	cookies device.CookieChecker
	limiter *sourceLimiter
	load    loadMeter
	pool    sync.Pool

	mu  sync.Mutex
	run *running // the current Open, or nil

	initiations, badMAC1, queueFull, cookiesSent, limited atomic.Uint64
	opened, refused, passed, passedRaw                    atomic.Uint64

	// Completed handshakes, for Config.Responded (see responded.go).
	awaiting  awaiting
	responses chan wgkey.PublicKey
	respDrop  atomic.Uint64
}

// running is the state of one Open: its queues and its workers.
type running struct {
	queue    chan *packet // received initiations for the workers
	released chan *packet // initiations for wireguard-go
	done     chan struct{}
}

// packet is a copy of one initiation and the endpoint it came from.
type packet struct {
	buf [InitiationSize]byte
	ep  conn.Endpoint
}

// NewBind returns a Bind for cfg. It panics if Inner or Accept is nil.
func NewBind(cfg Config) *Bind {
	if cfg.Inner == nil || cfg.Accept == nil {
		panic("handshake: NewBind needs Inner and Accept")
	}
	if cfg.DeviceUnderLoad == nil {
		cfg.DeviceUnderLoad = func() bool { return false }
	}
	if cfg.Workers <= 0 {
		cfg.Workers = max(1, runtime.NumCPU()/2)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	b := &Bind{
		Bind:    cfg.Inner,
		cfg:     cfg,
		resp:    NewResponder(cfg.PrivateKey),
		limiter: newSourceLimiter(),
	}
	b.cookies.Init(device.NoisePublicKey(cfg.PrivateKey.Public()))
	b.pool.New = func() any { return new(packet) }
	if cfg.Responded != nil {
		b.responses = make(chan wgkey.PublicKey, 256)
		b.awaiting.init()
	}
	return b
}

// Stats returns the counters.
func (b *Bind) Stats() Stats {
	return Stats{
		Initiations: b.initiations.Load(),
		BadMAC1:     b.badMAC1.Load(),
		QueueFull:   b.queueFull.Load(),
		Cookies:     b.cookiesSent.Load(),
		Limited:     b.limited.Load(),
		Opened:      b.opened.Load(),
		Refused:     b.refused.Load(),
		Passed:      b.passed.Load(),
		PassedRaw:   b.passedRaw.Load(),

		RespondedDropped: b.respDrop.Load(),
	}
}

// Open opens the inner Bind, wraps each of its receive functions so that
// initiations go to the queue, starts the workers, and appends the receive
// function through which wireguard-go gets the initiations the workers
// pass.
func (b *Bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	r := &running{
		queue:    make(chan *packet, b.cfg.QueueSize),
		released: make(chan *packet, b.cfg.QueueSize),
		done:     make(chan struct{}),
	}
	b.mu.Lock()
	b.run = r
	b.mu.Unlock()
	for range b.cfg.Workers {
		go b.work(r)
	}
	if b.responses != nil {
		go b.report(r)
	}
	out := make([]conn.ReceiveFunc, 0, len(fns)+1)
	for _, fn := range fns {
		out = append(out, b.divert(r, fn))
	}
	out = append(out, b.release(r))
	return out, actual, nil
}

// Close stops the workers, drops what is queued, makes the extra receive
// function return net.ErrClosed, and closes the inner Bind. It does not
// wait for a worker that is inside Accept: wireguard-go calls Close with its
// configuration lock held, which Accept may be waiting for. Such a worker
// finds the device closed and ends on its own.
func (b *Bind) Close() error {
	b.mu.Lock()
	r := b.run
	b.run = nil
	b.mu.Unlock()
	if r != nil {
		close(r.done)
	}
	return b.Bind.Close()
}

// divert wraps fn: initiations are copied to the queue (or dropped) and
// their size set to zero, which wireguard-go skips. If a whole batch was
// initiations it reads again rather than return an empty batch.
func (b *Bind) divert(r *running, fn conn.ReceiveFunc) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		for {
			n, err := fn(bufs, sizes, eps)
			if err != nil || n == 0 {
				return n, err
			}
			kept := 0
			for i := range n {
				if sizes[i] == InitiationSize && IsInitiation(bufs[i][:InitiationSize]) {
					b.enqueue(r, bufs[i][:InitiationSize], eps[i])
					sizes[i] = 0
					continue
				}
				if sizes[i] > 0 {
					kept++
				}
			}
			if kept > 0 {
				return n, nil
			}
		}
	}
}

// enqueue checks msg's mac1 and queues a copy of it for the workers.
func (b *Bind) enqueue(r *running, msg []byte, ep conn.Endpoint) {
	b.initiations.Add(1)
	if ep == nil || !b.cookies.CheckMAC1(msg) {
		b.badMAC1.Add(1)
		return
	}
	p := b.pool.Get().(*packet)
	copy(p.buf[:], msg)
	p.ep = ep
	select {
	case r.queue <- p:
	default:
		b.queueFull.Add(1)
		b.put(p)
	}
}

func (b *Bind) put(p *packet) {
	p.ep = nil
	b.pool.Put(p)
}

// work serves the queue until r is closed.
func (b *Bind) work(r *running) {
	for {
		var p *packet
		select {
		case <-r.done:
			return
		case p = <-r.queue:
		}
		if !b.admit(r, p) {
			b.put(p)
			continue
		}
		select {
		case r.released <- p:
		case <-r.done:
			b.put(p)
			return
		}
	}
}

// admit decides one queued initiation, and reports whether it goes on to
// wireguard-go.
func (b *Bind) admit(r *running, p *packet) bool {
	msg := p.buf[:]
	now := b.cfg.Clock()
	loaded := b.load.underLoad(len(r.queue), cap(r.queue), now)
	if b.cfg.DeviceUnderLoad() {
		// wireguard-go checks mac2 against its own cookie secret now,
		// so it is the one cookie authority (see the package comment).
		// An initiation without a cookie goes on unopened and costs
		// wireguard-go a blake2s and a cookie reply, no X25519.
		if !HasMAC2(msg) {
			b.passedRaw.Add(1)
			return true
		}
	} else if loaded && !b.cookies.CheckMAC2(msg, p.ep.DstToBytes()) {
		b.sendCookie(p)
		return false
	}
	if loaded && !b.limiter.allow(p.ep.DstIP(), now) {
		b.limited.Add(1)
		return false
	}
	b.opened.Add(1)
	key, ok := b.resp.OpenStatic(msg)
	if !ok || !b.cfg.Accept(key) {
		b.refused.Add(1)
		return false
	}
	b.passed.Add(1)
	if b.responses != nil {
		b.awaiting.add(Sender(msg), key, now)
	}
	return true
}

// sendCookie answers p with a cookie reply through the inner Bind.
func (b *Bind) sendCookie(p *packet) {
	reply, err := b.cookies.CreateReply(p.buf[:], Sender(p.buf[:]), p.ep.DstToBytes())
	if err != nil {
		return
	}
	var out [device.MessageCookieReplySize]byte
	binary.LittleEndian.PutUint32(out[0:], reply.Type)
	binary.LittleEndian.PutUint32(out[4:], reply.Receiver)
	n := copy(out[8:], reply.Nonce[:])
	copy(out[8+n:], reply.Cookie[:])
	if b.Bind.Send([][]byte{out[:]}, p.ep) == nil {
		b.cookiesSent.Add(1)
	}
}

// release returns the receive function through which wireguard-go reads
// the initiations the workers passed: unchanged bytes, original endpoint.
func (b *Bind) release(r *running) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		var p *packet
		select {
		case p = <-r.released:
		case <-r.done:
			return 0, net.ErrClosed
		}
		n := 0
		for p != nil {
			sizes[n] = copy(bufs[n], p.buf[:])
			eps[n] = p.ep
			b.put(p)
			n++
			p = nil
			if n < len(bufs) {
				select {
				case p = <-r.released:
				default:
				}
			}
		}
		return n, nil
	}
}

var _ conn.Bind = (*Bind)(nil)
