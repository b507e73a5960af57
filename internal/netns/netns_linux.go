package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultPrefix starts the name of every namespace this package creates.
const DefaultPrefix = "nn-"

// RequireEnv is the environment variable that turns Require's skip into a
// failure. CI sets it to "1" so that namespace tests cannot silently vanish.
const RequireEnv = "NITRONET_REQUIRE_NETNS"

// runDir is where named namespaces are bind-mounted, as by iproute2.
const runDir = "/run/netns"

// TransitRange returns 198.18.0.0/15, the only range allowed for transit
// links between namespaces.
func TransitRange() netip.Prefix { return netip.MustParsePrefix("198.18.0.0/15") }

// TunnelRanges returns 100.64.0.0/10 and fd00::/8, the only ranges allowed
// for tunnel addresses.
func TunnelRanges() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("fd00::/8")}
}

// within reports whether p is valid and lies entirely inside outer.
func within(outer, p netip.Prefix) bool {
	return p.IsValid() && p.Addr().Is4() == outer.Addr().Is4() &&
		p.Bits() >= outer.Bits() && outer.Contains(p.Addr())
}

// CheckTransit returns nil if p lies inside TransitRange, and an error
// otherwise.
func CheckTransit(p netip.Prefix) error {
	if !within(TransitRange(), p) {
		return fmt.Errorf("netns: %v is outside the transit range %v", p, TransitRange())
	}
	return nil
}

// CheckTunnel returns nil if p lies inside one of TunnelRanges, and an error
// otherwise.
func CheckTunnel(p netip.Prefix) error {
	for _, r := range TunnelRanges() {
		if within(r, p) {
			return nil
		}
	}
	return fmt.Errorf("netns: %v is outside the tunnel ranges %v", p, TunnelRanges())
}

// checkRouteDst allows default routes and destinations inside the transit or
// tunnel ranges.
func checkRouteDst(dst netip.Prefix) error {
	if dst.IsValid() && dst.Bits() == 0 {
		return nil
	}
	if CheckTransit(dst) == nil || CheckTunnel(dst) == nil {
		return nil
	}
	return fmt.Errorf("netns: route destination %v is outside the transit and tunnel ranges", dst)
}

// NS is a named network namespace created by this package. Its methods are
// safe for concurrent use. The zero value is not usable; use New or Create.
type NS struct {
	name string
	h    vnetns.NsHandle

	mu     sync.Mutex // guards nl and closed; netlink.Handle is not concurrency-safe
	nl     *netlink.Handle
	closed bool
}

// New creates a namespace for the test t and registers its removal with
// t.Cleanup. It calls Require first, so it skips (or fails, in CI) when
// namespaces are unavailable, and it calls t.Fatal if creation fails.
func New(t testing.TB) *NS {
	t.Helper()
	Require(t)
	n, err := Create()
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("remove namespace %s: %v", n.Name(), err)
		}
	})
	return n
}

// Create creates a new named namespace "nn-<random>-<pid>" with its
// loopback interface up. The caller must call Close. Create does not
// change the namespace of the calling thread.
func Create() (*NS, error) {
	name, err := newName(rand.Reader, os.Getpid())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	var h vnetns.NsHandle
	err = onThread(func() error {
		// NewNamed unshares the current thread into the new namespace
		// and bind-mounts it under /run/netns; onThread switches back.
		var err error
		h, err = vnetns.NewNamed(name)
		return err
	})
	if err != nil {
		_ = os.Remove(filepath.Join(runDir, name)) // NewNamed leaves the file if the mount fails
		return nil, fmt.Errorf("netns: create %s: %w", name, err)
	}
	n := &NS{name: name, h: h}
	n.nl, err = netlink.NewHandleAt(h)
	if err == nil {
		err = n.LinkUp("lo")
	}
	if err != nil {
		_ = n.Close()
		return nil, fmt.Errorf("netns: init %s: %w", name, err)
	}
	return n, nil
}

// newName returns DefaultPrefix + 8 random hex digits + "-" + pid. The pid
// lets CleanupStale tell namespaces of live test processes from leftovers.
func newName(r io.Reader, pid int) (string, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("netns: random name: %w", err)
	}
	return DefaultPrefix + hex.EncodeToString(b[:]) + "-" + strconv.Itoa(pid), nil
}

// Name returns the namespace's name, as used by `ip netns exec`.
func (n *NS) Name() string { return n.name }

// Path returns the namespace's bind-mount path under /run/netns.
func (n *NS) Path() string { return filepath.Join(runDir, n.name) }

// Handle returns an open file descriptor for the namespace, for APIs that
// take one (for example nftables.WithNetNSFd). It stays valid until Close;
// the caller must not close it.
func (n *NS) Handle() vnetns.NsHandle { return n.h }

