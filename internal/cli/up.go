package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/client"
	"github.com/nitronet/nitronet/internal/clientstate"
	"github.com/nitronet/nitronet/internal/ephemeral"
	"github.com/nitronet/nitronet/internal/tunnel"
	"github.com/nitronet/nitronet/internal/udptcp"
	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/nitronet/nitronet/internal/wgkey"
	"github.com/spf13/cobra"
	"golang.zx2c4.com/wireguard/conn"
)

// runDir is where `up` keeps its pid, status and tunnel recovery state.
func runDir(d clientstate.Dir) string { return filepath.Join(d.Path, "run") }

// chooseDevice returns the device to connect with: the one ref names (an
// ID or a name, see findDevice) if ref is given, otherwise the only device
// of the account whose private key is on this machine.
func chooseDevice(ctx context.Context, cl *client.Client, d clientstate.Dir, ref string) (client.Device, wgkey.PrivateKey, error) {
	ds, err := cl.Devices(ctx)
	if err != nil {
		return client.Device{}, wgkey.PrivateKey{}, err
	}
	var here []client.Device
	for _, dev := range ds {
		if _, err := d.Key(dev.ID); err == nil {
			here = append(here, dev)
		}
	}
	switch {
	case ref != "":
		dev, err := findDevice(ds, ref)
		if err != nil {
			return client.Device{}, wgkey.PrivateKey{}, err
		}
		k, err := d.Key(dev.ID)
		return dev, k, err
	case len(here) == 1:
		k, err := d.Key(here[0].ID)
		return here[0], k, err
	case len(here) == 0:
		return client.Device{}, wgkey.PrivateKey{}, errors.New("no device of yours has its key on this machine: run `nitronet device add NAME`")
	default:
		return client.Device{}, wgkey.PrivateKey{}, errors.New("several devices have keys here: choose one with --device ID|NAME")
	}
}

// Transports of `nitronet up --transport`.
const (
	transportUDP = "udp"
	transportTCP = "tcp"
)

// tcpEndpoint returns the HOST:PORT where g takes WireGuard over TCP: its
// endpoint's host and its TCP port.
func tcpEndpoint(g client.Gateway) (string, error) {
	host, _, err := net.SplitHostPort(g.Endpoint)
	if err != nil || g.TCPPort == 0 {
		return "", fmt.Errorf("gateway %s (%s) does not take WireGuard over TCP: its operator must start it with --tcp-port", g.ID, g.Region)
	}
	return net.JoinHostPort(host, strconv.Itoa(g.TCPPort)), nil
}

