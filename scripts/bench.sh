#!/usr/bin/env bash
# bench.sh [PACKAGES...]   the micro-benchmarks, then the load harness
#
# Services are prepared as for the tests (scripts/with-services.sh).
#
# By default: every Go micro-benchmark (go test -bench, allocations
# reported) except the in-process BenchmarkLoad* comparisons, then the load
# harness (cmd/portero/loadharness_test.go, -tags loadharness), which runs
# demo-upstream, a bare httputil.ReverseProxy and Portero in each mode as
# separate processes, drives them over loopback and prints one table. The
# table also goes to $BENCH_OUT/results.md for BENCHMARKS.md.
#
# Environment:
#   BENCH_QUICK=1  the harness alone, fewer and shorter rounds (under 2 min)
#   BENCH_PROFILE  directory: CPU, heap and allocation profiles of Portero
#                  in gateway mode (plus `go tool pprof -top` summaries)
#   BENCH_OUT      where results.md goes (default .tmp/bench)
#   BENCH_ROUNDS, BENCH_DURATION  the harness's rounds per row and run length
#   BENCH          run only the Go benchmarks matching this regexp (no
#                  harness), e.g. BENCH=LoadGatewayVsBare for the in-process one
#   BENCHTIME      go test -benchtime (default: go's own, 1s)
#   BENCHCOUNT     go test -count (default 1; use 6+ for benchstat)
#   GOTESTFLAGS    extra flags for go test
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
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

# The harness runs as a test inside cmd/portero, whose working directory is
# not ours: hand it absolute paths.
abs() { [[ $1 == /* ]] && printf '%s\n' "$1" || printf '%s\n' "$root/$1"; }
export BENCH_OUT
BENCH_OUT=$(abs "${BENCH_OUT:-.tmp/bench}")
if [[ -n ${BENCH_PROFILE:-} ]]; then
	export BENCH_PROFILE
	BENCH_PROFILE=$(abs "$BENCH_PROFILE")
fi
# Verbose, so the table reaches the terminal as the test prints it.
harness=(go test -tags loadharness -run '^TestLoadHarness$' -count=1 -v -timeout 30m ./cmd/portero)

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
	log "load harness, quick mode"
	exec bash "$here/with-services.sh" "${harness[@]}"
fi
log "micro-benchmarks, then the load harness"
# One with-services run for both, so throwaway servers start once: the
# benchmark arguments come first, then "--", then the harness command.
exec bash "$here/with-services.sh" bash -c '
	args=()
	while [[ $1 != -- ]]; do args+=("$1"); shift; done
	shift
	go test -bench "^Benchmark([^L]|L[^o])" "${args[@]}" && "$@"' _ "${flags[@]}" "${extra[@]}" "$@" -- "${harness[@]}"
