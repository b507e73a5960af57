package kernelnet

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/nitronet/nitronet/internal/tungro"
)

// Forwarding sysctls, per network namespace.
const (
	sysctlForward4 = "/proc/sys/net/ipv4/ip_forward"
	sysctlForward6 = "/proc/sys/net/ipv6/conf/all/forwarding"
)

// linkGoneTimeout bounds how long Close waits for the kernel to remove the
// TUN interface after its file descriptor is closed.
const linkGoneTimeout = 5 * time.Second

// Net is the gateway's kernel networking set up by Setup. Its methods are
// safe for concurrent use.
type Net struct {
	log    *slog.Logger
	ifname string
	uplink string
	table  *nftables.Table

	// Every kernel handle is opened by Setup on its (locked) thread and so
	// stays bound to Setup's network namespace, whichever thread later uses
	// it: netlink and nftables sockets, and /proc/sys files. Nothing ever
	// calls setns, so CAP_NET_ADMIN is enough.
	//
	// foreign is true when that namespace is not the one of the process's
	// main thread (tests); see nsTUN.
	foreign bool

	dev *nsTUN

	mu       sync.Mutex // guards nl, nft, sysctls and tableSet
	nl       *netlink.Handle
	nft      *nftables.Conn // lasting connection
	sysctls  []sysctl       // forwarding switches Setup turned on
	tableSet bool

	closeOnce sync.Once
	closeErr  error
}

// Setup creates the TUN device cfg.IfName, assigns cfg.Addresses, routes
// cfg.Pools to it, sets it up, enables IP forwarding for the families in
// use and installs the nftables table described in the package comment. It
// works in the network namespace of the calling OS thread (callers that
// switch namespaces must lock the thread); the returned Net keeps working
// in that namespace from any goroutine, because every socket and file it
// needs later is opened here. It never calls setns: CAP_NET_ADMIN
// suffices.
//
// On error everything done so far is undone and the returned *Net is nil.
// The caller must call Close on a non-nil result.
func Setup(cfg Config) (*Net, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread() // nests with a caller's lock
	defer runtime.UnlockOSThread()

	n := &Net{log: c.Logger}
	ok := false
	defer func() {
		if !ok {
			if terr := n.teardown(); terr != nil {
				n.log.Warn("kernelnet: undo failed setup", "err", terr)
			}
		}
	}()
	if err := n.setup(c); err != nil {
		return nil, fmt.Errorf("kernelnet: %w", err)
	}
	ok = true
	n.log.Info("kernelnet up", "ifname", n.ifname, "uplink", n.uplink, "table", n.table.Name, "mtu", c.MTU)
	return n, nil
}

func (n *Net) setup(c Config) error {
	var err error
	if n.foreign, err = foreignNS(); err != nil {
		return err
	}
	// Both open their sockets now, in this thread's namespace.
	if n.nl, err = netlink.NewHandle(); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	if n.nft, err = nftables.New(nftables.AsLasting()); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}

	if n.uplink, err = uplink(n.nl, c.Uplink); err != nil {
		return err
	}
	if _, err := n.nl.LinkByName(c.IfName); err == nil {
		return fmt.Errorf("interface %s already exists", c.IfName)
	}

	// The TUN is created in the namespace of this (locked) thread.
	dev, err := tun.CreateTUN(c.IfName, c.MTU)
	if err != nil {
		return fmt.Errorf("create tun %s: %w", c.IfName, err)
	}
	n.ifname, err = dev.Name()
	if err != nil {
		_ = dev.Close()
		return fmt.Errorf("tun name: %w", err)
	}
	// TCP segments reach the kernel coalesced without a copy (package
	// tungro); the wrapper is a no-op without virtio-net headers.
	n.dev = newNSTUN(tungro.Wrap(dev), n)

	if err := n.configureLink(c); err != nil {
		return err
	}
	if err := n.enableForwarding(c); err != nil {
		return err
	}
	return n.installTable(c)
}

// uplink returns name if it names an existing interface, or with name ""
// the interface of the IPv4 (else IPv6) default route.
func uplink(h *netlink.Handle, name string) (string, error) {
	if name != "" {
		if _, err := h.LinkByName(name); err != nil {
			return "", fmt.Errorf("uplink %s: %w", name, err)
		}
		return name, nil
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := h.RouteList(nil, fam)
		if err != nil {
			return "", fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			idx := r.LinkIndex
			if idx == 0 && len(r.MultiPath) > 0 {
				idx = r.MultiPath[0].LinkIndex
			}
			if idx == 0 {
				continue
			}
			l, err := h.LinkByIndex(idx)
			if err != nil {
				return "", fmt.Errorf("default route interface: %w", err)
			}
			return l.Attrs().Name, nil
		}
	}
	return "", errors.New("no uplink given and no default route")
}

