// Package gateway is Nitronet's data plane: a wireguard-go device whose
// peers follow the control server's feed, behind an admission filter, with
// session intervals derived from handshakes and reported to the control
// server.
//
// The gateway keeps no record of traffic. It writes nothing to disk except
// its own key file, and nothing it logs contains a client endpoint, a
// destination, a DNS name or a per-client counter. Peer set and session
// state live in RAM only.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"github.com/nitronet/nitronet/internal/gateway/admission"
	"github.com/nitronet/nitronet/internal/gateway/backoff"
	"github.com/nitronet/nitronet/internal/gateway/blocklist"
	"github.com/nitronet/nitronet/internal/gateway/control"
	"github.com/nitronet/nitronet/internal/gateway/handshake"
	"github.com/nitronet/nitronet/internal/gateway/peers"
	"github.com/nitronet/nitronet/internal/gateway/sessions"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/relay"
	"github.com/nitronet/nitronet/internal/udptcp"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// reportBatch is the most intervals sent in one SessionReport.
const reportBatch = 500

// Gateway is one gateway instance. Create it with New and start it with
// Run. The accessor methods are safe for concurrent use.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	client *control.Client

	started atomic.Bool
	ready   chan struct{}

	// Set before ready is closed, read-only afterwards.
	id     identity
	record gwproto.HelloResponse // the gateway's record, from its start-up report
	bind   *admission.Bind
	tcp    *udptcp.ServerBind // nil without Config.TCPPort
	relay  *relay.Relay       // nil without Config.Relays
	gate   *handshake.Bind
	dev    *device.Device
	peers  *peers.Manager
	lists  *blocklist.Lists
	// resolvers are the addresses of the DNS blocking resolvers, set by
	// Run before the network is set up. Clients that chose categories
	// know the gateway by such an address only (their configuration's DNS
	// server), so the ephemeral-peer service answers there too.
	resolvers []netip.Addr

	// mu guards the session tracker and queue.
	mu      sync.Mutex
	tracker *sessions.Tracker
	queue   *sessions.Queue
	flush   chan struct{}
}

// New validates cfg and returns a Gateway. It does no I/O: enrollment,
// network and device setup happen in Run.
func New(cfg Config) (*Gateway, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := control.New(cfg.ServerURL, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return &Gateway{
		cfg:     cfg,
		log:     cfg.Logger,
		client:  client,
		ready:   make(chan struct{}),
		tracker: sessions.NewTracker(),
		queue:   sessions.NewQueue(cfg.SessionQueue),
		flush:   make(chan struct{}, 1),
	}, nil
}

// Ready is closed once the gateway has enrolled and its WireGuard device is
// up; after that ListenPort, PublicKey, ID and Region are valid.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// ListenPort returns the WireGuard UDP port, or 0 before Ready.
func (g *Gateway) ListenPort() uint16 {
	select {
	case <-g.ready:
		return g.bind.Port()
	default:
		return 0
	}
}

// TCPPort returns the port on which the gateway takes WireGuard over TCP,
// or 0 before Ready or if it takes none (see Config.TCPPort).
func (g *Gateway) TCPPort() int {
	select {
	case <-g.ready:
		if g.tcp == nil {
			return 0
		}
		return g.tcp.TCPPort()
	default:
		return 0
	}
}

// PublicKey returns the gateway's WireGuard public key, or the zero key
// before Ready.
func (g *Gateway) PublicKey() wgkey.PublicKey {
	select {
	case <-g.ready:
		return g.id.Key.Public()
	default:
		return wgkey.PublicKey{}
	}
}

// ID returns the gateway ID assigned at enrollment, or "" before Ready or if
// the key file predates it.
func (g *Gateway) ID() string {
	select {
	case <-g.ready:
		return g.id.ID
	default:
		return ""
	}
}

// Addresses returns the gateway's tunnel addresses with their pool lengths,
// e.g. 100.64.0.1/10 and fd00:6e6e::1/48.
func (g *Gateway) Addresses() []netip.Prefix { return g.cfg.addresses() }

// Peers returns the number of admitted peers: the keys from the control
// server's feed that may connect. It is 0 before Ready.
func (g *Gateway) Peers() int {
	select {
	case <-g.ready:
		return g.peers.Stats().Admitted
	default:
		return 0
	}
}

// ConfiguredPeers returns the number of peers configured on the WireGuard
// device: those admitted peers that connected within the last session
// timeout. It is 0 before Ready.
func (g *Gateway) ConfiguredPeers() int {
	select {
	case <-g.ready:
		return g.peers.Stats().Configured
	default:
		return 0
	}
}

// LiveSessions returns the number of open sessions: the live device count.
func (g *Gateway) LiveSessions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tracker.Open()
}

