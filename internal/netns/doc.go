// Package netns is a test kit for end-to-end tests in real Linux network
// namespaces.
//
// It creates named namespaces ("nn-" + random + "-" + pid, visible under
// /run/netns and usable with `ip netns exec`), connects them with veth
// pairs, assigns addresses and routes, and runs code or commands inside
// them. Everything it creates is removed by t.Cleanup, even when a test
// fails or panics; CleanupStale removes leftovers of a crashed run.
//
// # Address policy
//
// Transit networks (veth links between namespaces) may only use
// 198.18.0.0/15, the range reserved for benchmarking (RFC 2544). Tunnel
// addresses may only use 100.64.0.0/10 and fd00::/8, and must be added
// with the explicit Tunnel variants (AddTunnelAddr). Anything else is
// refused, so a mistake in a test cannot put traffic on a real network.
//
// # Threads and namespaces
//
// A network namespace belongs to an OS thread, not to a goroutine. NS.Do
// runs a function on a fresh, locked OS thread switched into the namespace;
// afterwards the thread is switched back (or, if that fails, discarded) so
// it never returns to the Go scheduler in the wrong namespace. Goroutines started by the function do
// NOT inherit the namespace. Sockets do: a socket stays in the namespace it
// was created in, whichever goroutine later uses it. So to run a long-lived
// server in a namespace, open its listener with NS.Listen (or inside Do) and
// serve it from any goroutine; to dial from a namespace, use NS.DialContext
// or NS.HTTPClient.
//
// External commands are started with `ip netns exec NAME` (NS.Command):
// that is what operators use, it gives the command the namespace's own
// /sys view and /etc/netns/NAME overrides, and it needs no thread tricks.
//
// The package is Linux-only; on other systems it is empty.
package netns
