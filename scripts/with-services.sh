#!/usr/bin/env bash
# with-services.sh CMD [ARGS...]
#
# Runs CMD with PORTERO_TEST_POSTGRES and PORTERO_TEST_REDIS pointing at a
# PostgreSQL and a Redis that answer. A server that already answers at the
# configured URL is used as it is; otherwise a throwaway one is started on a
# free loopback port in a temporary directory, and stopped and deleted when CMD
# ends (whatever way it ends). Servers that were already running are never
# touched.
#
# Environment:
#   PORTERO_TEST_POSTGRES   default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
#   PORTERO_TEST_REDIS      default redis://127.0.0.1:6379/0
#   PORTERO_TEST_SERVICES   auto (default): use what answers, start the rest;
#                           local: always start throwaway servers;
#                           external: never start anything, fail if nothing answers.
#   PORTERO_TEST_PG_OS_USER as root, the OS user that runs the throwaway PostgreSQL
#                           (default: postgres if it exists, else a temporary
#                           system user portero-test). PostgreSQL refuses to run as root.
#   PORTERO_TEST_APT_INSTALL=1  as root, apt-get install the servers when their
#                           binaries are missing (set by .ci/run), instead of failing.
#
# Exit status: CMD's own.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
LOG_PREFIX=with-services

if [[ $# -eq 0 || $1 == -h || $1 == --help ]]; then
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
	exit 2
fi

: "${PORTERO_TEST_POSTGRES:=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
: "${PORTERO_TEST_REDIS:=redis://127.0.0.1:6379/0}"
mode=${PORTERO_TEST_SERVICES:-auto}
case $mode in auto | local | external) ;; *) die "PORTERO_TEST_SERVICES=$mode: want auto, local or external" ;; esac

tmp=          # our temporary directory, removed on exit
pg_data=      # set once a throwaway PostgreSQL may be running
pg_ctl_bin=   # pg_ctl, when the installation has one
pg_user=      # OS user running the throwaway PostgreSQL ("" = ourselves)
made_user=    # the temporary OS user we created, removed on exit
redis_pidfile=

# --- cleanup -----------------------------------------------------------------

stop_postgres() {
	[[ -n $pg_data && -f $pg_data/postmaster.pid ]] || return 0
	if [[ -n $pg_ctl_bin ]]; then
		as_pg "$pg_ctl_bin" -D "$pg_data" -m fast -w -t 30 stop >/dev/null 2>&1 && return 0
	fi
	# No pg_ctl, or it failed: signal the postmaster by the pid it recorded.
	local pid
	pid=$(head -n1 "$pg_data/postmaster.pid" 2>/dev/null) || return 0
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	kill -INT "$pid" 2>/dev/null || return 0
	wait_gone "$pid"
}