// Run loads the key file (or makes a key in memory), builds the network,
// starts the DNS service in kernel mode (see Config.DNSUpstreams) and
// brings up the WireGuard device on its port. Only then does it enroll if
// it must (saving the key file) and send its start-up report (see
// Config.Endpoint), so a busy port (ErrPortInUse) costs no token and leaves
// no record. It then follows the peer feed and reports sessions until ctx
// is done, when it stops the DNS service, closes the device and the
// network, ends open sessions and makes a short best-effort attempt to
// report them (the control server must still be serving: see
// server.Server.Run for the order of shutdown). Run returns nil after a clean
// shutdown, or an error if the gateway could not start. It may be called
// only once.
func (g *Gateway) Run(ctx context.Context) error {
	if !g.started.CompareAndSwap(false, true) {
		return errors.New("gateway: Run called twice")
	}
	// Nothing is written and nothing is asked of the control server until
	// the WireGuard port is bound (see start.go).
	id, err := g.loadIdentity()
	if err != nil {
		return err
	}
	if err := g.loadBlocklists(); err != nil {
		return err
	}
	resolvers := g.dnsResolvers()
	for _, r := range resolvers {
		g.resolvers = append(g.resolvers, r.Addr)
	}

	network, err := g.cfg.NewNetwork(NetworkConfig{
		Addresses:    g.cfg.addresses(),
		MTU:          g.cfg.MTU,
		AllowPrivate: g.cfg.AllowPrivate,
		DNSUpstreams: g.cfg.DNSUpstreams,
		DNSPort:      g.dnsPort(),
		ServicePorts: g.cfg.servicePorts(),
		DNSResolvers: resolvers,
		Dial:         g.cfg.Dial,
		Logger:       g.log,
	})
	if err != nil {
		return fmt.Errorf("gateway: network: %w", err)
	}
	defer network.Close()

	stopDNS := func() {}
	if g.cfg.Mode == ModeKernel {
		dnsCtx, cancelDNS := context.WithCancel(ctx)
		waitDNS, err := g.startKernelDNS(dnsCtx, resolvers)
		if err != nil {
			cancelDNS()
			return err
		}
		var once sync.Once
		stopDNS = func() {
			once.Do(func() {
				cancelDNS()
				waitDNS()
			})
		}
		defer stopDNS() // on an error return, before network.Close
	}

	if err := g.startDevice(network, id.Key); err != nil {
		return err
	}
	defer g.dev.Close()
	stopServices, err := g.startServices(ctx, network, id.Key)
	if err != nil {
		return err
	}
	defer stopServices() // on an error return, before the device closes
	if err := g.register(ctx, id); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	close(g.ready)
	g.log.Info("gateway up", "mode", g.cfg.Mode, "port", g.bind.Port(), "tcp_port", g.record.TCPPort, "gateway_id", g.id.ID,
		"region", g.record.Region, "endpoint", g.record.Endpoint)

	loopCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){g.syncPeers, g.pollSessions, g.reportSessions, g.followReload} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(loopCtx)
		}()
	}
	<-ctx.Done()
	cancel()
	wg.Wait()

	stopServices()
	stopDNS()
	g.dev.Close()
	network.Close()

	g.mu.Lock()
	g.queue.Add(g.tracker.CloseAll(g.cfg.Clock())...)
	g.mu.Unlock()
	final, cancelFinal := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancelFinal()
	// With nothing queued flushQueue sends nothing and cannot fail. A
	// failure leaves the unsent intervals queued: they are lost with the
	// process and counted below.
	if err := g.flushQueue(final); err != nil {
		g.log.Warn("final session report failed", "err", err.Error())
	}
	g.mu.Lock()
	lost := g.queue.Dropped() + uint64(g.queue.Len())
	g.mu.Unlock()
	// Counts only: how many datagrams admission refused, what became of
	// handshake initiations, how many session intervals were lost while
	// the control server was away, and the blocklists' totals.
	hs := g.gate.Stats()
	g.log.Info("gateway stopped", "dropped_by_admission", g.bind.Dropped(),
		"initiations", hs.Initiations, "initiations_refused", hs.Refused+hs.BadMAC1+hs.QueueFull+hs.Limited,
		"cookie_replies", hs.Cookies, "session_intervals_lost", lost, "dns_blocked", blockedSummary(g.lists.Totals()))
	return nil
}

