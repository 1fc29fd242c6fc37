#!/usr/bin/env bash
# A scheduled run over a registry of 1 000 tags with nothing new (issue: zero blob requests, under 3 s).
#
# Starts Debian's docker-registry on a free loopback port with its access log on, pushes the demo's
# python-web image once and then 1 000 distinct manifests of it (100 repositories x 10 tags, each with its
# own annotation, so 1 000 digests sharing the same layers). A first `vigil run --schedule hourly` reads
# them all (new images); then the same run is timed three times with nothing new, counting the blob
# requests the registry logged during each. Needs docker-registry, skopeo, curl and python3.
# Usage: benches/scheduled_run.sh   (VIGIL_BIN=path/to/release/vigil to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIGIL_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil-bench-target}"
  cargo build --release --bin vigil >&2
  VIGIL_BIN="$CARGO_TARGET_DIR/release/vigil"
fi
# Sets $work, $port and $registry_pid, and a configuration with an hourly schedule in $work/vigil.toml.
source benches/registry_1000_tags.sh
blob_requests() { grep -c '"GET /v2/[^"]*/blobs/' "$work/access.log" || true; }
start=$(date +%s%N)
"$VIGIL_BIN" run --schedule hourly --config "$work/vigil.toml" -q >/dev/null 2>"$work/first.err"
first_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "first run (1 000 new images, layers read once): ${first_ms} ms; $(grep '^scan\|^selected' "$work/first.err" | tr '\n' ' ')"
times=()
for round in 1 2 3; do
  before=$(blob_requests)
  start=$(date +%s%N)
  "$VIGIL_BIN" run --schedule hourly --config "$work/vigil.toml" -q >/dev/null 2>"$work/again.err"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  after=$(blob_requests)
  times+=("$ms")
  echo "run $round with nothing new: ${ms} ms, $((after - before)) blob requests; $(grep '^selected' "$work/again.err")"
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
echo "median of 3: ${sorted} ms (target < 3000 ms, zero blob requests)"
