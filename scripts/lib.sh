# shellcheck shell=bash
# Shared helpers for the build scripts. Source it; it defines functions only
# and changes no shell options, so each script keeps its own `set -euo pipefail`.

# log prints a prefixed line on stderr, so a command's own stdout stays clean.
log() { printf '%s: %s\n' "${LOG_PREFIX:-portero}" "$*" >&2; }

die() {
	log "error: $*"
	exit 1
}

# url_host_port URL DEFAULT_PORT prints "HOST PORT" for a postgres:// or
# redis:// URL (user info, path and query ignored; [v6] literals unwrapped).
# It prints nothing when the URL names no host (e.g. a unix socket via ?host=).
url_host_port() {
	local rest=${1#*://} default_port=$2 host port
	rest=${rest%%[/?#]*} # authority only
	rest=${rest##*@}     # drop user:password@
	if [[ $rest == \[* ]]; then
		host=${rest#\[}
		host=${host%%]*}
		port=${rest##*]}
		port=${port#:}
	elif [[ $rest == *:* ]]; then
		host=${rest%%:*}
		port=${rest##*:}
	else
		host=$rest
		port=
	fi
	[[ -n $host ]] || return 0
	printf '%s %s\n' "$host" "${port:-$default_port}"
}

# tcp_open HOST PORT succeeds when something accepts a TCP connection there.
# Bash's /dev/tcp needs no client tools; timeout keeps a black-holed address
# from hanging the build.
tcp_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# free_port prints a TCP port on 127.0.0.1 that nothing listens on right now.
# Another process may take it before we bind, so callers retry on failure.
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 - <<'PY' && return 0
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
	fi
	local i port
	for ((i = 0; i < 200; i++)); do
		port=$((20000 + RANDOM % 40000))
		if ! tcp_open 127.0.0.1 "$port"; then
			echo "$port"
			return 0
		fi
	done
	return 1
}
