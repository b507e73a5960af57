// Package metrics serves a few Prometheus-format gauges at /metrics.
//
// Gauges are read from callbacks at scrape time. By construction no metric
// has a label that could identify a client: the only labels allowed are
// chosen from fixed sets by the code that registers them (a gateway region,
// a request type), never a device, account or address.
package metrics

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Sample is one labelled value of a gauge.
type Sample struct {
	Labels map[string]string
	Value  float64
}

type gauge struct {
	name, help string
	read       func() []Sample
}

// Registry holds gauges. It is safe for concurrent use.
type Registry struct {
	mu     sync.Mutex
	gauges []gauge
}

// New returns an empty Registry.
func New() *Registry { return &Registry{} }

// Gauge registers a gauge whose samples read returns at each scrape.
func (r *Registry) Gauge(name, help string, read func() []Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gauges = append(r.gauges, gauge{name: name, help: help, read: read})
}

// ServeHTTP writes every gauge in the Prometheus text format.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	gs := append([]gauge(nil), r.gauges...)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	var b strings.Builder
	for _, g := range gs {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", g.name, g.help, g.name)
		for _, s := range g.read() {
			fmt.Fprintf(&b, "%s%s %g\n", g.name, labels(s.Labels), s.Value)
		}
	}
	_, _ = w.Write([]byte(b.String()))
}

func labels(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(m[k])
		parts = append(parts, k+`="`+v+`"`)
	}
	return "{" + strings.Join(parts, ",") + "}"
}
