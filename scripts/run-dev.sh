#!/usr/bin/env bash
# run-dev.sh   start demo-upstream in the background and Portero in the foreground
#
# Called by `make run` after `make build`. Ctrl-C (or Portero exiting for any
# reason) stops the demo upstream too.
#
# Environment:
#   PORTERO_CONFIG   config file (default configs/dev.yaml)
#   UPSTREAM_LISTEN  where demo-upstream listens (default 127.0.0.1:8000, as in dev.yaml)
#   PORTERO_URL      the public address to print in the hints (default http://127.0.0.1:8080)
#   OPS_URL          the ops address to print in the hints (default http://127.0.0.1:9090)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
LOG_PREFIX=run

config=${PORTERO_CONFIG:-configs/dev.yaml}
upstream_listen=${UPSTREAM_LISTEN:-127.0.0.1:8000}
portero_url=${PORTERO_URL:-http://127.0.0.1:8080}
ops_url=${OPS_URL:-http://127.0.0.1:9090}

for b in bin/portero bin/demo-upstream; do
	[[ -x $b ]] || die "$b is missing: run 'make build' (or 'make run', which builds first)"
done
[[ -f $config ]] || die "config $config not found (set PORTERO_CONFIG)"
# dev.yaml keeps SQLite under ./data.
mkdir -p data

upstream_pid=
stop_upstream() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [[ -n $upstream_pid ]] && kill -0 "$upstream_pid" 2>/dev/null; then
		log "stopping demo-upstream (pid $upstream_pid)"
		kill -TERM "$upstream_pid" 2>/dev/null || true
		wait "$upstream_pid" 2>/dev/null || true
	fi
	exit "$rc"
}
trap stop_upstream EXIT
# Portero handles SIGINT itself (graceful shutdown); we exit once it has.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

up_host=${upstream_listen%:*}
up_port=${upstream_listen##*:}
if tcp_open "${up_host:-127.0.0.1}" "$up_port"; then
	log "something already listens on $upstream_listen; using it as the upstream instead of starting demo-upstream"
else
	bin/demo-upstream -listen "$upstream_listen" &
	upstream_pid=$!
	for ((i = 0; i < 50; i++)); do
		tcp_open "${up_host:-127.0.0.1}" "$up_port" && break
		kill -0 "$upstream_pid" 2>/dev/null || die "demo-upstream exited during startup"
		sleep 0.1
	done
	tcp_open "${up_host:-127.0.0.1}" "$up_port" || die "demo-upstream did not start listening on $upstream_listen"
	log "demo-upstream listening on $upstream_listen (pid $upstream_pid)"
fi

cat >&2 <<HINTS

  Portero is starting with $config; the legacy app stand-in is on $upstream_listen.
  Try, in another terminal (the README's walk-through goes further):

    curl -s $portero_url/-/readyz
    curl -s '$portero_url/anything/hello?x=1' | head -c 400            # legacy mode: forwarded as it was
    curl -s $portero_url/anything/gateway/hello                        # gateway mode: 401 without a session
    # a browser at $portero_url/anything/gateway/hello               # sign-in page, then back with identity headers
    curl -s -X POST $portero_url/auth/login -H 'Content-Type: application/json' -d '{"username":"admin@portero.local","password":"<printed below>"}'
    curl -s $ops_url/-/metrics | grep '^portero_' | head               # ops listener only

  Ctrl-C stops Portero and demo-upstream.

HINTS

# Not exec: the EXIT trap must run after Portero exits to stop the upstream.
bin/portero serve --config "$config"