// startDevice builds the WireGuard device with key on network's TUN and
// brings it up on its port (and on Config.TCPPort, if set, for WireGuard
// over TCP beside UDP): behind the admission filter, the handshake
// gate, which configures a peer on the device only when its initiation
// arrives and its key is admitted (see packages handshake and peers). The
// device starts with no peers. On an error the device is closed.
func (g *Gateway) startDevice(network Network, key wgkey.PrivateKey) error {
	inner := g.cfg.Bind
	if inner == nil {
		inner = conn.NewDefaultBind()
	}
	if g.cfg.TCPPort != 0 {
		tcp, err := udptcp.NewServerBind(udptcp.ServerConfig{
			Inner: inner,
			Port:  max(g.cfg.TCPPort, 0),
			// Refused sources are turned away at accept as well as
			// per datagram by the admission filter.
			Admit: g.cfg.Admission.Admits,
		})
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		g.tcp, inner = tcp, tcp
	}
	g.bind = admission.NewBind(inner, g.cfg.Admission)
	g.gate = handshake.NewBind(handshake.Config{
		Inner:      g.bind,
		PrivateKey: key,
		// The gate opens the bind at Up, after g.dev and g.peers are set.
		Accept:          func(k wgkey.PublicKey) bool { return g.peers.Ensure(k) },
		Responded:       func(k wgkey.PublicKey) { g.peers.Responded(k) },
		DeviceUnderLoad: func() bool { return g.dev.IsUnderLoad() },
	})
	g.dev = device.NewDevice(network.TUN(), g.gate, g.wgLogger())
	g.peers = peers.NewManager(peers.ManagerConfig{
		Device: g.dev,
		Pools:  []netip.Prefix{g.cfg.Pool4, g.cfg.Pool6},
		Clock:  g.cfg.Clock,
	})
	if err := g.dev.IpcSet("private_key=" + key.Hex() + "\nlisten_port=" + strconv.Itoa(g.cfg.ListenPort) + "\n"); err != nil {
		g.dev.Close()
		return g.deviceError("configure device", err)
	}
	if err := g.dev.Up(); err != nil {
		g.dev.Close()
		return g.deviceError("device up", err)
	}
	return nil
}

