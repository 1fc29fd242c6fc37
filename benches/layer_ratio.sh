#!/usr/bin/env bash
# Layer walk benchmark, ratios: builds the bench layer (or reuses it), then times on the same file in the
# same run Vigil's layer walk, `gzip -dc`, and a bare inflate with the same inflater (flate2/zlib-rs), and
# prints peak RSS of the walk for two layer sizes (it must not grow with the layer).
# Usage: benches/layer_ratio.sh [SIZE_MIB]   (default 112 MiB of content, about 49 MB gzip)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-112}
target=${CARGO_TARGET_DIR:-target}
bin=$(cargo bench --bench layer_walk --no-run --message-format=json 2>/dev/null \
    | jq -r 'select(.executable != null and .target.name == "layer_walk") | .executable' | tail -1)
[ -x "$bin" ] || { echo "could not build the layer_walk bench" >&2; exit 1; }
layer="$target/vigil-bench/layer-${size}mib.tar.gz"
big="$target/vigil-bench/layer-$((size * 2))mib.tar.gz"
"$bin" build "$size" "$layer" >/dev/null
"$bin" build "$((size * 2))" "$big" >/dev/null
cat "$layer" "$big" >/dev/null  # warm the page cache so every tool reads from memory

once() { # wall-clock seconds of one run of a command
    local start end
    start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }

echo "layer: $layer ($(stat -c %s "$layer" | awk "{printf \"%.1f\", \$1/1e6}") MB gzip, $(gzip -dc "$layer" | wc -c | awk "{printf \"%.1f\", \$1/1e6}") MB tar)"
# Best of 5 rounds, the three tools interleaved in each round so load from other processes falls on all.
walk=""; gz=""; inflate=""
for _ in 1 2 3 4 5; do
    walk=$(min "$walk" "$(once "$bin" walk "$layer")")
    gz=$(min "$gz" "$(once sh -c "gzip -dc '$layer' > /dev/null")")
    inflate=$(min "$inflate" "$(once "$bin" inflate "$layer")")
done
walk=$(printf '%.3f' "$walk"); gz=$(printf '%.3f' "$gz"); inflate=$(printf '%.3f' "$inflate")
echo "vigil layer walk : $walk s"
echo "gzip -dc         : $gz s"
echo "bare inflate     : $inflate s"
echo "walk / gzip      : $(echo "scale=3; $walk / $gz" | bc -l)   (target <= 0.5)"
echo "walk / inflate   : $(echo "scale=3; $walk / $inflate" | bc -l)   (target <= 1.15)"
for file in "$layer" "$big"; do
    rss=$(/usr/bin/time -v "$bin" walk "$file" 2>&1 >/dev/null | awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2}')
    echo "max RSS of walk on $(stat -c %s "$file" | awk "{printf \"%.1f\", \$1/1e6}") MB gzip layer: $rss KiB"
done
