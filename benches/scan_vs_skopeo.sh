#!/usr/bin/env bash
# `vigil scan` of one image against `skopeo copy` of the same image, both from a loopback registry, in the
# same run (issue: the scan takes at most 1.2x the copy).
#
# The image is one real ~48 MB gzip layer: a `debootstrap --variant=minbase bullseye` Debian rootfs (built
# once and cached under ~/.cache/vigil-bench; Debian 11, the release the shared sample's converted Debian
# advisories cover, so the scan has findings), without the downloaded .debs, tarred deterministically, in an OCI layout pushed to Debian's
# docker-registry on a free port. Each round, interleaved: `skopeo copy docker://... oci:DIR` into a fresh
# folder, and `vigil scan` of the image with its layer cache removed, so it fetches, inflates and reads the
# whole layer, matches the packages against the Debian advisories and commits to its warehouse. Prints every
# round, the medians and their ratio. Needs debootstrap (run as root), docker-registry, skopeo, python3.
# Usage: benches/scan_vs_skopeo.sh [ROUNDS]   (VIGIL_BIN=path/to/release/vigil to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
if [ -z "${VIGIL_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil-bench-target}"
  cargo build --release --bin vigil >&2
  VIGIL_BIN="$CARGO_TARGET_DIR/release/vigil"
fi
cache="${VIGIL_BENCH_CACHE:-$HOME/.cache/vigil-bench}"
mkdir -p "$cache"
rootfs="$cache/rootfs-bullseye"
if [ ! -f "$rootfs/etc/os-release" ]; then
  debootstrap --variant=minbase bullseye "$rootfs" http://deb.debian.org/debian >&2
  rm -f "$rootfs"/var/cache/apt/archives/*.deb
fi
layout="$cache/debian11-layout"
if [ ! -f "$layout/index.json" ]; then
  rm -rf "$layout" && mkdir -p "$layout/blobs/sha256"
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$rootfs" -cf "$cache/layer.tar" .
  python3 - "$cache/layer.tar" "$layout" <<'PY'
import gzip, hashlib, json, os, sys
tar, layout = sys.argv[1], sys.argv[2]
blobs = os.path.join(layout, "blobs", "sha256")
def put(data):
    digest = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, digest), "wb").write(data)
    return "sha256:" + digest, len(data)
raw = open(tar, "rb").read()
diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
layer, layer_size = put(gzip.compress(raw, compresslevel=6, mtime=0))
config, config_size = put(json.dumps({"architecture": "amd64", "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {}}).encode())
manifest, manifest_size = put(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}]}).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": manifest, "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "12"}}]},
    open(os.path.join(layout, "index.json"), "w"))
open(os.path.join(layout, "oci-layout"), "w").write('{"imageLayoutVersion": "1.0.0"}')
PY
  rm -f "$cache/layer.tar"
fi
layer_mb=$(python3 -c "import json,os,sys; l=sys.argv[1]; m=json.load(open(os.path.join(l,'index.json')))['manifests'][0]['digest'].split(':')[1]; man=json.load(open(os.path.join(l,'blobs','sha256',m))); print('%.1f' % (man['layers'][0]['size']/1e6))" "$layout")

work=$(mktemp -d)
registry_pid=""
cleanup() { [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/storage\nhttp:\n  addr: 127.0.0.1:%s\n' "$work" "$port" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
image="127.0.0.1:$port/bench/debian:12"
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:12" "docker://$image"

printf 'warehouse = "warehouse"\nadvisory_db = "db"\ncache = "cache"\n\n[[subscription]]\nid = "bench"\n[[subscription.registry]]\nname = "local"\nurl = "http://127.0.0.1:%s"\ninsecure_http = true\n' "$port" > "$work/vigil.toml"
# The shared data set sits beside the checkout (or where VIGIL_SHARED_DATA says); without it the scan matches
# against the few Debian records in tests/testdata, and says so, as its findings then differ.
shared="${VIGIL_SHARED_DATA:-../shared/data}"
advisories=tests/testdata/osv/records/Debian
if [ -d "$shared/osv-converted/Debian" ]; then
  advisories="$shared/osv-converted/Debian"
else
  echo "scan_vs_skopeo: $shared/osv-converted/Debian absent: matching against $advisories only" >&2
fi
"$VIGIL_BIN" db import "$advisories" --config "$work/vigil.toml" >/dev/null

now() { date +%s%N; }
copy() { rm -rf "$work/out"; skopeo copy --quiet --src-tls-verify=false "docker://$image" "oci:$work/out:12"; }
scan() { rm -rf "$work/cache"; "$VIGIL_BIN" scan --config "$work/vigil.toml" -q "$image" >/dev/null 2>"$work/scan.err"; }
copy; scan  # warm-up: the registry's files in the page cache for both
grep '^scan' "$work/scan.err" || true
skopeo_ms=(); vigil_ms=()
for round in $(seq "$rounds"); do
  t=$(now); copy; s=$(( ($(now) - t) / 1000000 ))
  t=$(now); scan; v=$(( ($(now) - t) / 1000000 ))
  skopeo_ms+=("$s"); vigil_ms+=("$v")
  echo "round $round: skopeo copy ${s} ms, vigil scan ${v} ms"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms=$(median "${skopeo_ms[@]}"); mv=$(median "${vigil_ms[@]}")
awk -v s="$ms" -v v="$mv" -v mb="$layer_mb" -v n="$rounds" 'BEGIN {
  printf "layer %s MB gzip; median of %d: skopeo copy %d ms, vigil scan %d ms, ratio %.3f (target <= 1.2)\n", mb, n, s, v, v / s
}'