// startServices starts the gateway's own services that need the device:
// the ephemeral-peer service and, if configured, the read-only UAPI
// socket. The returned function stops them and waits; it may be called
// more than once.
func (g *Gateway) startServices(ctx context.Context, network Network, key wgkey.PrivateKey) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	waitEph, err := g.startEphemeral(ctx, network, key)
	if err != nil {
		cancel()
		return nil, err
	}
	waitUAPI := func() {}
	if g.cfg.UAPISocket != "" {
		if waitUAPI, err = g.serveUAPI(ctx, g.cfg.UAPISocket); err != nil {
			cancel()
			waitEph()
			return nil, err
		}
	}
	if len(g.cfg.Relays) > 0 {
		// Its log gets no addresses: the relay logs none.
		if g.relay, err = relay.Start(relay.Config{Routes: g.cfg.Relays, Logger: g.log, Now: g.cfg.Clock}); err != nil {
			cancel()
			waitEph()
			waitUAPI()
			return nil, fmt.Errorf("gateway: multihop %w", err)
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			waitEph()
			waitUAPI()
			if g.relay != nil {
				g.relay.Close()
			}
		})
	}, nil
}

// dnsPort returns the port of the DNS service, or 0 if there is none.
func (g *Gateway) dnsPort() int {
	if len(g.cfg.DNSUpstreams) == 0 {
		return 0
	}
	return g.cfg.DNSPort
}

func (g *Gateway) backoff() *backoff.Backoff {
	return &backoff.Backoff{Min: 200 * time.Millisecond, Max: g.cfg.MaxBackoff, Rand: g.cfg.Rand}
}

// sleep waits for d or until ctx is done, reporting whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// wgLogger adapts wireguard-go's logger. Its messages can carry endpoint
// addresses in their arguments, so verbose messages are dropped and error
// messages are logged by their format string only, never their arguments.
func (g *Gateway) wgLogger() *device.Logger {
	return &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, _ ...any) {
			g.log.Warn("wireguard error", "event", format)
		},
	}
}

// syncPeers follows the peer feed until ctx is done. On a failure it retries
// with backoff from the same cursor; the device keeps its peers meanwhile.
func (g *Gateway) syncPeers(ctx context.Context) {
	var since int64
	bo := g.backoff()
	down := false
	for ctx.Err() == nil {
		// A snapshot streams into the admitted set record by record as it
		// is decoded: Begin, AddPeer for each, then Commit once it arrived
		// whole, or Abort if it did not.
		begun := false
		upd, err := g.client.Peers(ctx, since, g.cfg.PeerWait, control.Snapshot{
			Begin: func(expected int) {
				g.peers.Begin(min(expected, maxSnapshotHint))
				begun = true
			},
			Peer: func(r gwproto.PeerRecord) error {
				g.peers.AddRecord(r)
				return nil
			},
		})
		if err != nil {
			if begun {
				g.peersRemoved(g.peers.Abort().Unconfigured)
			}
			if ctx.Err() != nil {
				return
			}
			if !down {
				g.log.Warn("peer feed unavailable, keeping last known peers", "err", err.Error())
				down = true
			}
			sleep(ctx, bo.Next())
			continue
		}
		if down {
			g.log.Info("peer feed restored")
			down = false
		}
		bo.Reset()
		res := g.applyUpdate(upd)
		if res.Changed() || upd.Full {
			st := g.peers.Stats()
			g.log.Info("peers synced", "full", upd.Full, "added", res.Added, "updated", res.Updated,
				"removed", res.Dropped, "rejected", res.Rejected, "failed", res.Failed,
				"admitted", st.Admitted, "configured", st.Configured)
		}
		since = upd.Version
	}
}

// maxSnapshotHint caps the index size a snapshot's expected count may
// reserve up front (the count is the server's word, unchecked): the
// devices a /10 pool holds. A larger snapshot still loads, growing the
// index as it goes.
const maxSnapshotHint = 1 << 22

// applyUpdate applies one answer of the peer feed to the admitted peers,
// and ends the sessions of peers it removed from the device. For a full
// snapshot, whose peers went to the manager as they were decoded, it
// commits the snapshot.
func (g *Gateway) applyUpdate(upd control.Update) peers.Result {
	var res peers.Result
	if upd.Full {
		res = g.peers.Commit()
		res.Rejected += upd.Rejected
	} else {
		for _, c := range upd.Changes {
			r := g.peers.Apply(c)
			res.Added += r.Added
			res.Updated += r.Updated
			res.Dropped += r.Dropped
			res.Rejected += r.Rejected
			res.Failed += r.Failed
			res.Unconfigured = append(res.Unconfigured, r.Unconfigured...)
		}
	}
	g.peersRemoved(res.Unconfigured)
	return res
}

