// Package tunnel brings a Nitronet client tunnel up on this device.
//
// Up starts a wireguard-go device configured from a wgconf.Config in one of
// two modes:
//
//   - TUN mode (Linux, root): a kernel TUN interface carries all traffic
//     through the gateway, using a firewall mark on the tunnel's own UDP
//     socket and policy routing rules as wg-quick does, so the encrypted
//     packets to the gateway do not loop back into the tunnel. DNS is pointed
//     at the gateway, IPv6 is carried or blocked so it cannot leak, and an
//     optional kill switch drops everything that does not go through the
//     tunnel. Every change is first recorded in a state file so that Recover
//     can undo it after a crash.
//   - Userspace mode (no privileges): the device runs on a gVisor netstack
//     and the tunnel is reached through local SOCKS5 and HTTP proxies on
//     127.0.0.1. Nothing on the host changes.
//
// The package never logs endpoint addresses, destinations or DNS names, and
// never writes the private key anywhere: the caller keeps it.
package tunnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Defaults for Options.
const (
	DefaultSOCKSListen = "127.0.0.1:1080"
	DefaultHTTPListen  = "127.0.0.1:8118"
	DefaultIfName      = "nitronet0"
	DefaultMTU         = 1420
)

// TUN-mode constants. The firewall mark and routing table are 51820
// (0xca6c), as with wg-quick.
const (
	// FwMark marks the tunnel's own UDP packets to the gateway.
	FwMark = 0xca6c
	// RouteTable is the routing table holding the tunnel's default routes.
	RouteTable = 0xca6c
	// NftTableName is the inet nftables table holding the kill switch and
	// the IPv6 leak block.
	NftTableName = "nitronet_client"
)

// Options configures Up.
type Options struct {
	// Config is the WireGuard configuration. It must have a private key,
	// at least one address and at least one peer.
	Config wgconf.Config
	// Userspace selects userspace mode (netstack and local proxies) instead
	// of TUN mode.
	Userspace bool
	// ProxyListen is the loopback address of the SOCKS5 proxy in userspace
	// mode; empty means DefaultSOCKSListen. Port 0 picks a free port (see
	// Status.SOCKSAddr).
	ProxyListen string
	// HTTPListen is the loopback address of the HTTP proxy in userspace
	// mode; empty means DefaultHTTPListen.
	HTTPListen string
	// KillSwitch, in TUN mode, installs a firewall table that drops every
	// outgoing packet that does not leave through the tunnel, is not the
	// tunnel's own UDP to the gateway, and is not loopback.
	KillSwitch bool
	// IfName is the TUN interface name in TUN mode; empty means
	// DefaultIfName.
	IfName string
	// StateDir is where TUN mode keeps its crash-recovery state and a
	// backup of /etc/resolv.conf, for example $XDG_RUNTIME_DIR/nitronet or
	// the config directory. It is required in TUN mode and created with mode
	// 0700 if missing. It never holds keys or endpoint addresses.
	StateDir string
	// QuantumResistant holds the tunnel's traffic for a quantum-resistant
	// switch: until MakeQuantumResistant has switched to the ephemeral key
	// (or AllowClassical gives up on it), the device carries nothing but
	// the exchange with the gateway's ephemeral-peer service, so no
	// traffic travels under the classical handshake alone. The routes,
	// DNS and proxies are set up as usual; what they send is dropped by
	// the device meanwhile. It needs exactly one peer and a DNS server
	// (the gateway's tunnel address). With Entry, the entry hop is held the
	// same way until its own switch (Tunnel.Entry), so the exit tunnel
	// carries nothing before both are switched.
	QuantumResistant bool
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Bind, if set, carries the device's WireGuard packets instead of a
	// UDP socket: for instance a udptcp.ClientBind, which sends them over
	// TCP to the peers' endpoints. In TUN mode it is given the mark
	// FwMark (SetMark), and must apply it to its own sockets so that they
	// bypass the tunnel. It is closed with the tunnel. With Entry, it
	// carries the entry hop's packets instead.
	Bind conn.Bind
	// Entry, if set, makes a multihop tunnel: Config's tunnel (to the
	// exit gateway) is carried inside a tunnel to the entry gateway
	// configured by Entry, WireGuard in WireGuard. The entry tunnel runs
	// on a userspace netstack holding nothing but the exit tunnel's UDP,
	// so the entry gateway sees this device's address and only encrypted
	// packets to the exit, and the exit gateway sees the destinations
	// coming from the entry gateway. The exit tunnel's MTU is lowered to
	// fit inside the entry's. Entry needs a private key, an address and
	// one peer.
	Entry *wgconf.Config
}

