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
#
# Benchmarks named BenchmarkLoad* are timed load runs that compare Portero with
# a bare reverse proxy inside one run; they run once each (-benchtime=1x)
# after the micro-benchmarks.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
LOG_PREFIX=bench

# -run '^$' keeps the unit tests out of the timing run.
flags=(-run '^$' -benchmem -count "${BENCHCOUNT:-1}" -timeout 30m)
[[ -n ${BENCHTIME:-} ]] && flags+=(-benchtime "$BENCHTIME")
read -r -a extra <<<"${GOTESTFLAGS:-}"
[[ $# -gt 0 ]] || set -- ./...

if [[ -n ${BENCH:-} ]]; then
	log "go test -bench $BENCH ${flags[*]} ${extra[*]} $*"
	exec bash "$here/with-services.sh" go test -bench "$BENCH" "${flags[@]}" "${extra[@]}" "$@"
fi
log "micro-benchmarks, then the load comparisons (BenchmarkLoad*, once each)"
exec bash "$here/with-services.sh" bash -c '
	go test -bench "^Benchmark([^L]|L[^o])" "$@" &&
	go test -run "^$" -bench "^BenchmarkLoad" -benchtime=1x -timeout 30m ./...' _ "${flags[@]}" "${extra[@]}" "$@"
