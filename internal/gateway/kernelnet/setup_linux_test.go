package kernelnet

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"

	"github.com/nitronet/nitronet/internal/netns"
)

// allowedExpr reports whether e is one of the expression types the ruleset
// may use. Anything else (counter, log, quota, limit, dynset, objref, ...)
// could record per-client data and is forbidden by the no-log policy.
func allowedExpr(e expr.Any) bool {
	switch e.(type) {
	case *expr.Meta, *expr.Cmp, *expr.Payload, *expr.Bitwise, *expr.Ct, *expr.Verdict, *expr.Masq:
		return true
	}
	return false
}

func TestRulesetShape(t *testing.T) {
	c, err := Config{
		IfName:       "nt0",
		Addresses:    prefixes("100.64.0.1/10", "fd00:6e6e::1/48"),
		Pools:        prefixes("100.64.0.0/10", "fd00:6e6e::/48"),
		AllowPrivate: prefixes("10.9.0.0/16"),
		DNSPort:      53,
		DNSAddresses: []netip.Addr{netip.MustParseAddr("fd00:6e6e::53:0:1"), netip.MustParseAddr("fd00:6e6e::53:0:2"),
			netip.MustParseAddr("fd00:6e6e::53:0:3")},
	}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	rules := newRuleset(c, "nt0", "eth0").rules()
	count := map[string]int{}
	for i, r := range rules {
		count[r.chain]++
		for _, e := range r.exprs {
			if !allowedExpr(e) {
				t.Errorf("rule %d (%s): forbidden expression %T", i, r.comment, e)
			}
		}
		if _, ok := r.exprs[len(r.exprs)-1].(*expr.Verdict); !ok && r.chain != chainPostrouting {
			t.Errorf("rule %d (%s) does not end in a verdict", i, r.comment)
		}
	}
	nb := len(DefaultBlocked())
	want := map[string]int{
		chainPostrouting: 2,                  // one masquerade per pool
		chainForward:     3 + 1 + nb + 2 + 1, // c2c, replies, inbound, allow, blocked, pools, rest
		chainInput:       4 + 1 + 4*2 + 1,    // tunnel and DNS addresses (::1/128, ::2/127) only via the tunnel, replies, dns udp/tcp per address, rest
	}
	for ch, n := range want {
		if count[ch] != n {
			t.Errorf("chain %s has %d rules, want %d", ch, count[ch], n)
		}
	}

	// Order in forward: the allow-private accept precedes the private drops,
	// and client-to-client comes first.
	var fwd []string
	for _, r := range rules {
		if r.chain == chainForward {
			fwd = append(fwd, r.comment)
		}
	}
	if fwd[0] != "no client to client" {
		t.Errorf("first forward rule = %q, want no client to client", fwd[0])
	}
	if a, b := slices.Index(fwd, "allowed private"), slices.Index(fwd, "no private destinations"); a < 0 || b < 0 || a > b {
		t.Errorf("allowed private at %d, private drops at %d; want allow first", a, b)
	}
	if fwd[len(fwd)-1] != "nothing else from clients" {
		t.Errorf("last forward rule = %q", fwd[len(fwd)-1])
	}

	// A service port is open over TCP on each tunnel and DNS address (the
	// DNS addresses as their two prefixes), before the final drop.
	c.ServicePorts = []int{1337}
	var in []string
	for _, r := range newRuleset(c, "nt0", "eth0").rules() {
		if r.chain == chainInput {
			in = append(in, r.comment)
		}
	}
	if n := strings.Count(strings.Join(in, "\n"), "gateway service"); n != 4 {
		t.Errorf("input chain: %d gateway service rules, want 4 (one per tunnel address and DNS prefix): %q", n, in)
	}
	if in[len(in)-1] != "nothing else to gateway" {
		t.Errorf("last input rule = %q, want the drop", in[len(in)-1])
	}
	c.ServicePorts = nil

	// Without a DNS port there is no DNS rule.
	c.DNSPort, c.DNSAddresses = 0, nil
	for _, r := range newRuleset(c, "nt0", "eth0").rules() {
		if r.comment == "dns" {
			t.Error("DNS rule present with DNSPort 0")
		}
	}
}

