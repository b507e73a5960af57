package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/nitronet/nitronet/internal/tungro"
	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// TUN-mode internals; the rule priorities sit just below the main table's.
const (
	prioSuppress = 32100 // lookup main suppress_prefixlength 0
	prioFwMark   = 32101 // not fwmark FwMark lookup RouteTable

	stateFileName      = "tunnel-state.json"
	lockFileName       = "tunnel.lock"
	resolvBackupName   = "resolv.conf.backup.json"
	resolvConfPath     = "/etc/resolv.conf"
	srcValidMarkPath   = "/proc/sys/net/ipv4/conf/all/src_valid_mark"
	stateFormatVersion = 1
)

// tunState is what TUN mode changes, written to StateDir before anything is
// changed so that Recover can undo it. It holds no keys and no endpoint.
type tunState struct {
	Version      int    `json:"version"`
	IfName       string `json:"ifname"`
	FwMark       uint32 `json:"fwmark"`
	Table        int    `json:"table"`
	RuleFamilies []int  `json:"rule_families,omitempty"` // unix.AF_INET, unix.AF_INET6
	NftTable     string `json:"nft_table,omitempty"`
	DNS          bool   `json:"dns"`
	// SrcValidMark is the previous value of net.ipv4.conf.all.src_valid_mark
	// when Up changed it, "" otherwise.
	SrcValidMark string `json:"src_valid_mark,omitempty"`
}

// resolvBackup is the saved /etc/resolv.conf.
type resolvBackup struct {
	Existed bool        `json:"existed"`
	Symlink string      `json:"symlink,omitempty"` // link target if it was a symlink
	Mode    os.FileMode `json:"mode"`
	Content []byte      `json:"content,omitempty"`
}