// chooseGateway picks a gateway by id or region, or with "auto" the one with
// the lowest handshake RTT measured from here (the measurement stays here).
// Over transport tcp only gateways with a TCP port are candidates, and the
// handshake is timed over TCP.
func chooseGateway(ctx context.Context, cl *client.Client, want, transport string, key wgkey.PrivateKey, log *slog.Logger) (client.Gateway, error) {
	gws, err := cl.Gateways(ctx)
	if err != nil {
		return client.Gateway{}, err
	}
	var ready []client.Gateway
	for _, g := range gws {
		if g.PublicKey == "" {
			continue
		}
		if transport == transportTCP && g.TCPPort == 0 && (want == "" || want == "auto") {
			continue
		}
		ready = append(ready, g)
	}
	if len(ready) == 0 && transport == transportTCP {
		return client.Gateway{}, errors.New("no enrolled gateway takes WireGuard over TCP (gateways offer it with --tcp-port)")
	}
	if len(ready) == 0 {
		return client.Gateway{}, errors.New("the server has no enrolled gateway yet")
	}
	if want == "" && len(ready) == 1 {
		return ready[0], nil
	}
	if want == "" || want == "auto" {
		var cands []tunnel.Candidate
		for _, g := range ready {
			pk, err := wgkey.ParsePublic(g.PublicKey)
			if err != nil {
				continue
			}
			ep := g.Endpoint
			if transport == transportTCP {
				if ep, err = tcpEndpoint(g); err != nil {
					continue
				}
			}
			cands = append(cands, tunnel.Candidate{Name: g.ID, Endpoint: ep, PublicKey: pk})
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		probe := tunnel.HandshakeProbe(key, log)
		if transport == transportTCP {
			probe = tunnel.HandshakeProbeOver(key, func() conn.Bind { return udptcp.NewClientBind(udptcp.ClientConfig{}) }, log)
		}
		best, _, err := tunnel.PickFastest(pctx, cands, probe)
		if err != nil {
			return client.Gateway{}, fmt.Errorf("no gateway answered: %w", err)
		}
		for _, g := range ready {
			if g.ID == best.Name {
				return g, nil
			}
		}
	}
	for _, g := range ready {
		if g.ID == want || g.Region == want {
			return g, nil
		}
	}
	return client.Gateway{}, fmt.Errorf("no enrolled gateway %q", want)
}

// deviceConfig fetches the wg-quick config for a device and gateway and
// fills in the local private key.
func deviceConfig(ctx context.Context, cl *client.Client, deviceID, gatewayID string, key wgkey.PrivateKey) (wgconf.Config, error) {
	q := ""
	if gatewayID != "" {
		q = "?gateway=" + url.QueryEscape(gatewayID)
	}
	return fetchDeviceConfig(ctx, cl, deviceID, q, key)
}

// fetchDeviceConfig fetches the wg-quick config for a device with the
// query q ("" or "?…") and fills in the local private key.
func fetchDeviceConfig(ctx context.Context, cl *client.Client, deviceID, q string, key wgkey.PrivateKey) (wgconf.Config, error) {
	var text string
	if err := cl.Do(ctx, "GET", "/api/v1/devices/"+url.PathEscape(deviceID)+"/wireguard"+q, nil, &text); err != nil {
		return wgconf.Config{}, err
	}
	c, err := wgconf.Parse(text)
	if err != nil {
		return c, fmt.Errorf("server sent a bad configuration: %w", err)
	}
	c.Interface.PrivateKey = &key
	return c, nil
}

// upStatus is what a running `up` writes for `status`.
type upStatus struct {
	PID        int    `json:"pid"`
	Mode       string `json:"mode"`
	Interface  string `json:"interface,omitempty"`
	Device     string `json:"device"`
	DeviceName string `json:"device_name,omitempty"`
	Gateway    string `json:"gateway"`
	Region     string `json:"region"`
	Transport  string `json:"transport,omitempty"` // "udp" or "tcp"; "" from before --transport
	// Entry and EntryRegion name the entry gateway of a multihop tunnel,
	// whose exit is Gateway; "" otherwise.
	Entry         string    `json:"entry,omitempty"`
	EntryRegion   string    `json:"entry_region,omitempty"`
	Addresses     []string  `json:"addresses"`
	SOCKS         string    `json:"socks,omitempty"`
	HTTP          string    `json:"http,omitempty"`
	LastHandshake time.Time `json:"last_handshake,omitempty"`
	Since         time.Time `json:"since"`
	// QuantumResistant: the tunnel runs on an ephemeral key with an
	// ML-KEM pre-shared key.
	QuantumResistant bool `json:"quantum_resistant,omitempty"`
}

func writeStatus(dir string, s upStatus) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".status.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "status.json"))
}

// upFlags are the flags of `nitronet up`.
type upFlags struct {
	gateway, device, socks, httpProxy, ifName, transport, entry, exit string
	userspace, killSwitch                                             bool
	// quantum asks the gateway for an ephemeral peer once the tunnel is
	// up; allowDowngrade keeps the classical tunnel if the gateway has no
	// such service.
	quantum, allowDowngrade bool
	// cpuProfile, if set, is where a Go CPU profile of the whole run is
	// written (debugging; see startCPUProfile).
	cpuProfile string
}

