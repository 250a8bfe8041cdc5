#!/bin/bash
# Runs every ctrdb test. As root on Debian 12 it first installs what the oracle
# tests need (apt packages, containerd 1.7.24 / 2.1.9 debs, Go oracle tools,
# perfgen) via .ci/install-deps.sh, and stops if that fails; elsewhere the oracle
# tests print why they skip. With CTRDB_REQUIRE_ORACLES=1 (as .ci/run sets it)
# no oracle test may skip: they fail instead, and this script refuses to run
# where it cannot install (not root on Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
require=${CTRDB_REQUIRE_ORACLES:-0}
case "$require" in
  ''|0|1) ;;
  *) echo "tests/run.sh: CTRDB_REQUIRE_ORACLES must be 0 or 1, not '$require'" >&2; exit 2 ;;
esac
if [ "$require" = 1 ] && [ -n "${CTRDB_SKIP_LIVE:-}" ] && [ "${CTRDB_SKIP_LIVE}" != 0 ]; then
  echo "tests/run.sh: CTRDB_SKIP_LIVE and CTRDB_REQUIRE_ORACLES=1 are both set; the live tests cannot be both skipped and required" >&2
  exit 2
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # install-deps.sh prints VAR=value lines for the tests on stdout; read them
  # only once it has succeeded.
  vars=$(mktemp)
  trap 'rm -f "$vars"' EXIT
  if ! bash .ci/install-deps.sh > "$vars"; then
    echo "tests/run.sh: .ci/install-deps.sh failed; not running the tests" >&2
    exit 1
  fi
  while IFS='=' read -r k v; do
    case "$k" in CTRDB_*) export "$k=$v" ;; esac
  done < "$vars"
elif [ "$require" = 1 ]; then
  # the live containerd tests need root, so they could only fail
  echo "tests/run.sh: CTRDB_REQUIRE_ORACLES=1 needs root on Debian (.ci/install-deps.sh, live containerd tests)" >&2
  exit 1
else
  echo "tests/run.sh: not root on Debian: skipping dependency install; oracle tests will skip" >&2
fi
cargo test --locked "$@"