// Status describes a running tunnel. It carries no byte counts.
type Status struct {
	// Mode is "tun" or "userspace".
	Mode string
	// Interface is the TUN interface name, or "" in userspace mode.
	Interface string
	// Addresses are the tunnel addresses of this device.
	Addresses []netip.Prefix
	// Gateway is the first peer's endpoint as configured (for display on
	// this device only).
	Gateway string
	// LastHandshake is the time of the most recent handshake with any peer;
	// zero if there has been none. In a multihop tunnel it is the exit's.
	LastHandshake time.Time
	// EntryLastHandshake is, in a multihop tunnel, the most recent
	// handshake with the entry gateway; zero otherwise.
	EntryLastHandshake time.Time
	// Up reports whether the tunnel is running (false after Close).
	Up bool
	// SOCKSAddr and HTTPAddr are the proxy listen addresses in userspace
	// mode, "" otherwise.
	SOCKSAddr, HTTPAddr string
	// QuantumResistant reports whether MakeQuantumResistant switched the
	// tunnel to an ephemeral key with an ML-KEM pre-shared key.
	QuantumResistant bool
}

// Tunnel is a running tunnel returned by Up. Its methods are safe for
// concurrent use.
type Tunnel struct {
	log     *slog.Logger
	dev     *device.Device
	mode    string
	ifName  string
	addrs   []netip.Prefix
	gateway string

	socksAddr, httpAddr string
	entry               *hop // the entry hop of a multihop tunnel, or nil

	// dial opens connections through the tunnel (see DialContext).
	dial func(ctx context.Context, network, address string) (net.Conn, error)
	// longTerm is the configuration's private key and device its public
	// key, peer the gateway's (the first peer), and dns the configured DNS
	// servers.
	longTerm     wgkey.PrivateKey
	device, peer wgkey.PublicKey
	dns          []netip.Addr
	// allowed are the peer's allowed IPs as configured; hold, if not nil,
	// the only ones the device gives it until the quantum-resistant
	// switch (Options.QuantumResistant).
	allowed, hold []netip.Prefix

	mu      sync.Mutex
	closed  bool
	quantum bool         // switched to an ephemeral key (MakeQuantumResistant)
	closeFn func() error // undoes everything Up did, in reverse order
	err     error
}

