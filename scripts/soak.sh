#!/usr/bin/env bash
# soak.sh   the fault-injection suite (cmd/portero/soak*_test.go, build tag soak)
#
# Runs the real portero binary against a PostgreSQL, a Redis and upstreams
# that the suite starts itself on free loopback ports and then kills,
# freezes and restarts; the machine's own services are never touched. Takes
# about two minutes on two cores. Lines starting "figure:" (the
# measurements RELIABILITY.md quotes) are also written to .tmp/soak-figures.txt.
#
# Environment:
#   SOAK_RUN                 subtests to run, e.g. SOAK_RUN=Redis (default: all)
#   PORTERO_TEST_PG_OS_USER  as root, the OS user that runs PostgreSQL (default postgres)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
LOG_PREFIX=soak

command -v redis-server >/dev/null 2>&1 || die "redis-server is needed: apt-get install redis-server"
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || command -v pg_ctl >/dev/null 2>&1 ||
	die "PostgreSQL's server binaries are needed: apt-get install postgresql"
# PostgreSQL refuses to run as root: the suite runs it as this user.
if [[ $(id -u) -eq 0 && -z ${PORTERO_TEST_PG_OS_USER:-} ]] && ! id -u postgres >/dev/null 2>&1; then
	die "running as root with no 'postgres' user: set PORTERO_TEST_PG_OS_USER to a non-root user"
fi

mkdir -p .tmp
run=TestSoak
[[ -n ${SOAK_RUN:-} ]] && run="TestSoak/${SOAK_RUN}"
log "go test -tags soak -run '$run' ./cmd/portero"
# -v for the figures; the JSON access log of each portero is printed only
# when a scenario fails.
set +e
go test -tags soak -count=1 -timeout 10m -v -run "$run" ./cmd/portero 2>&1 | tee .tmp/soak.log |
	grep -E '^(=== RUN|--- |    --- |PASS|FAIL|ok |\s+soak.*\.go:[0-9]+: )' | grep -v 'portero output'
rc=${PIPESTATUS[0]}
set -e
grep -o 'figure: .*' .tmp/soak.log >.tmp/soak-figures.txt || true
if [[ $rc -ne 0 ]]; then
	log "failed; the whole output, portero's logs included, is in .tmp/soak.log"
fi
exit "$rc"
