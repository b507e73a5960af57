// Package e2e is Nitronet's end-to-end test of the data plane. It builds
// the real nitronet binary and runs the control server, kernel-mode and
// userspace-mode gateways, nitronet clients in TUN and userspace mode, and a
// stock wireguard-go client, each in its own network namespace (see package
// netns), and checks what a user and the privacy policy promise: traffic
// passes only through the tunnel, clients are isolated, denied sources get
// no handshake, a deleted device is cut off at once, the data plane outlives
// the control server, sessions are recorded, and no file or log the system
// wrote holds a client address, a destination or a name looked up. It also
// covers WireGuard over TCP where UDP is dropped (TestUDPOverTCP) and
// multihop, with packet captures on both gateways' uplinks (TestMultihop).
//
// The test needs root and the tools iproute2, wireguard-tools (wg,
// wg-quick) and wireguard-go. Without them it skips, unless
// NITRONET_REQUIRE_NETNS=1, which turns every skip into a failure. All
// traffic stays inside the namespaces it creates: transit addresses in
// 198.18.0.0/15, tunnel addresses in 100.64.0.0/10 and fd00::/8.
package e2e