func newUpCmd(g *globals) *cobra.Command {
	var o upFlags
	c := &cobra.Command{
		Use:   "up [--gateway ID|REGION|auto | --entry ID|REGION --exit ID|REGION] [--userspace] [--transport udp|tcp]",
		Short: "Connect through a gateway until Ctrl-C or `nitronet down`",
		Long: "Connect. In TUN mode (root) all traffic and DNS go through the tunnel and IPv6 is\n" +
			"carried or blocked; --kill-switch drops whatever would bypass it. With --userspace no\n" +
			"root is needed: a SOCKS5 and an HTTP proxy on 127.0.0.1 carry traffic through the\n" +
			"tunnel. --gateway auto measures the handshake time to each gateway from here and\n" +
			"picks the fastest; the measurements are never sent anywhere. --transport tcp carries\n" +
			"WireGuard over TCP to the gateway's TCP port, for networks that block UDP (slower).\n" +
			"--entry and --exit (multihop) carry the tunnel to the exit gateway inside a tunnel to\n" +
			"the entry gateway: the entry sees your address but not where you go, the exit sees\n" +
			"where you go but not your address.\n\n" +
			"Quantum-resistant (default): once the tunnel is up, the client asks the gateway through\n" +
			"it for an ephemeral peer, derives a pre-shared key with ML-KEM-1024 and switches the\n" +
			"tunnel to a fresh key with that pre-shared key. If the gateway does not offer this, up\n" +
			"closes the tunnel and fails, unless --allow-downgrade; --quantum-resistant=false skips it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.cpuProfile != "" {
				stop, err := startCPUProfile(o.cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			return runUp(cmd.Context(), g, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.gateway, "gateway", "", "gateway id, region or auto (default: the only gateway, else auto)")
	f.StringVar(&o.device, "device", "", "device ID or name (default: the only device whose key is on this machine)")
	f.BoolVar(&o.userspace, "userspace", false, "no root: run SOCKS5 and HTTP proxies on 127.0.0.1 instead of a TUN")
	f.StringVar(&o.socks, "socks", tunnel.DefaultSOCKSListen, "userspace: SOCKS5 listen address (loopback)")
	f.StringVar(&o.httpProxy, "http-proxy", tunnel.DefaultHTTPListen, "userspace: HTTP proxy listen address (loopback)")
	f.BoolVar(&o.killSwitch, "kill-switch", false, "TUN mode: drop all traffic that would bypass the tunnel while it is up")
	f.StringVar(&o.ifName, "interface", tunnel.DefaultIfName, "TUN mode: interface name")
	f.BoolVar(&o.quantum, "quantum-resistant", true, "switch to an ephemeral key with an ML-KEM-1024 pre-shared key once connected")
	f.BoolVar(&o.allowDowngrade, "allow-downgrade", false, "stay connected without quantum resistance if the gateway does not offer it (default: disconnect)")
	f.StringVar(&o.entry, "entry", "", "multihop: the gateway (id or region) your tunnel enters by, which sees your address")
	f.StringVar(&o.exit, "exit", "", "multihop: the gateway (id or region) your traffic leaves by, which sees its destinations")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "debugging: write a Go CPU profile of the whole run to this file (stack samples only: no addresses, keys or counts)")
	f.StringVar(&o.transport, "transport", transportUDP, "udp, or tcp where UDP is blocked: WireGuard framed over TCP to a gateway that offers it")
	return g.serverFlag(c)
}

// runUp is `nitronet up`: it chooses the device and gateway, brings the
// tunnel up, and keeps its status file current until ctx ends.
func runUp(ctx context.Context, g *globals, o upFlags) error {
	cl, _, err := g.authed()
	if err != nil {
		return err
	}
	d, err := g.dir()
	if err != nil {
		return err
	}
	if o.transport != transportUDP && o.transport != transportTCP {
		return fmt.Errorf("--transport %q: want udp or tcp", o.transport)
	}
	log := newLogger(g.env.Stderr, "text", "warn")
	dev, key, err := chooseDevice(ctx, cl, d, o.device)
	if err != nil {
		return err
	}
	multihop := o.entry != "" || o.exit != ""
	switch {
	case multihop && (o.entry == "" || o.exit == ""):
		return errors.New("--entry and --exit go together")
	case multihop && o.gateway != "":
		return errors.New("--gateway does not go with --entry and --exit: the exit is the gateway")
	}
	want, exitTransport := o.gateway, o.transport
	if multihop {
		// The transport is that of this machine's network: the entry's.
		want, exitTransport = o.exit, transportUDP
	}
	gateway, err := chooseGateway(ctx, cl, want, exitTransport, key, log)
	if err != nil {
		return err
	}
	conf, err := deviceConfig(ctx, cl, dev.ID, gateway.ID, key)
	if err != nil {
		return err
	}
	var entry *client.Gateway
	var entryConf *wgconf.Config
	if multihop {
		e, err := chooseGateway(ctx, cl, o.entry, o.transport, key, log)
		if err != nil {
			return fmt.Errorf("--entry: %w", err)
		}
		if e.ID == gateway.ID {
			return fmt.Errorf("--entry and --exit are the same gateway %s: choose two", e.ID)
		}
		ec, err := deviceConfig(ctx, cl, dev.ID, e.ID, key)
		if err != nil {
			return err
		}
		entry, entryConf = &e, &ec
	}
	var bind conn.Bind
	if o.transport == transportTCP {
		// Over TCP to the first gateway: the entry's in multihop.
		first, firstConf := gateway, &conf
		if entry != nil {
			first, firstConf = *entry, entryConf
		}
		ep, err := tcpEndpoint(first)
		if err != nil {
			return err
		}
		firstConf.Peers[0].Endpoint = ep
		bind = udptcp.NewClientBind(udptcp.ClientConfig{})
	}
	rd := runDir(d)
	if err := os.MkdirAll(rd, 0o700); err != nil {
		return err
	}
	if pid, ok := runningPID(rd); ok {
		return fmt.Errorf("a tunnel is already up (pid %d): run `nitronet down` first", pid)
	}
	t, err := tunnel.Up(ctx, tunnel.Options{
		Config: conf, Userspace: o.userspace, ProxyListen: o.socks, HTTPListen: o.httpProxy,
		KillSwitch: o.killSwitch, IfName: o.ifName, StateDir: filepath.Join(rd, "tunnel"), Logger: log, Bind: bind,
		QuantumResistant: o.quantum, Entry: entryConf,
	})
	if err != nil {
		return err
	}
	defer func() {
		t.Close()
		os.Remove(filepath.Join(rd, "pid"))
		os.Remove(filepath.Join(rd, "status.json"))
	}()
	if err := os.WriteFile(filepath.Join(rd, "pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return err
	}
	// Multihop: each hop gets its own pre-shared key, the entry's first,
	// since the exit's exchange travels through the entry.
	if e := t.Entry(); e != nil {
		if err := quantumUpgrade(ctx, g.env, e, o); err != nil {
			return fmt.Errorf("entry gateway %s: %w", entry.ID, err)
		}
	}
	if err := quantumUpgrade(ctx, g.env, t, o); err != nil {
		return err
	}
	st := t.Status()
	if e := t.Entry(); e != nil {
		st.QuantumResistant = st.QuantumResistant && e.Status().QuantumResistant
	}
	us := upStatus{PID: os.Getpid(), Mode: st.Mode, Interface: st.Interface, Device: dev.ID, DeviceName: dev.Name,
		Gateway: gateway.ID, Region: gateway.Region, Transport: o.transport, SOCKS: st.SOCKSAddr, HTTP: st.HTTPAddr, Since: g.env.Clock(),
		QuantumResistant: st.QuantumResistant}
	if entry != nil {
		us.Entry, us.EntryRegion = entry.ID, entry.Region
	}
	for _, a := range st.Addresses {
		us.Addresses = append(us.Addresses, a.String())
	}
	if err := writeStatus(rd, us); err != nil {
		return err
	}
	return followTunnel(ctx, g.env, t, rd, us)
}

// quantumUpgrade makes t, brought up holding its traffic
// (tunnel.Options.QuantumResistant), quantum-resistant unless o turns that
// off. A gateway without the service is an error (the caller closes the
// tunnel) unless o allows a downgrade, which releases the hold; any other
// failure always is.
func quantumUpgrade(ctx context.Context, env *Env, t *tunnel.Tunnel, o upFlags) error {
	if !o.quantum {
		return nil
	}
	err := t.MakeQuantumResistant(ctx, tunnel.QuantumOptions{})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ephemeral.ErrUnsupported) && o.allowDowngrade:
		if err := t.AllowClassical(); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Warning: %v; connected WITHOUT quantum resistance (--allow-downgrade).\n", err)
		return nil
	case errors.Is(err, ephemeral.ErrUnsupported):
		return fmt.Errorf("%w: disconnected. Use another gateway, or --allow-downgrade to connect without quantum resistance", err)
	default:
		return fmt.Errorf("quantum-resistant tunnel failed, disconnected: %w", err)
	}
}

