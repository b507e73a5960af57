package handshake

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// gate is a gateway-side wireguard-go device behind a Bind, with an
// in-memory admission list standing in for the gateway's index.
type gate struct {
	t    *testing.T
	key  wgkey.PrivateKey
	bind *Bind
	dev  *device.Device
	tun  *tuntest.ChannelTUN
	port int

	mu       sync.Mutex
	admitted map[wgkey.PublicKey]string // key -> tunnel address
	accepts  int                        // calls of Accept
	block    chan struct{}              // if not nil, Accept waits on it
	entered  chan struct{}              // if not nil, Accept signals it on entry
}

type gateOpts struct {
	deviceUnderLoad func() bool
	queueSize       int
	responded       func(wgkey.PublicKey)
}

func newGate(t *testing.T, o gateOpts) *gate {
	t.Helper()
	g := &gate{t: t, key: mustKey(t), admitted: map[wgkey.PublicKey]string{}, tun: tuntest.NewChannelTUN()}
	g.bind = NewBind(Config{
		Inner:           conn.NewDefaultBind(),
		PrivateKey:      g.key,
		Accept:          g.accept,
		DeviceUnderLoad: o.deviceUnderLoad,
		QueueSize:       o.queueSize,
		Responded:       o.responded,
	})
	g.dev = device.NewDevice(g.tun.TUN(), g.bind, device.NewLogger(device.LogLevelSilent, ""))
	if err := g.dev.IpcSet("private_key=" + g.key.Hex() + "\nlisten_port=0\n"); err != nil {
		t.Fatal(err)
	}
	if err := g.dev.Up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.dev.Close)
	s, _ := g.dev.IpcGet()
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			fmt.Sscan(v, &g.port)
		}
	}
	if g.port == 0 {
		t.Fatal("gate has no port")
	}
	return g
}

// accept configures an admitted key on the device, as peers.Manager does.
func (g *gate) accept(k wgkey.PublicKey) bool {
	g.mu.Lock()
	g.accepts++
	block, entered := g.block, g.entered
	addr, ok := g.admitted[k]
	g.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		<-block
	}
	if !ok {
		return false
	}
	err := g.dev.IpcSet("public_key=" + k.Hex() + "\nreplace_allowed_ips=true\nallowed_ip=" + addr + "/32\n")
	return err == nil
}

func (g *gate) admit(k wgkey.PublicKey, addr string) {
	g.mu.Lock()
	g.admitted[k] = addr
	g.mu.Unlock()
}

func (g *gate) peers() int {
	s, err := g.dev.IpcGet()
	if err != nil {
		g.t.Fatal(err)
	}
	return strings.Count(s, "public_key=")
}

// client is a stock wireguard-go device whose transport counts the
// initiations it sends.
type client struct {
	key  wgkey.PrivateKey
	dev  *device.Device
	tun  *tuntest.ChannelTUN
	bind *countingBind
	addr netip.Addr
}

type countingBind struct {
	conn.Bind
	initiations atomicCount

	mu   sync.Mutex
	last []byte // the last initiation sent
}

type atomicCount struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCount) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *atomicCount) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (b *countingBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	for _, p := range bufs {
		if IsInitiation(p) {
			b.initiations.add()
			b.mu.Lock()
			b.last = append([]byte(nil), p...)
			b.mu.Unlock()
		}
	}
	return b.Bind.Send(bufs, ep)
}

