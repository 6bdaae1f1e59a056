#!/usr/bin/env bash
# lint.sh   gofmt check, go vet and staticcheck over the whole module
#
# staticcheck is installed with `go install` into ./.tmp/bin (not the user's
# GOBIN) the first time; if that fails (no module proxy, say) a note is
# printed and the other checks still decide the exit status.
#
# Environment:
#   STATICCHECK_VERSION  default v0.8.2
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
LOG_PREFIX=lint

version=${STATICCHECK_VERSION:-v0.8.2}
bindir=$PWD/.tmp/bin
status=0

log "gofmt -l ."
unformatted=$(gofmt -l . 2>&1 | grep -v '^\.tmp/' || true)
if [[ -n $unformatted ]]; then
	log "these files need gofmt -w:"
	while IFS= read -r f; do printf '  %s\n' "$f"; done <<<"$unformatted" >&2
	status=1
fi

log "go vet ./..."
go vet ./... || status=1

# Reinstall when the pinned version changes; the stamp file records which one
# sits in .tmp/bin.
stamp=$bindir/.staticcheck-version
if [[ ! -x $bindir/staticcheck || $(cat "$stamp" 2>/dev/null) != "$version" ]]; then
	log "installing staticcheck $version into $bindir"
	mkdir -p "$bindir"
	if GOBIN=$bindir go install "honnef.co/go/tools/cmd/staticcheck@$version"; then
		echo "$version" >"$stamp"
	else
		log "note: could not install staticcheck $version; skipping it (go vet still ran)"
	fi
fi
if [[ -x $bindir/staticcheck ]]; then
	log "staticcheck ./..."
	"$bindir/staticcheck" ./... || status=1
fi

if [[ $status -eq 0 ]]; then
	log "clean"
fi
exit "$status"