// staleHandshake is how old a quantum-resistant tunnel's last handshake
// may grow before `up` renews the exchange. A live tunnel (keepalive every
// 25 s) handshakes every two minutes; after three (WireGuard's
// reject-after time) its keys are dead.
const staleHandshake = 200 * time.Second

// followTunnel waits for the tunnel's first handshake, says whether it
// came, and then keeps the last handshake in the status file in rd current
// until ctx ends. It renews a quantum-resistant tunnel whose handshakes
// stopped, and returns an error (the caller closes the tunnel) if that
// fails.
func followTunnel(ctx context.Context, env *Env, t *tunnel.Tunnel, rd string, us upStatus) error {
	// A tunnel is only "connected" once the gateway has answered a
	// handshake; a denied or unreachable gateway never does.
	hs := waitHandshake(ctx, t, 10*time.Second)
	us.LastHandshake = hs
	_ = writeStatus(rd, us)
	if hs.IsZero() {
		fmt.Fprintf(env.Stdout, "Tunnel up through %s (%s) as %s, but the gateway has not answered a handshake yet.\n",
			us.Region, us.Gateway, strings.Join(us.Addresses, ", "))
	} else {
		over := ""
		if us.Entry != "" {
			over = fmt.Sprintf(" via %s (%s)", us.EntryRegion, us.Entry)
		}
		if us.Transport == transportTCP {
			over += " over TCP"
		}
		fmt.Fprintf(env.Stdout, "Connected through %s (%s)%s as %s.\n", us.Region, us.Gateway, over, strings.Join(us.Addresses, ", "))
	}
	if us.QuantumResistant {
		fmt.Fprintln(env.Stdout, "Quantum-resistant: ephemeral key with an ML-KEM-1024 pre-shared key.")
	}
	if us.SOCKS != "" {
		fmt.Fprintf(env.Stdout, "SOCKS5 proxy on %s, HTTP proxy on %s.\n", us.SOCKS, us.HTTP)
	}
	fmt.Fprintln(env.Stdout, "Press Ctrl-C or run `nitronet down` to disconnect.")
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(env.Stdout, "Disconnected.")
			return nil
		case <-tick.C:
			if e := t.Entry(); e != nil {
				if est := e.Status(); est.QuantumResistant && env.Clock().Sub(est.LastHandshake) > staleHandshake {
					fmt.Fprintln(env.Stdout, "No handshake with the entry gateway for a while: renewing its quantum-resistant tunnel.")
					if err := e.MakeQuantumResistant(ctx, tunnel.QuantumOptions{}); err != nil {
						return fmt.Errorf("renewing the entry's quantum-resistant tunnel failed, disconnected: %w", err)
					}
				}
			}
			st := t.Status()
			if st.QuantumResistant && env.Clock().Sub(st.LastHandshake) > staleHandshake {
				// The gateway no longer knows the ephemeral key (it
				// restarted, or forgot it while this machine slept):
				// a new exchange, or the tunnel closes.
				fmt.Fprintln(env.Stdout, "No handshake for a while: renewing the quantum-resistant tunnel.")
				if err := t.MakeQuantumResistant(ctx, tunnel.QuantumOptions{}); err != nil {
					return fmt.Errorf("renewing the quantum-resistant tunnel failed, disconnected: %w", err)
				}
				st = t.Status()
			}
			us.LastHandshake = st.LastHandshake
			_ = writeStatus(rd, us)
		}
	}
}

