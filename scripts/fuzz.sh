#!/usr/bin/env bash
# fuzz.sh [PACKAGES...]   run every fuzz target (default: all of ./...) for FUZZTIME each
#
# Targets are discovered with `go test -list '^Fuzz'`, so a new FuzzXxx is
# picked up without touching this script. go test -fuzz takes one target in
# one package at a time, hence the loop. Services are prepared as for the
# tests, in case a package's TestMain needs them.
#
# Environment:
#   FUZZTIME   per target (default 15s)
#   FUZZ       only targets whose name matches this regexp (default: all)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
LOG_PREFIX=fuzz

if [[ ${1:-} != --in-env ]]; then
	exec bash "$here/with-services.sh" bash "${BASH_SOURCE[0]}" --in-env "$@"
fi
shift
[[ $# -gt 0 ]] || set -- ./...
fuzztime=${FUZZTIME:-15s}

# `go test -list` prints the matching names of a package, then a line
# "ok  <import path>  <time>" for it; packages without tests print "?".
listing=$(go test -count=1 -list '^Fuzz' "$@")
targets=()
names=()
while IFS= read -r line; do
	case $line in
	Fuzz*) names+=("$line") ;;
	ok[[:space:]]*)
		read -r _ pkg _ <<<"$line"
		for n in "${names[@]}"; do
			[[ -z ${FUZZ:-} || $n =~ $FUZZ ]] && targets+=("$pkg $n")
		done
		names=()
		;;
	*) names=() ;;
	esac
done <<<"$listing"

if [[ ${#targets[@]} -eq 0 ]]; then
	log "no fuzz targets found in $*"
	exit 0
fi

failed=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	log "$name in $pkg for $fuzztime"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		failed+=("$pkg $name")
	fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
	log "failed targets (inputs saved under each package's testdata/fuzz):"
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
log "${#targets[@]} fuzz target(s) ran ${fuzztime} each without a failure"