// upTUN brings the tunnel up on a kernel TUN interface; see Up. It plans
// every change first and records it in the state directory, so that a
// failure part-way (here, or a crash later) is undone by undoState or
// Recover.
func upTUN(_ context.Context, o Options, uapi string) (_ *Tunnel, err error) {
	log := o.Logger
	c := o.Config
	ifName, mtu, err := tunSettings(o)
	if err != nil {
		return nil, err
	}
	lock, err := lockAndRecover(o.StateDir, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	plan := planTUN(c, ifName, o.KillSwitch)
	if err := checkTUNFree(plan.state); err != nil {
		return nil, err
	}
	st := plan.state
	if err := writeState(o.StateDir, st); err != nil {
		return nil, err
	}

	var dev *device.Device
	closeDev := func() {
		if dev != nil {
			dev.Close()
			dev = nil
		}
	}
	undo := func() error { return undoState(o.StateDir, st, closeDev, log) } // st as last written
	defer func() {
		if err != nil {
			if uerr := undo(); uerr != nil {
				log.Error("tunnel: undo after failed up incomplete", "err", uerr)
			}
		}
	}()

	if dev, err = newTUNDevice(ifName, mtu, o.bind(), uapi, log); err != nil {
		return nil, err
	}
	if err := configureTUNLink(ifName, c.Interface.Addresses, plan.otherRoutes, st.RuleFamilies); err != nil {
		return nil, err
	}
	if plan.carries4 {
		if err := setSrcValidMark(o.StateDir, &st); err != nil {
			return nil, err
		}
	}
	if st.NftTable != "" {
		if err := addNftTable(st.NftTable, ifName, o.KillSwitch); err != nil {
			return nil, fmt.Errorf("tunnel: nftables: %w", err)
		}
	}
	if st.DNS {
		if err := setDNS(o.StateDir, c.Interface.DNS); err != nil {
			return nil, fmt.Errorf("tunnel: DNS: %w", err)
		}
	}

	t := &Tunnel{
		log:     log,
		dev:     dev,
		mode:    "tun",
		ifName:  ifName,
		addrs:   append([]netip.Prefix(nil), c.Interface.Addresses...),
		gateway: c.Peers[0].Endpoint,
		dial:    boundDialer(ifName),
		closeFn: func() error {
			err := undo()
			lock.Close()
			return err
		},
	}
	t.configure(c)
	log.Info("tunnel up", "mode", "tun", "interface", ifName, "ipv4_default", plan.carries4,
		"ipv6_default", plan.carries6, "ipv6_blocked", plan.blockV6, "kill_switch", o.KillSwitch, "dns", st.DNS)
	return t, nil
}

// tunSettings checks o for TUN mode, makes its state directory, and
// returns the interface name and MTU with their defaults applied.
func tunSettings(o Options) (ifName string, mtu int, err error) {
	if o.StateDir == "" {
		return "", 0, errors.New("tunnel: TUN mode needs a state directory")
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return "", 0, fmt.Errorf("tunnel: state directory: %w", err)
	}
	ifName = o.IfName
	if ifName == "" {
		ifName = DefaultIfName
	}
	if len(ifName) >= unix.IFNAMSIZ || strings.ContainsAny(ifName, "/ \t\n:") {
		return "", 0, errors.New("tunnel: invalid interface name")
	}
	mtu = o.Config.Interface.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	return ifName, mtu, nil
}

// lockAndRecover locks the state directory (see lockStateDir) and undoes
// what a tunnel that did not shut down cleanly left behind. The caller
// closes the returned lock.
func lockAndRecover(stateDir string, log *slog.Logger) (*os.File, error) {
	lock, err := lockStateDir(stateDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(stateDir, stateFileName)); err == nil {
		log.Warn("undoing changes left by a previous tunnel that did not shut down cleanly")
		if err := recoverLocked(stateDir, log); err != nil {
			lock.Close()
			return nil, err
		}
	}
	return lock, nil
}

// tunPlan is what upTUN is going to change, decided before it changes
// anything.
type tunPlan struct {
	state tunState
	// otherRoutes are the peer's allowed IPs other than default routes:
	// routed through the interface in the main table.
	otherRoutes []netip.Prefix
	// carries4 and carries6 report whether the tunnel carries the
	// default route of IPv4 and IPv6 (the peer allows it and the
	// interface has an address of that family).
	carries4, carries6 bool
	// blockV6 is set when IPv4 goes through the tunnel but IPv6 cannot:
	// IPv6 is then blocked so that it does not leak around the tunnel.
	blockV6 bool
}

// planTUN decides which families take the tunnel as their default route
// and whether an nftables table is needed (kill switch, or IPv6 blocked).
func planTUN(c wgconf.Config, ifName string, killSwitch bool) tunPlan {
	hasAddr := map[int]bool{}
	for _, a := range c.Interface.Addresses {
		hasAddr[family(a.Addr())] = true
	}
	defRoute := map[int]bool{}
	var p tunPlan
	for _, peer := range c.Peers {
		for _, a := range peer.AllowedIPs {
			if a.Bits() == 0 {
				defRoute[family(a.Addr())] = true
			} else {
				p.otherRoutes = append(p.otherRoutes, a)
			}
		}
	}
	p.state = tunState{Version: stateFormatVersion, IfName: ifName, FwMark: FwMark, Table: RouteTable, DNS: len(c.Interface.DNS) > 0}
	for _, f := range []int{unix.AF_INET, unix.AF_INET6} {
		if defRoute[f] && hasAddr[f] {
			p.state.RuleFamilies = append(p.state.RuleFamilies, f)
		}
	}
	p.carries4 = defRoute[unix.AF_INET] && hasAddr[unix.AF_INET]
	p.carries6 = defRoute[unix.AF_INET6] && hasAddr[unix.AF_INET6]
	p.blockV6 = p.carries4 && !p.carries6
	if killSwitch || p.blockV6 {
		p.state.NftTable = NftTableName
	}
	return p
}

// checkTUNFree refuses to take over an interface or nftables table that
// already exists: undoing the tunnel would delete it.
func checkTUNFree(st tunState) error {
	if _, err := netlink.LinkByName(st.IfName); err == nil {
		return errors.New("tunnel: an interface with that name already exists")
	}
	if st.NftTable != "" {
		if exists, err := nftTableExists(st.NftTable); err != nil {
			return fmt.Errorf("tunnel: nftables: %w", err)
		} else if exists {
			return fmt.Errorf("tunnel: nftables table %s already exists", st.NftTable)
		}
	}
	return nil
}

// boundDialer returns a dial function whose sockets are bound to the
// interface ifName (SO_BINDTODEVICE): their packets leave through the
// tunnel or not at all.
func boundDialer(ifName string) func(ctx context.Context, network, address string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifName)
		}); err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext
}