// waitHandshake waits up to max for the tunnel's first handshake and
// returns its time, or the zero time if none came.
func waitHandshake(ctx context.Context, t *tunnel.Tunnel, max time.Duration) time.Time {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if hs := t.Status().LastHandshake; !hs.IsZero() {
			return hs
		}
		select {
		case <-ctx.Done():
			return time.Time{}
		case <-deadline.C:
			return time.Time{}
		case <-tick.C:
		}
	}
}

// runningPID returns the pid of a live `up`, if any.
func runningPID(rd string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(rd, "pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, false
	}
	return pid, true
}

func newDownCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Disconnect, restoring routes, DNS and firewall (also after a crash)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := g.dir()
			if err != nil {
				return err
			}
			rd := runDir(d)
			if pid, ok := runningPID(rd); ok {
				if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
					return fmt.Errorf("stop pid %d: %w", pid, err)
				}
				deadline := time.Now().Add(15 * time.Second)
				for {
					if _, ok := runningPID(rd); !ok {
						break
					}
					if time.Now().After(deadline) {
						return fmt.Errorf("pid %d did not stop", pid)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			// Whatever a crashed `up` left behind is undone here.
			if err := tunnel.Recover(filepath.Join(rd, "tunnel"), nil); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			os.Remove(filepath.Join(rd, "pid"))
			os.Remove(filepath.Join(rd, "status.json"))
			fmt.Fprintln(g.env.Stdout, "Disconnected.")
			return nil
		},
	}
}

