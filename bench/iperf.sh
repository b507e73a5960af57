#!/usr/bin/env bash
# bench/iperf.sh — TCP throughput through one namespace topology, in one run:
#
#   client [198.18.0.2] <-> [198.18.0.1] gateway [198.19.0.1] <-> [198.19.0.2] server (iperf3 -s)
#
# Scenarios, each measured with iperf3 from the client to the server:
#   plain     routing through the gateway, no tunnel (the ceiling)
#   upstream  the upstream wireguard-go binary on both ends, configured by `wg`
#   upstream_nat  the same, plus the source NAT (one nftables masquerade
#             rule for the tunnel addresses on the gateway's uplink) that
#             a VPN gateway needs and ours does; off by default, compared
#             with nitronet round by round
#   nitronet  our gateway (`nitronet gateway --mode kernel`: TUN + nftables
#             NAT and isolation), enrolled with a control server
#             (`nitronet serve`) running in the gateway namespace, and our
#             client (`nitronet up`, TUN mode) in the client namespace, with
#             the account and device made through the CLI (signup, verify
#             with the codes from the server's outbox, device add)
#   upstream_client  our gateway, as in "nitronet", but the client is a stock
#             one: the upstream wireguard-go binary, configured by `wg
#             setconf` from the config our server hands out (`nitronet
#             device config`, with the Address, DNS and MTU lines that
#             wg-quick would handle applied by `ip`)
#   nitronet_tcp  the same, classical, with WireGuard over TCP (UDP-over-TCP):
#             the gateway with --tcp-port 443 and `nitronet up --transport tcp`
#   nitronet_multihop  the same, classical, with our gateway as the entry and
#             a second kernel gateway as the exit in its own namespace (exit
#             [198.19.1.1] <-> [198.19.1.2] server, the server forwarding
#             between its links): `nitronet up --entry bench --exit
#             bench-exit`, the tunnel to the exit inside the one to the entry
# The scenarios are interleaved (plain, upstream, nitronet, plain, ...) for
# ROUNDS rounds, because a shared machine is noisy; the report gives each
# scenario's median, minimum and maximum Mbit/s and the ratio of its median
# to the median of "upstream", plus the nitronet/upstream ratio per round.
# It also reports the gateway process's CPU time (user + system, from
# /proc/PID/stat, during the measurement) per Gbit carried: the upstream
# wireguard-go gateway in "upstream", ours in the other scenarios; and the
# client process's the same way: the upstream wireguard-go binary in
# "upstream" and "upstream_client", `nitronet up` in the others. On a
# loaded machine this cost moves much less than the throughput does.
#
# Each round sets a scenario up and tears it down again, so no scenario runs
# beside another one's processes or nftables rules (our gateway's NAT table
# would otherwise turn on connection tracking for the upstream run too). The
# control server and the client's account and device persist across rounds;
# the gateway keeps its key and credential in a key file in the work
# directory, so only the first start uses the enrollment token.
#
# All traffic stays inside namespaces this script creates ("nn-bench-*"),
# with transit addresses in 198.18.0.0/15 and tunnel addresses in
# 100.64.0.0/10 and fd00::/8; the gateway's DNS forwarder points at the
# server namespace. `nitronet up` rewrites /etc/resolv.conf: the script gives
# the client namespace its own copy (/etc/netns/NAME/resolv.conf, which
# `ip netns exec` bind-mounts over /etc/resolv.conf), so the host's file is
# never touched; it refuses to run the nitronet scenario if /etc/resolv.conf
# is a symlink, since the bind mount would then not cover it. On exit, even on
# failure or Ctrl-C, it runs `nitronet down`, stops every process it
# started, and deletes the namespaces, the /etc/netns entry and the work
# directory.
#
# Requirements: root, iproute2, iperf3, wireguard-tools (wg) and a Go
# toolchain (or WG_GO and NITRONET binaries). By default wireguard-go is
# built from the module version pinned in go.mod (so it matches what our
# engine links) and nitronet from this checkout.
#   apt-get install -y iproute2 iperf3 wireguard-tools
#
# Environment:
#   ROUNDS=3              interleaved rounds; each scenario runs once a round
#   DURATION=10           seconds per iperf3 run
#   PARALLEL=1            iperf3 parallel streams (-P)
#   SCENARIOS="plain upstream nitronet quantum"
#                         which scenarios to run (in this order each round);
#                         upstream_client is off by default and, like
#                         nitronet, compared with upstream round by round
#                         nitronet_tcp and nitronet_multihop are off by
#                         default and are compared with nitronet round by round
#   WG_GO=path            wireguard-go binary to use instead of building one
#   NITRONET=path         nitronet binary to use instead of building one
#   KEEP_LOGS=dir         copy the processes' logs to dir before cleaning up
#   PROFILE=dir           write a Go CPU profile of each run of our gateway
#                         (`gateway --cpuprofile`) to dir, named
#                         gateway-SCENARIO-ROUND.pprof, and of our client
#                         (`up --cpuprofile`), client-SCENARIO-ROUND.pprof
#                         (kept after cleanup)
#   PERF=dir              record `perf record -a -g` of the whole machine
#                         (kernel included: conntrack, nftables, TUN, UDP)
#                         during each measurement, to
#                         dir/SCENARIO-ROUND.perf.data; read with
#                         `perf report -i FILE --sort comm,sym`
#
# Output: progress on stderr; the report on stdout, ending with one line
#   RESULT plain=MBPS upstream=MBPS nitronet=MBPS nitronet/upstream=RATIO paired-median=RATIO
# (and upstream_client=MBPS upstream_client/upstream=RATIO
# upstream_client-paired-median=RATIO when SCENARIOS includes
# upstream_client, and quantum=MBPS quantum/nitronet=RATIO
# quantum-paired-median=RATIO when SCENARIOS includes quantum) for scripts (medians in Mbit/s; the ratio of the medians; the median of
# the per-round nitronet/upstream ratios).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
PARALLEL=${PARALLEL:-1}
SCENARIOS=${SCENARIOS:-plain upstream nitronet quantum}
REPO=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "iperf.sh: $*" >&2; exit 1; }
log() { echo "iperf.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"
for t in ip iperf3 wg ss awk sort; do command -v "$t" >/dev/null || die "missing $t (apt-get install -y iproute2 iperf3 wireguard-tools)"; done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
for s in $SCENARIOS; do
	case $s in plain | upstream | upstream_nat | nitronet | upstream_client | quantum | nitronet_tcp | nitronet_multihop) ;;
	*) die "unknown scenario $s (want plain, upstream, upstream_nat, nitronet, upstream_client, quantum, nitronet_tcp, nitronet_multihop)" ;;
	esac
