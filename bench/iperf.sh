#!/usr/bin/env bash
# bench/iperf.sh — TCP throughput through one namespace topology, in one run:
#
#   client [198.18.0.2] <-> [198.18.0.1] gateway [198.19.0.1] <-> [198.19.0.2] server (iperf3 -s)
#
# Scenarios, each measured with iperf3 from the client to the server:
#   plain     routing through the gateway, no tunnel (the ceiling)
#   upstream  the upstream wireguard-go binary on both ends, configured by `wg`
#   nitronet  our gateway (kernel mode) and client, via a hook script (below)
# and prints Mbit/s plus each scenario's ratio to "upstream".
#
# All traffic stays inside namespaces this script creates ("nn-bench-*"),
# with transit addresses in 198.18.0.0/15 and tunnel addresses in
# 100.64.0.0/10; everything is removed on exit, even on failure.
#
# Requirements: root, iproute2, iperf3, wireguard-tools (wg) and
# wireguard-go. By default wireguard-go is built from the module version
# pinned in go.mod (so it matches what our engine links); set WG_GO=path to
# use another binary, e.g. /usr/bin/wireguard-go from the Debian package.
#   apt-get install -y iperf3 wireguard-tools wireguard-go
#
# Environment:
#   DURATION=10           seconds per iperf3 run
#   PARALLEL=1            iperf3 parallel streams (-P)
#   WG_GO=path            wireguard-go binary to use instead of building one
#   NITRONET_BENCH_HOOK=path
#       executable for the "nitronet" scenario, called as
#         HOOK up   and later   HOOK down
#       with BENCH_CLIENT_NS, BENCH_GATEWAY_NS, BENCH_SERVER_NS,
#       BENCH_GATEWAY_ENDPOINT (198.18.0.1), BENCH_UPLINK (uplink0),
#       BENCH_SERVER (198.19.0.2) and BENCH_WORKDIR exported. "up" must
#       leave the client routing 198.19.0.0/24 through our tunnel (and may
#       background processes, recording their pids in $BENCH_WORKDIR);
#       "down" must undo it. Without a hook the scenario is reported as
#       skipped.
set -euo pipefail

DURATION=${DURATION:-10}
PARALLEL=${PARALLEL:-1}
REPO=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "iperf.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"
for t in ip iperf3 wg; do command -v "$t" >/dev/null || die "missing $t (apt-get install -y iproute2 iperf3 wireguard-tools)"; done

RUN=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
C=nn-bench-c-$RUN-$$
G=nn-bench-g-$RUN-$$
S=nn-bench-s-$RUN-$$
WGC=wbc$RUN   # interface names double as UAPI socket names under /var/run/wireguard
WGG=wbg$RUN
WORK=$(mktemp -d /tmp/nitronet-bench.XXXXXX)
PIDS=()
HOOK_UP=0

