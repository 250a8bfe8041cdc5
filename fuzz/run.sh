#!/bin/bash
# Runs every fuzz target for a bounded time (default 60 s each), seeded from the
# real fixtures, and prints executions per target. Crashes land in
# fuzz/artifacts/<target>/; turn each into a regression file under
# fixtures/corrupt/ with a test.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
targets=${TARGETS:-$(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v ctrdb-fuzz)}
for t in $targets; do
  corpus=corpus/$t
  mkdir -p "$corpus"
  for f in ../fixtures/containerd-*/meta.db ../fixtures/containerd-*/meta-empty.db ../fixtures/corrupt/*.db; do
    [ -f "$f" ] && cp -n "$f" "$corpus/seed-$(echo "$f" | tr '/' '_')" || true
  done
  log=$(mktemp)
  cargo +nightly fuzz run "$t" "$corpus" -- -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=2048 -timeout=10 2>&1 | tee "$log" | grep -E '^(INFO: |==|#[0-9]+ *DONE|SUMMARY)' || true
  execs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1)
  echo "fuzz $t: ${execs:-no summary} in ${secs}s"
  rm -f "$log"
done