done
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
MODES="nitronet_tcp nitronet_multihop" # compared with nitronet, round by round
ours() { want nitronet || want upstream_client || want quantum || want nitronet_tcp || want nitronet_multihop; }
# The scenarios that need the upstream wireguard-go binary.
wggo() { want upstream || want upstream_nat || want upstream_client; }
if want upstream_nat; then command -v nft >/dev/null || die "missing nft (apt-get install -y nftables)"; fi
if ours && [ -L /etc/resolv.conf ]; then
	die "/etc/resolv.conf is a symlink: \`nitronet up\` in the client namespace could replace the host's file; run without the nitronet scenario"
fi

RUN=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
C=nn-bench-c-$RUN-$$
G=nn-bench-g-$RUN-$$
S=nn-bench-s-$RUN-$$
X=nn-bench-x-$RUN-$$
WGC=wbc$RUN # interface names double as UAPI socket names under /var/run/wireguard
WGG=wbg$RUN
WORK=$(mktemp -d /tmp/nitronet-bench.XXXXXX)
chmod 0700 "$WORK"
NETNS_ETC=/etc/netns/$C

# The client's state (session token, device key) and the control server's data.
CFG=$WORK/client
DATA=$WORK/control
SERVER_URL=http://198.18.0.1:8080

# Pids of the background processes this script started ("" when not running).
# They are started as `ip netns exec NS CMD &` (never through a shell
# function, which would fork a subshell): ip execs CMD, so $! is CMD's pid.
IPERF_PID=
SERVE_PID=
GW_PID=
GWX_PID=
UP_PID=
WGG_PID=
WGC_PID=