// configureLink assigns the addresses, sets the link up and routes the
// pools that the address prefixes do not already cover.
func (n *Net) configureLink(c Config) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.nl.LinkByName(n.ifname)
	if err != nil {
		return fmt.Errorf("tun link: %w", err)
	}
	covered := map[netip.Prefix]bool{}
	for _, a := range c.Addresses {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD // a TUN has no neighbours to collide with
		}
		if err := n.nl.AddrReplace(l, addr); err != nil {
			return fmt.Errorf("add address %v: %w", a, err)
		}
		covered[a.Masked()] = true
	}
	for _, a := range c.DNSAddresses {
		addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(a, a.BitLen()))}
		if a.Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := n.nl.AddrReplace(l, addr); err != nil {
			return fmt.Errorf("add DNS address %v: %w", a, err)
		}
	}
	if err := n.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", n.ifname, err)
	}
	for _, p := range c.Pools {
		if covered[p] {
			continue
		}
		r := &netlink.Route{Dst: ipNet(p), LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK}
		if err := n.nl.RouteReplace(r); err != nil {
			return fmt.Errorf("route %v: %w", p, err)
		}
	}
	return nil
}

// sysctl is an open /proc/sys file and the value it had before Setup.
type sysctl struct {
	f   *os.File
	old string
}

// enableForwarding turns on forwarding for the families in use, keeping
// the files open (they stay bound to this namespace) and the previous
// values for Close.
func (n *Net) enableForwarding(c Config) error {
	v4, v6 := c.families()
	var paths []string
	if v4 {
		paths = append(paths, sysctlForward4)
	}
	if v6 {
		paths = append(paths, sysctlForward6)
	}
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("enable forwarding: %w", err)
		}
		buf := make([]byte, 16)
		m, err := f.ReadAt(buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			f.Close()
			return fmt.Errorf("read %s: %w", p, err)
		}
		old := strings.TrimSpace(string(buf[:m]))
		if old == "1" {
			f.Close()
			continue
		}
		if _, err := f.WriteAt([]byte("1\n"), 0); err != nil {
			f.Close()
			return fmt.Errorf("enable forwarding: %s: %w", p, err)
		}
		n.mu.Lock()
		n.sysctls = append(n.sysctls, sysctl{f: f, old: old})
		n.mu.Unlock()
	}
	return nil
}

// installTable replaces any stale table of the same name and installs the
// ruleset in one atomic batch.
func (n *Net) installTable(c Config) error {
	conn := n.nft
	name := TableName(n.ifname)
	if old, err := conn.ListTableOfFamily(name, nftables.TableFamilyINet); err == nil && old != nil {
		n.log.Warn("kernelnet: replacing stale nftables table", "table", name)
		conn.DelTable(old)
		if err := conn.Flush(); err != nil {
			return fmt.Errorf("delete stale table %s: %w", name, err)
		}
	}
	t := conn.AddTable(&nftables.Table{Name: name, Family: nftables.TableFamilyINet})
	n.table = t
	n.mu.Lock()
	n.tableSet = true
	n.mu.Unlock()
	cs := chains(t)
	for _, ch := range []string{chainPostrouting, chainForward, chainInput} {
		conn.AddChain(cs[ch])
	}
	for _, r := range newRuleset(c, n.ifname, n.uplink).rules() {
		conn.AddRule(&nftables.Rule{
			Table:    t,
			Chain:    cs[r.chain],
			Exprs:    r.exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment),
		})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("install table %s: %w", name, err)
	}
	return nil
}

// TUN returns the TUN device for wireguard-go. Net owns it: Close closes
// it, and closing it earlier (as device.Close does) is harmless. Its MTU
// method works from any goroutine, whatever namespace its thread is in.
//
// When Setup ran outside the process's main network namespace (tests), the
// device's Events omit EventUp and EventDown, so wireguard-go never brings
// itself up from a thread in the wrong namespace: call device.Up (and any
// IpcSet that changes listen_port) on a thread inside the namespace.
func (n *Net) TUN() tun.Device { return n.dev }

// Name returns the TUN interface name.
func (n *Net) Name() string { return n.ifname }

// Uplink returns the uplink interface name in use.
func (n *Net) Uplink() string { return n.uplink }

// Table returns the name of the nftables table (family inet).
func (n *Net) Table() string { return TableName(n.ifname) }

