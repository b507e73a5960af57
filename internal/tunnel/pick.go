package tunnel

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Candidate is a gateway the client may connect to.
type Candidate struct {
	// Name identifies the gateway to the user, e.g. its region.
	Name string
	// Endpoint is the gateway's "host:port".
	Endpoint string
	// PublicKey is the gateway's WireGuard public key.
	PublicKey wgkey.PublicKey
}

// Result is the outcome of probing one candidate: RTT if Err is nil.
type Result struct {
	Candidate Candidate
	RTT       time.Duration
	Err       error
}

// maxParallelProbes bounds how many candidates PickFastest probes at once.
const maxParallelProbes = 8

// PickFastest probes every candidate (a few at a time) and returns the one
// with the lowest RTT, together with all results sorted fastest first, failed
// probes last in candidate order. It returns an error only if no probe
// succeeded (or there were no candidates). The measurements are returned to
// the caller and sent nowhere.
func PickFastest(ctx context.Context, candidates []Candidate, probe func(context.Context, Candidate) (time.Duration, error)) (Candidate, []Result, error) {
	if len(candidates) == 0 {
		return Candidate{}, nil, errors.New("tunnel: no gateway candidates")
	}
	results := make([]Result, len(candidates))
	sem := make(chan struct{}, maxParallelProbes)
	var wg sync.WaitGroup
	for i, c := range candidates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = Result{Candidate: c, Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			rtt, err := probe(ctx, c)
			results[i] = Result{Candidate: c, RTT: rtt, Err: err}
		}()
	}
	wg.Wait()
	slices.SortStableFunc(results, func(a, b Result) int {
		switch {
		case a.Err != nil && b.Err != nil:
			return 0
		case a.Err != nil:
			return 1
		case b.Err != nil:
			return -1
		}
		return cmp.Compare(a.RTT, b.RTT)
	})
	if results[0].Err != nil {
		return Candidate{}, results, fmt.Errorf("tunnel: no gateway answered: %w", results[0].Err)
	}
	return results[0].Candidate, results, nil
}

// defaultProbeTimeout applies when the probe's context has no deadline.
const defaultProbeTimeout = 10 * time.Second

// HandshakeProbe returns a probe for PickFastest that measures the WireGuard
// handshake round trip to a candidate: it brings up a throwaway wireguard-go
// device on netstack with the device's key and times from sending the
// handshake initiation to receiving the response. Nothing but the handshake
// (and the keepalive completing it) is sent, and the measurement is only
// returned. The gateway must know the key. The probe's UDP follows the
// host's routing, so run it before a TUN-mode tunnel is up. log may be nil.
func HandshakeProbe(key wgkey.PrivateKey, log *slog.Logger) func(context.Context, Candidate) (time.Duration, error) {
	return HandshakeProbeOver(key, func() conn.Bind { return conn.NewDefaultBind() }, log)
}

// HandshakeProbeOver is HandshakeProbe with the probe device's transport
// made by newBind for each probe, for example a udptcp.ClientBind to time
// the handshake over TCP (the candidates' endpoints then name TCP ports).
func HandshakeProbeOver(key wgkey.PrivateKey, newBind func() conn.Bind, log *slog.Logger) func(context.Context, Candidate) (time.Duration, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, c Candidate) (time.Duration, error) {
		return probeHandshake(ctx, key, c, newBind(), log)
	}
}

func probeHandshake(ctx context.Context, key wgkey.PrivateKey, c Candidate, bind conn.Bind, log *slog.Logger) (time.Duration, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultProbeTimeout)
		defer cancel()
	}
	if c.PublicKey.IsZero() {
		return 0, errors.New("probe: candidate has no public key")
	}
	ap, err := wgconf.ResolveEndpoint(ctx, c.Endpoint, systemResolver)
	if err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	tdev, _, err := netstack.CreateNetTUN(nil, nil, DefaultMTU)
	if err != nil {
		return 0, fmt.Errorf("probe: netstack: %w", err)
	}
	tb := &timingBind{Bind: bind, resp: make(chan time.Time, 1)}
	dev := device.NewDevice(tdev, tb, deviceLogger(log))
	defer dev.Close()
	uapi := "private_key=" + key.Hex() + "\nreplace_peers=true\npublic_key=" + c.PublicKey.Hex() +
		"\nendpoint=" + ap.String() + "\n"
	if err := dev.IpcSet(uapi); err != nil {
		return 0, errors.New("probe: configure device failed")
	}
	if err := dev.Up(); err != nil {
		return 0, fmt.Errorf("probe: device up: %w", err)
	}
	// Turning persistent keepalive on makes the device send a keepalive
	// right away, which starts a handshake.
	if err := dev.IpcSet("public_key=" + c.PublicKey.Hex() + "\npersistent_keepalive_interval=25\n"); err != nil {
		return 0, errors.New("probe: start handshake failed")
	}
	select {
	case got := <-tb.resp:
		return got.Sub(tb.lastInitiation()), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("probe: no handshake response: %w", ctx.Err())
	}
}

// timingBind wraps a conn.Bind, noting when handshake initiations leave and
// when the first handshake response arrives.
type timingBind struct {
	conn.Bind
	mu   sync.Mutex
	sent time.Time
	resp chan time.Time
}

func (b *timingBind) lastInitiation() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sent
}

func (b *timingBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, p, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	wrapped := make([]conn.ReceiveFunc, len(fns))
	for i, fn := range fns {
		wrapped[i] = func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
			n, err := fn(bufs, sizes, eps)
			now := time.Now()
			for j := 0; j < n; j++ {
				if sizes[j] == device.MessageResponseSize && binary.LittleEndian.Uint32(bufs[j][:4]) == device.MessageResponseType {
					select {
					case b.resp <- now:
					default:
					}
				}
			}
			return n, err
		}
	}
	return wrapped, p, nil
}

func (b *timingBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	for _, buf := range bufs {
		if len(buf) >= 4 && binary.LittleEndian.Uint32(buf[:4]) == device.MessageInitiationType {
			b.mu.Lock()
			b.sent = time.Now()
			b.mu.Unlock()
		}
	}
	return b.Bind.Send(bufs, ep)
}