// peersRemoved ends the sessions of peers removed from the device.
func (g *Gateway) peersRemoved(removed []wgkey.PublicKey) {
	if len(removed) == 0 {
		return
	}
	now := g.cfg.Clock()
	g.mu.Lock()
	for _, k := range removed {
		g.queue.Add(g.tracker.Removed(now, k)...)
	}
	g.mu.Unlock()
	g.kickFlush()
}

// pollSessions reads handshake times from the device every SessionPoll.
func (g *Gateway) pollSessions(ctx context.Context) {
	t := time.NewTicker(g.cfg.SessionPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.observe()
	}
}

// observe runs one session poll.
func (g *Gateway) observe() {
	uapi, err := g.dev.IpcGet()
	if err != nil {
		g.log.Warn("session poll failed")
		return
	}
	// uapi also holds endpoints and counters; only keys and handshake times
	// survive parsing, and uapi itself goes out of scope here.
	hs, err := sessions.ParseUAPI(uapi)
	if err != nil {
		g.log.Warn("session poll: unparsable device state")
		return
	}
	now := g.cfg.Clock()
	// A device's ephemeral alias (quantum-resistant tunnels) counts as
	// the device: the tracker sees one key per device.
	g.mu.Lock()
	ivs := g.tracker.Observe(now, g.peers.Canonical(hs), g.peers.DeviceID)
	g.queue.Add(ivs...)
	g.mu.Unlock()
	if len(ivs) > 0 {
		g.kickFlush()
	}
	// Peers idle for longer than a session lasts leave the device; their
	// keys stay admitted. Their sessions have ended by now, at their last
	// handshake plus the timeout.
	if trimmed := g.peers.Trim(now, hs); len(trimmed) > 0 {
		g.log.Debug("idle peers removed from the device", "count", len(trimmed))
		g.peersRemoved(trimmed)
	}
}

func (g *Gateway) kickFlush() {
	select {
	case g.flush <- struct{}{}:
	default:
	}
}

// reportSessions sends queued intervals when kicked and every 30 s, backing
// off while the server is unreachable.
func (g *Gateway) reportSessions(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	bo := g.backoff()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.flush:
		case <-t.C:
		}
		for ctx.Err() == nil {
			err := g.flushQueue(ctx)
			if err == nil {
				bo.Reset()
				break
			}
			if ctx.Err() != nil {
				return
			}
			g.log.Warn("session report failed, will retry", "err", err.Error())
			sleep(ctx, bo.Next())
		}
	}
}

// flushQueue sends the whole queue in batches. A batch the server refuses as
// invalid is dropped (and counted); any other failure puts the batch back and
// returns the error.
func (g *Gateway) flushQueue(ctx context.Context) error {
	for {
		g.mu.Lock()
		batch := g.queue.Take(reportBatch)
		g.mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		err := g.client.ReportSessions(ctx, gwproto.SessionReport{Intervals: batch})
		if err == nil {
			continue
		}
		var se *control.StatusError
		if errors.As(err, &se) && se.Permanent() && se.Status != 401 && se.Status != 403 {
			g.log.Warn("session batch refused by server, dropped", "intervals", len(batch), "err", err.Error())
			continue
		}
		g.mu.Lock()
		g.queue.Requeue(batch)
		g.mu.Unlock()
		return err
	}
}

// AdmissionDropped returns how many datagrams the admission policy has
// refused, or 0 before Ready. It is one global counter.
func (g *Gateway) AdmissionDropped() uint64 {
	select {
	case <-g.ready:
		return g.bind.Dropped()
	default:
		return 0
	}
}