cleanup() {
	set +e
	if [ "$HOOK_UP" = 1 ]; then "$NITRONET_BENCH_HOOK" down >/dev/null 2>&1; fi
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for ns in "$C" "$G" "$S"; do ip netns del "$ns" 2>/dev/null; done
	rm -f "/var/run/wireguard/$WGC.sock" "/var/run/wireguard/$WGG.sock"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# wait_for DESCRIPTION SECONDS COMMAND... polls COMMAND until it succeeds.
wait_for() {
	local what=$1 secs=$2; shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || die "timed out waiting for $what"
		sleep 0.1
	done
}

# ---- wireguard-go -------------------------------------------------------
if [ -z "${WG_GO:-}" ]; then
	if command -v go >/dev/null; then
		echo "building wireguard-go from go.mod ($(cd "$REPO" && go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard))..." >&2
		(cd "$REPO" && go build -o "$WORK/wireguard-go" golang.zx2c4.com/wireguard) || die "build wireguard-go failed"
		WG_GO=$WORK/wireguard-go
	else
		WG_GO=$(command -v wireguard-go) || die "no go toolchain and no wireguard-go binary"
	fi
fi
[ -x "$WG_GO" ] || die "WG_GO=$WG_GO is not executable"

# ---- topology -----------------------------------------------------------
for ns in "$C" "$G" "$S"; do ip netns add "$ns"; inns "$ns" ip link set lo up; done
ip -n "$C" link add eth0 type veth peer name transit0 netns "$G"
ip -n "$G" link add uplink0 type veth peer name eth0 netns "$S"
ip -n "$C" addr add 198.18.0.2/24 dev eth0
ip -n "$G" addr add 198.18.0.1/24 dev transit0
ip -n "$G" addr add 198.19.0.1/24 dev uplink0
ip -n "$S" addr add 198.19.0.2/24 dev eth0
for l in "$C eth0" "$G transit0" "$G uplink0" "$S eth0"; do set -- $l; ip -n "$1" link set "$2" up; done
inns "$G" sysctl -qw net.ipv4.ip_forward=1
# The server routes answers for the client and tunnel ranges back via the gateway.
ip -n "$S" route add 198.18.0.0/15 via 198.19.0.1
ip -n "$S" route add 100.64.0.0/10 via 198.19.0.1

inns "$S" iperf3 -s >/dev/null 2>&1 &
PIDS+=($!)
wait_for "iperf3 server" 10 sh -c "ip netns exec '$S' ss -Hltn 'sport = :5201' | grep -q ."

# reach: one tiny iperf3 transfer, to wait for a path (no ping needed).
reach() { inns "$C" iperf3 -c 198.19.0.2 -n 1K --connect-timeout 1000; }

# measure: runs iperf3 from the client and prints the receiver's Mbit/s.
measure() {
	inns "$C" iperf3 -c 198.19.0.2 -t "$DURATION" -P "$PARALLEL" -f m |
		awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") v = $(i-1) } END { if (v == "") exit 1; print v }'
}

declare -A RESULT

# ---- plain routing --------------------------------------------------------
ip -n "$C" route replace 198.19.0.0/24 via 198.18.0.1
wait_for "plain route" 10 reach
echo "plain routing..." >&2
RESULT[plain]=$(measure)
ip -n "$C" route del 198.19.0.0/24

# ---- upstream wireguard-go + wg ---------------------------------------------
umask 077
wg genkey >"$WORK/g.key"; wg pubkey <"$WORK/g.key" >"$WORK/g.pub"
wg genkey >"$WORK/c.key"; wg pubkey <"$WORK/c.key" >"$WORK/c.pub"
inns "$G" "$WG_GO" -f "$WGG" >/dev/null 2>&1 &
PIDS+=($!)
inns "$C" "$WG_GO" -f "$WGC" >/dev/null 2>&1 &
PIDS+=($!)
wait_for "wireguard-go gateway" 10 ip -n "$G" link show "$WGG"
wait_for "wireguard-go client" 10 ip -n "$C" link show "$WGC"
wait_for "wireguard-go gateway UAPI" 10 test -S "/var/run/wireguard/$WGG.sock"
wait_for "wireguard-go client UAPI" 10 test -S "/var/run/wireguard/$WGC.sock"
inns "$G" wg set "$WGG" private-key "$WORK/g.key" listen-port 51820 \
	peer "$(cat "$WORK/c.pub")" allowed-ips 100.64.0.2/32
inns "$C" wg set "$WGC" private-key "$WORK/c.key" \
	peer "$(cat "$WORK/g.pub")" endpoint 198.18.0.1:51820 allowed-ips 198.19.0.0/24
ip -n "$G" addr add 100.64.0.1/24 dev "$WGG"
ip -n "$C" addr add 100.64.0.2/24 dev "$WGC"
ip -n "$G" link set "$WGG" mtu 1420 up
ip -n "$C" link set "$WGC" mtu 1420 up
ip -n "$C" route replace 198.19.0.0/24 dev "$WGC" src 100.64.0.2
wait_for "wireguard-go tunnel" 10 reach
echo "upstream wireguard-go..." >&2
RESULT[upstream]=$(measure)
ip -n "$C" route del 198.19.0.0/24
ip -n "$G" link del "$WGG"
ip -n "$C" link del "$WGC"

# ---- nitronet (hook) ------------------------------------------------------
if [ -n "${NITRONET_BENCH_HOOK:-}" ]; then
	export BENCH_CLIENT_NS=$C BENCH_GATEWAY_NS=$G BENCH_SERVER_NS=$S \
		BENCH_GATEWAY_ENDPOINT=198.18.0.1 BENCH_UPLINK=uplink0 BENCH_SERVER=198.19.0.2 \
		BENCH_WORKDIR=$WORK
	HOOK_UP=1
	"$NITRONET_BENCH_HOOK" up
	wait_for "nitronet tunnel" 15 reach
	echo "nitronet..." >&2
	RESULT[nitronet]=$(measure)
	"$NITRONET_BENCH_HOOK" down
	HOOK_UP=0
fi

# ---- report ---------------------------------------------------------------
echo
printf 'iperf3 TCP, %ss, %s stream(s), client -> server through the gateway\n' "$DURATION" "$PARALLEL"
printf '%-10s %12s %14s\n' scenario Mbit/s "vs upstream"
for s in plain upstream nitronet; do
	v=${RESULT[$s]:-}
	if [ -z "$v" ]; then
		printf '%-10s %12s %14s\n' "$s" skipped "(set NITRONET_BENCH_HOOK)"
		continue
	fi
	printf '%-10s %12s %14s\n' "$s" "$v" "$(awk -v a="$v" -v b="${RESULT[upstream]}" 'BEGIN { printf "%.2fx", a / b }')"
done