// Up validates o, brings the tunnel up and returns it. On error everything
// already changed has been undone. ctx bounds the set-up (endpoint name
// resolution included), not the life of the tunnel: call Close to stop it.
// Endpoint names are resolved with the system resolver before anything
// changes.
//
// In TUN mode (Linux, root) Up, in this order: takes a lock in StateDir
// (one tunnel per StateDir; stale state from a crash is recovered first),
// writes the state file, creates the TUN interface and a wireguard-go device
// whose UDP socket carries the firewall mark FwMark, adds the addresses and
// sets the link up, routes non-default AllowedIPs through the interface in
// the main table, and for each address family with both a tunnel address
// and a default AllowedIP adds a default route in table RouteTable plus the
// rules "lookup main suppress_prefixlength 0" and "not fwmark FwMark lookup
// RouteTable" (as wg-quick does), sets net.ipv4.conf.all.src_valid_mark=1,
// installs the nftables table NftTableName if needed, and finally points DNS
// at the configured servers.
//
// IPv6 is carried when the configuration has an IPv6 address and ::/0;
// when IPv4 goes through the tunnel by default but IPv6 does not, the
// nftables table drops all IPv6 output except loopback, the tunnel
// interface and the marked tunnel UDP, so IPv6 cannot leak around it. The
// kill switch drops all other output of both families the same way (DHCP and
// LAN traffic included), and it stays in force after a crash until Recover.
//
// DNS: /etc/resolv.conf is backed up to StateDir and replaced by one naming
// the configured DNS servers, and restored by Close or Recover. A symlinked
// resolv.conf (systemd-resolved, resolvconf) is replaced by a regular file
// and the symlink is put back afterwards. A resolv.conf that is a mount point
// (a container's, or the one "ip netns exec NAME" bind-mounts from
// /etc/netns/NAME/resolv.conf when that file exists) is rewritten in place,
// so under "ip netns exec" it is /etc/netns/NAME/resolv.conf that changes and
// is restored. Without that file "ip netns exec" does not bind-mount, and a
// process that only switched network namespace (setns) shares the host's
// mount namespace: in both cases the host's own /etc/resolv.conf changes.
func Up(ctx context.Context, o Options) (*Tunnel, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := o.Config
	if c.Interface.PrivateKey == nil {
		return nil, errors.New("tunnel: configuration has no private key")
	}
	if len(c.Interface.Addresses) == 0 {
		return nil, errors.New("tunnel: configuration has no address")
	}
	if len(c.Peers) == 0 {
		return nil, errors.New("tunnel: configuration has no peer")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	var entry *hop
	if o.Entry != nil {
		var err error
		if entry, err = upEntry(ctx, &o); err != nil {
			return nil, err
		}
		c = o.Config
	}
	t, err := up(ctx, o, c)
	if entry == nil {
		return t, err
	}
	if err != nil {
		entry.close()
		return nil, err
	}
	t.entry = entry
	exit := t.closeFn
	t.closeFn = func() error {
		err := exit()
		entry.close()
		return err
	}
	return t, nil
}

// up is Up for the tunnel of c, a multihop tunnel's entry hop already up.
func up(ctx context.Context, o Options, c wgconf.Config) (*Tunnel, error) {
	device := c // what the device is configured with
	var (
		hold []netip.Prefix
		err  error
	)
	if o.QuantumResistant {
		if hold, err = holdPrefixes(c); err != nil {
			return nil, err
		}
		device.Peers = []wgconf.Peer{c.Peers[0]}
		device.Peers[0].AllowedIPs = hold
	}
	uapi, err := device.UAPIContext(ctx, systemResolver)
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	var t *Tunnel
	if o.Userspace {
		t, err = upUserspace(ctx, o, uapi)
	} else {
		t, err = upTUN(ctx, o, uapi)
	}
	if err != nil {
		return nil, err
	}
	t.hold = hold
	return t, nil
}

// upEntry brings up the entry hop of a multihop tunnel for o.Entry, and
// makes o's device send through it with an MTU that fits.
func upEntry(ctx context.Context, o *Options) (*hop, error) {
	e := *o.Entry
	if e.Interface.PrivateKey == nil || len(e.Interface.Addresses) == 0 || len(e.Peers) != 1 {
		return nil, errors.New("tunnel: the entry configuration needs a private key, an address and one peer")
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("tunnel: entry: %w", err)
	}
	h, err := upHop(ctx, e, o.bind(), !o.Userspace, o.QuantumResistant, o.Logger)
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	o.Bind = newHopBind(h)
	o.Config.Interface.MTU = hopMTU(e.Interface.MTU, o.Config.Interface.MTU)
	return h, nil
}

// Entry returns the entry hop of a multihop tunnel as a Tunnel of its own
// (userspace mode; MakeQuantumResistant gives it its own pre-shared key
// with the entry gateway), or nil for a tunnel of one hop. Closing t
// closes it.
func (t *Tunnel) Entry() *Tunnel {
	if t.entry == nil {
		return nil
	}
	return t.entry.tun
}

// configure fills in what t keeps of c for MakeQuantumResistant.
func (t *Tunnel) configure(c wgconf.Config) {
	t.longTerm = *c.Interface.PrivateKey
	t.device = t.longTerm.Public()
	t.peer = c.Peers[0].PublicKey
	t.dns = append([]netip.Addr(nil), c.Interface.DNS...)
	t.allowed = append([]netip.Prefix(nil), c.Peers[0].AllowedIPs...)
}

// Close stops the tunnel and undoes every change Up made. It returns the
// first close's result on every call.
func (t *Tunnel) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.err
	}
	t.closed = true
	t.err = t.closeFn()
	if t.err != nil {
		t.log.Warn("tunnel close incomplete", "err", t.err)
	} else {
		t.log.Info("tunnel down", "mode", t.mode)
	}
	return t.err
}

// Status returns the tunnel's current status.
func (t *Tunnel) Status() Status {
	t.mu.Lock()
	closed, quantum := t.closed, t.quantum
	t.mu.Unlock()
	s := Status{
		QuantumResistant: quantum,
		Mode:             t.mode,
		Interface:        t.ifName,
		Addresses:        append([]netip.Prefix(nil), t.addrs...),
		Gateway:          t.gateway,
		Up:               !closed,
		SOCKSAddr:        t.socksAddr,
		HTTPAddr:         t.httpAddr,
	}
	if !closed {
		if get, err := t.dev.IpcGet(); err == nil {
			s.LastHandshake = lastHandshake(get)
		}
		if t.entry != nil {
			s.EntryLastHandshake = t.entry.lastHandshake()
		}
	}
	return s
}

// lastHandshake returns the latest last_handshake_time over the peers in a
// UAPI "get" reply.
func lastHandshake(uapi string) time.Time {
	var latest time.Time
	var sec int64
	sc := bufio.NewScanner(strings.NewReader(uapi))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ := strconv.ParseInt(v, 10, 64)
			if sec != 0 || nsec != 0 {
				if t := time.Unix(sec, nsec); t.After(latest) {
					latest = t
				}
			}
		}
	}
	return latest
}

// deviceLogger adapts log for wireguard-go. Only errors are passed on, and
// only their format strings: the arguments may hold endpoint addresses.
func deviceLogger(log *slog.Logger) *device.Logger {
	return &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, _ ...any) {
			log.Warn("wireguard", "event", format)
		},
	}
}

// bind returns o.Bind, or a UDP bind if it is nil.
func (o Options) bind() conn.Bind {
	if o.Bind != nil {
		return o.Bind
	}
	return conn.NewDefaultBind()
}

func systemResolver(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