func newClient(t *testing.T, addr string) *client {
	t.Helper()
	c := &client{key: mustKey(t), tun: tuntest.NewChannelTUN(), bind: &countingBind{Bind: conn.NewDefaultBind()}, addr: netip.MustParseAddr(addr)}
	c.dev = device.NewDevice(c.tun.TUN(), c.bind, device.NewLogger(device.LogLevelSilent, ""))
	if err := c.dev.IpcSet("private_key=" + c.key.Hex() + "\nlisten_port=0\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.dev.Up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.dev.Close)
	return c
}

// connect points c at g; the persistent keepalive makes it initiate at
// once.
func (c *client) connect(t *testing.T, g *gate) {
	t.Helper()
	dialPeer(t, c.dev, g.key.Public(), g.port)
}

func (c *client) handshakeDone(t *testing.T) bool {
	t.Helper()
	s, err := c.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(s, "last_handshake_time_sec=") && !strings.Contains(s, "last_handshake_time_sec=0\n")
}

// ping sends one packet from c through the tunnel and waits for the gate's
// TUN to deliver it.
func (c *client) ping(t *testing.T, g *gate, timeout time.Duration) error {
	t.Helper()
	gwAddr := netip.MustParseAddr("100.64.0.1")
	pkt := tuntest.Ping(gwAddr, c.addr)
	deadline := time.After(timeout)
	select {
	case c.tun.Outbound <- pkt:
	case <-deadline:
		return fmt.Errorf("client TUN did not take the packet")
	}
	for {
		select {
		case got := <-g.tun.Inbound:
			if bytes.Equal(got, pkt) {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("no packet through the tunnel within %v", timeout)
		}
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func TestAdmittedKeyConnectsAtFirstInitiation(t *testing.T) {
	t.Parallel()
	g := newGate(t, gateOpts{})
	c := newClient(t, "100.64.0.2")
	g.admit(c.key.Public(), "100.64.0.2")
	if g.peers() != 0 {
		t.Fatalf("gate has peers before any initiation")
	}

	start := time.Now()
	c.connect(t, g)
	// A retry would come after REKEY_TIMEOUT (5 s) and be counted below.
	waitFor(t, 2*device.RekeyTimeout, "the client's handshake", func() bool { return c.handshakeDone(t) })
	took := time.Since(start)
	t.Logf("first handshake of a key not configured took %v", took)

	if n := c.bind.initiations.get(); n != 1 {
		t.Errorf("client sent %d initiations, want 1", n)
	}
	st := g.bind.Stats()
	if st.Initiations != 1 || st.Opened != 1 || st.Passed != 1 || st.Refused != 0 || st.Cookies != 0 {
		t.Errorf("gate stats: got %+v, want one initiation opened and passed", st)
	}
	if g.peers() != 1 {
		t.Errorf("gate peers: got %d, want 1", g.peers())
	}
	if err := c.ping(t, g, 5*time.Second); err != nil {
		t.Errorf("data after the handshake: %v", err)
	}
}

func TestUnknownKeyDroppedAndNothingStored(t *testing.T) {
	t.Parallel()
	g := newGate(t, gateOpts{})
	c := newClient(t, "100.64.0.2")
	c.connect(t, g)
	waitFor(t, 5*time.Second, "the initiation to be refused", func() bool { return g.bind.Stats().Refused == 1 })
	st := g.bind.Stats()
	if st.Opened != 1 || st.Passed != 0 || st.Cookies != 0 {
		t.Errorf("gate stats: got %+v, want one opened and refused", st)
	}
	if g.peers() != 0 {
		t.Errorf("gate peers: got %d, want 0", g.peers())
	}
	if c.handshakeDone(t) {
		t.Errorf("an unknown key completed a handshake")
	}
}

// sendUDP sends each packet to the gate from one loopback socket and
// returns the socket.
func sendUDP(t *testing.T, g *gate, pkts ...[]byte) *net.UDPConn {
	t.Helper()
	pc, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: g.port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	for _, p := range pkts {
		if _, err := pc.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	return pc
}

func TestBadMAC1DroppedWithoutDH(t *testing.T) {
	t.Parallel()
	g := newGate(t, gateOpts{})
	c := newClient(t, "100.64.0.2")
	g.admit(c.key.Public(), "100.64.0.2")
	msg := realInitiation(t, c.key, g.key.Public())
	bad := bytes.Clone(msg)
	bad[offMAC1] ^= 1
	sendUDP(t, g, bad)
	waitFor(t, 5*time.Second, "the bad mac1 to be counted", func() bool { return g.bind.Stats().BadMAC1 == 1 })
	g.mu.Lock()
	accepts := g.accepts
	g.mu.Unlock()
	if st := g.bind.Stats(); st.Opened != 0 || st.Passed != 0 || accepts != 0 {
		t.Errorf("after a bad mac1: got %+v and %d accepts, want nothing opened", st, accepts)
	}
	// The same initiation with its mac1 intact is opened.
	sendUDP(t, g, msg)
	waitFor(t, 5*time.Second, "the good initiation to pass", func() bool { return g.bind.Stats().Passed == 1 })
}

// forceLoad puts the gate's own queue under load for the rest of the test.
func (g *gate) forceLoad() { g.bind.load.until.Store(math.MaxInt64) }

func TestUnderLoadCookieThenSuccess(t *testing.T) {
	t.Parallel()
	g := newGate(t, gateOpts{})
	g.forceLoad()
	c := newClient(t, "100.64.0.2")
	g.admit(c.key.Public(), "100.64.0.2")

	start := time.Now()
	c.connect(t, g)
	waitFor(t, 5*time.Second, "a cookie reply", func() bool { return g.bind.Stats().Cookies == 1 })
	if st := g.bind.Stats(); st.Opened != 0 || g.peers() != 0 {
		t.Errorf("before the client proved its address: got %+v, %d peers; want nothing opened", st, g.peers())
	}
	// The stock client retries after REKEY_TIMEOUT with the cookie's mac2.
	waitFor(t, 2*device.RekeyTimeout, "the handshake after the cookie", func() bool { return c.handshakeDone(t) })
	t.Logf("handshake under load took %v", time.Since(start))
	st := g.bind.Stats()
	if st.Cookies != 1 || st.Opened != 1 || st.Passed != 1 || c.bind.initiations.get() != 2 {
		t.Errorf("got %+v and %d client initiations, want one cookie, then one opened and passed of 2", st, c.bind.initiations.get())
	}
	if err := c.ping(t, g, 5*time.Second); err != nil {
		t.Errorf("data after the handshake: %v", err)
	}
}

// cookieClient is the client side of the cookie mechanism, from
// wireguard-go: it sets mac1 and, once it holds a cookie, mac2.
type cookieClient struct {
	gen device.CookieGenerator
	pc  *net.UDPConn
}

func newCookieClient(t *testing.T, g *gate) *cookieClient {
	cc := &cookieClient{pc: sendUDP(t, g)}
	cc.gen.Init(device.NoisePublicKey(g.key.Public()))
	return cc
}

// send re-MACs msg and sends it.
func (cc *cookieClient) send(t *testing.T, msg []byte) {
	t.Helper()
	cc.gen.AddMacs(msg)
	if _, err := cc.pc.Write(msg); err != nil {
		t.Fatal(err)
	}
}

// takeCookie waits for a cookie reply and consumes it.
func (cc *cookieClient) takeCookie(t *testing.T) {
	t.Helper()
	buf := make([]byte, 256)
	cc.pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := cc.pc.Read(buf)
	if err != nil {
		t.Fatalf("waiting for a cookie reply: %v", err)
	}
	if n != device.MessageCookieReplySize || binary.LittleEndian.Uint32(buf) != device.MessageCookieReplyType {
		t.Fatalf("got a %d-byte message of type %d, want a cookie reply", n, buf[0])
	}
	var reply device.MessageCookieReply
	reply.Type = binary.LittleEndian.Uint32(buf)
	reply.Receiver = binary.LittleEndian.Uint32(buf[4:])
	copy(reply.Nonce[:], buf[8:])
	copy(reply.Cookie[:], buf[8+len(reply.Nonce):])
	if !cc.gen.ConsumeReply(&reply) {
		t.Fatalf("the cookie reply does not decrypt")
	}
}

// TestOneCookieAuthority checks which checker demands mac2 in each load
// state, with wireguard-go's own client-side cookie code.
func TestOneCookieAuthority(t *testing.T) {
	t.Parallel()
	var devLoad sync.Mutex
	deviceLoaded := false
	g := newGate(t, gateOpts{deviceUnderLoad: func() bool {
		devLoad.Lock()
		defer devLoad.Unlock()
		return deviceLoaded
	}})
	setDeviceLoad := func(v bool) {
		devLoad.Lock()
		deviceLoaded = v
		devLoad.Unlock()
	}
	ck := mustKey(t)
	g.admit(ck.Public(), "100.64.0.2")
	msg := realInitiation(t, ck, g.key.Public())
	wait := func(what string, cond func(Stats) bool) {
		t.Helper()
		waitFor(t, 5*time.Second, what, func() bool { return cond(g.bind.Stats()) })
	}

	t.Run("nobody under load: opened without mac2", func(t *testing.T) {
		cc := newCookieClient(t, g)
		cc.send(t, bytes.Clone(msg))
		wait("opened", func(s Stats) bool { return s.Opened == 1 })
	})
	g.forceLoad()
	t.Run("gate under load: cookie, then opened with mac2", func(t *testing.T) {
		cc := newCookieClient(t, g)
		cc.send(t, bytes.Clone(msg))
		cc.takeCookie(t)
		wait("the cookie counted", func(s Stats) bool { return s.Cookies == 1 })
		if st := g.bind.Stats(); st.Opened != 1 {
			t.Fatalf("got %+v, want a cookie and no new opening", st)
		}
		cc.send(t, bytes.Clone(msg))
		wait("opened with mac2", func(s Stats) bool { return s.Opened == 2 })
	})
	setDeviceLoad(true)
	t.Run("device under load: no mac2 goes on unopened", func(t *testing.T) {
		cc := newCookieClient(t, g)
		cc.send(t, bytes.Clone(msg))
		wait("passed raw", func(s Stats) bool { return s.PassedRaw == 1 })
		if st := g.bind.Stats(); st.Opened != 2 || st.Cookies != 1 {
			t.Errorf("got %+v, want no opening and no cookie from the gate", st)
		}
	})
	t.Run("device under load: a mac2 the gate cannot check is opened", func(t *testing.T) {
		m := bytes.Clone(msg)
		for i := offMAC2; i < InitiationSize; i++ {
			m[i] = 0xa5 // a cookie of wireguard-go's
		}
		sendUDP(t, g, m)
		wait("opened", func(s Stats) bool { return s.Opened == 3 })
		if st := g.bind.Stats(); st.Cookies != 1 {
			t.Errorf("got %+v, want no cookie from the gate", st)
		}
	})
}

func TestTransportFlowsWhileWorkersAreBusy(t *testing.T) {
	t.Parallel()
	g := newGate(t, gateOpts{queueSize: 16})
	c := newClient(t, "100.64.0.2")
	g.admit(c.key.Public(), "100.64.0.2")
	c.connect(t, g)
	waitFor(t, 5*time.Second, "the handshake", func() bool { return c.handshakeDone(t) })

	// Every worker now blocks in Accept, and a flood of initiations
	// fills the queue behind them.
	release := make(chan struct{})
	g.mu.Lock()
	g.block = release
	g.mu.Unlock()
	defer close(release)
	other := realInitiation(t, mustKey(t), g.key.Public())
	flood := make([][]byte, 64)
	for i := range flood {
		flood[i] = other
	}
	pc := sendUDP(t, g)
	waitFor(t, 5*time.Second, "the queue to overflow", func() bool {
		for _, p := range flood {
			pc.Write(p)
		}
		return g.bind.Stats().QueueFull > 0
	})

	for i := range 3 {
		if err := c.ping(t, g, 2*time.Second); err != nil {
			t.Fatalf("ping %d while the workers are blocked: %v", i, err)
		}
	}
}

func TestLoadMeter(t *testing.T) {
	var m loadMeter
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at     time.Duration
		queued int
		want   bool
	}{
		{0, 0, false},
		{0, 127, false},
		{10 * time.Millisecond, 128, true}, // an eighth of 1024
		{500 * time.Millisecond, 0, true},
		{1009 * time.Millisecond, 0, true},
		{1010 * time.Millisecond, 0, false},
	}
	for _, s := range steps {
		if got := m.underLoad(s.queued, 1024, t0.Add(s.at)); got != s.want {
			t.Errorf("at %v with %d queued: got %v, want %v", s.at, s.queued, got, s.want)
		}
	}
}

func TestSourceLimiter(t *testing.T) {
	l := newSourceLimiter()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := netip.MustParseAddr("198.18.0.2")
	for i := range limitBurst {
		if !l.allow(a, t0) {
			t.Fatalf("burst %d refused", i)
		}
	}
	if l.allow(a, t0) {
		t.Errorf("past the burst: allowed")
	}
	if !l.allow(netip.MustParseAddr("198.18.0.3"), t0) && !l.allow(netip.MustParseAddr("198.18.0.4"), t0) {
		t.Errorf("other sources refused")
	}
	if !l.allow(a, t0.Add(limitInterval)) || l.allow(a, t0.Add(limitInterval)) {
		t.Errorf("refill: want exactly one more after one interval")
	}
	if !l.allow(netip.MustParseAddr("::ffff:198.18.0.9"), t0) {
		t.Errorf("mapped address refused")
	}
}

// wireguard-go closes the bind with its configuration lock held; a worker
// configuring a peer at that moment must not make Close wait for it.
func TestCloseWhileConfiguring(t *testing.T) {
	t.Parallel()
	g := newGate(t, gateOpts{})
	c := newClient(t, "100.64.0.2")
	g.admit(c.key.Public(), "100.64.0.2")
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	g.mu.Lock()
	g.block, g.entered = release, entered
	g.mu.Unlock()
	c.connect(t, g)
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no initiation reached Accept")
	}
	closed := make(chan struct{})
	go func() {
		g.dev.Close()
		close(closed)
	}()
	// Let Close take the configuration lock, then let the worker try to
	// configure the peer through it.
	time.Sleep(50 * time.Millisecond) // not synchronisation: the test passes either way round
	close(release)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("device Close did not return while a worker was configuring a peer")
	}
}

// TestRespondedOnlyForCompletedHandshakes: Config.Responded hears of a
// handshake wireguard-go answered, and not of a replayed initiation that
// the gate passed but wireguard-go refused.
func TestRespondedOnlyForCompletedHandshakes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var heard []wgkey.PublicKey
	g := newGate(t, gateOpts{responded: func(k wgkey.PublicKey) {
		mu.Lock()
		heard = append(heard, k)
		mu.Unlock()
	}})
	calls := func() []wgkey.PublicKey {
		mu.Lock()
		defer mu.Unlock()
		return append([]wgkey.PublicKey(nil), heard...)
	}
	c := newClient(t, "100.64.0.2")
	g.admit(c.key.Public(), "100.64.0.2")
	c.connect(t, g)
	waitFor(t, 2*device.RekeyTimeout, "Responded after the first handshake", func() bool { return len(calls()) == 1 })
	if got := calls(); got[0] != c.key.Public() {
		t.Fatalf("Responded: got %v, want the client's key", got)
	}

	// The same initiation again, from another socket: the gate passes it
	// (the key is admitted), wireguard-go refuses the old timestamp.
	c.bind.mu.Lock()
	replay := c.bind.last
	c.bind.mu.Unlock()
	sendUDP(t, g, replay)
	waitFor(t, 5*time.Second, "the replay to be passed", func() bool { return g.bind.Stats().Passed == 2 })

	// A real new handshake of the client is heard; the replay is not.
	if err := c.dev.IpcSet("public_key=" + g.key.Public().Hex() + "\nremove=true\n"); err != nil {
		t.Fatal(err)
	}
	c.connect(t, g)
	waitFor(t, 2*device.RekeyTimeout, "Responded after the second handshake", func() bool { return len(calls()) >= 2 })
	if got := calls(); len(got) != 2 || got[1] != c.key.Public() {
		t.Fatalf("Responded: got %d calls %v, want 2 for the client's key", len(got), got)
	}
	// The replay is never answered, so it still awaits its response. (A
	// count of all awaiting entries would also include an initiation the
	// client retransmitted on a loaded machine, which wireguard-go may
	// drop as a duplicate.)
	g.bind.awaiting.mu.Lock()
	_, ok := g.bind.awaiting.m[Sender(replay)]
	g.bind.awaiting.mu.Unlock()
	if !ok {
		t.Errorf("the replay (sender %d) no longer awaits a response, so something answered it", Sender(replay))
	}
}

func TestAwaitingEvictsOldest(t *testing.T) {
	var a awaiting
	a.init()
	now := time.Unix(1000, 0)
	for i := range maxAwaiting + 10 {
		a.add(uint32(i), wgkey.PublicKey{byte(i)}, now)
	}
	if n := a.n.Load(); n != maxAwaiting {
		t.Fatalf("entries: got %d, want %d", n, maxAwaiting)
	}
	if _, ok := a.take(3, now); ok {
		t.Errorf("an evicted entry was found")
	}
	if k, ok := a.take(maxAwaiting+5, now); !ok || k != (wgkey.PublicKey{byte((maxAwaiting + 5) % 256)}) {
		t.Errorf("a recent entry: got %v %v", k, ok)
	}
	a.add(7, wgkey.PublicKey{7}, now)
	if _, ok := a.take(7, now.Add(awaitTimeout+time.Second)); ok {
		t.Errorf("an entry older than awaitTimeout was taken")
	}
}

// batchBind is an inner conn.Bind whose one receive function returns a
// full batch of transport-data packets every call, and whose Send counts
// the batches it is given.
type batchBind struct {
	batch int
	sent  int
}

func (b *batchBind) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	fn := func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n := min(b.batch, len(bufs))
		for i := range n {
			binary.LittleEndian.PutUint32(bufs[i], device.MessageTransportType)
			sizes[i] = 1420
			eps[i] = nil
		}
		return n, nil
	}
	return []conn.ReceiveFunc{fn}, 51820, nil
}
func (b *batchBind) Close() error                                { return nil }
func (b *batchBind) SetMark(uint32) error                        { return nil }
func (b *batchBind) Send(bufs [][]byte, _ conn.Endpoint) error   { b.sent += len(bufs); return nil }
func (b *batchBind) ParseEndpoint(string) (conn.Endpoint, error) { return nil, nil }
func (b *batchBind) BatchSize() int                              { return b.batch }

