// Package relay forwards UDP datagrams from a listening port to one fixed
// upstream address and the replies back: the multihop relay of an entry
// gateway, which gives stock WireGuard apps a port that reaches an exit
// gateway through it.
//
// Each client source address gets an upstream socket of its own, so that
// replies find the client and the upstream (the exit) sees only the
// relay's address. The table of sources lives in memory only; an entry
// idle for Config.Idle is dropped, and at most Config.MaxFlows exist per
// route (datagrams from further sources are dropped until one expires).
// The relay never parses, logs or counts the datagrams it carries, nor
// the addresses it sees.
package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultIdle is how long a source may stay silent before its upstream
// socket is closed: WireGuard's keepalive (25 s) and rekey (120 s) keep a
// live tunnel well inside it.
const DefaultIdle = 180 * time.Second

// DefaultMaxFlows is the default bound of sources per route.
const DefaultMaxFlows = 4096

// maxDatagram is the largest datagram carried (a UDP payload over IPv6).
const maxDatagram = 65535

// Route is one relay port and where its datagrams go.
type Route struct {
	// Exit names the upstream (a gateway id); it is reported, not used.
	Exit string
	// Port is the UDP port to listen on, 1 to 65535.
	Port int
	// Upstream is the HOST:PORT datagrams are forwarded to.
	Upstream string
}

// Config configures a Relay.
type Config struct {
	// Host is the address to listen on; empty for every address.
	Host string
	// Routes are the ports to relay; at least one.
	Routes []Route
	// Idle is how long a silent source keeps its upstream socket;
	// DefaultIdle if 0.
	Idle time.Duration
	// MaxFlows bounds the sources per route; DefaultMaxFlows if 0.
	MaxFlows int
	// Logger receives start-up and socket errors, never an address.
	Logger *slog.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Relay relays the datagrams of its routes until Close.
type Relay struct {
	cfg    Config
	routes []*route
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

type route struct {
	r        *Relay
	exit     string
	upstream *net.UDPAddr
	ln       *net.UDPConn

	mu    sync.Mutex
	flows map[netip.AddrPort]*flow
}

type flow struct {
	conn *net.UDPConn
	mu   sync.Mutex
	last time.Time
}

// Parse reads routes written PORT=EXIT@HOST:PORT, separated by commas
// (the --multihop-relay flag). It returns an error naming the bad entry.
func Parse(s string) ([]Route, error) {
	var out []Route
	seen := map[int]bool{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		port, rest, ok := strings.Cut(item, "=")
		exit, up, ok2 := strings.Cut(rest, "@")
		if !ok || !ok2 || exit == "" || up == "" {
			return nil, fmt.Errorf("relay %q: want PORT=EXIT_ID@HOST:PORT", item)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("relay %q: port must be 1 to 65535", item)
		}
		if seen[p] {
			return nil, fmt.Errorf("relay %q: port %d given twice", item, p)
		}
		if _, _, err := net.SplitHostPort(up); err != nil {
			return nil, fmt.Errorf("relay %q: upstream: %v", item, err)
		}
		seen[p] = true
		out = append(out, Route{Exit: exit, Port: p, Upstream: up})
	}
	return out, nil
}

// Start opens every route's port and starts relaying. On an error nothing
// stays open.
func Start(cfg Config) (*Relay, error) {
	if len(cfg.Routes) == 0 {
		return nil, errors.New("relay: no routes")
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = DefaultMaxFlows
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Relay{cfg: cfg, done: make(chan struct{})}
	for _, rt := range cfg.Routes {
		up, err := net.ResolveUDPAddr("udp", rt.Upstream)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("relay: port %d: upstream: %w", rt.Port, err)
		}
		ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(cfg.Host), Port: rt.Port})
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("relay: port %d: %w", rt.Port, err)
		}
		r.routes = append(r.routes, &route{r: r, exit: rt.Exit, upstream: up, ln: ln, flows: map[netip.AddrPort]*flow{}})
	}
	for _, rt := range r.routes {
		r.wg.Add(1)
		go rt.serve()
	}
	r.wg.Add(1)
	go r.sweepLoop()
	return r, nil
}

// Ports returns the port of each route by exit, as bound.
func (r *Relay) Ports() map[string]int {
	out := map[string]int{}
	for _, rt := range r.routes {
		out[rt.exit] = rt.ln.LocalAddr().(*net.UDPAddr).Port
	}
	return out
}

// Flows returns the number of live sources across routes.
func (r *Relay) Flows() int {
	n := 0
	for _, rt := range r.routes {
		rt.mu.Lock()
		n += len(rt.flows)
		rt.mu.Unlock()
	}
	return n
}

// Close stops relaying and closes every socket; it waits for the relay's
// goroutines.
func (r *Relay) Close() error {
	r.once.Do(func() {
		close(r.done)
		for _, rt := range r.routes {
			rt.ln.Close()
			rt.mu.Lock()
			for k, f := range rt.flows {
				f.conn.Close()
				delete(rt.flows, k)
			}
			rt.mu.Unlock()
		}
	})
	r.wg.Wait()
	return nil
}

func (r *Relay) sweepLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.Idle / 6)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			r.Sweep()
		}
	}
}

// Sweep closes the upstream sockets of sources idle for Config.Idle. The
// relay calls it periodically.
func (r *Relay) Sweep() {
	cutoff := r.cfg.Now().Add(-r.cfg.Idle)
	for _, rt := range r.routes {
		rt.mu.Lock()
		for k, f := range rt.flows {
			f.mu.Lock()
			idle := !f.last.After(cutoff)
			f.mu.Unlock()
			if idle {
				f.conn.Close()
				delete(rt.flows, k)
			}
		}
		rt.mu.Unlock()
	}
}

func (rt *route) serve() {
	defer rt.r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, src, err := rt.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		f := rt.flow(src)
		if f == nil {
			continue
		}
		f.mu.Lock()
		f.last = rt.r.cfg.Now()
		f.mu.Unlock()
		_, _ = f.conn.Write(buf[:n])
	}
}

// flow returns src's flow, making it if there is room; nil otherwise.
func (rt *route) flow(src netip.AddrPort) *flow {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if f := rt.flows[src]; f != nil {
		return f
	}
	select {
	case <-rt.r.done:
		return nil
	default:
	}
	if len(rt.flows) >= rt.r.cfg.MaxFlows {
		return nil
	}
	conn, err := net.DialUDP("udp", nil, rt.upstream)
	if err != nil {
		rt.r.cfg.Logger.Warn("multihop relay: upstream socket", "exit", rt.exit, "err", errors.Unwrap(err))
		return nil
	}
	f := &flow{conn: conn, last: rt.r.cfg.Now()}
	rt.flows[src] = f
	rt.r.wg.Add(1)
	go rt.back(f, src)
	return f
}

// back carries the upstream's replies to src until f's socket closes.
func (rt *route) back(f *flow, src netip.AddrPort) {
	defer rt.r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, err := f.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP port unreachable while the exit restarts
		}
		f.mu.Lock()
		f.last = rt.r.cfg.Now()
		f.mu.Unlock()
		_, _ = rt.ln.WriteToUDPAddrPort(buf[:n], src)
	}
}
