# Sourced by the bench scripts (needs $VIGIL_BIN): starts Debian's docker-registry on a free loopback port
# with its access log on, pushes the demo's python-web image once and then 1 000 distinct manifests of it
# (100 repositories x 10 tags, each with its own annotation, so 1 000 digests sharing the same layers), and
# writes $work/vigil.toml (warehouse, advisory DB and cache under $work, an `hourly` schedule) with the demo
# advisories imported. Sets $work, $port and $registry_pid; removes $work and stops the registry on exit.
work=$(mktemp -d)
registry_pid=""
cleanup() { [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry.yml" > "$work/access.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

# The demo layout holds the python-web image; push it once, then 1 000 annotated copies of its manifest.
"$VIGIL_BIN" demo --dir "$work/demo" >/dev/null 2>&1
skopeo copy --quiet --dest-tls-verify=false "oci:$work/demo/layout:apps/python-web:1.4" \
  "docker://127.0.0.1:$port/base/python-web:1.4"
python3 - "$port" <<'PY'
import http.client, json, sys
port = int(sys.argv[1])
accept = "application/vnd.oci.image.manifest.v1+json"
conn = http.client.HTTPConnection("127.0.0.1", port)
conn.request("GET", "/v2/base/python-web/manifests/1.4", headers={"Accept": accept})
response = conn.getresponse()
manifest = json.loads(response.read())
media_type = response.getheader("Content-Type")
for i in range(1000):
    manifest["annotations"] = {"bench.copy": str(i)}
    body = json.dumps(manifest).encode()
    repo = f"bench/app-{i // 10:03d}"
    # Blobs must exist in the target repository: mount them from the base repository.
    if i % 10 == 0:
        for blob in [manifest["config"]] + manifest["layers"]:
            conn.request("POST", f"/v2/{repo}/blobs/uploads/?mount={blob['digest']}&from=base/python-web")
            conn.getresponse().read()
    conn.request("PUT", f"/v2/{repo}/manifests/t{i % 10}", body=body, headers={"Content-Type": media_type})
    r = conn.getresponse(); r.read()
    assert r.status == 201, (r.status, repo)
PY
# Drop the base repository from the crawl: only the 1 000 bench tags count.
cat > "$work/vigil.toml" <<TOML
warehouse = "warehouse"
advisory_db = "db"
cache = "cache"
schedules = "schedules"

[[subscription]]
id = "bench"
[[subscription.registry]]
name = "local"
url = "http://127.0.0.1:$port"
insecure_http = true
repositories = ["bench/*"]
TOML
mkdir -p "$work/schedules"
printf 'name = "hourly"\ncron = "0 * * * *"\n\n[policy]\nnew_images = true\npulled_within = "30d"\n' > "$work/schedules/hourly.toml"
"$VIGIL_BIN" db import examples/demo/advisories --config "$work/vigil.toml" >/dev/null