# stop_pid PID: SIGTERM, up to 15 s for the process to exit, then SIGKILL.
# Only ever called with a pid this script started.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	set +e
	trap - INT TERM
	if [ "$rc" != 0 ]; then
		for f in "$WORK"/*.log; do
			[ -s "$f" ] || continue
			echo "--- last lines of $(basename "$f")" >&2
			tail -n 20 "$f" >&2
		done
	fi
	if [ -n "${KEEP_LOGS:-}" ]; then
		mkdir -p "$KEEP_LOGS" && cp "$WORK"/*.log "$KEEP_LOGS"/ 2>/dev/null
	fi
	if [ -n "$UP_PID" ] || [ -d "$CFG/run" ]; then
		# `down` stops a running `up` and undoes whatever a crashed one left.
		timeout 30 ip netns exec "$C" env NITRONET_CONFIG_DIR="$CFG" "$NITRONET" down >/dev/null 2>&1
		stop_pid "$UP_PID"
	fi
	stop_pid "$GW_PID"
	stop_pid "$GWX_PID"
	stop_pid "$WGC_PID"
	stop_pid "$WGG_PID"
	stop_pid "$SERVE_PID"
	stop_pid "$IPERF_PID"
	for ns in "$C" "$G" "$S" "$X"; do ip netns del "$ns" 2>/dev/null; done
	rm -f "/var/run/wireguard/$WGC.sock" "/var/run/wireguard/$WGG.sock"
	rm -rf "$NETNS_ETC"
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

inns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}
# nn runs the nitronet client CLI in the client namespace.
nn() { ip netns exec "$C" env NITRONET_CONFIG_DIR="$CFG" NITRONET_SERVER="$SERVER_URL" "$NITRONET" "$@"; }

# wait_for DESCRIPTION SECONDS COMMAND... polls COMMAND until it succeeds.
wait_for() {
	local what=$1 secs=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || die "timed out waiting for $what"
		sleep 0.1
	done
}

# alive PID: the process is still running.
alive() { kill -0 "$1" 2>/dev/null; }

# wait_log DESCRIPTION SECONDS PID FILE REGEX: waits until FILE matches REGEX,
# failing early if PID exits.
wait_log() {
	local what=$1 secs=$2 pid=$3 file=$4 re=$5
	local deadline=$((SECONDS + secs))
	until grep -Eq "$re" "$file" 2>/dev/null; do
		alive "$pid" || die "$what: process exited (see $(basename "$file"))"
		[ $SECONDS -lt $deadline ] || die "timed out waiting for $what"
		sleep 0.1
	done
}

# ---- binaries ---------------------------------------------------------------
if wggo && [ -z "${WG_GO:-}" ]; then
	command -v go >/dev/null || die "no go toolchain: set WG_GO"
	log "building wireguard-go $(cd "$REPO" && go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard) (the version in go.mod)..."
	(cd "$REPO" && go build -o "$WORK/wireguard-go" golang.zx2c4.com/wireguard) || die "build wireguard-go failed"
	WG_GO=$WORK/wireguard-go
fi
if wggo; then [ -x "$WG_GO" ] || die "WG_GO=$WG_GO is not executable"; fi
if [ -z "${NITRONET:-}" ]; then
	if ours; then
		command -v go >/dev/null || die "no go toolchain: set NITRONET"
		log "building nitronet from $REPO ($(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown))..."
		(cd "$REPO" && go build -o "$WORK/nitronet" ./cmd/nitronet) || die "build nitronet failed"
	fi
	NITRONET=$WORK/nitronet
fi
if ours; then [ -x "$NITRONET" ] || die "NITRONET=$NITRONET is not executable"; fi

# ---- topology -----------------------------------------------------------------
for ns in "$C" "$G" "$S"; do
	ip netns add "$ns"
	inns "$ns" ip link set lo up
done
ip -n "$C" link add eth0 type veth peer name transit0 netns "$G"
ip -n "$G" link add uplink0 type veth peer name eth0 netns "$S"
ip -n "$C" addr add 198.18.0.2/24 dev eth0
ip -n "$G" addr add 198.18.0.1/24 dev transit0
ip -n "$G" addr add 198.19.0.1/24 dev uplink0
ip -n "$S" addr add 198.19.0.2/24 dev eth0
for l in "$C eth0" "$G transit0" "$G uplink0" "$S eth0"; do
	set -- $l
	ip -n "$1" link set "$2" up
done
inns "$G" sysctl -qw net.ipv4.ip_forward=1
# The server routes answers for the client and tunnel ranges back via the gateway.
ip -n "$S" route add 198.18.0.0/15 via 198.19.0.1
ip -n "$S" route add 100.64.0.0/10 via 198.19.0.1
if want nitronet_multihop; then
	# The exit gateway's namespace, its uplink on a second link of the
	# server, which forwards between its links (the entry reaches the exit,
	# the exit the control server).
	ip netns add "$X"
	inns "$X" ip link set lo up
	ip -n "$X" link add uplink0 type veth peer name exit0 netns "$S"
	ip -n "$X" addr add 198.19.1.1/24 dev uplink0
	ip -n "$S" addr add 198.19.1.2/24 dev exit0
	ip -n "$X" link set uplink0 up
	ip -n "$S" link set exit0 up
	ip -n "$X" route add default via 198.19.1.2
	ip -n "$G" route add 198.19.1.0/24 via 198.19.0.2
	inns "$S" sysctl -qw net.ipv4.ip_forward=1
fi

ip netns exec "$S" iperf3 -s >"$WORK/iperf3-server.log" 2>&1 &
IPERF_PID=$!
wait_for "iperf3 server" 10 sh -c "ip netns exec '$S' ss -Hltn 'sport = :5201' | grep -q ."

# reach: one tiny iperf3 transfer, to wait for a path (no ping needed).
reach() { inns "$C" iperf3 -c 198.19.0.2 -n 1K --connect-timeout 1000; }

# cpu_ticks PID prints the process's user + system CPU time in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# minor_faults PID prints the process's minor page faults so far.
minor_faults() { awk '{ print $10 }' "/proc/$1/stat"; }
TICK_MS=$(awk -v t="$(getconf CLK_TCK)" 'BEGIN { print 1000 / t }')

# gateway_pid prints the pid of the running scenario's gateway process.
gateway_pid() {
	case $1 in
	upstream | upstream_nat) echo "$WGG_PID" ;;
	plain) ;;
	*) echo "$GW_PID" ;;
	esac
}
# client_pid prints the pid of the running scenario's client process: the
# upstream wireguard-go binary in "upstream" and "upstream_client", `nitronet
# up` in the others.
client_pid() {
	case $1 in
	upstream | upstream_nat | upstream_client) echo "$WGC_PID" ;;
	plain) ;;
	*) echo "$UP_PID" ;;
	esac
}

# measure: runs iperf3 from the client and prints the receiver's Mbit/s.
measure() {
	inns "$C" iperf3 -c 198.19.0.2 -t "$DURATION" -P "$PARALLEL" -f m |
		awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") v = $(i-1) } END { if (v == "") exit 1; print v }'
}

# ---- plain routing --------------------------------------------------------------
plain_up() { ip -n "$C" route replace 198.19.0.0/24 via 198.18.0.1; }
plain_down() { ip -n "$C" route del 198.19.0.0/24; }

# ---- upstream wireguard-go + wg -------------------------------------------------
if want upstream || want upstream_nat; then
	(
		umask 077
		wg genkey >"$WORK/g.key"
		wg pubkey <"$WORK/g.key" >"$WORK/g.pub"
		wg genkey >"$WORK/c.key"
		wg pubkey <"$WORK/c.key" >"$WORK/c.pub"
	)
fi
upstream_up() {
	ip netns exec "$G" "$WG_GO" -f "$WGG" >>"$WORK/wireguard-go-gateway.log" 2>&1 &
	WGG_PID=$!
	ip netns exec "$C" "$WG_GO" -f "$WGC" >>"$WORK/wireguard-go-client.log" 2>&1 &
	WGC_PID=$!
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
}
upstream_down() {
	ip -n "$C" route del 198.19.0.0/24 2>/dev/null || true
	ip -n "$G" link del "$WGG" 2>/dev/null || true
	ip -n "$C" link del "$WGC" 2>/dev/null || true
	stop_pid "$WGG_PID"
	WGG_PID=
	stop_pid "$WGC_PID"
	WGC_PID=
	rm -f "/var/run/wireguard/$WGC.sock" "/var/run/wireguard/$WGG.sock"
}
# upstream_nat: the same, with the source NAT every VPN gateway needs for
# its clients' private tunnel addresses (wg-quick's usual PostUp
# masquerade, here as one nftables rule), which our gateway also does; the
# NAT turns connection tracking on for the forwarded traffic.
upstream_nat_up() {
	upstream_up
	ip netns exec "$G" nft -f - <<-'NFT'
		table ip bench_nat {
			chain post {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "uplink0" ip saddr 100.64.0.0/10 masquerade
			}
		}
	NFT
}
upstream_nat_down() {
	ip netns exec "$G" nft delete table ip bench_nat 2>/dev/null || true
	upstream_down
}

# ---- nitronet: control server, account, device; gateway and client per round -----
# outbox_code CHANNEL prints the newest 6-digit code the server wrote to its
# outbox for CHANNEL ("email" or "sms"): the first 6-digit number in the
# body (after the header's blank line) of the newest such message.
outbox_code() {
	local ch=$1 f code=
	for f in $(ls -1t "$DATA/outbox" 2>/dev/null); do
		f=$DATA/outbox/$f
		grep -q "^Channel: $ch\$" "$f" || continue
		code=$(sed '1,/^$/d' "$f" | grep -oE '(^|[^0-9])[0-9]{6}([^0-9]|$)' | head -n 1 | tr -cd '0-9')
		[ -n "$code" ] && break
	done
	[ -n "$code" ] || return 1
	echo "$code"
}

GW_TOKEN=
GWX_TOKEN=
nitronet_setup() {
	mkdir -p "$DATA" "$CFG" "$NETNS_ETC"
	chmod 0700 "$DATA" "$CFG"
	# The client namespace's own resolv.conf, which `nitronet up` rewrites
	# and `nitronet down` restores; the host's /etc/resolv.conf is untouched.
	echo "nameserver 198.19.0.2" >"$NETNS_ETC/resolv.conf"

	log "nitronet: enrolling a gateway record and starting the control server..."
	# Gateways are added by an admin; the first admin needs only the data
	# directory.
	local staff_pw="bench staff password $RUN"
	echo "$staff_pw" | "$NITRONET" admin staff add --data "$DATA" --email "ops-$RUN@example.com" --role admin \
		>"$WORK/admin.log" 2>&1 || die "admin staff add failed: $(cat "$WORK/admin.log")"
	GW_TOKEN=$(NITRONET_STAFF="ops-$RUN@example.com" NITRONET_STAFF_PASSWORD="$staff_pw" \
		"$NITRONET" admin gateway add --data "$DATA" --region bench --endpoint 198.18.0.1:51820 2>>"$WORK/admin.log")
	[ -n "$GW_TOKEN" ] || die "admin gateway add printed no token"
	if want nitronet_multihop; then
		GWX_TOKEN=$(NITRONET_STAFF="ops-$RUN@example.com" NITRONET_STAFF_PASSWORD="$staff_pw" \
			"$NITRONET" admin gateway add --data "$DATA" --region bench-exit --endpoint 198.19.1.1:51821 2>>"$WORK/admin.log")
		[ -n "$GWX_TOKEN" ] || die "admin gateway add (exit) printed no token"
	fi
	ip netns exec "$G" "$NITRONET" serve --data "$DATA" --listen 198.18.0.1:8080 --insecure-http >"$WORK/serve.log" 2>&1 &
	SERVE_PID=$!
	wait_for "control server" 20 sh -c "kill -0 $SERVE_PID && ip netns exec '$G' ss -Hltn 'sport = :8080' | grep -q ."

	log "nitronet: signup, verify, device add (client namespace)..."
	echo "bench password $RUN" | nn signup --email "bench-$RUN@example.com" --mobile +447911100123 >"$WORK/client-cli.log" 2>&1 ||
		die "signup failed: $(cat "$WORK/client-cli.log")"
	local ecode mcode
	wait_for "email verification code" 10 outbox_code email
	wait_for "SMS verification code" 10 outbox_code sms
	ecode=$(outbox_code email)
	mcode=$(outbox_code sms)
	nn verify email "$ecode" >>"$WORK/client-cli.log" 2>&1 || die "verify email failed"
	nn verify mobile "$mcode" >>"$WORK/client-cli.log" 2>&1 || die "verify mobile failed"
	nn device add bench >>"$WORK/client-cli.log" 2>&1 || die "device add failed"
}

# gateway_start: starts our gateway (with the flags in GW_EXTRA, if set;
# with --cpuprofile if PROFILE is set) and waits for its first sync.
gateway_start() {
	local prof=
	if [ -n "${PROFILE:-}" ]; then
		mkdir -p "$PROFILE"
		prof="--cpuprofile $PROFILE/gateway-$SCENARIO-$ROUND.pprof"
	fi
	: >"$WORK/gateway.log"
	ip netns exec "$G" "$NITRONET" gateway --server "$SERVER_URL" --token "$GW_TOKEN" --key-file "$WORK/gateway.key" \
		--mode kernel --listen-port 51820 --uplink uplink0 --dns-upstream 198.19.0.2:53 ${GW_EXTRA:-} $prof >"$WORK/gateway.log" 2>&1 &
	GW_PID=$!
	# Up, and holding the client's device: the first full sync names it.
	wait_log "nitronet gateway" 30 "$GW_PID" "$WORK/gateway.log" 'peers synced.* full=true .*admitted=[1-9]'
}

# nitronet_start ARGS...: starts our gateway, then `nitronet up ARGS...`.
nitronet_start() {
	gateway_start
	: >"$WORK/up.log"
	local prof=()
	if [ -n "${PROFILE:-}" ]; then
		prof=(--cpuprofile "$PROFILE/client-$SCENARIO-$ROUND.pprof")
	fi
	ip netns exec "$C" env NITRONET_CONFIG_DIR="$CFG" NITRONET_SERVER="$SERVER_URL" "$NITRONET" up "${prof[@]}" "$@" >"$WORK/up.log" 2>&1 &
	UP_PID=$!
	# "Connected through" once the gateway answered a handshake; older
	# clients and slow handshakes print "Tunnel up through" (reach waits).
	wait_log "nitronet up" 30 "$UP_PID" "$WORK/up.log" '^(Connected|Tunnel up) through'
}
nitronet_up() {
	nitronet_start --quantum-resistant=false
	if grep -q '^Quantum-resistant' "$WORK/up.log"; then die "nitronet: the classical scenario got a quantum-resistant tunnel"; fi
}
quantum_up() {
	nitronet_start
	wait_log "quantum-resistant tunnel" 30 "$UP_PID" "$WORK/up.log" '^Quantum-resistant'
}
quantum_down() { nitronet_down; }
nitronet_tcp_up() { GW_EXTRA="--tcp-port 443" nitronet_start --quantum-resistant=false --transport tcp; }
nitronet_tcp_down() { nitronet_down; }
nitronet_multihop_up() {
	: >"$WORK/gateway-exit.log"
	ip netns exec "$X" "$NITRONET" gateway --server "$SERVER_URL" --token "$GWX_TOKEN" --key-file "$WORK/gateway-exit.key" \
		--mode kernel --listen-port 51821 --uplink uplink0 --dns-upstream 198.19.0.2:53 >"$WORK/gateway-exit.log" 2>&1 &
	GWX_PID=$!
	wait_log "nitronet exit gateway" 30 "$GWX_PID" "$WORK/gateway-exit.log" 'peers synced.* full=true .*admitted=[1-9]'
	nitronet_start --quantum-resistant=false --entry bench --exit bench-exit
}
nitronet_multihop_down() {
	nitronet_down
	stop_pid "$GWX_PID"
	GWX_PID=
}
# upstream_client: our gateway, and in the client namespace the upstream
# wireguard-go binary configured from the config our server hands out for
# the device (`nitronet device config`): `wg setconf` takes the keys, the
# endpoint and the allowed IPs; the lines only wg-quick reads (Address,
# DNS, MTU) are applied with `ip` as wg-quick would, except that, as in the
# upstream scenario, only the server's subnet is routed into the tunnel.
upstream_client_up() {
	gateway_start
	nn device config bench --gateway bench >"$WORK/stock.conf" 2>>"$WORK/client-cli.log" || die "device config failed"
	awk '/^[[:space:]]*(Address|DNS|MTU|Table|PreUp|PostUp|PreDown|PostDown|SaveConfig)[[:space:]]*=/ { next } { print }' \
		"$WORK/stock.conf" >"$WORK/stock.wg"
	local mtu addrs a
	mtu=$(awk -F' *= *' '/^[[:space:]]*MTU[[:space:]]*=/ { print $2 }' "$WORK/stock.conf")
	addrs=$(awk -F' *= *' '/^[[:space:]]*Address[[:space:]]*=/ { print $2 }' "$WORK/stock.conf" | tr ',' ' ')
	[ -n "$addrs" ] || die "upstream_client: the device config has no Address"
	ip netns exec "$C" "$WG_GO" -f "$WGC" >>"$WORK/wireguard-go-client.log" 2>&1 &
	WGC_PID=$!
	wait_for "wireguard-go client UAPI" 10 test -S "/var/run/wireguard/$WGC.sock"
	inns "$C" wg setconf "$WGC" "$WORK/stock.wg"
	for a in $addrs; do ip -n "$C" addr add "$a" dev "$WGC"; done
	ip -n "$C" link set "$WGC" mtu "${mtu:-1420}" up
	ip -n "$C" route replace 198.19.0.0/24 dev "$WGC" src "$(echo "$addrs" | tr ' ' '\n' | grep -m1 '\.' | cut -d/ -f1)"
}
upstream_client_down() {
	ip -n "$C" route del 198.19.0.0/24 2>/dev/null || true
	ip -n "$C" link del "$WGC" 2>/dev/null || true
	stop_pid "$WGC_PID"
	WGC_PID=
	rm -f "/var/run/wireguard/$WGC.sock" "$WORK/stock.conf" "$WORK/stock.wg"
	stop_pid "$GW_PID"
	GW_PID=
}

nitronet_down() {
	ip netns exec "$C" env NITRONET_CONFIG_DIR="$CFG" "$NITRONET" down >/dev/null || die "nitronet down failed"
	stop_pid "$UP_PID"
	UP_PID=
	stop_pid "$GW_PID"
	GW_PID=
}

if ours; then nitronet_setup; fi

# ---- rounds ---------------------------------------------------------------------
declare -A SAMPLES
declare -A GWCPU # per scenario: the gateway's CPU ms per Gbit, one per round
declare -A CLCPU # per scenario: the client's CPU ms per Gbit, one per round
PER_ROUND=()
UC_ROUND=() # per-round upstream_client/upstream
NAT_ROUND=() # per-round nitronet/upstream_nat
QR_ROUND=()
declare -A VS_NITRONET # per-round ratios to nitronet of the issue-12 modes
for ((r = 1; r <= ROUNDS; r++)); do
	declare -A this=()
	for s in $SCENARIOS; do
		SCENARIO=$s ROUND=$r
		"${s}_up"
		wait_for "$s path" 30 reach
		log "round $r/$ROUNDS: $s..."
		PERF_PID=
		if [ -n "${PERF:-}" ]; then
			mkdir -p "$PERF"
			perf record -q -a -g -o "$PERF/$s-$r.perf.data" -- sleep "$DURATION" >/dev/null 2>&1 &
			PERF_PID=$!
		fi
		gpid=$(gateway_pid "$s")
		if [ -n "$gpid" ]; then
			t0=$(cpu_ticks "$gpid")
			f0=$(minor_faults "$gpid")
		fi
		cpid=$(client_pid "$s")
		if [ -n "$cpid" ]; then
			ct0=$(cpu_ticks "$cpid")
		fi
		v=$(measure) || die "$s: iperf3 gave no result"
		if [ -n "$cpid" ]; then
			c=$(awk -v d="$(($(cpu_ticks "$cpid") - ct0))" -v ms="$TICK_MS" -v v="$v" -v t="$DURATION" \
				'BEGIN { printf "%.1f", d * ms / (v * t / 1000) }')
			CLCPU[$s]="${CLCPU[$s]:-} $c"
			log "round $r/$ROUNDS: $s client: $c CPU ms/Gbit"
		fi
		if [ -n "$gpid" ]; then
			# CPU ms per Gbit: ticks * ms/tick / (Mbit/s * s / 1000).
			c=$(awk -v d="$(($(cpu_ticks "$gpid") - t0))" -v ms="$TICK_MS" -v v="$v" -v t="$DURATION" \
				'BEGIN { printf "%.1f", d * ms / (v * t / 1000) }')
			GWCPU[$s]="${GWCPU[$s]:-} $c"
			log "round $r/$ROUNDS: $s gateway: $c CPU ms/Gbit, $(($(minor_faults "$gpid") - f0)) minor page faults"
		fi
		if [ -n "$PERF_PID" ]; then
			wait "$PERF_PID" || true
		fi
		"${s}_down"
		log "round $r/$ROUNDS: $s $v Mbit/s"
		SAMPLES[$s]="${SAMPLES[$s]:-} $v"
		this[$s]=$v
	done
	if [ -n "${this[upstream]:-}" ] && [ -n "${this[nitronet]:-}" ]; then
		PER_ROUND+=("$(awk -v a="${this[nitronet]}" -v b="${this[upstream]}" 'BEGIN { printf "%.2f", a / b }')")
	fi
	if [ -n "${this[upstream_nat]:-}" ] && [ -n "${this[nitronet]:-}" ]; then
		NAT_ROUND+=("$(awk -v a="${this[nitronet]}" -v b="${this[upstream_nat]}" 'BEGIN { printf "%.2f", a / b }')")
	fi
	if [ -n "${this[upstream]:-}" ] && [ -n "${this[upstream_client]:-}" ]; then
		UC_ROUND+=("$(awk -v a="${this[upstream_client]}" -v b="${this[upstream]}" 'BEGIN { printf "%.2f", a / b }')")
	fi
	if [ -n "${this[nitronet]:-}" ] && [ -n "${this[quantum]:-}" ]; then
		QR_ROUND+=("$(awk -v a="${this[quantum]}" -v b="${this[nitronet]}" 'BEGIN { printf "%.2f", a / b }')")
	fi
	for x in $MODES; do
		if [ -n "${this[$x]:-}" ] && [ -n "${this[nitronet]:-}" ]; then
			VS_NITRONET[$x]="${VS_NITRONET[$x]:-} $(awk -v a="${this[$x]}" -v b="${this[nitronet]}" 'BEGIN { printf "%.2f", a / b }')"
		fi
	done
	unset this
done

# ---- report ---------------------------------------------------------------------
# stats prints "median min max" of its arguments.
stats() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f %.0f %.0f\n", m, v[1], v[NR] }'
}
declare -A MEDIAN
echo
printf 'iperf3 TCP, client -> server through the gateway: %s round(s) interleaved (%s), %ss per run, %s stream(s)\n' \
	"$ROUNDS" "${SCENARIOS// /, }" "$DURATION" "$PARALLEL"
printf '%s, %s CPU(s), kernel %s, %s\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" "$(uname -r)" \
	"wireguard-go $(cd "$REPO" && go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard 2>/dev/null || echo '?')"
printf '%-17s %14s %8s %8s %12s   %s\n' scenario "median Mbit/s" min max "vs upstream" "samples (Mbit/s)"
for s in $SCENARIOS; do
	read -r med lo hi < <(stats ${SAMPLES[$s]})
	MEDIAN[$s]=$med
done
for s in $SCENARIOS; do
	read -r med lo hi < <(stats ${SAMPLES[$s]})
	ratio=-
	if [ -n "${MEDIAN[upstream]:-}" ]; then
		ratio=$(awk -v a="$med" -v b="${MEDIAN[upstream]}" 'BEGIN { printf "%.2fx", a / b }')
	fi
	printf '%-17s %14s %8s %8s %12s  %s\n' "$s" "$med" "$lo" "$hi" "$ratio" "${SAMPLES[$s]}"
done
# cpu_report TITLE ARRAY prints, per scenario, the median of ARRAY's
# per-round CPU ms per Gbit and its ratio to upstream's.
cpu_report() {
	local -n per=$2
	[ ${#per[@]} -gt 0 ] || return 0
	printf '%-17s %18s %12s   %s\n' scenario "$1 CPU ms/Gbit" "vs upstream" "samples (median of rounds)"
	local -A med=()
	local s ratio
	for s in $SCENARIOS; do
		[ -n "${per[$s]:-}" ] || continue
		med[$s]=$(printf '%s\n' ${per[$s]} | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m }')
	done
	for s in $SCENARIOS; do
		[ -n "${med[$s]:-}" ] || continue
		ratio=-
		if [ -n "${med[upstream]:-}" ]; then
			ratio=$(awk -v a="${med[$s]}" -v b="${med[upstream]}" 'BEGIN { printf "%.2fx", a / b }')
		fi
		printf '%-17s %18s %12s  %s\n' "$s" "${med[$s]}" "$ratio" "${per[$s]}"
	done
}
cpu_report gateway GWCPU
cpu_report client CLCPU
# pair_report NUM DEN ARRAY VAR [TARGET] prints the per-round ratios
# NUM/DEN held in ARRAY, the ratio of the two scenarios' medians and the
# median and range of the per-round ratios (followed by TARGET, if given),
# and sets VAR to that median (empty without rounds).
pair_report() {
	local num=$1 den=$2 target=${5:-}
	local -n rounds=$3 out=$4
	out=
	[ ${#rounds[@]} -gt 0 ] || return 0
	local med lo hi
	read -r med lo hi < <(printf '%s\n' "${rounds[@]}" | sort -g |
		awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f %.2f %.2f\n", m, v[1], v[NR] }')
	printf '%s/%s per round: %s\n' "$num" "$den" "${rounds[*]}"
	printf '%s/%s: %.2f (ratio of medians), %s (median of per-round ratios, range %s-%s)%s\n' "$num" "$den" \
		"$(awk -v a="${MEDIAN[$num]}" -v b="${MEDIAN[$den]}" 'BEGIN { printf "%.2f", a / b }')" "$med" "$lo" "$hi" "$target"
	out=$med
}
pair_report nitronet upstream PER_ROUND pmed "; target >= 1.00"
pair_report upstream_client upstream UC_ROUND umed "; target >= 1.00"
pair_report nitronet upstream_nat NAT_ROUND nmed
pair_report quantum nitronet QR_ROUND qmed
for x in $MODES; do
	if [ -n "${MEDIAN[nitronet]:-}" ] && [ -n "${MEDIAN[$x]:-}" ]; then
		printf '%s/nitronet: %.2f (ratio of medians), per round:%s\n' "$x" \
			"$(awk -v a="${MEDIAN[$x]}" -v b="${MEDIAN[nitronet]}" 'BEGIN { printf "%.2f", a / b }')" "${VS_NITRONET[$x]:-}"
	fi
done
line="RESULT"
for s in $SCENARIOS; do line+=" $s=${MEDIAN[$s]}"; done
if [ -n "${MEDIAN[upstream]:-}" ] && [ -n "${MEDIAN[nitronet]:-}" ]; then
	line+=" nitronet/upstream=$(awk -v a="${MEDIAN[nitronet]}" -v b="${MEDIAN[upstream]}" 'BEGIN { printf "%.2f", a / b }')"
	line+=" paired-median=$pmed"
fi
if [ ${#UC_ROUND[@]} -gt 0 ]; then
	line+=" upstream_client/upstream=$(awk -v a="${MEDIAN[upstream_client]}" -v b="${MEDIAN[upstream]}" 'BEGIN { printf "%.2f", a / b }')"
	line+=" upstream_client-paired-median=$umed"
fi
if [ ${#QR_ROUND[@]} -gt 0 ]; then
	line+=" quantum/nitronet=$(awk -v a="${MEDIAN[quantum]}" -v b="${MEDIAN[nitronet]}" 'BEGIN { printf "%.2f", a / b }')"
	line+=" quantum-paired-median=$qmed"
fi
for x in $MODES; do
	if [ -n "${MEDIAN[nitronet]:-}" ] && [ -n "${MEDIAN[$x]:-}" ]; then
		line+=" $x/nitronet=$(awk -v a="${MEDIAN[$x]}" -v b="${MEDIAN[nitronet]}" 'BEGIN { printf "%.2f", a / b }')"
	fi
done
echo "$line"