// Close removes the nftables table, closes the TUN device and waits until
// the kernel has removed its interface (with its addresses and routes),
// and restores the forwarding sysctls it changed. It returns the first
// errors met but always attempts every step. Close is idempotent.
//
// Forwarding is per namespace: two Nets in one namespace should be closed
// together, or the first Close may disable forwarding for the second.
func (n *Net) Close() error {
	n.closeOnce.Do(func() {
		n.closeErr = n.teardown()
		n.log.Info("kernelnet down", "ifname", n.ifname)
	})
	return n.closeErr
}

// teardown undoes whatever setup got done. It is also used by a failed
// Setup.
func (n *Net) teardown() error {
	var errs []error
	n.mu.Lock()
	tableSet := n.tableSet
	n.tableSet = false
	n.mu.Unlock()
	if tableSet && n.nft != nil {
		if err := n.deleteTable(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.dev != nil && n.nl != nil {
		if err := n.dev.Device.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("close tun: %w", err))
		}
		if err := n.waitLinkGone(); err != nil {
			errs = append(errs, err)
		}
	}
	n.mu.Lock()
	sysctls := n.sysctls
	n.sysctls = nil
	n.mu.Unlock()
	for _, sc := range sysctls {
		if _, err := sc.f.WriteAt([]byte(sc.old+"\n"), 0); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", sc.f.Name(), err))
		}
		sc.f.Close()
	}
	n.mu.Lock()
	if n.nl != nil {
		n.nl.Close()
		n.nl = nil
	}
	if n.nft != nil {
		_ = n.nft.CloseLasting()
		n.nft = nil
	}
	n.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kernelnet: close: %w", err)
	}
	return nil
}

func (n *Net) deleteTable() error {
	conn := n.nft
	conn.DelTable(&nftables.Table{Name: TableName(n.ifname), Family: nftables.TableFamilyINet})
	if err := conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete table: %w", err)
	}
	return nil
}

// waitLinkGone polls until the TUN interface has disappeared, deleting it
// explicitly if it outlives linkGoneTimeout (another process may hold the
// device open).
func (n *Net) waitLinkGone() error {
	deadline := time.Now().Add(linkGoneTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		n.mu.Lock()
		l, err := n.nl.LinkByName(n.ifname)
		if err == nil && time.Now().After(deadline) {
			err = n.nl.LinkDel(l)
			n.mu.Unlock()
			if err != nil {
				return fmt.Errorf("delete %s: %w", n.ifname, err)
			}
			return nil
		}
		n.mu.Unlock()
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("look up %s: %w", n.ifname, err)
		}
		<-tick.C
	}
}

// foreignNS reports whether the calling thread's network namespace differs
// from that of the process's main thread.
func foreignNS() (bool, error) {
	cur, err := vnetns.Get()
	if err != nil {
		return false, fmt.Errorf("current namespace: %w", err)
	}
	defer cur.Close()
	proc, err := vnetns.GetFromPid(os.Getpid())
	if err != nil {
		return false, fmt.Errorf("process namespace: %w", err)
	}
	defer proc.Close()
	return !cur.Equal(proc), nil
}

// nsTUN wraps the wireguard-go TUN for use outside the process's own
// namespace (tests); in the process's namespace it changes nothing.
//
// MTU asks the kernel through n's netlink handle: the stock implementation
// uses an ioctl on a socket of the calling thread's namespace.
//
// In a foreign namespace, Events drops EventUp and EventDown. wireguard-go
// reacts to them with device.Up/Down on its event goroutine, and Up opens
// the UDP sockets in whatever namespace that goroutine's thread is in,
// which would be the wrong one. The caller brings the device up explicitly,
// on a thread inside the namespace.
type nsTUN struct {
	tun.Device
	net    *Net
	events <-chan tun.Event
}

func newNSTUN(dev tun.Device, n *Net) *nsTUN {
	t := &nsTUN{Device: dev, net: n, events: dev.Events()}
	if n.foreign {
		ch := make(chan tun.Event, cap(t.events))
		go func(in <-chan tun.Event) {
			defer close(ch)
			for e := range in { // ends when the device is closed
				if e &^= tun.EventUp | tun.EventDown; e != 0 {
					ch <- e
				}
			}
		}(t.events)
		t.events = ch
	}
	return t
}

// Events returns the device's event channel, filtered as described on
// nsTUN.
func (t *nsTUN) Events() <-chan tun.Event { return t.events }

// MTU returns the interface's current MTU.
func (t *nsTUN) MTU() (int, error) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	if t.net.nl == nil {
		return 0, errors.New("kernelnet: closed")
	}
	l, err := t.net.nl.LinkByName(t.net.ifname)
	if err != nil {
		return 0, fmt.Errorf("kernelnet: mtu: %w", err)
	}
	return l.Attrs().MTU, nil
}

// ipNet converts p to the net.IPNet netlink expects, keeping host bits.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