// Netlink calls fn with a netlink handle bound to the namespace. Calls are
// serialised; fn must not retain the handle.
func (n *NS) Netlink(fn func(h *netlink.Handle) error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("netns: %s is closed", n.name)
	}
	return fn(n.nl)
}

// Close removes the namespace name and releases this package's references
// to it. The kernel destroys the namespace, and with it its interfaces,
// once no process, socket or file descriptor refers to it any more. Close
// is idempotent.
func (n *NS) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if n.nl != nil {
		n.nl.Close()
	}
	err := n.h.Close()
	if derr := deleteNamed(n.name); derr != nil {
		err = errors.Join(err, derr)
	}
	return err
}

// deleteNamed unmounts and removes /run/netns/name. A missing mount or file
// is not an error.
func deleteNamed(name string) error {
	p := filepath.Join(runDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns: unmount %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// Do runs fn on a dedicated OS thread inside the namespace and returns its
// error. The thread is switched back before the runtime may reuse it.
// Goroutines that fn starts run
// in the namespace of whatever thread they land on, not in this one; but
// sockets fn opens stay in this namespace for their whole life.
//
// fn must not call t.FailNow or t.Fatal (they would only end fn's
// goroutine); Do reports that as an error. A panic in fn is re-raised in
// the caller.
func (n *NS) Do(fn func() error) error {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return fmt.Errorf("netns: %s is closed", n.name)
	}
	return onThread(func() error {
		if err := vnetns.Set(n.h); err != nil {
			return fmt.Errorf("netns: enter %s: %w", n.name, err)
		}
		return fn()
	})
}

// onThread runs fn on a new goroutine locked to its OS thread. Afterwards
// the thread is switched back to the namespace it started in and released;
// if that fails it stays locked, so the runtime discards it when the
// goroutine ends. (Restoring matters: if the goroutine happens to run on the
// main thread, the runtime cannot discard that thread, and
// /proc/self/ns/net reports the main thread's namespace.)
func onThread(fn func() error) error {
	type result struct {
		err      error
		panicked bool
		val      any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			done <- result{err: fmt.Errorf("netns: current namespace: %w", err)}
			return
		}
		returned := false
		defer func() {
			if vnetns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			orig.Close()
			if returned {
				return
			}
			if v := recover(); v != nil {
				done <- result{panicked: true, val: v}
				return
			}
			done <- result{err: errors.New("netns: function exited via runtime.Goexit (t.FailNow inside Do?)")}
		}()
		err = fn()
		returned = true
		done <- result{err: err}
	}()
	r := <-done
	if r.panicked {
		panic(r.val)
	}
	return r.err
}

// Listen announces on the local network address inside the namespace, as
// net.Listen does. The listener may be served from any goroutine.
func (n *NS) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// ListenPacket is like net.ListenPacket inside the namespace.
func (n *NS) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// DialContext connects to address from inside the namespace. address must
// be an IP literal with a port: name resolution would run on other threads
// and could send queries outside the namespace, so it is refused.
func (n *NS) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(address); err != nil {
		return nil, fmt.Errorf("netns: dial %q: address must be an IP literal with port: %w", address, err)
	}
	var c net.Conn
	err := n.Do(func() error {
		// A negative FallbackDelay keeps the dial on this goroutine.
		d := net.Dialer{FallbackDelay: -1}
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// HTTPClient returns a client whose connections are dialled inside the
// namespace. It ignores proxy environment variables. URLs must use IP
// literals (see DialContext).
func (n *NS) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DialContext:       n.DialContext,
		DisableKeepAlives: true,
	}}
}

// Command returns a command that runs name with args inside the namespace
// via `ip netns exec`. ip execs the command in place, so the returned
// process is the command itself and ctx cancellation kills it. The caller
// must wait for the command before the namespace is closed.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// LinkUp sets the interface ifname up.
func (n *NS) LinkUp(ifname string) error {
	return n.Netlink(func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("netns: %s: link %s: %w", n.name, ifname, err)
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("netns: %s: set %s up: %w", n.name, ifname, err)
		}
		return nil
	})
}

// AddAddr assigns the transit address p to ifname. It refuses p outside
// TransitRange.
func (n *NS) AddAddr(ifname string, p netip.Prefix) error {
	if err := CheckTransit(p); err != nil {
		return err
	}
	return n.addAddr(ifname, p)
}

// AddTunnelAddr assigns the tunnel address p to ifname. It refuses p
// outside TunnelRanges.
func (n *NS) AddTunnelAddr(ifname string, p netip.Prefix) error {
	if err := CheckTunnel(p); err != nil {
		return err
	}
	return n.addAddr(ifname, p)
}

func (n *NS) addAddr(ifname string, p netip.Prefix) error {
	return n.Netlink(func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("netns: %s: link %s: %w", n.name, ifname, err)
		}
		a := &netlink.Addr{IPNet: ipNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD // usable at once, no tentative state to wait for
		}
		if err := h.AddrReplace(l, a); err != nil {
			return fmt.Errorf("netns: %s: add %v to %s: %w", n.name, p, ifname, err)
		}
		return nil
	})
}

