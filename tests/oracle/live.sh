#!/bin/bash
# live.sh - run a REAL containerd of a given release on a given meta.db, with the
# content store / snapshotters / CRI dirs of a committed fixture, and list what
# it serves in a normalized, timestamp-free text that tests can diff.
#
#   live.sh start   VERSION FIXTURE_DIR DB_FILE WORKDIR   prepare + run; prints the socket path
#   live.sh prepare VERSION FIXTURE_DIR DB_FILE WORKDIR   extract root, put DB_FILE in, write config (no start)
#   live.sh run     WORKDIR      start containerd on a prepared WORKDIR, wait until it serves and
#                                its startup GC ran; prints the socket path
#   live.sh listing WORKDIR      normalized listing (stdout)
#   live.sh ctr     WORKDIR ARGS...   the matching release's ctr against WORKDIR's socket
#   live.sh serving WORKDIR      exit 0 iff containerd answers on WORKDIR's socket (at most ~1 s)
#   live.sh pid     WORKDIR      pid of OUR containerd (exit 1 if not running)
#   live.sh stop    WORKDIR      stop containerd + its shims (pid-file discipline), unmount under WORKDIR
#   live.sh clean   WORKDIR      stop, then remove WORKDIR (only if it carries our .ctrdb-work marker)
#
# VERSION selects the binaries: 1.6.20 -> ${CTRDB_CONTAINERD_1_6_20:-/usr/bin},
# others -> ${CTRDB_CONTAINERD_<x_y_z>:-/var/cache/ctrdb-deps/containerd-<ver>/usr/bin}
# (.ci/install-deps.sh puts them there).
#
# Root placement: the fixture's root was /var/lib/containerd-fixture/root and that
# path is inside some records (CRI metadata, container specs). It is NOT needed for
# listing / GC: containerd only uses its configured root (WORKDIR/root) for the
# content store, snapshotters and meta.db, and nothing is written to the old path
# (checked with real starts of 1.6.20, 1.7.24 and 2.1.9). So everything lives under
# WORKDIR, which must be short (unix socket paths, <= 80 chars).
#
# WORKDIR layout: root/ (containerd root), state/, tmp/, config.toml,
# containerd.{sock,log,pid}, live.env (VERSION, BIN_DIR, FIXTURE_DIR), .ctrdb-work.
# Log level is trace so that the startup GC's "garbage collected" line is seen
# (debug in 1.6, trace in 1.7+).
#
# Processes: only the containerd whose pid we wrote to WORKDIR/containerd.pid (and
# whose cmdline still says "--config WORKDIR/") and shims spawned by it for
# WORKDIR's socket are ever signalled (lib.sh stop_pidfile / stop_our_shims).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../fixtures/gen" && pwd)/lib.sh"

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

bin_dir_for() { # VERSION -> binary dir
  local v=$1 var
  var=CTRDB_CONTAINERD_$(printf '%s' "$v" | tr '.-' '__')
  if [ -n "${!var:-}" ]; then printf '%s' "${!var}"
  elif [ "$v" = 1.6.20 ]; then printf '/usr/bin'
  else printf '%s' "$CTRDB_DEPS/containerd-$v/usr/bin"; fi
}

abs_work() { # WORKDIR -> absolute path; must carry our marker
  [ -n "${1:-}" ] || usage
  [ -e "$1/.ctrdb-work" ] || die "$1 is not a live.sh work dir (no .ctrdb-work marker)"
  (cd "$1" && pwd)
}

load_env() { # WORKDIR: selects the release recorded by prepare
  W=$(abs_work "$1")
  [ -f "$W/live.env" ] || die "$W was not prepared (no live.env)"
  # shellcheck disable=SC1091
  . "$W/live.env"
  BIN_DIR=$LIVE_BIN_DIR
  resolve_containerd 2>/dev/null
  SOCK=$W/containerd.sock
}

