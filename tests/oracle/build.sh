#!/bin/bash
# tests/oracle/build.sh OUTDIR
#
# Build the Go oracle tools (dumpdb, bbcheck, editdb, ctrmeta, ctrtool, pause)
# into OUTDIR, fully offline, in GOPATH mode against Debian's packaged Go
# sources only:
#   golang-go, golang-github-coreos-bbolt-dev (go.etcd.io/bbolt 1.3.6),
#   golang-github-containerd-containerd-dev (containerd 1.6.20 + its deps).
# GOPATH = <repo>/tests/oracle/go : <Debian gocode dir, normally /usr/share/gocode>.
# Go's build cache makes a rebuild with unchanged sources take ~1 s per tool.
set -euo pipefail
OUTDIR=${1:?usage: tests/oracle/build.sh OUTDIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
DEBIAN_GOCODE=$(dpkg -L golang-github-coreos-bbolt-dev 2>/dev/null | sed -n "s|^\(.*/gocode\)/src/.*|\1|p" | head -n 1)
[ -n "$DEBIAN_GOCODE" ] || { echo "build.sh: install golang-github-coreos-bbolt-dev golang-github-containerd-containerd-dev golang-go" >&2; exit 1; }
export GO111MODULE=off GOPATH=$HERE/go:$DEBIAN_GOCODE GOFLAGS= GOPROXY=off GOTOOLCHAIN=local
# a writable build cache even when HOME is not (CI users, sudo -u nobody)
if [ -z "${GOCACHE:-}" ] && ! { mkdir -p "${HOME:-/nonexistent}/.cache" 2>/dev/null && [ -w "$HOME/.cache" ]; }; then
  export GOCACHE=$OUTDIR/.gocache
fi
log() { printf '[oracle-build] %s\n' "$*" >&2; }
log "$(go version); GOPATH=$GOPATH"
for t in dumpdb bbcheck editdb ctrmeta ctrtool; do
  s=$(date +%s%N)
  ( cd "$HERE/go/src/ctrdb-oracle/$t" && go build -o "$OUTDIR/$t.tmp" . ) && mv -f "$OUTDIR/$t.tmp" "$OUTDIR/$t"
  log "built $OUTDIR/$t in $(( ($(date +%s%N) - s) / 1000000 )) ms"
done
# static pause binary for the CRI sandbox image of the fixture generator
( cd "$HERE/go/src/ctrdb-oracle/pause" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$OUTDIR/pause.tmp" . ) && mv -f "$OUTDIR/pause.tmp" "$OUTDIR/pause"
log "built $OUTDIR/pause (static)"