stop_redis() {
	[[ -n $redis_pidfile && -s $redis_pidfile ]] || return 0
	local pid
	pid=$(<"$redis_pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	wait_gone "$pid"
}

# wait_gone PID waits up to 15 s for a process to exit, then kills it.
wait_gone() {
	local i
	for ((i = 0; i < 150; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM HUP
	stop_postgres
	stop_redis
	[[ -n $tmp ]] && rm -rf "$tmp"
	# userdel refuses while the user still owns processes, so a concurrent run
	# that reuses the same user keeps it.
	[[ -n $made_user ]] && userdel "$made_user" >/dev/null 2>&1
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- probes ------------------------------------------------------------------

# redact hides the password of a URL's user info when it is printed.
redact() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

pg_answers() {
	local url=$1 rc=0 hp
	if command -v pg_isready >/dev/null 2>&1; then
		pg_isready -q -t 3 -d "$url" >/dev/null 2>&1 || rc=$?
		# 3 means pg_isready could not even try (e.g. a pgx-only URL parameter
		# libpq rejects): fall back to the plain TCP probe below.
		[[ $rc -ne 3 ]] && return "$rc"
	fi
	hp=$(url_host_port "$url" 5432)
	[[ -n $hp ]] || return 1
	# shellcheck disable=SC2086 # "host port" splits on purpose
	tcp_open $hp
}

redis_answers() {
	local url=$1 out hp
	if command -v redis-cli >/dev/null 2>&1; then
		# Any reply counts (PONG, or NOAUTH from a server that wants a password):
		# something speaks Redis there.
		if out=$(timeout 5 redis-cli --no-auth-warning -u "$url" ping 2>/dev/null) && [[ -n $out ]]; then
			return 0
		fi
	fi
	hp=$(url_host_port "$url" 6379)
	[[ -n $hp ]] || return 1
	# shellcheck disable=SC2086,SC2016
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf "PING\r\n" >&3
		IFS= read -r line <&3 || exit 1
		[[ $line == +PONG* || $line == -NOAUTH* || $line == -ERR* ]]
	' _ $hp 2>/dev/null
}

# --- helpers for starting servers -------------------------------------------

make_tmp() {
	[[ -n $tmp ]] && return 0
	# As root the directory must be reachable by the PostgreSQL user, so keep
	# it out of a private TMPDIR such as /root/tmp unless the caller chose one.
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/portero-test.XXXXXX")
	chmod 755 "$tmp"
}

as_pg() {
	if [[ -z $pg_user ]]; then
		(cd "$tmp" && "$@")
	elif command -v runuser >/dev/null 2>&1; then
		# cd first: the caller's directory may be unreadable for that user.
		(cd "$tmp" && runuser -u "$pg_user" -- "$@")
	else
		# shellcheck disable=SC2016
		(cd "$tmp" && su -s /bin/sh "$pg_user" -c 'exec "$0" "$@"' -- "$@")
	fi
}

apt_install() {
	if [[ ${PORTERO_TEST_APT_INSTALL:-0} == 1 && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "installing $* with apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 && return 0
		log "apt-get install $* failed"
	fi
	return 1
}

# find_pg_bins sets pg_initdb, pg_postgres and pg_ctl_bin, preferring the
# newest /usr/lib/postgresql/*/bin, then PATH.
find_pg_bins() {
	local d
	pg_initdb='' pg_postgres='' pg_ctl_bin=''
	while IFS= read -r d; do
		if [[ -x $d/initdb && -x $d/postgres ]]; then
			pg_initdb=$d/initdb pg_postgres=$d/postgres
			[[ -x $d/pg_ctl ]] && pg_ctl_bin=$d/pg_ctl
			return 0
		fi
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k4,4 -V -r)
	pg_initdb=$(command -v initdb 2>/dev/null) || true
	pg_postgres=$(command -v postgres 2>/dev/null) || true
	pg_ctl_bin=$(command -v pg_ctl 2>/dev/null) || true
	[[ -n $pg_initdb && -n $pg_postgres ]]
}

choose_pg_user() {
	pg_user=
	[[ $(id -u) -eq 0 ]] || return 0
	if [[ -n ${PORTERO_TEST_PG_OS_USER:-} ]]; then
		pg_user=$PORTERO_TEST_PG_OS_USER
		id -u "$pg_user" >/dev/null 2>&1 || die "PORTERO_TEST_PG_OS_USER=$pg_user: no such user"
	elif id -u postgres >/dev/null 2>&1; then
		pg_user=postgres
	else
		pg_user=portero-test
		if ! id -u "$pg_user" >/dev/null 2>&1; then
			command -v useradd >/dev/null 2>&1 || die "running as root with no 'postgres' user and no useradd: set PORTERO_TEST_PG_OS_USER to a non-root user"
			if useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$pg_user" >/dev/null 2>&1; then
				made_user=$pg_user
			fi
			id -u "$pg_user" >/dev/null 2>&1 || die "could not create the system user $pg_user"
		fi
	fi
	command -v runuser >/dev/null 2>&1 || command -v su >/dev/null 2>&1 ||
		die "running as root but neither runuser nor su is available to drop to $pg_user"
}

start_postgres() {
	if ! find_pg_bins; then
		{ apt_install postgresql && find_pg_bins; } ||
			die "no PostgreSQL server binaries (initdb, postgres) under /usr/lib/postgresql/*/bin or in PATH to start a throwaway server for the tests.
Install them with:  apt-get install postgresql   (Debian/Ubuntu)
or point PORTERO_TEST_POSTGRES at a running server."
	fi
	make_tmp
	choose_pg_user
	local sock=$tmp/pg log=$tmp/postgres.log port attempt up
	pg_data=$tmp/pgdata
	mkdir -p "$sock"
	[[ -n $pg_user ]] && chown -R "$pg_user" "$tmp"

	log "starting a throwaway PostgreSQL ($pg_postgres${pg_user:+ as $pg_user}) in $tmp"
	# Trust auth on loopback and the socket: the server lives only as long as
	# this run and listens only on 127.0.0.1.
	if ! as_pg "$pg_initdb" -D "$pg_data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$tmp/initdb.log" 2>&1; then
		cat "$tmp/initdb.log" >&2
		die "initdb failed"
	fi
	# Durability is pointless for a throwaway cluster; turning it off makes
	# the many CREATE DATABASE calls of the tests much faster.
	local opts=(-c listen_addresses=127.0.0.1 -k "$sock" -c fsync=off
		-c synchronous_commit=off -c full_page_writes=off -c max_connections=200)
	for attempt in 1 2 3; do
		port=$(free_port) || die "no free TCP port found"
		up=0
		if [[ -n $pg_ctl_bin ]]; then
			as_pg "$pg_ctl_bin" -D "$pg_data" -l "$log" -w -t 60 -o "-p $port ${opts[*]}" start >/dev/null 2>&1 && up=1
		else
			# No pg_ctl: run the postmaster in its own session so a Ctrl-C
			# meant for the tests does not reach it; cleanup stops it.
			as_pg setsid "$pg_postgres" -D "$pg_data" -p "$port" "${opts[@]}" >>"$log" 2>&1 </dev/null &
			local i
			for ((i = 0; i < 300; i++)); do
				if pg_answers "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"; then
					up=1
					break
				fi
				sleep 0.2
			done
		fi
		if [[ $up == 1 ]]; then
			PORTERO_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			log "PostgreSQL is up at $PORTERO_TEST_POSTGRES"
			return 0
		fi
		log "PostgreSQL did not start on port $port (attempt $attempt); log:"
		tail -n 20 "$log" >&2 || true
		stop_postgres
	done
	die "could not start a throwaway PostgreSQL"
}

start_redis() {
	local bin
	if ! bin=$(command -v redis-server 2>/dev/null); then
		{ apt_install redis-server && bin=$(command -v redis-server 2>/dev/null); } ||
			die "no redis-server in PATH to start a throwaway server for the tests.
Install it with:  apt-get install redis-server   (Debian/Ubuntu)
or point PORTERO_TEST_REDIS at a running server."
	fi
	make_tmp
	local dir=$tmp/redis port attempt i url
	mkdir -p "$dir"
	redis_pidfile=$dir/redis.pid
	log "starting a throwaway Redis ($bin) in $dir"
	for attempt in 1 2 3; do
		port=$(free_port) || die "no free TCP port found"
		url="redis://127.0.0.1:$port/0"
		rm -f "$redis_pidfile"
		# Nothing on disk: no RDB snapshots, no AOF. daemonize detaches it
		# from our process group; cleanup stops it by the pid it writes.
		"$bin" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
			--daemonize yes --dir "$dir" --pidfile "$redis_pidfile" \
			--logfile "$dir/redis.log" >/dev/null 2>&1 </dev/null || true
		for ((i = 0; i < 100; i++)); do
			if redis_answers "$url"; then
				PORTERO_TEST_REDIS=$url
				log "Redis is up at $PORTERO_TEST_REDIS"
				return 0
			fi
			sleep 0.1
		done
		log "Redis did not start on port $port (attempt $attempt); log:"
		tail -n 20 "$dir/redis.log" >&2 || true
		stop_redis
	done
	die "could not start a throwaway Redis"
}

# --- main --------------------------------------------------------------------

if [[ $mode != local ]] && pg_answers "$PORTERO_TEST_POSTGRES"; then
	log "PostgreSQL answers at $(redact "$PORTERO_TEST_POSTGRES"); using it"
elif [[ $mode == external ]]; then
	die "nothing answers at PORTERO_TEST_POSTGRES=$(redact "$PORTERO_TEST_POSTGRES") (PORTERO_TEST_SERVICES=external)"
else
	[[ $mode == local ]] || log "nothing answers at $(redact "$PORTERO_TEST_POSTGRES")"
	start_postgres
fi

if [[ $mode != local ]] && redis_answers "$PORTERO_TEST_REDIS"; then
	log "Redis answers at $(redact "$PORTERO_TEST_REDIS"); using it"
elif [[ $mode == external ]]; then
	die "nothing answers at PORTERO_TEST_REDIS=$(redact "$PORTERO_TEST_REDIS") (PORTERO_TEST_SERVICES=external)"
else
	[[ $mode == local ]] || log "nothing answers at $(redact "$PORTERO_TEST_REDIS")"
	start_redis
fi

export PORTERO_TEST_POSTGRES PORTERO_TEST_REDIS
# Not exec: the EXIT trap must outlive CMD to stop what we started.
"$@"
