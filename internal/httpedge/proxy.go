package httpedge

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

type clientAddrKey struct{}

// TrustProxies returns next behind a step that, for a request whose peer
// (its RemoteAddr) is in trusted, takes the client's address from the
// X-Forwarded-For header: the rightmost address in it that is not itself
// in trusted, so that a client cannot choose its address by sending the
// header itself. ClientKey then counts by that address. A request from any
// other peer, or whose header names no such address, keeps its peer. The
// address is held only in the request's context for ClientKey; it is never
// logged. With no trusted prefix, TrustProxies returns next.
func TrustProxies(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, ok := remoteAddr(r)
		if ok && isTrusted(peer) {
			if a, ok := forwardedFor(r.Header.Values("X-Forwarded-For"), isTrusted); ok {
				r = r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, a))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedFor returns the rightmost address of the X-Forwarded-For
// values that is not trusted. Each proxy appends the address of its own
// peer, so everything right of the first untrusted address was written by
// trusted proxies, and everything left of it by whoever the client is.
func forwardedFor(values []string, trusted func(netip.Addr) bool) (netip.Addr, bool) {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false // a hop we cannot read: keep the peer
		}
		a = a.Unmap().WithZone("")
		if !trusted(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// remoteAddr returns the address of r's peer.
func remoteAddr(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}