func TestAddrMatch(t *testing.T) {
	tests := []struct {
		prefix  string
		src     bool
		offset  uint32
		length  uint32
		bitwise bool
	}{
		{"100.64.0.0/10", true, 12, 4, true},
		{"100.64.0.1/32", false, 16, 4, false},
		{"fd00:6e6e::/48", true, 8, 16, true},
		{"fd00:6e6e::1/128", false, 24, 16, false},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			ex := addrMatch(netip.MustParsePrefix(tt.prefix), tt.src)
			p := ex[2].(*expr.Payload)
			if p.Offset != tt.offset || p.Len != tt.length {
				t.Errorf("payload offset/len = %d/%d, want %d/%d", p.Offset, p.Len, tt.offset, tt.length)
			}
			_, hasBitwise := ex[3].(*expr.Bitwise)
			if hasBitwise != tt.bitwise {
				t.Errorf("bitwise = %v, want %v", hasBitwise, tt.bitwise)
			}
			if tt.prefix == "100.64.0.0/10" {
				if got := ex[3].(*expr.Bitwise).Mask; string(got) != string([]byte{255, 192, 0, 0}) {
					t.Errorf("mask = %v, want 255.192.0.0", got)
				}
			}
		})
	}
}

// gatewayNS returns a namespace with an uplink veth (uplink0,
// 198.19.0.1/24) whose default route points at its peer.
func gatewayNS(t *testing.T) *netns.NS {
	t.Helper()
	gw, peer := netns.New(t), netns.New(t)
	err := netns.Connect(
		netns.End{NS: gw, IfName: "uplink0", Addr: netip.MustParsePrefix("198.19.0.1/24")},
		netns.End{NS: peer, IfName: "eth0", Addr: netip.MustParsePrefix("198.19.0.2/24")},
	)
	if err == nil {
		err = gw.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("198.19.0.2"))
	}
	if err != nil {
		t.Fatal(err)
	}
	return gw
}

