#!/usr/bin/env bash
# Ingest throughput of `iot.sensor_readings`, side by side in one run:
#   1. `trib ingest` of an NDJSON file (CLI),
#   2. the same file POSTed to `trib serve` by concurrent producers (HTTP),
#   3. the peer a user would script instead: pyarrow's JSON reader + `write_deltalake`.
# Then counts the rows of the three Delta tables with the `deltalake` Python package and
# prints a table. See bench/README.md.
#
#   bench/ingest/run.sh [N]          N events, default 1000000
#
# Settings (environment): ROUNDS (3: runs of the CLI and of the peer, interleaved; the
# median is shown), PRODUCERS (8), LINES_PER_REQUEST (5000), PORT (0 = any free
# port), BAD_PER_MILLE (0; the peer cannot load a file with bad records), TRIB (a trib
# binary to use instead of building one), KEEP_WORK=1 (keep the scratch directory).
set -euo pipefail

N=${1:-1000000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PRODUCT=iot.sensor_readings
TABLE_REL=.trib/lake/iot/sensor_readings/v1
PRODUCERS=${PRODUCERS:-8}
LINES_PER_REQUEST=${LINES_PER_REQUEST:-5000}
PORT=${PORT:-0}
BAD_PER_MILLE=${BAD_PER_MILLE:-0}
ROUNDS=${ROUNDS:-3}
# Versions that install here with Python 3.11 (checked 2026-11).
PYARROW_VERSION=26.0.1
DELTALAKE_VERSION=1.6.6

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$1" "$2"; }

# --- tools ---------------------------------------------------------------------------
trib_binary
gnu_time

VENV="$HERE/.venv"
PY="$VENV/bin/python"
if ! "$PY" -c "import pyarrow, deltalake, sys; sys.exit(not (pyarrow.__version__ == '$PYARROW_VERSION' and deltalake.__version__ == '$DELTALAKE_VERSION'))" 2>/dev/null; then
    log "creating $VENV (pyarrow $PYARROW_VERSION, deltalake $DELTALAKE_VERSION)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "pyarrow==$PYARROW_VERSION" "deltalake==$DELTALAKE_VERSION"
fi

# --- scratch -------------------------------------------------------------------------
scratch ingest

DATA="$WORK/readings.ndjson"
log "generating $N readings ($BAD_PER_MILLE per mille bad)"
python3 "$HERE/gen_readings.py" "$N" "$DATA" --bad-per-mille "$BAD_PER_MILLE"
log "$(du -h "$DATA" | cut -f1) of NDJSON"
# A file is not a live stream: its chunks reach the server in any order, hours of event
# time apart, so the scratch projects allow 30 days of lateness instead of 2 minutes.
new_project() {
    "$TRIB" init "$1" >/dev/null 2>&1
    sed -i 's/allowed_lateness: 2m, late: dead_letter/allowed_lateness: 30d, late: dead_letter/' \
        "$1/products/iot/sensor_readings.yaml"
}
new_project "$WORK/http"

# Peak RSS in KiB from GNU time's report, or empty.
rss_of() { [[ -f "$1" ]] && sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1" || true; }

# Writes a result file: name label table seconds rss_kib [extra JSON fields].
result() {
    python3 - "$RESULTS/$1.json" "$1" "$2" "$3" "$4" "${5:-}" "${6:-}" <<'PY'
import json, sys
out, name, label, table, seconds, rss, extra = sys.argv[1:]
extra = extra or "{}"
r = {"name": name, "label": label, "table": table, "seconds": float(seconds), "rss_kib": int(rss) if rss else None}
r.update(json.loads(extra))
json.dump(r, open(out, "w"))
PY
}

# --- 1. trib ingest and 3. the peer, in interleaved rounds ----------------------------
# Both take about a second, and this machine's speed drifts from one minute to the next
# by more than the difference measured: each runs ROUNDS times, one after the other, and
# the table shows each one's median (with the rounds listed under it).
# Seconds and peak RSS (KiB) of one run, appended as a line to $1.
round_line() { echo "$(elapsed "$2" "$3") $(rss_of "$4")" >>"$1"; }
PEER_OK=1
: >"$WORK/cli.rounds"
: >"$WORK/peer.rounds"
for round in $(seq 1 "$ROUNDS"); do
    log "1/3 trib ingest (round $round of $ROUNDS)"
    rm -rf "$WORK/cli"
    new_project "$WORK/cli"
    t0=$(now)
    ${TIMEV[@]+"${TIMEV[@]}" "$WORK/cli.time"} "$TRIB" -C "$WORK/cli" ingest "$PRODUCT" "$DATA" --format json >"$WORK/cli.out"
    t1=$(now)
    cat "$WORK/cli.out" >&2
    round_line "$WORK/cli.rounds" "$t0" "$t1" "$WORK/cli.time"
    [[ $PEER_OK == 1 ]] || continue
    log "3/3 pyarrow read_json + deltalake write_deltalake (round $round of $ROUNDS)"
    rm -rf "$WORK/peer_table"
    t0=$(now)
    if ${TIMEV[@]+"${TIMEV[@]}" "$WORK/peer.time"} "$PY" "$HERE/peer.py" "$DATA" "$WORK/peer_table" >"$WORK/peer.out"; then
        t1=$(now)
        cat "$WORK/peer.out" >&2
        round_line "$WORK/peer.rounds" "$t0" "$t1" "$WORK/peer.time"
    else
        log "the peer failed (with BAD_PER_MILLE > 0 pyarrow refuses the file); left out of the table"
        PEER_OK=0
    fi
done
# The median seconds, the highest peak RSS and every round's seconds, as result()'s arguments.
summary() {
    python3 - "$1" <<'PY'
import json, statistics, sys
rounds = [line.split() for line in open(sys.argv[1]) if line.strip()]
secs = [float(r[0]) for r in rounds]
rss = [int(r[1]) for r in rounds if len(r) > 1]
print(statistics.median(secs))
print(max(rss) if rss else "")
print(json.dumps({"rounds": secs}))
PY
}
mapfile -t CLI_SUMMARY < <(summary "$WORK/cli.rounds")
result cli "trib ingest (CLI)" "$WORK/cli/$TABLE_REL" "${CLI_SUMMARY[0]}" "${CLI_SUMMARY[1]}" "${CLI_SUMMARY[2]}"
if [[ $PEER_OK == 1 ]]; then
    mapfile -t PEER_SUMMARY < <(summary "$WORK/peer.rounds")
    result peer "pyarrow + write_deltalake" "$WORK/peer_table" "${PEER_SUMMARY[0]}" "${PEER_SUMMARY[1]}" "${PEER_SUMMARY[2]}"
fi

# --- 2. trib serve + HTTP producers --------------------------------------------------

log "2/3 trib serve, $PRODUCERS producers x $LINES_PER_REQUEST lines per request, as fast as acks come"
start_server "$WORK/http"
python3 "$HERE/http_driver.py" "$URL" "$PRODUCT" "$DATA" --producers "$PRODUCERS" --lines "$LINES_PER_REQUEST" >"$WORK/http.out"
stop_server
cat "$WORK/http.out" >&2
HTTP_SECONDS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$WORK/http.out")
result http "trib serve (HTTP, ${PRODUCERS}x${LINES_PER_REQUEST})" "$WORK/http/$TABLE_REL" "$HTTP_SECONDS" "$SERVER_HWM" "$(cat "$WORK/http.out")"

# The same file offered at half the rate just measured: the latency a producer sees
# when the server is not saturated.
HALF=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events_per_s"] / 2)' "$WORK/http.out")
log "2b/3 trib serve at half that rate ($HALF events/s offered)"
new_project "$WORK/paced"
start_server "$WORK/paced"
python3 "$HERE/http_driver.py" "$URL" "$PRODUCT" "$DATA" --producers "$PRODUCERS" --lines "$LINES_PER_REQUEST" --rate "$HALF" >"$WORK/paced.out"
stop_server
cat "$WORK/paced.out" >&2
PACED_SECONDS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$WORK/paced.out")
result paced "trib serve (HTTP, half max rate)" "$WORK/paced/$TABLE_REL" "$PACED_SECONDS" "$SERVER_HWM" "$(cat "$WORK/paced.out")"

# --- report --------------------------------------------------------------------------
echo
echo "ingest of $N $PRODUCT events ($(du -h "$DATA" | cut -f1) NDJSON), $(nproc) cores, trib $("$TRIB" --version | cut -d' ' -f2), pyarrow $PYARROW_VERSION, deltalake $DELTALAKE_VERSION"
echo
"$PY" "$HERE/report.py" "$RESULTS" "$N"
