#!/usr/bin/env bash
# The whole test suite: formatting, vet, the Debian package (built, installed
# with apt, run), and every Go test, on SQLite and a throwaway PostgreSQL, with
# network namespaces and headless Chromium.
#
# Run as root on a fresh Debian machine with Go, it installs what the tests
# need (apt-get) and starts a throwaway PostgreSQL 15 itself. Set
# NITRONET_TEST_POSTGRES to use an existing server instead.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for pair in ip:iproute2 wg:wireguard-tools wireguard-go:wireguard-go iperf3:iperf3 chromium:chromium nft:nftables systemd-analyze:systemd; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair##*:}")
done
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_pkgs+=(postgresql-15)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    echo "missing packages (run as root to install them): ${need_pkgs[*]}" >&2
  fi
fi

if [ -z "${NITRONET_TEST_POSTGRES:-}" ] && [ -x /usr/lib/postgresql/15/bin/initdb ]; then
  eval "$(bash scripts/pg-throwaway.sh)"
  trap 'bash scripts/pg-throwaway.sh stop "$NITRONET_PG_THROWAWAY_DIR" >/dev/null 2>&1 || true' EXIT
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
# The Debian package, built by the documented command, installed with apt
# and run. Never over a nitronet someone installed here, except in CI.
echo "== Debian package"
if [ "$(id -u)" != 0 ]; then
  [ "${NITRONET_REQUIRE_PACKAGING:-}" = 1 ] && { echo "installing the package needs root" >&2; exit 1; }
  echo "skipped: installing the package needs root"
elif dpkg -s nitronet >/dev/null 2>&1 && [ "${NITRONET_REQUIRE_PACKAGING:-}" != 1 ]; then
  echo "skipped: a nitronet package is installed on this machine"
else
  debdir=$(mktemp -d)
  go run ./packaging/deb --out "$debdir"
  (cd "$debdir" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ./nitronet_*.deb >/dev/null)
  nitronet version
  systemd-analyze verify nitronet.service nitronet-gateway.service
  [ "$(stat -c %U:%a /etc/nitronet/nitronet.toml)" = nitronet:600 ] || { echo "/etc/nitronet/nitronet.toml is not nitronet's, mode 600" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq nitronet >/dev/null
  rm -rf "$debdir"
fi

echo "== go test"
go test -count=1 -timeout 20m "$@" ./...