// AddRoute adds a route to dst via the transit gateway via. dst must be a
// default route or lie inside the transit or tunnel ranges.
func (n *NS) AddRoute(dst netip.Prefix, via netip.Addr) error {
	if err := checkRouteDst(dst); err != nil {
		return err
	}
	if err := CheckTransit(netip.PrefixFrom(via, via.BitLen())); err != nil {
		return fmt.Errorf("netns: route gateway: %w", err)
	}
	return n.Netlink(func(h *netlink.Handle) error {
		r := &netlink.Route{Dst: ipNet(dst), Gw: via.AsSlice()}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("netns: %s: route %v via %v: %w", n.name, dst, via, err)
		}
		return nil
	})
}

// AddDeviceRoute adds a route to dst out of ifname, without a gateway (as
// for a tunnel device). dst must be a default route or lie inside the
// transit or tunnel ranges.
func (n *NS) AddDeviceRoute(dst netip.Prefix, ifname string) error {
	if err := checkRouteDst(dst); err != nil {
		return err
	}
	return n.Netlink(func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("netns: %s: link %s: %w", n.name, ifname, err)
		}
		r := &netlink.Route{Dst: ipNet(dst), LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("netns: %s: route %v dev %s: %w", n.name, dst, ifname, err)
		}
		return nil
	})
}

// HasLink reports whether an interface named ifname exists in the
// namespace.
func (n *NS) HasLink(ifname string) (bool, error) {
	var ok bool
	err := n.Netlink(func(h *netlink.Handle) error {
		_, err := h.LinkByName(ifname)
		var nf netlink.LinkNotFoundError
		switch {
		case err == nil:
			ok = true
		case errors.As(err, &nf):
		default:
			return err
		}
		return nil
	})
	return ok, err
}

// End is one end of a veth link: the namespace, the interface name in it,
// and its transit address (the zero Prefix for none).
type End struct {
	NS     *NS
	IfName string
	Addr   netip.Prefix
}

// Connect creates a veth pair between a and b, assigns their transit
// addresses and sets both ends up. Interface names must be unique within
// their namespace and at most 15 bytes long.
func Connect(a, b End) error {
	for _, e := range []End{a, b} {
		if e.Addr.IsValid() {
			if err := CheckTransit(e.Addr); err != nil {
				return err
			}
		}
	}
	err := a.NS.Netlink(func(h *netlink.Handle) error {
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: a.IfName},
			PeerName:      b.IfName,
			PeerNamespace: netlink.NsFd(b.NS.Handle()),
		}
		return h.LinkAdd(v)
	})
	if err != nil {
		return fmt.Errorf("netns: veth %s/%s <-> %s/%s: %w", a.NS.Name(), a.IfName, b.NS.Name(), b.IfName, err)
	}
	for _, e := range []End{a, b} {
		if e.Addr.IsValid() {
			if err := e.NS.AddAddr(e.IfName, e.Addr); err != nil {
				return err
			}
		}
		if err := e.NS.LinkUp(e.IfName); err != nil {
			return err
		}
	}
	return nil
}

// Require skips the test unless the process can create network namespaces
// (it must be root with CAP_SYS_ADMIN and CAP_NET_ADMIN). When the
// environment variable NITRONET_REQUIRE_NETNS is "1" it fails the test
// instead, so CI cannot skip these tests by accident.
func Require(t testing.TB) {
	t.Helper()
	err := probe()
	if err == nil {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("network namespaces unavailable but %s=1: %v", RequireEnv, err)
	}
	t.Skipf("network namespaces unavailable (set %s=1 to fail instead): %v", RequireEnv, err)
}

// probe returns nil if a network namespace can be created.
func probe() error {
	if os.Geteuid() != 0 {
		return errors.New("not running as root")
	}
	return onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
		}
		return nil
	})
}

// CleanupStale removes namespaces under /run/netns whose names start with
// prefix and were left behind by a test process that no longer runs (the
// pid after the last "-" names a process that does not exist, or there is
// no pid). Namespaces of running processes, including concurrently running
// test binaries, are kept. prefix must start with DefaultPrefix. It
// returns the names it removed.
func CleanupStale(prefix string) ([]string, error) {
	if !strings.HasPrefix(prefix, DefaultPrefix) {
		return nil, fmt.Errorf("netns: cleanup prefix %q must start with %q", prefix, DefaultPrefix)
	}
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || ownerAlive(name) {
			continue
		}
		if err := deleteNamed(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// ownerAlive reports whether the pid encoded in name is a running process.
func ownerAlive(name string) bool {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return false
	}
	pid, err := strconv.Atoi(name[i+1:])
	if err != nil || pid <= 0 {
		return false
	}
	err = unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// ipNet converts p to the net.IPNet netlink expects, keeping the host bits.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
