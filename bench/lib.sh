# Shared by the benchmark scripts (sourced, not run): the trib binary, GNU time for
# peak RSS, and starting and stopping `trib serve`. Expects ROOT (the repository), and
# PORT and TRIB (optional) from the environment.

log() { printf '== %s\n' "$*" >&2; }

# Sets TRIB: the binary given, or a release build of this checkout.
trib_binary() {
    if [[ -z "${TRIB:-}" ]]; then
        local profile=${PROFILE:-release}
        log "building trib ($profile profile)"
        (cd "$ROOT" && cargo build --profile "$profile" -p trib)
        TRIB="${CARGO_TARGET_DIR:-$ROOT/target}/$profile/trib"
    fi
    [[ -x "$TRIB" ]] || { echo "no trib binary at $TRIB" >&2; exit 2; }
    # The profile the binary was built with, from its folder (target/<profile>/trib).
    TRIB_PROFILE=$(basename "$(dirname "$TRIB")")
    case $TRIB_PROFILE in release | dist | debug) ;; *) TRIB_PROFILE="binary $TRIB" ;; esac
}

# python_venv DIR REQ...: makes DIR a venv holding exactly the pinned requirements
# (`name==version`), reusing it when it already does; sets PY to its python.
python_venv() {
    local dir=$1
    shift
    PY="$dir/bin/python"
    if ! "$PY" - "$@" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(not all(version(n) == v for n, v in (a.split("==") for a in sys.argv[1:])))
PY
    then
        log "creating $dir ($*)"
        python3 -m venv "$dir"
        "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    fi
}

# Sets TIMEV to GNU time's "-v -o" prefix (installed when missing and root), or empty.
gnu_time() {
    if [[ ! -x /usr/bin/time ]] && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        log "installing GNU time (peak RSS)"
        apt-get update -qq >/dev/null && apt-get install -y -qq time >/dev/null
    fi
    TIMEV=()
    if [[ -x /usr/bin/time ]]; then
        TIMEV=(/usr/bin/time -v -o)
    else
        log "no /usr/bin/time: peak RSS of the command-line runs is not measured"
    fi
}

# Starts `trib serve` on project $1 (extra arguments after it); sets SERVER_PID and URL.
start_server() {
    local dir=$1
    shift
    "$TRIB" -C "$dir" serve --listen "127.0.0.1:${PORT:-0}" --pg-listen off "$@" >"$dir.serve.out" 2>"$dir.serve.err" &
    SERVER_PID=$!
    URL=
    for _ in $(seq 1 300); do
        URL=$(sed -n 's/^listening on //p' "$dir.serve.out")
        [[ -n "$URL" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir.serve.err" >&2; exit 2; }
        sleep 0.1
    done
    [[ -n "$URL" ]] || { echo "trib serve did not start" >&2; cat "$dir.serve.err" >&2; exit 2; }
}

# Stops the server; sets SERVER_HWM to its peak RSS in KiB.
stop_server() {
    SERVER_HWM=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status")
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
}

# Sets WORK (a scratch directory, removed on exit unless KEEP_WORK=1) and RESULTS, and
# stops a server left running on exit.
scratch() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/trib-bench-$1.XXXXXX")
    RESULTS="$WORK/results"
    mkdir -p "$RESULTS"
    SERVER_PID=
    trap cleanup EXIT
}

cleanup() {
    if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP_WORK:-0}" == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}

# pg_cluster: a throwaway cluster of Debian's PostgreSQL under $WORK/pg (initdb, then
# `pg_ctl -w start` on a free loopback port, as scripts/test.sh makes one), stopped on
# exit; sets PORT. Needs `scratch` first.
pg_cluster() {
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -x "$pg_bin/initdb" ]] || { echo "PostgreSQL server binaries are missing: apt-get install postgresql" >&2; exit 2; }
    PG="$WORK/pg"
    mkdir -p "$PG"
    chmod 755 "$WORK"
    if [[ $(id -u) == 0 ]]; then chown postgres "$PG"; fi
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$pg_bin/initdb" -D "$PG/data" -U trib --auth=trust -E UTF8 >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$PG/data" -l "$PG/server.log" -w -o "-p $PORT -k $PG -c listen_addresses=127.0.0.1" start >/dev/null
    trap 'as_pg "$pg_bin/pg_ctl" -D "$PG/data" -m fast -w stop >/dev/null 2>&1 || true; cleanup' EXIT
}

as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
