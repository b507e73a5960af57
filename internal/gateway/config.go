package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/nitronet/nitronet/internal/ephemeral"
	"github.com/nitronet/nitronet/internal/gateway/admission"
	"github.com/nitronet/nitronet/internal/gateway/blocklist"
	"github.com/nitronet/nitronet/internal/gateway/dnsfwd"
	"github.com/nitronet/nitronet/internal/gateway/userspace"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/relay"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Default tunnel pools. A gateway takes the first host of each pool
// (100.64.0.1 and fd00:6e6e::1); devices are numbered from .2 upward by the
// control server.
const (
	DefaultPool4 = "100.64.0.0/10"
	DefaultPool6 = "fd00:6e6e::/48"
)

// Modes for Config.Mode.
const (
	ModeUserspace = "userspace"
	ModeKernel    = "kernel"
)

// Network is the tunnel side of a gateway: the TUN device that wireguard-go
// reads packets from and writes decrypted packets to, and whatever forwards
// them onward (a gVisor netstack in userspace mode; a kernel TUN interface
// with nftables NAT and isolation in kernel mode).
//
// The gateway hands TUN() to wireguard-go, which closes it when the device
// is closed; the gateway then calls Close, which must therefore be
// idempotent and tolerate the TUN device being closed already.
type Network interface {
	TUN() tun.Device
	Close() error
}

// NetworkConfig is what a NetworkFactory needs to build a Network.
type NetworkConfig struct {
	// Addresses are the gateway's own tunnel addresses, each with the prefix
	// length of its pool: 100.64.0.1/10 and fd00:6e6e::1/48 by default.
	// Their masked forms are the client pools. A kernel network assigns them
	// to its interface; both kinds refuse client-to-client traffic inside
	// the pools.
	Addresses []netip.Prefix
	// MTU of the tunnel interface.
	MTU int
	// AllowPrivate lists private or loopback destinations clients may reach.
	AllowPrivate []netip.Prefix
	// DNSUpstreams are the resolvers the gateway's DNS service on DNSPort of
	// its tunnel addresses forwards to.
	DNSUpstreams []string
	// DNSPort is the port of the gateway's DNS service on Addresses, UDP
	// and TCP, or 0 if there is none (no DNSUpstreams). A userspace network
	// serves DNS on it; a kernel network must let clients reach it (the
	// gateway itself serves it on kernel sockets once the network is set
	// up) and should refuse it when it is 0.
	DNSPort int
	// ServicePorts are the TCP ports of the gateway's own services on
	// Addresses and on the DNSResolvers' addresses, other than DNS (the
	// ephemeral-peer service of quantum-resistant tunnels). A kernel
	// network must let clients reach them; the gateway serves them itself (through TCPListener if the
	// network implements it, else on kernel sockets).
	ServicePorts []int
	// DNSResolvers are the further addresses of the DNS service, one per
	// set of blocking categories, with the blocker of each (see package
	// dnsblock); empty without a DNS service. A userspace network serves
	// them like Addresses; a kernel network must assign each address to
	// its interface and let clients reach DNSPort on it, as on Addresses.
	DNSResolvers []dnsfwd.Resolver
	// Dial, if set, opens the outbound connections of a userspace network
	// (for instance to pin an egress address). Kernel networks ignore it.
	Dial userspace.DialFunc
	// Logger must never receive client addresses, destinations, DNS names or
	// per-client counters.
	Logger *slog.Logger
}

// Pools returns the client pools: the masked forms of Addresses.
func (nc NetworkConfig) Pools() []netip.Prefix {
	out := make([]netip.Prefix, len(nc.Addresses))
	for i, a := range nc.Addresses {
		out[i] = a.Masked()
	}
	return out
}

// NetworkFactory builds the Network for a gateway. Kernel mode is plugged in
// by setting Config.NewNetwork to a factory from the kernel networking
// package.
type NetworkFactory func(NetworkConfig) (Network, error)

// UserspaceNetwork is the NetworkFactory of userspace mode: a netstack that
// terminates clients' TCP and UDP and re-originates them from the gateway's
// own sockets. It needs no privileges.
func UserspaceNetwork(nc NetworkConfig) (Network, error) {
	return userspace.New(userspace.Config{
		Addresses:    nc.Addresses,
		AllowPrivate: nc.AllowPrivate,
		DNSUpstreams: nc.DNSUpstreams,
		DNSPort:      nc.DNSPort,
		DNSResolvers: nc.DNSResolvers,
		MTU:          nc.MTU,
		Dial:         nc.Dial,
		Logger:       nc.Logger,
	})
}