cmd_prepare() {
  [ $# -eq 4 ] || usage
  local ver=$1 fx db=$3 bd cri_sb no_cri sn
  fx=$(cd "$2" && pwd) || die "no fixture dir $2"
  [ -f "$fx/root.tar.gz" ] || die "$fx/root.tar.gz missing"
  [ -f "$db" ] || die "no DB file $db"
  db=$(cd "$(dirname "$db")" && pwd)/$(basename "$db")
  bd=$(bin_dir_for "$ver")
  [ -x "$bd/containerd" ] && [ -x "$bd/ctr" ] || die "containerd $ver not found in $bd"
  [ "$(id -u)" = 0 ] || die "needs root (tar owners, overlayfs, flock on a root-owned file)"
  WORK=$4
  if [ -e "$WORK/.ctrdb-work" ] && pid_matches "$WORK/containerd.pid" "--config $(cd "$WORK" && pwd)/" >/dev/null; then
    die "a containerd is still running in $WORK (live.sh stop first)"
  fi
  init_work WORK
  wipe_work "$WORK" 2>/dev/null
  BIN_DIR=$bd; resolve_containerd 2>/dev/null
  case "$CTRD_VERSION" in "$ver"*) ;; *) die "$bd/containerd is $CTRD_VERSION, not $ver";; esac
  tar -C "$WORK" --numeric-owner -xzf "$fx/root.tar.gz"
  # cp onto the existing file keeps the tarball's owner and mode
  cp -- "$db" "$WORK/root/io.containerd.metadata.v1.bolt/meta.db"
  # same settings as the fixture's daemon (env.txt), log level trace (see header)
  sn=$(sed -n 's/.*snapshotter=\([^ ]*\).*/\1/p' "$fx/env.txt" 2>/dev/null | head -1)
  no_cri=$(sed -n 's/.*no_cri=\([^ ]*\).*/\1/p' "$fx/env.txt" 2>/dev/null | head -1)
  cri_sb=$(sed -n 's/^ENABLE_CRI_SANDBOXES=//p' "$fx/env.txt" 2>/dev/null | head -1)
  SNAPSHOTTER=${sn:-overlayfs} NO_CRI=${no_cri:-0} write_config "$WORK/config.toml" "$WORK" trace
  printf 'LIVE_VERSION=%q\nLIVE_BIN_DIR=%q\nLIVE_FIXTURE_DIR=%q\nLIVE_DB_SOURCE=%q\nLIVE_CRI_SANDBOXES=%q\n' \
    "$ver" "$bd" "$fx" "$db" "$cri_sb" > "$WORK/live.env"
}

