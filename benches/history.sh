#!/usr/bin/env bash
# History does not slow runs down (issue #14). On a registry of 1 000 tags (benches/registry_1000_tags.sh):
# a no-change scheduled run and `vigil report recommendations`, timed on the warehouse after 2 committed
# scans and after 365 (SCANS) committed scans, interleaved, five rounds each, medians compared (target: at
# most 1.3x). Then the 2-scan warehouse is copied to a container of Azurite (started here on a free loopback
# port) and `recommendations` is timed there against the local folder, interleaved (target: within 3x), with
# the store requests of each session (gets, lists) from Vigil's debug log.
# Needs docker-registry, skopeo, curl, python3, and for the Azurite part .ci/install-object-stores.
# Usage: benches/history.sh   (VIGIL_BIN=path/to/release/vigil to skip the build; SCANS=365)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIGIL_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil-bench-target}"
  cargo build --release --bin vigil >&2
  VIGIL_BIN="$CARGO_TARGET_DIR/release/vigil"
fi
scans="${SCANS:-365}"
rounds=5
source benches/registry_1000_tags.sh
azurite_pid=""
trap '[ -n "$azurite_pid" ] && kill "$azurite_pid" 2>/dev/null; cleanup' EXIT

elapsed_ms() {
  local start
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1
  echo $(( ($(date +%s%N) - start) / 1000000 ))
}
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
config_for() { # warehouse, config file
  sed "s|^warehouse = .*|warehouse = \"$1\"|" "$work/vigil.toml" > "$2"
}
scheduled() { "$VIGIL_BIN" run --schedule hourly --config "$1" -q; }
recommendations() { "$VIGIL_BIN" report recommendations --config "$1"; }

echo "building the history: $scans scheduled runs over 1 000 images" >&2
config_for "$work/history" "$work/history.toml"
for n in $(seq "$scans"); do
  scheduled "$work/history.toml" >/dev/null 2>&1
  if [ "$n" -eq 2 ]; then cp -a "$work/history" "$work/after-2"; fi
done
config_for "$work/after-2" "$work/after-2.toml"
committed=$("$VIGIL_BIN" sql "SELECT count(*) AS n FROM scans" --config "$work/history.toml" --format csv | sed -n 2p)
echo "committed scans: 2 and $committed"

declare -A run_ms report_ms
for round in $(seq "$rounds"); do
  for state in after-2 history; do
    # Each timed run starts from a copy, so every round sees the same history.
    rm -rf "$work/trial"
    cp -a "$work/$state" "$work/trial"
    config_for "$work/trial" "$work/trial.toml"
    run_ms[$state]+="$(elapsed_ms scheduled "$work/trial.toml") "
    report_ms[$state]+="$(elapsed_ms recommendations "$work/$state.toml") "
  done
done
r2=$(median ${run_ms[after-2]}); rn=$(median ${run_ms[history]})
p2=$(median ${report_ms[after-2]}); pn=$(median ${report_ms[history]})
echo "no-change scheduled run: ${r2} ms after 2 scans, ${rn} ms after $committed scans: $(python3 -c "print(f'{$rn/$r2:.2f}')")x (target <= 1.3x)"
echo "recommendations:         ${p2} ms after 2 scans, ${pn} ms after $committed scans: $(python3 -c "print(f'{$pn/$p2:.2f}')")x (target <= 1.3x)"

azurite="${VIGIL_AZURITE:-$HOME/.cache/vigil-azurite/node_modules/.bin/azurite-blob}"
python="${VIGIL_PYTHON:-$HOME/.cache/vigil-venv/bin/python}"
if [ ! -x "$azurite" ] || ! "$python" -c "import pyarrow.fs" 2>/dev/null; then
  echo "skipped: the Azurite comparison (run .ci/install-object-stores)"
  exit 0
fi
key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
mkdir -p "$work/azurite"
(cd "$work/azurite" && exec "$azurite" --blobHost 127.0.0.1 --blobPort 0 --inMemoryPersistence \
  --disableTelemetry --skipApiVersionCheck > "$work/azurite.log" 2>&1) &
azurite_pid=$!
for _ in $(seq 100); do grep -q "listens on" "$work/azurite.log" && break; sleep 0.1; done
azport=$(grep -o 'listens on http://127.0.0.1:[0-9]*' "$work/azurite.log" | grep -o '[0-9]*$')
"$python" - "$azport" "$key" "$work/after-2" <<'PY'
import sys, pyarrow.fs as fs
port, key, local = sys.argv[1:]
az = fs.AzureFileSystem(account_name="devstoreaccount1", account_key=key,
                        blob_storage_authority=f"127.0.0.1:{port}", blob_storage_scheme="http",
                        dfs_storage_authority=f"127.0.0.1:{port}", dfs_storage_scheme="http")
az.create_dir("vigil")
fs.copy_files(local, "vigil/warehouse", source_filesystem=fs.LocalFileSystem(), destination_filesystem=az)
PY
sed "s|^warehouse = .*|warehouse = \"az://vigil/warehouse\"|" "$work/vigil.toml" > "$work/azure.toml"
printf '[warehouse_options]\nazure_storage_account_name = "devstoreaccount1"\nazure_storage_endpoint = "http://127.0.0.1:%s/devstoreaccount1"\nazure_allow_http = "true"\n' "$azport" >> "$work/azure.toml"
export AZURE_STORAGE_ACCOUNT_KEY="$key"
local_ms=(); azure_ms=()
for round in $(seq "$rounds"); do
  local_ms+=("$(elapsed_ms recommendations "$work/after-2.toml")")
  azure_ms+=("$(elapsed_ms recommendations "$work/azure.toml")")
done
requests() { VIGIL_LOG=vigil=debug "$VIGIL_BIN" report recommendations --config "$1" --log-format json 2>&1 >/dev/null |
  grep 'warehouse requests' | grep -o '"gets":[0-9]*,"lists":[0-9]*'; }
files=$("$VIGIL_BIN" sql "SELECT sum(cardinality(files)) + count(*) AS n FROM scans" --config "$work/after-2.toml" --format csv | sed -n 2p)
l=$(median "${local_ms[@]}"); a=$(median "${azure_ms[@]}")
echo "recommendations on Azurite: ${a} ms, on the local folder: ${l} ms: $(python3 -c "print(f'{$a/$l:.2f}')")x (target <= 3x)"
echo "requests of one session: local $(requests "$work/after-2.toml"), Azurite $(requests "$work/azure.toml"); committed files: $files, tables: 7"