// newTUNDevice creates the TUN interface and a WireGuard device on it that
// marks its own packets with FwMark, configures it with uapi and brings it
// up. On an error it has closed what it made.
func newTUNDevice(ifName string, mtu int, bind conn.Bind, uapi string, log *slog.Logger) (_ *device.Device, err error) {
	tdev, err := tun.CreateTUN(ifName, mtu)
	if err != nil {
		return nil, fmt.Errorf("tunnel: create TUN: %w", err)
	}
	// Downloads reach the kernel as coalesced TCP without a copy, as on
	// the gateway (package tungro).
	dev := device.NewDevice(tungro.Wrap(tdev), bind, deviceLogger(log))
	defer func() {
		if err != nil {
			dev.Close()
		}
	}()
	if err := dev.IpcSet(fmt.Sprintf("fwmark=%d\n", FwMark)); err != nil {
		return nil, fmt.Errorf("tunnel: set fwmark: %w", err)
	}
	if err := dev.IpcSet(uapi); err != nil {
		return nil, errors.New("tunnel: configure device failed") // the error may quote the UAPI text
	}
	if err := dev.Up(); err != nil {
		return nil, fmt.Errorf("tunnel: device up: %w", err)
	}
	return dev, nil
}

// configureTUNLink gives interface ifName its addresses, brings it up,
// routes otherRoutes through it, and for each of families sends the
// default route through it by routing table and rules (see tunnelRules).
func configureTUNLink(ifName string, addrs, otherRoutes []netip.Prefix, families []int) error {
	link, err := netlink.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("tunnel: find link: %w", err)
	}
	for _, a := range addrs {
		na := &netlink.Addr{IPNet: prefixIPNet(a)}
		if a.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, na); err != nil {
			return fmt.Errorf("tunnel: add address: %w", err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("tunnel: link up: %w", err)
	}
	for _, p := range otherRoutes {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixIPNet(p), Scope: netlink.SCOPE_LINK}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("tunnel: add route: %w", err)
		}
	}
	for _, f := range families {
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if f == unix.AF_INET6 {
			def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixIPNet(def), Table: RouteTable, Scope: netlink.SCOPE_LINK}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("tunnel: add default route: %w", err)
		}
		for _, rule := range tunnelRules(f) {
			if err := netlink.RuleAdd(rule); err != nil {
				return fmt.Errorf("tunnel: add routing rule: %w", err)
			}
		}
	}
	return nil
}

// setSrcValidMark turns on net.ipv4.conf.all.src_valid_mark, recording its
// previous value in *st (and the state file) first so that it is restored.
// Replies from the gateway arrive unmarked; without this, strict
// reverse-path filtering would look them up in RouteTable and drop them
// (wg-quick does the same).
func setSrcValidMark(stateDir string, st *tunState) error {
	prev, err := os.ReadFile(srcValidMarkPath)
	if err != nil || strings.TrimSpace(string(prev)) == "1" {
		return nil
	}
	st.SrcValidMark = strings.TrimSpace(string(prev))
	if err := writeState(stateDir, *st); err != nil {
		return err
	}
	if err := os.WriteFile(srcValidMarkPath, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("tunnel: set src_valid_mark: %w", err)
	}
	return nil
}