cmd_run() {
  [ $# -eq 1 ] || usage
  load_env "$1"
  local env=() i
  [ -n "${LIVE_CRI_SANDBOXES:-}" ] && env+=("ENABLE_CRI_SANDBOXES=$LIVE_CRI_SANDBOXES")
  pid_matches "$W/containerd.pid" "--config $W/" >/dev/null && die "containerd already running in $W"
  : > "$W/containerd.log"
  # lib.sh start_containerd waits up to 15 s for `ctr version` (a ctrdb holding
  # the lock delays it); on failure it prints the log tail and we stop what we started
  start_containerd "$W/config.toml" "$W" "${env[@]}" || true
  if ! "$CTR_BIN" -a "$SOCK" version >/dev/null 2>&1; then
    stop_containerd "$W"; die "containerd $LIVE_VERSION did not come up in $W"
  fi
  # the startup GC runs after gc.scheduler startup_delay (100 ms); bounded wait for its log line
  for i in $(seq 100); do grep -q 'garbage collected' "$W/containerd.log" && break; sleep 0.1; done
  grep -q 'garbage collected' "$W/containerd.log" || log "WARNING: no 'garbage collected' line after 10 s ($W/containerd.log)"
  sleep 0.3
  echo "$SOCK"
}

cmd_start() {
  [ $# -eq 4 ] || usage
  cmd_prepare "$@"
  cmd_run "$4"
}

# The normalized listing. Per namespace (sorted): namespace labels, images
# (name digest labels), content (digest size labels), ingests (ref size),
# containers (id image runtime), leases (id labels), snapshots per snapshotter
# (key parent kind); then on disk: blob files, ingest dirs, snapshot dirs per
# snapshotter. Columns that carry times (content/ingest AGE, lease CREATED AT) and
# image SIZE/PLATFORMS are dropped; label lists are sorted; every section sorted.
# awk helpers: labels() sorts a "k=v,k=v" column (ctr prints Go map order)
AWK_LIB='function labels(s,   n, a, i, j, t, r) {
  if (s == "-" || s == "") return "-"
  n = split(s, a, ",")
  for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  r = a[1]; for (i = 2; i <= n; i++) r = r "," a[i]
  return r
}'
cols() { LC_ALL=C awk "$AWK_LIB NR>1 { $1 }" | LC_ALL=C sort; }

list_ns() { # NS: one namespace's section
  local ns=$1 sn C=("$CTR_BIN" -a "$SOCK" -n "$1")
  echo "## namespace $ns"
  echo "# images: name digest labels"
  # REF TYPE DIGEST SIZE(2 fields) PLATFORMS LABELS
  "${C[@]}" images ls | cols 'print $1, $3, labels($NF)'
  echo "# content: digest size labels"
  # DIGEST SIZE AGE(1-3 fields) LABELS
  "${C[@]}" content ls | cols 'print $1, $2, labels($NF)'
  echo "# ingests: ref size"
  # REF SIZE AGE
  "${C[@]}" content active | cols 'print $1, $2'
  echo "# containers: id image runtime"
  "${C[@]}" containers ls | cols 'print $1, $2, $3'
  echo "# leases: id labels"
  # ID CREATED AT(several fields) LABELS
  "${C[@]}" leases ls | cols 'print $1, labels($NF)'
  for sn in overlayfs native; do
    echo "# snapshots $sn: key parent kind"
    # KEY PARENT(may be empty) KIND
    "${C[@]}" snapshots --snapshotter "$sn" ls | cols 'print $1, (NF >= 3 ? $2 : "-"), $NF'
  done
}

cmd_listing() {
  [ $# -eq 1 ] || usage
  load_env "$1"
  local ns sn i=0 t pids=() C=("$CTR_BIN" -a "$SOCK")
  t=$(mktemp -d -t ctrdb-listing.XXXXXX)
  echo "# live listing: containerd $LIVE_VERSION"
  "${C[@]}" namespaces ls | cols 'print "namespace", $1, labels($NF)'
  # namespaces in parallel (~40 ctr calls), printed in order
  for ns in $("${C[@]}" namespaces ls -q | LC_ALL=C sort); do
    i=$((i + 1)); list_ns "$ns" > "$t/$i" 2> "$t/$i.err" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { cat "$t"/*.err >&2; rm -rf "$t"; die "listing failed"; }; done
  for ((p = 1; p <= i; p++)); do cat "$t/$p"; done
  rm -rf "$t"
  echo "## disk"
  echo "# blobs/sha256"
  ls "$W/root/io.containerd.content.v1.content/blobs/sha256" | LC_ALL=C sort
  echo "# ingest dirs"
  ls "$W/root/io.containerd.content.v1.content/ingest" 2>/dev/null | LC_ALL=C sort
  for sn in overlayfs native; do
    echo "# snapshot dirs $sn"
    ls "$W/root/io.containerd.snapshotter.v1.$sn/snapshots" 2>/dev/null | LC_ALL=C sort -n
  done
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  local w; w=$(abs_work "$1")
  stop_our_shims "$w/containerd.sock" "$w/state" 2>/dev/null
  stop_containerd "$w" 2>/dev/null
  umount_under "$w"
}

case "${1:-}" in
  prepare) shift; cmd_prepare "$@" ;;
  run) shift; cmd_run "$@" ;;
  start) shift; cmd_start "$@" ;;
  listing) shift; cmd_listing "$@" ;;
  ctr) shift; [ $# -ge 1 ] || usage; load_env "$1"; shift; exec "$CTR_BIN" -a "$SOCK" "$@" ;;
  # no socket yet = not serving (a plain `ctr version` would wait 10 s for it)
  serving) shift; [ $# -eq 1 ] || usage; load_env "$1"
    [ -S "$SOCK" ] && "$CTR_BIN" --connect-timeout 1s -a "$SOCK" version >/dev/null 2>&1 ;;
  pid) shift; [ $# -eq 1 ] || usage; w=$(abs_work "$1"); pid_matches "$w/containerd.pid" "--config $w/" ;;
  stop) shift; cmd_stop "$@" ;;
  clean) shift; [ $# -eq 1 ] || usage
    if [ -e "$1/.ctrdb-work" ]; then cmd_stop "$1"; rm -rf -- "$(abs_work "$1")"; fi ;;
  *) usage ;;
esac
