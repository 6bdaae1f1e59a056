#!/usr/bin/env bash
# bench.sh [PACKAGES...]   run the Go benchmarks (default ./...) against real services
#
# Services are prepared as for the tests (scripts/with-services.sh).
#
# Environment:
#   BENCH       benchmark regexp (default .)
#   BENCHTIME   go test -benchtime (default: go's own, 1s)
#   BENCHCOUNT  go test -count (default 1; use 6+ for benchstat)
#   GOTESTFLAGS extra flags for go test
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
LOG_PREFIX=bench

# -run '^$' keeps the unit tests out of the timing run.
flags=(-run '^$' -bench "${BENCH:-.}" -benchmem -count "${BENCHCOUNT:-1}" -timeout 30m)
[[ -n ${BENCHTIME:-} ]] && flags+=(-benchtime "$BENCHTIME")
read -r -a extra <<<"${GOTESTFLAGS:-}"
[[ $# -gt 0 ]] || set -- ./...

log "go test ${flags[*]} ${extra[*]} $*"
exec bash "$here/with-services.sh" go test "${flags[@]}" "${extra[@]}" "$@"