// Config configures a Gateway. Only ServerURL and, for a first start, Token
// are required; New fills every other zero field with its default.
type Config struct {
	// ServerURL is the control server's base URL, e.g. https://vpn.example.
	ServerURL string
	// Token is the one-time enrollment token. It is not needed when KeyFile
	// already holds a credential, or with Enroll.
	Token string
	// Enroll, if set, enrolls the gateway instead of Token: Run calls it
	// with the gateway's public key when KeyFile holds no credential, once
	// the WireGuard port is bound, and again (with the same key) when the
	// control server refuses the credential KeyFile holds, as after the
	// gateway was removed. `nitronet serve --gateway` uses it to create its
	// own gateway's record directly. Without Enroll a refused credential
	// is ErrCredentialRefused: a token is good for one enrollment only.
	Enroll func(ctx context.Context, pub wgkey.PublicKey) (gwproto.EnrollResponse, error)
	// Endpoint and Region, if set, are reported to the control server at
	// every start (see gwproto.HelloRequest) and replace those of the
	// gateway's record. Endpoint is HOST:PORT, or HOST alone for
	// HOST:listen port; a port other than the listen port is for a port
	// forward. Empty keeps the record's value.
	Endpoint, Region string
	// ListenPort is the WireGuard UDP port. 0 picks a free port (tests);
	// the command line should default to 51820.
	ListenPort int
	// TCPPort, if not 0, is a TCP port on which the gateway also takes
	// WireGuard framed over TCP, for clients on networks that block UDP
	// (package udptcp), into the same device, behind the same admission
	// policy and handshake gate. -1 picks a free port (tests). It is
	// reported to the control server, which tells clients.
	TCPPort int
	// Relays, if any, are multihop relay ports (package relay): each
	// forwards the UDP datagrams reaching it to an exit gateway's
	// WireGuard endpoint and the replies back, with a socket per client
	// source, so that stock WireGuard apps can use this gateway as a
	// multihop entry. They are reported to the control server, which
	// hands out configurations through them. Off by default.
	Relays []relay.Route
	// Mode is ModeUserspace (the default when empty) or ModeKernel. Kernel
	// mode requires NewNetwork.
	Mode string
	// NewNetwork builds the tunnel network. Nil means UserspaceNetwork in
	// userspace mode and is an error in kernel mode.
	NewNetwork NetworkFactory
	// KeyFile, if set, is where the gateway keeps its private key and
	// credential (JSON, mode 0600), so a restart needs no new token. It is
	// the only file the gateway writes.
	KeyFile string
	// Admission decides which client source addresses may reach the
	// WireGuard port. It is held in memory only.
	Admission admission.Policy
	// DNSUpstreams are the resolvers ("host" or "host:port") behind the
	// gateway's DNS service on its tunnel addresses; see package dnsfwd.
	// With none there is no DNS service. In userspace mode the network
	// serves it; in kernel mode the gateway serves it on kernel sockets
	// bound to Addr4 and Addr6 once the network is set up.
	DNSUpstreams []string
	// DNSPort is the UDP and TCP port of the DNS service; 0 means 53.
	// Clients expect 53; other values are for tests.
	DNSPort int
	// DisableEphemeralPeers turns off the ephemeral-peer service of
	// quantum-resistant tunnels (package ephemeral). Clients that ask for
	// one then fail closed unless their user allows a downgrade.
	DisableEphemeralPeers bool
	// EphemeralPort is the TCP port of the ephemeral-peer service on the
	// tunnel addresses; 0 means ephemeral.Port (1337), which clients
	// expect.
	EphemeralPort int
	// UAPISocket, if set, is the path of a unix socket serving a
	// read-only wireguard-go UAPI ("get" only) for `wg show`: live peer
	// state, which includes endpoints, for whoever may open the socket.
	// It is off by default.
	UAPISocket string
	// Blocklists are the operator's DNS blocklists by category (see
	// package blocklist). Run loads them before anything else (a list it
	// cannot use stops the start), and again each time Reload delivers.
	// With a DNS service the gateway answers DNS on one resolver address
	// per set of categories in Pool6 (see package dnsblock), lists or not:
	// a category without a list blocks nothing.
	Blocklists []blocklist.Source
	// Reload, if not nil, makes a running gateway reload Blocklists each
	// time it delivers (the command line sends on SIGHUP). A reload that
	// fails is logged and keeps the lists in force.
	Reload <-chan struct{}
	// AllowPrivate lists private or loopback destinations clients may reach.
	AllowPrivate []netip.Prefix
	// Pool4 and Pool6 are the tunnel pools; defaults DefaultPool4 and
	// DefaultPool6; the zero prefix means the default.
	Pool4, Pool6 netip.Prefix
	// Addr4 and Addr6 are the gateway's own tunnel addresses; by default the
	// first host of each pool.
	Addr4, Addr6 netip.Addr
	// MTU of the tunnel; 0 means 1420.
	MTU int
	// Dial opens outbound connections in userspace mode; nil means a
	// net.Dialer.
	Dial userspace.DialFunc
	// Bind is the UDP transport for WireGuard; nil means
	// conn.NewDefaultBind(). It is wrapped by the admission filter.
	Bind conn.Bind
	// HTTPClient talks to the control server; nil means a new http.Client.
	HTTPClient *http.Client
	// Logger receives operational messages; nil discards them. Nothing the
	// gateway logs contains a client endpoint, destination, DNS name or
	// per-client counter.
	Logger *slog.Logger
	// Clock returns the current time; nil means time.Now. Session ends are
	// computed from it and from the device's handshake timestamps, which are
	// wall-clock times, so outside tests it must be the wall clock.
	Clock func() time.Time
	// Rand is the randomness for the key and for jitter; nil means
	// crypto/rand.Reader.
	Rand io.Reader
	// SessionPoll is how often handshakes are polled; 0 means 5s.
	SessionPoll time.Duration
	// PeerWait is the long-poll hold time asked of the server; 0 means 25s.
	PeerWait time.Duration
	// MaxBackoff caps retry delays; 0 means 10s.
	MaxBackoff time.Duration
	// SessionQueue bounds the intervals held in RAM while the control
	// server is unreachable; 0 means 10000.
	SessionQueue int
}

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	if c.ServerURL == "" {
		return c, errors.New("gateway: ServerURL is required")
	}
	switch c.Mode {
	case "":
		c.Mode = ModeUserspace
	case ModeUserspace, ModeKernel:
	default:
		return c, fmt.Errorf("gateway: unknown mode %q", c.Mode)
	}
	if c.NewNetwork == nil {
		if c.Mode == ModeKernel {
			return c, errors.New("gateway: kernel mode needs a NewNetwork factory")
		}
		c.NewNetwork = UserspaceNetwork
	}
	if c.ListenPort < 0 || c.ListenPort > 65535 {
		return c, errors.New("gateway: ListenPort out of range")
	}
	if c.TCPPort < -1 || c.TCPPort > 65535 {
		return c, errors.New("gateway: TCPPort out of range")
	}
	for _, r := range c.Relays {
		if r.Port < 1 || r.Port > 65535 || r.Exit == "" || r.Upstream == "" {
			return c, fmt.Errorf("gateway: relay %d=%s@%s: want a port 1 to 65535, an exit and an upstream", r.Port, r.Exit, r.Upstream)
		}
	}
	if c.Endpoint != "" {
		// Any port will do to check a HOST alone; Run joins the bound one.
		if _, err := gwproto.ResolveEndpoint(c.Endpoint, 1); err != nil {
			return c, fmt.Errorf("gateway: %w", err)
		}
	}
	if c.DNSPort == 0 {
		c.DNSPort = 53
	}
	if c.DNSPort < 0 || c.DNSPort > 65535 {
		return c, errors.New("gateway: DNSPort out of range")
	}
	if c.EphemeralPort == 0 {
		c.EphemeralPort = ephemeral.Port
	}
	if c.EphemeralPort < 0 || c.EphemeralPort > 65535 || (c.EphemeralPort == c.DNSPort && len(c.DNSUpstreams) > 0) {
		return c, errors.New("gateway: EphemeralPort out of range or the DNS port")
	}
	if !c.Pool4.IsValid() {
		c.Pool4 = netip.MustParsePrefix(DefaultPool4)
	}
	if !c.Pool6.IsValid() {
		c.Pool6 = netip.MustParsePrefix(DefaultPool6)
	}
	c.Pool4, c.Pool6 = c.Pool4.Masked(), c.Pool6.Masked()
	if !c.Pool4.Addr().Is4() || !c.Pool6.Addr().Is6() {
		return c, errors.New("gateway: Pool4 must be IPv4 and Pool6 IPv6")
	}
	if !c.Addr4.IsValid() {
		c.Addr4 = c.Pool4.Addr().Next()
	}
	if !c.Addr6.IsValid() {
		c.Addr6 = c.Pool6.Addr().Next()
	}
	if !c.Pool4.Contains(c.Addr4) || !c.Pool6.Contains(c.Addr6) {
		return c, errors.New("gateway: gateway addresses must be inside their pools")
	}
	if c.MTU == 0 {
		c.MTU = 1420
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.SessionPoll == 0 {
		c.SessionPoll = 5 * time.Second
	}
	if c.PeerWait == 0 {
		c.PeerWait = 25 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.SessionQueue == 0 {
		c.SessionQueue = 10000
	}
	return c, nil
}

// servicePorts returns the TCP ports of the gateway's own services on its
// tunnel addresses, besides DNS.
func (c Config) servicePorts() []int {
	if c.DisableEphemeralPeers {
		return nil
	}
	return []int{c.EphemeralPort}
}

// addresses returns the gateway's tunnel addresses with pool lengths.
func (c Config) addresses() []netip.Prefix {
	return []netip.Prefix{
		netip.PrefixFrom(c.Addr4, c.Pool4.Bits()),
		netip.PrefixFrom(c.Addr6, c.Pool6.Bits()),
	}
}
