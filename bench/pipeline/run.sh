#!/usr/bin/env bash
# The example project's orders pipeline end to end (bronze → silver → gold), side by
# side in one run:
#   1. trib: for each file, `trib ingest orders.orders_raw FILE` then `trib run` of
#      orders.orders (merge) and orders.daily_revenue (incremental),
#   2. the peer a small team would pick instead: dbt-core + dbt-duckdb, the same three
#      models as incremental dbt models in one DuckDB file, one `dbt run` per file,
#   3. `trib serve` on a fresh project: time from an acknowledged HTTP event to its
#      visibility in silver (the models run continuously in the server).
# With the contracts' quality checks and without (a copy of the project whose three
# contracts have none), to measure what per-batch checks add.
# Then reads silver and gold of both (trib's Delta tables with the `deltalake` package,
# dbt's with duckdb), checks them against each other and against what the generator
# says they must hold, and prints a table. See bench/README.md.
#
#   bench/pipeline/run.sh [N]          N events, default 2000000
#
# Settings (environment): FILES (5: the events arrive as this many files), VIS_SECONDS
# (20: how long the HTTP sender runs), VIS_RPS (10 requests/s), VIS_ORDERS (10 orders
# per request), PORT (0 = any free port), TRIB (a trib binary to use instead of building
# one), KEEP_WORK=1 (keep the scratch directory).
set -euo pipefail

