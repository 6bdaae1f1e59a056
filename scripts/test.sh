#!/usr/bin/env bash
# test.sh [PACKAGES...]          run the test suite (default ./...) against real services
# test.sh --env-only -- CMD...   run CMD in the same prepared environment instead
#
# PostgreSQL and Redis come from PORTERO_TEST_POSTGRES / PORTERO_TEST_REDIS when
# something answers there, else throwaway servers are started for the run
# (see scripts/with-services.sh for every knob).
#
# Environment:
#   GOTESTFLAGS  extra flags for go test, e.g. GOTESTFLAGS='-run TestProxy -v'
#   RACE=0       drop -race (it needs cgo and a C compiler)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
LOG_PREFIX='test'

if [[ ${1:-} == --env-only ]]; then
	shift
	[[ ${1:-} == -- ]] && shift
	[[ $# -gt 0 ]] || die "usage: $0 --env-only -- CMD [ARGS...]"
	exec bash "$here/with-services.sh" "$@"
fi

# The browser tests (cmd/portero/browser_test.go) drive Debian's Chromium
# and fail, not skip, without it: install it when we can (root with
# apt-get, as in CI), else say how.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "installing chromium for the browser tests"
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >&2 ||
			die "apt-get install chromium failed"
	else
		log "warning: chromium is not installed, so the browser tests will fail: sudo apt-get install chromium"
	fi
fi

flags=(-count=1 -timeout 15m)
if [[ ${RACE:-1} != 0 ]]; then
	# The race detector is built with cgo; say so plainly instead of letting
	# go test fail with "-race requires cgo".
	cc=$(go env CC)
	command -v "${cc%% *}" >/dev/null 2>&1 ||
		die "-race needs a C compiler ($cc not found): apt-get install gcc, or run with RACE=0"
	export CGO_ENABLED=1
	flags=(-race "${flags[@]}")
fi
read -r -a extra <<<"${GOTESTFLAGS:-}"
full=0
if [[ $# -eq 0 ]]; then
	set -- ./...
	full=1
fi

log "go test ${flags[*]} ${extra[*]} $*"
if [[ $full == 1 && ${#extra[@]} -eq 0 ]]; then
	# The race detector slows byte copying tenfold, so the streaming tests
	# shrink under it; one plain pass then moves the full 1 GiB each way.
	exec bash "$here/with-services.sh" bash -c '
		go test "$@" &&
		echo "test: full-size streaming pass without -race" &&
		go test -count=1 -run "^TestLargeBodies" ./proxy' _ "${flags[@]}" "$@"
fi
exec bash "$here/with-services.sh" go test "${flags[@]}" "${extra[@]}" "$@"
