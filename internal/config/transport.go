package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/spf13/pflag"
)

// Transport holds the settings that decide how the control server may be
// reached without TLS and what it takes from a proxy in front of it, and
// where its metrics are served.
//
// Plain HTTP is refused on a --listen address that is not loopback unless
// a TLS-terminating proxy is in front (--behind-proxy) or the operator
// accepts clear text (--insecure-http). Behind a proxy the public origin is
// HTTPS: cookies are Secure with the __Host- prefix and pages send HSTS,
// whatever a request's headers say (X-Forwarded-Proto is never read, so a
// client cannot turn that off). The proxy must pass the Host header on.
// Only when the peer is one of TrustedProxies is the client's address
// taken from X-Forwarded-For, and then only as a rate-limit key: it is
// never logged.
//
// Metrics are served on MetricsListen (default loopback; empty: none)
// and, only with a MetricsToken, also on the main listener, to callers
// that send it as a Bearer token.
type Transport struct {
	BehindProxy  bool
	TrustedProxy []string // IPs or CIDR prefixes, as given
	InsecureHTTP bool
	// SMTPInsecure allows --smtp-tls none or opportunistic to a relay
	// that is not on loopback.
	SMTPInsecure  bool
	MetricsListen string
	MetricsToken  string

	// TrustedProxies is TrustedProxy parsed, filled in by Validate.
	TrustedProxies []netip.Prefix
}

// MinMetricsToken is the shortest --metrics-token accepted.
const MinMetricsToken = 16

func (t *Transport) bind(fs *pflag.FlagSet) {
	fs.BoolVar(&t.BehindProxy, "behind-proxy", false, "a reverse proxy that terminates TLS is in front: plain HTTP on a non-loopback --listen is allowed, and cookies are Secure and pages send HSTS as under TLS (the proxy must pass the Host header on)")
	fs.StringSliceVar(&t.TrustedProxy, "trusted-proxy", nil, "with --behind-proxy: the proxy's address or CIDR prefix (repeatable); from such a peer the client address for rate limits is taken from X-Forwarded-For (never logged)")
	fs.BoolVar(&t.InsecureHTTP, "insecure-http", false, "allow plain HTTP on a non-loopback --listen without a proxy (passwords and session cookies cross the network in clear)")
	fs.BoolVar(&t.SMTPInsecure, "smtp-insecure", false, "allow --smtp-tls none or opportunistic to a relay that is not on loopback (mail and the relay password may cross the network in clear)")
	fs.StringVar(&t.MetricsListen, "metrics-listen", "127.0.0.1:9190", "HTTP listen address of GET /metrics (Prometheus text); empty serves no metrics listener. A non-loopback address needs --metrics-token")
	fs.StringVar(&t.MetricsToken, "metrics-token", "", "Bearer token for /metrics: required on --metrics-listen when set, and serves /metrics on --listen too (prefer NITRONET_METRICS_TOKEN or the config file)")
}

// validate checks t against the rest of c. Errors name the flag.
func (t *Transport) validate(c *Settings) error {
	t.TrustedProxies = nil
	for _, s := range t.TrustedProxy {
		p, err := parsePrefixOrAddr(s)
		if err != nil {
			return fmt.Errorf("--trusted-proxy %q: want an IP address or a CIDR prefix", s)
		}
		t.TrustedProxies = append(t.TrustedProxies, p)
	}
	if len(t.TrustedProxies) > 0 && !t.BehindProxy {
		return fmt.Errorf("--trusted-proxy needs --behind-proxy")
	}
	host, _, _ := net.SplitHostPort(c.Listen)
	if !c.ServesTLS() && !t.BehindProxy && !t.InsecureHTTP && !LoopbackHost(host) {
		return fmt.Errorf("--listen %s serves plain HTTP on a non-loopback address, so passwords and session cookies would cross the network in clear: "+
			"serve TLS (--tls-cert and --tls-key, or --acme-domain), or put a TLS-terminating proxy in front and say --behind-proxy, or accept clear text with --insecure-http", c.Listen)
	}
	if c.SMTPHost != "" && (c.SMTPTLS == "none" || c.SMTPTLS == "opportunistic") && !t.SMTPInsecure && !LoopbackHost(c.SMTPHost) {
		return fmt.Errorf("--smtp-tls %s may send mail and the relay password to %s in clear: use starttls or tls, or accept it with --smtp-insecure", c.SMTPTLS, c.SMTPHost)
	}
	if t.MetricsToken != "" && len(t.MetricsToken) < MinMetricsToken {
		return fmt.Errorf("--metrics-token must be at least %d characters", MinMetricsToken)
	}
	if t.MetricsListen != "" {
		mhost, mport, err := net.SplitHostPort(t.MetricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen %q: want HOST:PORT, or empty for none", t.MetricsListen)
		}
		if t.MetricsListen == c.Listen && mport != "0" {
			return fmt.Errorf("--metrics-listen must differ from --listen (say --metrics-token to serve /metrics on --listen)")
		}
		if !LoopbackHost(mhost) && t.MetricsToken == "" {
			return fmt.Errorf("--metrics-listen %s is not a loopback address: set --metrics-token, which callers then send as a Bearer token", t.MetricsListen)
		}
	}
	return nil
}

// LoopbackHost reports whether host, the host part of a listen or relay
// address, is "localhost" or a loopback IP. An empty host (every
// interface) and any other name are not.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// SecureOrigin reports whether the public origin is HTTPS: the server
// serves TLS itself, or a TLS-terminating proxy is in front of it. Cookies
// are then Secure and pages send HSTS.
func (c *Settings) SecureOrigin() bool { return c.ServesTLS() || c.Transport.BehindProxy }