// TestDataPathKeepsBatchesWithoutAllocating: the gate reports its inner
// Bind's batch size (wireguard-go sizes its receive batches, and with them
// UDP GRO and sendmmsg, from it), hands every received batch of data
// packets on whole, and allocates nothing per batch on receive or send,
// even with completed-handshake reporting on.
func TestDataPathKeepsBatchesWithoutAllocating(t *testing.T) {
	inner := &batchBind{batch: conn.IdealBatchSize}
	b := NewBind(Config{Inner: inner, PrivateKey: mustKey(t), Accept: func(wgkey.PublicKey) bool { return false },
		Responded: func(wgkey.PublicKey) {}})
	if got := b.BatchSize(); got != conn.IdealBatchSize {
		t.Fatalf("BatchSize() = %d, want the inner Bind's %d", got, conn.IdealBatchSize)
	}
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(fns) != 2 {
		t.Fatalf("%d receive functions, want the inner one and the release one", len(fns))
	}
	bufs := make([][]byte, conn.IdealBatchSize)
	for i := range bufs {
		bufs[i] = make([]byte, 1500)
	}
	sizes := make([]int, len(bufs))
	eps := make([]conn.Endpoint, len(bufs))
	recv := func() {
		n, err := fns[0](bufs, sizes, eps)
		if err != nil || n != conn.IdealBatchSize {
			t.Fatalf("receive: %d, %v; want the whole batch of %d", n, err, conn.IdealBatchSize)
		}
		for i := range n {
			if sizes[i] != 1420 {
				t.Fatalf("packet %d: size %d, want 1420", i, sizes[i])
			}
		}
	}
	if a := testing.AllocsPerRun(100, recv); a != 0 {
		t.Errorf("receive: %.1f allocations per batch, want 0", a)
	}
	out := make([][]byte, conn.IdealBatchSize)
	for i := range out {
		out[i] = bufs[i][:1452]
	}
	send := func() {
		if err := b.Send(out, nil); err != nil {
			t.Fatal(err)
		}
	}
	if a := testing.AllocsPerRun(100, send); a != 0 {
		t.Errorf("send: %.1f allocations per batch, want 0", a)
	}
	if inner.sent != 101*conn.IdealBatchSize {
		t.Errorf("inner Bind sent %d packets, want every one of %d", inner.sent, 101*conn.IdealBatchSize)
	}
}
