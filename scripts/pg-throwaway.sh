#!/usr/bin/env bash
# pg-throwaway.sh starts a throwaway PostgreSQL server for tests, and stops it.
#
# Usage:
#   eval "$(scripts/pg-throwaway.sh)"          # start; exports NITRONET_TEST_POSTGRES
#   scripts/pg-throwaway.sh start              # same, prints the export lines
#   scripts/pg-throwaway.sh stop [DIR]         # stop the server and delete DIR
#
# "start" creates a fresh temporary directory, runs initdb in it with trust
# authentication (local connections only), and starts postgres listening on
# 127.0.0.1 at a free port and on a unix socket inside the directory. fsync is
# off: the data is disposable. On stdout it prints exactly two lines:
#
#   export NITRONET_TEST_POSTGRES='postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable'
#   export NITRONET_PG_THROWAWAY_DIR='DIR'
#
# Everything else goes to stderr, so the output is safe to eval. "stop" with no
# DIR uses $NITRONET_PG_THROWAWAY_DIR. It refuses to delete a directory that
# this script did not create (it looks for its marker file).
#
# postgres refuses to run as root. When invoked as root the server runs as the
# "postgres" user if it exists, otherwise as a system user "nitronet-pg" that
# is created on first use; the temporary directory is chowned to that user.
#
# Environment: PG_BIN overrides the PostgreSQL binaries directory
# (default /usr/lib/postgresql/15/bin); TMPDIR is honoured for the directory.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
MARKER=.nitronet-pg-throwaway

log() { printf 'pg-throwaway: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# run_as USER CMD... runs CMD as USER (or directly when USER is empty).
run_as() {
	local user=$1
	shift
	if [[ -z $user ]]; then
		"$@"
	elif command -v runuser >/dev/null 2>&1; then
		runuser -u "$user" -- "$@"
	else
		su -s /bin/sh "$user" -c "$(printf '%q ' "$@")"
	fi
}

# server_user prints the user to run postgres as: empty when not root.
server_user() {
	if [[ $(id -u) -ne 0 ]]; then
		return 0
	fi
	if id postgres >/dev/null 2>&1; then
		echo postgres
		return 0
	fi
	if ! id nitronet-pg >/dev/null 2>&1; then
		log "creating system user nitronet-pg"
		useradd --system --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin nitronet-pg >&2
	fi
	echo nitronet-pg
}

# port_free PORT succeeds if nothing accepts connections on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
	[[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]] || die "no PostgreSQL binaries in $PG_BIN (set PG_BIN)"
	local user dir
	user=$(server_user)
	dir=$(mktemp -d "${TMPDIR:-/tmp}/nitronet-pg.XXXXXX")
	touch "$dir/$MARKER"
	mkdir -p "$dir/sock"
	if [[ -n $user ]]; then
		chown -R "$user" "$dir"
	fi
	chmod 700 "$dir"

	run_as "$user" "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust \
		-E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
		{
			cat "$dir/initdb.log" >&2
			die "initdb failed; directory left at $dir"
		}

	local attempt port=""
	for attempt in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 40000))
		port_free "$port" || continue
		if run_as "$user" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
			-o "-h 127.0.0.1 -p $port -k $dir/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
			start >&2; then
			break
		fi
		log "start on port $port failed (attempt $attempt)"
		port=""
	done
	if [[ -z $port ]]; then
		tail -n 20 "$dir/postgres.log" >&2 || true
		die "could not start postgres; directory left at $dir"
	fi

	log "PostgreSQL running on 127.0.0.1:$port and socket dir $dir/sock"
	log "stop with: $0 stop $dir"
	printf "export NITRONET_TEST_POSTGRES='postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable'\n" "$port"
	printf "export NITRONET_PG_THROWAWAY_DIR='%s'\n" "$dir"
}

stop() {
	local dir=${1:-${NITRONET_PG_THROWAWAY_DIR:-}}
	[[ -n $dir ]] || die "usage: $0 stop DIR (or set NITRONET_PG_THROWAWAY_DIR)"
	[[ -f $dir/$MARKER ]] || die "$dir was not created by $0; refusing to touch it"
	local user=""
	if [[ $(id -u) -eq 0 ]]; then
		user=$(stat -c %U "$dir")
		[[ $user == root ]] && user=""
	fi
	if [[ -f $dir/data/postmaster.pid ]]; then
		run_as "$user" "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || log "pg_ctl stop failed"
	fi
	rm -rf -- "$dir"
	log "stopped and removed $dir"
}

case ${1:-start} in
start) start ;;
stop) stop "${2:-}" ;;
*) die "usage: $0 [start] | stop [DIR]" ;;
esac
