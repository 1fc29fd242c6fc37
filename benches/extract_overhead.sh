#!/usr/bin/env bash
# Extraction overhead on the 5 000-file mixed layer (issue: extraction adds at most 10% to the layer walk).
# Prints the timed comparison (best of interleaved rounds) and, because wall-clock time on a shared
# machine moves with other load, the instructions the walk executes under callgrind for the OS extractors
# only and for all extractors, with their ratio. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil-ci-target}"
cargo bench --bench extract_overhead --no-run 2>/dev/null
bin=$(ls -t "$CARGO_TARGET_DIR"/release/deps/extract_overhead-* | grep -v '\.d$' | head -n 1)
"$bin"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {
  EXTRACT_OVERHEAD_ONCE="$1" valgrind --tool=callgrind --callgrind-out-file="$out/$1.cg" \
    --toggle-collect='vigil::layer::walk::walk*' "$bin" >/dev/null 2>"$out/$1.log"
  grep -E '^summary:|^totals:' "$out/$1.cg" | head -n 1 | awk '{print $2}'
}
os=$(count os)
all=$(count all)
awk -v os="$os" -v all="$all" 'BEGIN {
  printf "callgrind, instructions in the walk: OS extractors only %d | all extractors %d | ratio %.3f\n", os, all, all / os
}'