// statusJSON is `status --json`.
type statusJSON struct {
	// State is "connected" (the gateway answered a handshake),
	// "no_handshake" (a tunnel is up but the gateway has not answered) or
	// "disconnected" (no tunnel is up).
	State     string `json:"state"`
	Connected bool   `json:"connected"`
	// Tunnel describes the tunnel that is up; null when disconnected.
	Tunnel *tunnelJSON `json:"tunnel"`
}

// tunnelJSON is the tunnel in `status --json`.
type tunnelJSON struct {
	PID           int       `json:"pid"`
	Mode          string    `json:"mode"`      // "tun" or "userspace"
	Interface     string    `json:"interface"` // TUN mode; "" in userspace mode
	DeviceID      string    `json:"device_id"`
	DeviceName    string    `json:"device_name"`
	GatewayID     string    `json:"gateway_id"` // the exit in a multihop tunnel
	Region        string    `json:"region"`
	Transport     string    `json:"transport"`        // "udp" or "tcp"
	EntryID       string    `json:"entry_gateway_id"` // multihop; "" otherwise
	EntryRegion   string    `json:"entry_region"`     // multihop; "" otherwise
	Addresses     []string  `json:"addresses"`
	SOCKSProxy    string    `json:"socks_proxy"` // userspace mode; "" in TUN mode
	HTTPProxy     string    `json:"http_proxy"`  // userspace mode; "" in TUN mode
	LastHandshake *jsonTime `json:"last_handshake"`
	Since         jsonTime  `json:"since"`
	// QuantumResistant: the tunnel switched to an ephemeral key with an
	// ML-KEM-1024 pre-shared key.
	QuantumResistant bool `json:"quantum_resistant"`
}

// readStatus returns the status of the tunnel `up` keeps in rd, or nil if
// none is up.
func readStatus(rd string) (*upStatus, error) {
	pid, ok := runningPID(rd)
	if !ok {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(rd, "status.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // `up` is still starting, or has just stopped
	}
	if err != nil {
		return nil, err
	}
	var s upStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("tunnel status file: %w", err)
	}
	s.PID = pid
	return &s, nil
}

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show whether a tunnel is up, through which gateway; exit status 3 when not connected",
		Long: "Show whether a tunnel is up and through which gateway. The exit status is 0 when\n" +
			"connected (the gateway answered a handshake) and 3 when not: no tunnel is up, or\n" +
			"its gateway has not answered a handshake yet.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := g.dir()
			if err != nil {
				return err
			}
			s, err := readStatus(runDir(d))
			if err != nil {
				return err
			}
			out := statusJSON{State: "disconnected"}
			if s != nil {
				out.State, out.Connected = "no_handshake", !s.LastHandshake.IsZero()
				if out.Connected {
					out.State = "connected"
				}
				out.Tunnel = &tunnelJSON{PID: s.PID, Mode: s.Mode, Interface: s.Interface, DeviceID: s.Device, DeviceName: s.DeviceName,
					GatewayID: s.Gateway, Region: s.Region, Transport: transportOf(s), EntryID: s.Entry, EntryRegion: s.EntryRegion,
					Addresses: nonNil(s.Addresses), SOCKSProxy: s.SOCKS, HTTPProxy: s.HTTP,
					LastHandshake: optTime(&s.LastHandshake), Since: jsonTime(s.Since), QuantumResistant: s.QuantumResistant}
			}
			if asJSON {
				err = printJSON(g.env.Stdout, out)
			} else {
				err = printStatus(g.env, s)
			}
			if err == nil && !out.Connected {
				err = &exitError{code: ExitNotConnected}
			}
			return err
		},
	}
	jsonFlag(c, &asJSON)
	return c
}

