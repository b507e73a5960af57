package gateway

import (
	"context"
	"fmt"
	"strings"

	"github.com/nitronet/nitronet/internal/dnsblock"
	"github.com/nitronet/nitronet/internal/gateway/blocklist"
	"github.com/nitronet/nitronet/internal/gateway/dnsfwd"
)

// loadBlocklists loads cfg.Blocklists into g.lists and logs what it found:
// file names, counts and timings, never a listed name.
func (g *Gateway) loadBlocklists() error {
	lists, rep, err := blocklist.New(g.cfg.Blocklists)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.lists = lists
	if len(g.cfg.Blocklists) > 0 {
		g.logBlocklists("DNS blocklists loaded", rep)
	}
	return nil
}

// logBlocklists logs a load report.
func (g *Gateway) logBlocklists(msg string, rep blocklist.Report) {
	var missing []string
	for _, c := range dnsblock.Categories() {
		if !g.lists.Categories().Has(c) {
			missing = append(missing, c.String())
		}
	}
	g.log.Info(msg, "files", len(rep.Files), "names", rep.Names, "bytes", rep.Bytes,
		"elapsed", rep.Elapsed.Round(1e6).String(), "categories", g.lists.Categories().String(),
		"categories_without_list", strings.Join(missing, ","))
	for _, f := range rep.Files {
		if f.Skipped > 0 {
			g.log.Warn("blocklist entries skipped", "file", f.Path, "category", f.Category.String(),
				"skipped", f.Skipped, "first_line", f.FirstSkipped, "names", f.Names)
		}
	}
}

// dnsResolvers returns the resolver of every non-empty set of categories,
// each with its blocker, or nil when there is no DNS service or Pool6 has
// no room for them (which it logs).
func (g *Gateway) dnsResolvers() []dnsfwd.Resolver {
	if g.dnsPort() == 0 {
		return nil
	}
	addrs, err := dnsblock.Resolvers(g.cfg.Pool6)
	if err != nil {
		g.log.Warn("DNS blocking resolvers off", "err", err.Error())
		return nil
	}
	out := make([]dnsfwd.Resolver, 0, len(addrs)-1)
	for s := dnsblock.Set(1); s <= dnsblock.All; s++ {
		b, err := g.lists.Blocker(s)
		if err != nil {
			panic(err) // unreachable: s is a valid, non-empty set
		}
		out = append(out, dnsfwd.Resolver{Addr: addrs[s], Blocker: b})
	}
	return out
}

// followReload reloads the blocklists each time cfg.Reload delivers, until
// ctx is done.
func (g *Gateway) followReload(ctx context.Context) {
	if g.cfg.Reload == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-g.cfg.Reload:
			if !ok {
				return
			}
		}
		rep, err := g.lists.Reload()
		if err != nil {
			g.log.Warn("DNS blocklists not reloaded, keeping those in force", "err", err.Error())
			continue
		}
		g.logBlocklists("DNS blocklists reloaded", rep)
	}
}

// BlockedTotals returns, by category name, how many DNS queries the
// blocklists have blocked since Run started: totals over all clients, the
// only figures the gateway keeps about blocking (see package blocklist).
// Before Ready every total is 0.
func (g *Gateway) BlockedTotals() map[string]uint64 {
	select {
	case <-g.ready:
		return g.lists.Totals()
	default:
		out := map[string]uint64{}
		for _, c := range dnsblock.Categories() {
			out[c.String()] = 0
		}
		return out
	}
}

// blockedSummary formats totals as "ads=1,trackers=0,...", in canonical
// order.
func blockedSummary(totals map[string]uint64) string {
	parts := make([]string, 0, len(totals))
	for _, c := range dnsblock.Categories() {
		parts = append(parts, fmt.Sprintf("%s=%d", c, totals[c.String()]))
	}
	return strings.Join(parts, ",")
}
