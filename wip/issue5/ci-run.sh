#!/usr/bin/env bash
# CI entry point: installs what the tests need, then runs the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests start real servers and tools: Debian's docker-registry (CNCF distribution), skopeo to push
# images into it, and htpasswd (apache2-utils) for bcrypt basic-auth files.
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

# An independent reader of the warehouse (pyarrow and DuckDB from PyPI) in a virtualenv outside the clone;
# tests/warehouse.rs compares its counts with Vigil's.
venv="${VIGIL_VENV:-$HOME/.cache/vigil-venv}"
if ! "$venv/bin/python" -c "import pyarrow, duckdb" >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check pyarrow duckdb
fi
export VIGIL_PYTHON="$venv/bin/python"

# Keep build artefacts outside the clone so repeated CI runs reuse the dependency build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil-ci-target}"
cargo test --locked