// transportOf returns s's transport, "udp" for a status written before
// --transport.
func transportOf(s *upStatus) string {
	if s.Transport == "" {
		return transportUDP
	}
	return s.Transport
}

// printStatus prints the tunnel status s (nil: none is up) as text.
func printStatus(env *Env, s *upStatus) error {
	if s == nil {
		_, err := fmt.Fprintln(env.Stdout, "Disconnected.")
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	if s.LastHandshake.IsZero() {
		fmt.Fprintf(tw, "state\ttunnel up (%s mode), no handshake yet\n", s.Mode)
	} else {
		fmt.Fprintf(tw, "state\tconnected (%s mode)\n", s.Mode)
	}
	if s.Entry != "" {
		fmt.Fprintf(tw, "entry\t%s (%s)\n", s.EntryRegion, s.Entry)
		fmt.Fprintf(tw, "exit\t%s (%s)\n", s.Region, s.Gateway)
	} else {
		fmt.Fprintf(tw, "gateway\t%s (%s)\n", s.Region, s.Gateway)
	}
	if transportOf(s) == transportTCP {
		fmt.Fprintf(tw, "transport\tTCP (UDP-over-TCP)\n")
	}
	if s.DeviceName != "" {
		fmt.Fprintf(tw, "device\t%s (%s)\n", s.DeviceName, s.Device)
	} else {
		fmt.Fprintf(tw, "device\t%s\n", s.Device)
	}
	fmt.Fprintf(tw, "addresses\t%s\n", strings.Join(s.Addresses, ", "))
	if s.QuantumResistant {
		fmt.Fprintln(tw, "quantum-resistant\tyes (ephemeral key, ML-KEM-1024 pre-shared key)")
	} else {
		fmt.Fprintln(tw, "quantum-resistant\tno")
	}
	if s.Interface != "" {
		fmt.Fprintf(tw, "interface\t%s\n", s.Interface)
	}
	if s.SOCKS != "" {
		fmt.Fprintf(tw, "proxies\tSOCKS5 %s, HTTP %s\n", s.SOCKS, s.HTTP)
	}
	if !s.LastHandshake.IsZero() {
		fmt.Fprintf(tw, "last handshake\t%s ago\n", env.Clock().Sub(s.LastHandshake).Round(time.Second))
	}
	fmt.Fprintf(tw, "up since\t%s\n", s.Since.Local().Format("2006-01-02 15:04:05"))
	return tw.Flush()
}

func newDeviceConfigCmd(g *globals) *cobra.Command {
	var gw, entry, exit string
	var qr bool
	c := &cobra.Command{
		Use:   "config ID|NAME [--gateway ID|REGION | --entry ID|REGION --exit ID|REGION] [--qr]",
		Short: "Print a complete wg-quick config (with this machine's private key) for stock WireGuard apps",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := g.authed()
			if err != nil {
				return err
			}
			dev, err := device(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			d, err := g.dir()
			if err != nil {
				return err
			}
			key, err := d.Key(dev.ID)
			if err != nil {
				return err
			}
			var conf wgconf.Config
			if entry != "" || exit != "" {
				if gw != "" {
					return usageError(cmd, "--gateway is for a single hop; with --entry, name the exit with --exit")
				}
				// The entry's relay port carries the tunnel to the exit.
				q := "?entry=" + url.QueryEscape(entry) + "&exit=" + url.QueryEscape(exit)
				conf, err = fetchDeviceConfig(cmd.Context(), cl, dev.ID, q, key)
			} else {
				conf, err = deviceConfig(cmd.Context(), cl, dev.ID, gw, key)
			}
			if err != nil {
				return err
			}
			text := conf.Render()
			if !qr {
				_, err := fmt.Fprint(g.env.Stdout, text)
				return err
			}
			code, err := wgconf.QR(text)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(g.env.Stdout, code)
			return err
		},
	}
	c.Flags().StringVar(&gw, "gateway", "", "gateway id or region (default: the only gateway)")
	c.Flags().StringVar(&entry, "entry", "", "multihop: the entry gateway (id or region), which must relay to --exit (`gateway --multihop-relay`)")
	c.Flags().StringVar(&exit, "exit", "", "multihop: the exit gateway (id or region); traffic leaves from here")
	c.Flags().BoolVar(&qr, "qr", false, "print the config as a QR code for the mobile WireGuard apps")
	return c
}