N=${1:-2000000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FILES=${FILES:-5}
VIS_SECONDS=${VIS_SECONDS:-20}
VIS_RPS=${VIS_RPS:-10}
VIS_ORDERS=${VIS_ORDERS:-10}
PORT=${PORT:-0}
# trib's models for silver and gold: not `orders.orders_raw+`, which would also run
# finance.monthly_revenue (downstream of daily_revenue), which the peer does not have.
SELECT=(orders.orders orders.daily_revenue)
SILVER_REL=.trib/lake/orders/orders/v1
GOLD_REL=.trib/lake/orders/daily_revenue/v1
# Versions that install here with Python 3.11 (checked 2026-11). dbt-core 1.12 needs
# a wheel from outside PyPI (dbt-core-experimental-parser), so 1.11.
DBT_CORE_VERSION=1.11.16
DBT_DUCKDB_VERSION=1.11.1
DUCKDB_VERSION=2.0.0
PYARROW_VERSION=26.0.1
DELTALAKE_VERSION=1.6.6

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# --- tools ---------------------------------------------------------------------------
trib_binary
gnu_time

VENV="$HERE/.venv"
DBT="$VENV/bin/dbt"
python_venv "$VENV" "dbt-core==$DBT_CORE_VERSION" "dbt-duckdb==$DBT_DUCKDB_VERSION" "duckdb==$DUCKDB_VERSION" "pyarrow==$PYARROW_VERSION" "deltalake==$DELTALAKE_VERSION"
# dbt would otherwise send usage statistics to a server on the internet.
export DBT_SEND_ANONYMOUS_USAGE_STATS=false

# --- scratch -------------------------------------------------------------------------
scratch pipeline

DATA="$WORK/data"
log "generating $N order events in $FILES files"
python3 "$HERE/gen_orders.py" "$N" "$DATA" --files "$FILES"
mapfile -t INPUTS < <(ls "$DATA"/orders_*.ndjson)
log "$(du -ch "${INPUTS[@]}" | tail -1 | cut -f1) of NDJSON"

# Peak RSS in KiB from GNU time's report, or empty.
rss_of() { [[ -f "$1" ]] && sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1" || true; }

# One line per command of a loop: tool, step, file number, microseconds, peak RSS KiB.
STEPS="$RESULTS/steps.tsv"
: >"$STEPS"
# step TOOL STEP I OUT CMD...: runs CMD (stdout to OUT) under GNU time, records its wall
# time and peak RSS; on failure shows what it said and stops the benchmark.
step() {
    local tool=$1 name=$2 i=$3 out=$4
    shift 4
    local tf="$WORK/$tool.$name.$i.time" t0=$EPOCHREALTIME t1 rc=0
    ${TIMEV[@]+"${TIMEV[@]}" "$tf"} "$@" >"$out" 2>"$out.err" || rc=$?
    t1=$EPOCHREALTIME
    if [[ $rc != 0 ]]; then
        echo "$tool $name of file $i failed (exit $rc): $*" >&2
        tail -n 40 "$out" "$out.err" >&2
        exit 1
    fi
    # EPOCHREALTIME is seconds.microseconds: without the dot, microseconds, and no
    # process to start inside the timed loop.
    printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$name" "$i" "$((${t1/./} - ${t0/./}))" "$(rss_of "$tf")" >>"$STEPS"
}

# --- 1. trib -------------------------------------------------------------------------
# Twice, file by file in turn: the example project as it is (the contracts' quality
# checks run over each ingested batch and each model commit), and a copy whose three
# contracts have no `quality` section, to measure what the checks add.
log "1/3 trib: ingest + run per file, with and without the contracts' checks"
"$TRIB" init "$WORK/trib" >"$WORK/trib.init.log" 2>&1 || { cat "$WORK/trib.init.log" >&2; exit 2; }
"$TRIB" init "$WORK/trib-nochecks" >/dev/null 2>&1
python3 - "$WORK/trib-nochecks/products/orders" <<'PY'
import pathlib, re, sys
for name in ("orders_raw", "orders", "daily_revenue"):
    p = pathlib.Path(sys.argv[1]) / f"{name}.yaml"
    # The `quality:` block: its line and the indented or list lines under it.
    p.write_text(re.sub(r"^quality:\n(?:[ -].*\n)*", "", p.read_text(), flags=re.M))
PY
t_checks=0
t_plain=0
for i in "${!INPUTS[@]}"; do
    n=$((i + 1))
    t0=$EPOCHREALTIME
    step trib ingest "$n" "$WORK/trib.ingest.$n.json" \
        "$TRIB" -C "$WORK/trib" ingest orders.orders_raw "${INPUTS[$i]}" --format json
    step trib run "$n" "$WORK/trib.run.$n.json" \
        "$TRIB" -C "$WORK/trib" run --select "${SELECT[@]}" --format json
    t1=$EPOCHREALTIME
    t_checks=$((t_checks + ${t1/./} - ${t0/./}))
    t0=$EPOCHREALTIME
    step trib-nochecks ingest "$n" "$WORK/trib-nochecks.ingest.$n.json" \
        "$TRIB" -C "$WORK/trib-nochecks" ingest orders.orders_raw "${INPUTS[$i]}" --format json
    step trib-nochecks run "$n" "$WORK/trib-nochecks.run.$n.json" \
        "$TRIB" -C "$WORK/trib-nochecks" run --select "${SELECT[@]}" --format json
    t1=$EPOCHREALTIME
    t_plain=$((t_plain + ${t1/./} - ${t0/./}))
done
printf 'trib\t%s\ntrib-nochecks\t%s\n' "$t_checks" "$t_plain" >"$RESULTS/loops.tsv"
cat "$WORK"/trib.ingest.*.json >"$RESULTS/trib_ingest.jsonl"
for n in $(seq 1 "${#INPUTS[@]}"); do
    python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$WORK/trib.run.$n.json"
done >"$RESULTS/trib_run.jsonl"

# --- 2. dbt --------------------------------------------------------------------------
log "2/3 dbt-duckdb: dbt run per file"
cp -r "$HERE/dbt" "$WORK/dbt"
export PEER_DB="$WORK/peer.duckdb"
t0=$EPOCHREALTIME
for i in "${!INPUTS[@]}"; do
    n=$((i + 1))
    step dbt run "$n" "$WORK/dbt.run.$n.out" \
        "$DBT" run --project-dir "$WORK/dbt" --profiles-dir "$WORK/dbt" \
        --vars "{file: '${INPUTS[$i]}', batch: $n}"
    # Outside the timed step: dbt's own timing of each model, for the report.
    cp "$WORK/dbt/target/run_results.json" "$RESULTS/dbt_run_results.$n.json"
done
t1=$EPOCHREALTIME
echo "dbt	$((${t1/./} - ${t0/./}))" >>"$RESULTS/loops.tsv"

# --- 3. trib serve: ack → silver -----------------------------------------------------

log "3/3 trib serve: $VIS_RPS requests/s of $VIS_ORDERS new orders for ${VIS_SECONDS}s, polling silver every 50 ms"
"$TRIB" init "$WORK/serve" >"$WORK/serve.init.log" 2>&1 || { cat "$WORK/serve.init.log" >&2; exit 2; }
start_server "$WORK/serve"
vis_rc=0
"$PY" "$HERE/visibility.py" "$URL" "$WORK/serve/$SILVER_REL" \
    --seconds "$VIS_SECONDS" --rps "$VIS_RPS" --orders-per-request "$VIS_ORDERS" >"$RESULTS/visibility.json" || vis_rc=$?
stop_server
python3 - "$RESULTS/visibility.json" "$SERVER_HWM" <<'PY'
import json, sys
path, hwm = sys.argv[1], sys.argv[2]
try:
    v = json.load(open(path))
except ValueError:
    v = {"failed": True}
v["rss_kib"] = int(hwm) if hwm else None
json.dump(v, open(path, "w"))
PY
# What the server said about its model runs (errors are logged once per distinct error).
grep -i -E 'error|failed|panic' "$WORK/serve.serve.err" >"$RESULTS/serve_errors.txt" || true

# --- report --------------------------------------------------------------------------
echo
echo "pipeline of $N orders.orders_raw events in $FILES files ($(du -ch "${INPUTS[@]}" | tail -1 | cut -f1) NDJSON), $(nproc) cores, trib $("$TRIB" --version | cut -d' ' -f2), dbt-core $DBT_CORE_VERSION, dbt-duckdb $DBT_DUCKDB_VERSION, duckdb $DUCKDB_VERSION"
echo
report_rc=0
"$PY" "$HERE/report.py" "$RESULTS" "$DATA/expected.json" "$WORK/trib/$SILVER_REL" "$WORK/trib/$GOLD_REL" "$PEER_DB" || report_rc=$?
[[ $vis_rc == 0 ]] || { log "the visibility run failed (see above)"; exit 1; }
exit "$report_rc"
