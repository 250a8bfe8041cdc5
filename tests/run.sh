#!/bin/bash
# Runs every ctrdb test. As root on Debian 12 it first installs what the oracle
# tests need (apt packages, containerd 1.7.24 / 2.1.9 debs, Go oracle tools) via
# .ci/install-deps.sh; elsewhere the oracle tests print why they skip.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # install-deps.sh prints VAR=value lines for the tests on stdout.
  while IFS='=' read -r k v; do
    case "$k" in CTRDB_*) export "$k=$v" ;; esac
  done < <(bash .ci/install-deps.sh)
else
  echo "tests/run.sh: not root on Debian: skipping dependency install; oracle tests will skip" >&2
fi
cargo test --locked "$@"