// Recover undoes what a TUN-mode Up left behind when its process died
// without Close: routing rules, the nftables table (kill switch included:
// it keeps blocking traffic until Recover runs), /etc/resolv.conf, the
// src_valid_mark setting and the interface, as recorded in stateDir. It
// returns nil if there is nothing to undo, and an error if a tunnel using
// stateDir is still running. Up calls it itself when it finds stale state.
func Recover(stateDir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(stateDir, stateFileName)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	lock, err := lockStateDir(stateDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	return recoverLocked(stateDir, log)
}

func recoverLocked(stateDir string, log *slog.Logger) error {
	b, err := os.ReadFile(filepath.Join(stateDir, stateFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tunnel: read state: %w", err)
	}
	var st tunState
	if err := json.Unmarshal(b, &st); err != nil || st.Version != stateFormatVersion {
		return errors.New("tunnel: state file is unreadable; remove it after checking routes, rules and nftables by hand")
	}
	if err := undoState(stateDir, st, nil, log); err != nil {
		return err
	}
	log.Info("recovered from an unclean tunnel shutdown", "interface", st.IfName)
	return nil
}

// undoState reverts everything st records, tolerating parts that were never
// done. closeDev, if not nil, stops the in-process device. The state file is
// removed only when everything succeeded.
func undoState(stateDir string, st tunState, closeDev func(), log *slog.Logger) error {
	var errs []error
	if st.DNS {
		if err := restoreDNS(stateDir); err != nil {
			errs = append(errs, fmt.Errorf("restore DNS: %w", err))
		}
	}
	for _, f := range st.RuleFamilies {
		for _, r := range tunnelRules(f) {
			if err := netlink.RuleDel(r); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("delete routing rule: %w", err))
			}
		}
	}
	if closeDev != nil {
		closeDev()
	}
	if link, err := netlink.LinkByName(st.IfName); err == nil && link.Type() == "tuntap" {
		if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete interface: %w", err))
		}
	}
	if st.SrcValidMark != "" {
		if err := os.WriteFile(srcValidMarkPath, []byte(st.SrcValidMark+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore src_valid_mark: %w", err))
		}
	}
	// The firewall goes last so that a kill switch blocks leaks until the
	// routing is back to normal.
	if st.NftTable != "" {
		if err := delNftTable(st.NftTable); err != nil {
			errs = append(errs, fmt.Errorf("delete nftables table: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tunnel: undo: %w", err)
	}
	if err := os.Remove(filepath.Join(stateDir, stateFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("tunnel: remove state: %w", err)
	}
	return nil
}

// tunnelRules returns wg-quick's two policy rules for family f:
// "lookup main suppress_prefixlength 0" (non-default routes in main win) and
// "not fwmark FwMark lookup RouteTable" (everything else but the tunnel's
// own marked UDP goes into the tunnel).
func tunnelRules(f int) []*netlink.Rule {
	sup := netlink.NewRule()
	sup.Family = f
	sup.Priority = prioSuppress
	sup.Table = unix.RT_TABLE_MAIN
	sup.SuppressPrefixlen = 0
	mark := netlink.NewRule()
	mark.Family = f
	mark.Priority = prioFwMark
	mark.Table = RouteTable
	mark.Mark = FwMark
	mark.Invert = true
	return []*netlink.Rule{sup, mark}
}

func isNotFound(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV)
}

func family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// lockStateDir takes an exclusive lock on stateDir, held until the returned
// file is closed (or the process dies).
func lockStateDir(stateDir string) (*os.File, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("tunnel: state directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(stateDir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tunnel: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errors.New("tunnel: another tunnel using this state directory is running")
		}
		return nil, fmt.Errorf("tunnel: lock: %w", err)
	}
	return f, nil
}

func writeState(stateDir string, st tunState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(stateDir, stateFileName), b, 0o600); err != nil {
		return fmt.Errorf("tunnel: write state: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// replaceFile puts data at path: atomically by rename, or in place when
// path is a mount point (rename fails with EBUSY) so that bind mounts keep
// working.
func replaceFile(path string, data []byte, mode os.FileMode) error {
	err := writeFileAtomic(path, data, mode)
	if err == nil || !(errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EXDEV)) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// setDNS backs up /etc/resolv.conf into stateDir and replaces it with one
// naming servers.
func setDNS(stateDir string, servers []netip.Addr) error {
	var bk resolvBackup
	fi, err := os.Lstat(resolvConfPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case fi.Mode()&os.ModeSymlink != 0:
		bk.Existed = true
		if bk.Symlink, err = os.Readlink(resolvConfPath); err != nil {
			return err
		}
	default:
		bk.Existed = true
		bk.Mode = fi.Mode().Perm()
		if bk.Content, err = os.ReadFile(resolvConfPath); err != nil {
			return err
		}
	}
	b, err := json.Marshal(bk)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(stateDir, resolvBackupName), b, 0o600); err != nil {
		return fmt.Errorf("back up resolv.conf: %w", err)
	}
	var sb strings.Builder
	sb.WriteString("# Written by nitronet while the tunnel is up; the previous file is restored when it goes down.\n")
	for _, s := range servers {
		sb.WriteString("nameserver " + s.String() + "\n")
	}
	if bk.Symlink != "" {
		return writeFileAtomic(resolvConfPath, []byte(sb.String()), 0o644)
	}
	return replaceFile(resolvConfPath, []byte(sb.String()), 0o644)
}

// restoreDNS puts back the /etc/resolv.conf saved by setDNS. It does
// nothing if there is no backup (setDNS never ran).
func restoreDNS(stateDir string) error {
	bpath := filepath.Join(stateDir, resolvBackupName)
	b, err := os.ReadFile(bpath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var bk resolvBackup
	if err := json.Unmarshal(b, &bk); err != nil {
		return fmt.Errorf("resolv.conf backup is unreadable: %w", err)
	}
	switch {
	case !bk.Existed:
		err = os.Remove(resolvConfPath)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	case bk.Symlink != "":
		tmp := resolvConfPath + ".nitronet-tmp"
		os.Remove(tmp)
		if err = os.Symlink(bk.Symlink, tmp); err == nil {
			if err = os.Rename(tmp, resolvConfPath); err != nil {
				os.Remove(tmp)
			}
		}
	default:
		err = replaceFile(resolvConfPath, bk.Content, bk.Mode)
	}
	if err != nil {
		return err
	}
	return os.Remove(bpath)
}

func nftTableExists(name string) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, err
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, err
	}
	for _, t := range ts {
		if t.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// addNftTable creates the inet table name with an output chain that accepts
// loopback, the tunnel interface and packets carrying FwMark (the tunnel's
// own UDP), then drops everything else if killSwitch, or else only IPv6.
func addNftTable(name, ifName string, killSwitch bool) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	accept := nftables.ChainPolicyAccept
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: name})
	ch := c.AddChain(&nftables.Chain{
		Name: "output", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	acceptVerdict := &expr.Verdict{Kind: expr.VerdictAccept}
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	rules := [][]expr.Any{
		{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")}, acceptVerdict},
		{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(ifName)}, acceptVerdict},
		{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(FwMark)}, acceptVerdict},
	}
	if killSwitch {
		rules = append(rules, []expr.Any{drop})
	} else {
		rules = append(rules, []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}}, drop})
	}
	for _, r := range rules {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r})
	}
	return c.Flush()
}

func delNftTable(name string) error {
	exists, err := nftTableExists(name)
	if err != nil || !exists {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return err
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: name})
	return c.Flush()
}

// ifname returns n NUL-padded to IFNAMSIZ, as nftables compares it.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}
