#!/bin/bash
# .ci/install-deps.sh - install everything ctrdb's tests need on a fresh
# Debian 12 (bookworm) machine. Run as root. Idempotent and fast when done:
# every step checks first and says whether it did something or skipped.
#
#  0. rustup components clippy and rustfmt (.ci/run checks format and lints)
#  1. apt packages: containerd (1.6.20, bookworm), runc, Go + Debian's Go
#     sources for bbolt and containerd (GOPATH-mode oracle build), skopeo,
#     docker-registry, hyperfine, python3, curl, time (peak RSS in tests), the
#     shells and man tools the completion and man page tests load them into, ...
#  2. containerd 1.7.24 (trixie) and 2.1.9 (sid), or the newest of the same
#     series once those are gone (get-containerd.sh says so), unpacked (not installed) into
#     $CTRDB_DEPS/containerd-<ver>/usr/bin  (fixtures/gen/get-containerd.sh)
#  3. Go oracle tools into $CTRDB_DEPS/bin (tests/oracle/build.sh):
#     dumpdb bbcheck editdb ctrmeta ctrtool pause
#  4. perfgen (benches/perfgen) into $CTRDB_DEPS/perfgen: gen walk check compact
#
# Env: CTRDB_DEPS (default /var/cache/ctrdb-deps)
#      CTRDB_CONTAINERD_VERSIONS (default "1.7.24 2.1.9")
# Prints, at the end, the variables the tests use:
#   CTRDB_DEPS, CTRDB_ORACLE_BIN, CTRDB_PERFGEN_BIN,
#   CTRDB_CONTAINERD_1_6_20 / _1_7_24 / _2_1_9 (bin dirs)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CTRDB_DEPS=${CTRDB_DEPS:-/var/cache/ctrdb-deps}
VERSIONS=${CTRDB_CONTAINERD_VERSIONS:-1.7.24 2.1.9}
log() { printf '[install-deps] %s\n' "$*" >&2; }
t0=$(date +%s)
[ "$(id -u)" = 0 ] || { log "ERROR: run as root (apt-get install)"; exit 1; }

# ---------------------------------------------------------------- 0. rustfmt, clippy (.ci/run)
if command -v rustup >/dev/null; then
  installed=$(cd "$REPO" && rustup component list --installed)
  need=()
  for c in clippy rustfmt; do grep -q "^$c" <<<"$installed" || need+=("$c"); done
  if [ ${#need[@]} -gt 0 ]; then
    log "rustup: adding ${need[*]}"
    (cd "$REPO" && rustup component add "${need[@]}") >&2
  else
    log "rustup: clippy and rustfmt already installed (skipped)"
  fi
else
  log "rustup not found: cargo fmt and cargo clippy must come with this Rust install"
fi

# ---------------------------------------------------------------- 1. apt
PKGS=(containerd runc golang-go golang-github-coreos-bbolt-dev golang-github-containerd-containerd-dev
      skopeo docker-registry hyperfine python3 curl ca-certificates tar gzip git time
      bash zsh fish man-db groff-base)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends keeps it small; policy-rc.d keeps the packaged
  # containerd / docker-registry services from being started by the install
  prc=/usr/sbin/policy-rc.d; created_prc=0
  if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod +x "$prc"; created_prc=1; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || { [ $created_prc = 1 ] && rm -f "$prc"; exit 1; }
  [ $created_prc = 1 ] && rm -f "$prc"
else
  log "apt: all ${#PKGS[@]} packages already installed (skipped)"
fi
log "containerd (bookworm): $(/usr/bin/containerd --version | awk '{print $3}')"

# ---------------------------------------------------------------- 2. containerd releases
mkdir -p "$CTRDB_DEPS"
for v in $VERSIONS; do
  "$REPO/fixtures/gen/get-containerd.sh" "$v" "$CTRDB_DEPS/containerd-$v"
done

# ---------------------------------------------------------------- 3. Go oracle tools
BIN=$CTRDB_DEPS/bin
stamp=$BIN/.source-hash
want=$( (cd "$REPO/tests/oracle" && find go build.sh -type f -name '*.go' -o -type f -name build.sh | LC_ALL=C sort | xargs sha256sum; go version) | sha256sum | cut -c1-64)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && for t in dumpdb bbcheck editdb ctrmeta ctrtool pause; do [ -x "$BIN/$t" ] || exit 1; done; then
  log "oracle tools up to date in $BIN (skipped)"
else
  log "building oracle tools into $BIN"
  "$REPO/tests/oracle/build.sh" "$BIN"
  echo "$want" > "$stamp"
fi

# ---------------------------------------------------------------- 4. perfgen (Go bbolt file generator + anchors)
PG=$CTRDB_DEPS/perfgen
pgstamp=$PG/.source-hash
pgwant=$( (cd "$REPO/benches/perfgen" && find . -type f | LC_ALL=C sort | xargs sha256sum; go version) | sha256sum | cut -c1-64)
if [ -f "$pgstamp" ] && [ "$(cat "$pgstamp")" = "$pgwant" ]; then
  log "perfgen up to date in $PG (skipped)"
else
  log "building perfgen into $PG"
  sh "$REPO/benches/perfgen/build.sh" "$PG" >&2
  echo "$pgwant" > "$pgstamp"
fi

log "done in $(( $(date +%s) - t0 )) s"
echo "CTRDB_DEPS=$CTRDB_DEPS"
echo "CTRDB_ORACLE_BIN=$BIN"
echo "CTRDB_PERFGEN_BIN=$PG"
echo "CTRDB_CONTAINERD_1_6_20=/usr/bin"
for v in $VERSIONS; do echo "CTRDB_CONTAINERD_${v//./_}=$CTRDB_DEPS/containerd-$v/usr/bin"; done