// setupIn runs Setup inside ns and registers Close.
func setupIn(t *testing.T, ns *netns.NS, cfg Config) (*Net, error) {
	t.Helper()
	var n *Net
	err := ns.Do(func() error {
		var err error
		n, err = Setup(cfg)
		return err
	})
	if n != nil {
		t.Cleanup(func() {
			if err := n.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	return n, err
}

func readSysctl(t *testing.T, ns *netns.NS, path string) string {
	t.Helper()
	var v string
	err := ns.Do(func() error {
		b, err := os.ReadFile(path)
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func nftIn(t *testing.T, ns *netns.NS) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle())))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSetupAndClose(t *testing.T) {
	gw := gatewayNS(t)
	hostForward, _ := os.ReadFile(sysctlForward4)

	cfg := validConfig()
	cfg.Addresses = prefixes("100.64.0.1/32", "fd00:6e6e::1/128") // so the pools need routes
	cfg.DNSAddresses = []netip.Addr{netip.MustParseAddr("fd00:6e6e::53:0:1"), netip.MustParseAddr("fd00:6e6e::53:0:1f")}
	n, err := setupIn(t, gw, cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if n.Uplink() != "uplink0" {
		t.Errorf("Uplink() = %q, want uplink0 (from the default route)", n.Uplink())
	}
	if n.Name() != "nt0" || n.Table() != "nitronet-nt0" {
		t.Errorf("Name, Table = %q, %q", n.Name(), n.Table())
	}
	if mtu, err := n.TUN().MTU(); err != nil || mtu != DefaultMTU {
		t.Errorf("TUN().MTU() from outside the namespace = %d, %v; want %d", mtu, err, DefaultMTU)
	}

	// Link, addresses, routes.
	err = gw.Netlink(func(h *netlink.Handle) error {
		l, err := h.LinkByName("nt0")
		if err != nil {
			return err
		}
		if l.Attrs().Flags&1 == 0 { // net.FlagUp
			t.Errorf("nt0 is not up")
		}
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		var got []string
		for _, a := range addrs {
			if !a.IP.IsLinkLocalUnicast() {
				got = append(got, a.IPNet.String())
			}
		}
		slices.Sort(got)
		if want := []string{"100.64.0.1/32", "fd00:6e6e::1/128", "fd00:6e6e::53:0:1/128", "fd00:6e6e::53:0:1f/128"}; !slices.Equal(got, want) {
			t.Errorf("nt0 addresses = %v, want %v", got, want)
		}
		routes, err := h.RouteList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		var dsts []string
		for _, r := range routes {
			if r.Dst != nil {
				dsts = append(dsts, r.Dst.String())
			}
		}
		for _, want := range []string{"100.64.0.0/10", "fd00:6e6e::/48"} {
			if !slices.Contains(dsts, want) {
				t.Errorf("routes via nt0 = %v, want to include %s", dsts, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sysctlForward4, sysctlForward6} {
		if v := readSysctl(t, gw, p); v != "1" {
			t.Errorf("%s in namespace = %q, want 1", p, v)
		}
	}

	// nftables table, chains and rules as the kernel reports them.
	conn := nftIn(t, gw)
	table, err := conn.ListTableOfFamily("nitronet-nt0", nftables.TableFamilyINet)
	if err != nil {
		t.Fatalf("table: %v", err)
	}
	all, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	wantChains := map[string]struct {
		typ  nftables.ChainType
		hook nftables.ChainHook
		prio nftables.ChainPriority
	}{
		chainPostrouting: {nftables.ChainTypeNAT, *nftables.ChainHookPostrouting, *nftables.ChainPriorityNATSource},
		chainForward:     {nftables.ChainTypeFilter, *nftables.ChainHookForward, *nftables.ChainPriorityFilter},
		chainInput:       {nftables.ChainTypeFilter, *nftables.ChainHookInput, *nftables.ChainPriorityFilter},
	}
	c, _ := cfg.normalize()
	wantRules := map[string][]string{}
	for _, r := range newRuleset(c, "nt0", "uplink0").rules() {
		wantRules[r.chain] = append(wantRules[r.chain], r.comment)
	}
	seen := 0
	for _, ch := range all {
		if ch.Table.Name != table.Name {
			continue
		}
		seen++
		w, ok := wantChains[ch.Name]
		if !ok {
			t.Errorf("unexpected chain %s", ch.Name)
			continue
		}
		if ch.Type != w.typ || *ch.Hooknum != w.hook || *ch.Priority != w.prio || *ch.Policy != nftables.ChainPolicyAccept {
			t.Errorf("chain %s: type %s hook %d prio %d policy %d; want %s %d %d accept",
				ch.Name, ch.Type, *ch.Hooknum, *ch.Priority, *ch.Policy, w.typ, w.hook, w.prio)
		}
		rules, err := conn.GetRules(table, ch)
		if err != nil {
			t.Fatal(err)
		}
		var comments []string
		for i, r := range rules {
			cm, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			comments = append(comments, cm)
			for _, e := range r.Exprs {
				if !allowedExpr(e) {
					t.Errorf("chain %s rule %d (%s): kernel reports forbidden expression %T", ch.Name, i, cm, e)
				}
			}
		}
		if !slices.Equal(comments, wantRules[ch.Name]) {
			t.Errorf("chain %s rules = %q, want %q", ch.Name, comments, wantRules[ch.Name])
		}
	}
	if seen != len(wantChains) {
		t.Errorf("table has %d chains, want %d", seen, len(wantChains))
	}

	// The nft CLI agrees, and shows no counters.
	if out, err := gw.Command(t.Context(), "nft", "list", "table", "inet", "nitronet-nt0").CombinedOutput(); err == nil {
		s := string(out)
		t.Logf("nft list table inet nitronet-nt0:\n%s", s)
		for _, want := range []string{"masquerade", `iifname "nt0" oifname "nt0" drop`, "ct state established,related accept", "udp dport 53 accept"} {
			if !strings.Contains(s, want) {
				t.Errorf("nft list table lacks %q:\n%s", want, s)
			}
		}
		for _, bad := range []string{"counter", "log", "quota", "limit"} {
			if strings.Contains(s, bad) {
				t.Errorf("nft list table contains %q:\n%s", bad, s)
			}
		}
	} else {
		t.Logf("nft CLI unavailable, skipped its check: %v: %s", err, out)
	}

	// Close from this goroutine, which is not in the namespace.
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := conn.ListTableOfFamily("nitronet-nt0", nftables.TableFamilyINet); err == nil {
		t.Error("table still present after Close")
	}
	if ok, err := gw.HasLink("nt0"); err != nil || ok {
		t.Errorf("after Close, HasLink(nt0) = %v, %v; want false, nil", ok, err)
	}
	for _, p := range []string{sysctlForward4, sysctlForward6} {
		if v := readSysctl(t, gw, p); v != "0" {
			t.Errorf("after Close, %s in namespace = %q, want 0 (restored)", p, v)
		}
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got, _ := os.ReadFile(sysctlForward4); string(got) != string(hostForward) {
		t.Errorf("host %s changed: %q -> %q", sysctlForward4, hostForward, got)
	}
}

func TestSetupFailures(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, ns *netns.NS)
		mod     func(*Config)
		wantErr string
	}{
		{"missing uplink", nil, func(c *Config) { c.Uplink = "nope0" }, "uplink nope0"},
		{"no default route", func(t *testing.T, ns *netns.NS) {
			if err := ns.Netlink(func(h *netlink.Handle) error {
				return h.RouteDel(&netlink.Route{Dst: nil, Gw: netip.MustParseAddr("198.19.0.2").AsSlice()})
			}); err != nil {
				t.Fatal(err)
			}
		}, func(*Config) {}, "no default route"},
		{"interface exists", func(t *testing.T, ns *netns.NS) {
			if err := ns.Netlink(func(h *netlink.Handle) error {
				return h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nt0"}, PeerName: "nt0peer"})
			}); err != nil {
				t.Fatal(err)
			}
		}, func(*Config) {}, "already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := gatewayNS(t)
			if tt.prepare != nil {
				tt.prepare(t, gw)
			}
			cfg := validConfig()
			tt.mod(&cfg)
			n, err := setupIn(t, gw, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Setup error = %v, want containing %q", err, tt.wantErr)
			}
			if n != nil {
				t.Error("Setup returned a Net with an error")
			}
			if _, err := nftIn(t, gw).ListTableOfFamily("nitronet-nt0", nftables.TableFamilyINet); err == nil {
				t.Error("table left behind")
			}
			if tt.name != "interface exists" {
				if ok, _ := gw.HasLink("nt0"); ok {
					t.Error("nt0 left behind")
				}
			}
			if v := readSysctl(t, gw, sysctlForward4); v != "0" {
				t.Errorf("ip_forward = %s after failed Setup, want 0", v)
			}
		})
	}
}

func TestSetupReplacesStaleTable(t *testing.T) {
	gw := gatewayNS(t)
	conn := nftIn(t, gw)
	stale := conn.AddTable(&nftables.Table{Name: "nitronet-nt0", Family: nftables.TableFamilyINet})
	conn.AddChain(&nftables.Chain{Name: "leftover", Table: stale})
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := setupIn(t, gw, validConfig()); err != nil {
		t.Fatal(err)
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range chains {
		if c.Table.Name == "nitronet-nt0" {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	if want := []string{chainForward, chainInput, chainPostrouting}; !slices.Equal(names, want) {
		t.Errorf("chains = %v, want %v", names, want)
	}
}

// ExampleTableName shows the table name Setup uses for an interface.
func ExampleTableName() {
	fmt.Println(TableName("nt0"))
	// Output: nitronet-nt0
}
