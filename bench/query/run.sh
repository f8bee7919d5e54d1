#!/usr/bin/env bash
# SQL over products against DuckDB on TPC-H, the cost of access control, and point reads:
#   1. tpchgen-cli writes the eight TPC-H tables as Parquet at scale factor SF,
#   2. a trib project gets one bronze contract per table (types from the Parquet
#      schema), two roles (`tpch-analysts`; `tpch-restricted` with PII masked and row
#      filters on lineitem and orders), `trib ingest` of each file, and a silver merge
#      model `tpch.orders_latest` made by `trib run`,
#   3. `trib serve` answers the 22 TPC-H queries (qualified with schema `tpch` by
#      queries.py) through `POST /v1/sql` as admin and as `tpch-restricted`; DuckDB runs
#      the same text over views of the same Parquet files, in the same driver process,
#      and so does DataFusion's Python binding over the Delta tables' data files (the
#      engine under trib, apart from trib's query path),
#   4. point reads of tpch.orders_latest by key: the rows endpoint (in-memory index),
#      the same lookup as SQL, and DuckDB over Parquet.
# Prints a table; see bench/README.md.
#
#   bench/query/run.sh [SF]            scale factor, default 0.1
#
# Settings (environment): RUNS (5 timed runs per query and side, after a warm-up),
# POINT_READS (2000), PORT (0 = any free port), QUERIES_SRC (the 22 query files,
# default shared/interop/sql/tpch beside the repository), TRIB (a trib binary to use
# instead of building one), PROFILE (the Cargo profile to build, default release; `dist`
# for the production binary), KEEP_WORK=1 (keep the scratch directory), DF_PARTITIONS
# (the engine reference's partitions, default one per core as trib's queries).
set -euo pipefail

SF=${1:-0.1}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PORT=${PORT:-0}
QUERIES_SRC=${QUERIES_SRC:-$ROOT/../shared/interop/sql/tpch}
TABLES=(customer lineitem nation orders part partsupp region supplier)
# Versions that install here with Python 3.11 (checked 2026-11).
TPCHGEN_VERSION=4.0.0
DUCKDB_VERSION=2.0.0
SQLGLOT_VERSION=30.30.0
PYARROW_VERSION=26.0.1
# The engine reference: DataFusion's Python bindings of the major version trib uses.
DATAFUSION_VERSION=55.0.0

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

[[ -f "$QUERIES_SRC/q1.sql" ]] || { echo "no TPC-H queries at $QUERIES_SRC (set QUERIES_SRC)" >&2; exit 2; }

# --- tools ---------------------------------------------------------------------------
trib_binary

VENV="$HERE/.venv"
python_venv "$VENV" "tpchgen-cli==$TPCHGEN_VERSION" "duckdb==$DUCKDB_VERSION" "sqlglot==$SQLGLOT_VERSION" "pyarrow==$PYARROW_VERSION" "datafusion==$DATAFUSION_VERSION"

# --- scratch -------------------------------------------------------------------------
scratch query

# run NAME CMD...: runs CMD with its output in $WORK/NAME.out and .err; on failure shows
# what it said and stops the benchmark.
run() {
    local name=$1 rc=0
    shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
    if [[ $rc != 0 ]]; then
        echo "$name failed (exit $rc): $*" >&2
        tail -n 40 "$WORK/$name.out" "$WORK/$name.err" >&2
        exit 1
    fi
}

DATA="$WORK/data"
log "tpchgen-cli: TPC-H SF $SF as Parquet"
t0=$EPOCHREALTIME
run tpchgen "$VENV/bin/tpchgen-cli" parquet --scale-factor "$SF" --output-dir "$DATA"
t1=$EPOCHREALTIME
GEN_MS=$(( (${t1/./} - ${t0/./}) / 1000 ))
log "$(du -sh "$DATA" | cut -f1) of Parquet in $GEN_MS ms"

# --- project -------------------------------------------------------------------------
P="$WORK/tpch"
log "trib init + contracts"
run init "$TRIB" init "$P"
run project "$PY" "$HERE/project.py" "$P" "$DATA"
# `trib check` exits 1 on problems; warnings are shown, errors stop the benchmark.
rc=0
"$TRIB" -C "$P" check >"$WORK/check.out" 2>"$WORK/check.err" || rc=$?
if [[ $rc != 0 ]]; then
    echo "trib check found problems (exit $rc):" >&2
    cat "$WORK/check.out" "$WORK/check.err" >&2
    exit 1
fi
grep -i 'warn' "$WORK/check.out" "$WORK/check.err" >&2 || true

log "trib ingest: ${TABLES[*]}"
: >"$RESULTS/ingest.tsv"
for t in "${TABLES[@]}"; do
    t0=$EPOCHREALTIME
    rc=0
    "$TRIB" -C "$P" ingest "tpch.$t" "$DATA/$t.parquet" --format json >"$WORK/ingest.$t.out" 2>"$WORK/ingest.$t.err" || rc=$?
    t1=$EPOCHREALTIME
    # Every row of the file must land in bronze: a dead letter means trib decoded or
    # validated a value of tpchgen-cli's Parquet differently from the contract; then
    # the first dead letters are shown with their reasons.
    "$PY" - "$WORK/ingest.$t.out" "$DATA/$t.parquet" "$t" "$(( ${t1/./} - ${t0/./} ))" "$rc" \
        "$P/.trib/lake/_dead_letters/tpch/$t/v1" >>"$RESULTS/ingest.tsv" <<'PY' || { cat "$WORK/ingest.$t.err" >&2; exit 1; }
import glob, json, sys
import pyarrow.parquet as pq
report, path, table, us, rc, dead = sys.argv[1:]
rows = pq.ParquetFile(path).metadata.num_rows
try:
    r = json.load(open(report))
except ValueError:
    print(f"trib ingest of {table} failed (exit {rc}) without a report", file=sys.stderr)
    sys.exit(1)
print(f"{table}\t{rows}\t{r.get('accepted')}\t{r.get('dead_lettered')}\t{us}")
if rc != "0" or r.get("accepted") != rows or r.get("dead_lettered"):
    print(f"trib ingest of {table} (exit {rc}): {rows} rows in the file, {r.get('accepted')} accepted, "
          f"{r.get('dead_lettered')} dead-lettered: {json.dumps(r.get('dead_letters_by_reason'))}", file=sys.stderr)
    files = sorted(glob.glob(f"{dead}/**/*.parquet", recursive=True))
    if files:
        first = pq.read_table(files[0]).slice(0, 3).to_pylist()
        for d in first:
            print("  dead letter: " + json.dumps({k: str(v)[:300] for k, v in d.items()}), file=sys.stderr)
    sys.exit(1)
PY
done

log "trib run: tpch.orders_latest"
run model "$TRIB" -C "$P" run --select tpch.orders_latest --format json

# --- tokens and server ---------------------------------------------------------------
run token.admin "$TRIB" -C "$P" token create bench-admin --role admin
run token.restricted "$TRIB" -C "$P" token create bench-restricted --role tpch-restricted
ADMIN_TOKEN=$(tr -d '[:space:]' <"$WORK/token.admin.out")
RESTRICTED_TOKEN=$(tr -d '[:space:]' <"$WORK/token.restricted.out")
export ADMIN_TOKEN RESTRICTED_TOKEN

log "rewriting the 22 queries for schema tpch"
run queries "$PY" "$HERE/queries.py" "$QUERIES_SRC" "$WORK/queries"

start_server "$P" --models-poll-ms 0
log "trib serve at $URL; timing queries (1 warm-up + ${RUNS:-5} runs per side, in turns) and point reads"
drv_rc=0
LAKE="$P/.trib/lake/tpch" "$PY" "$HERE/driver.py" "$URL" "$WORK/queries" "$DATA" "$RESULTS/results.json" 2>"$WORK/driver.err" || drv_rc=$?
stop_server
if [[ $drv_rc != 0 ]]; then
    echo "driver.py failed (exit $drv_rc):" >&2
    tail -n 40 "$WORK/driver.err" >&2
    exit 1
fi
# What the server logged as an error or panic (query errors are logged with their cause).
grep -i -E 'error|panic' "$P.serve.err" >"$RESULTS/serve_errors.txt" || true

# --- report --------------------------------------------------------------------------
echo
echo "TPC-H SF $SF ($(du -sh "$DATA" | cut -f1) Parquet), $(nproc) cores, trib $("$TRIB" --version | cut -d' ' -f2) ($TRIB_PROFILE), duckdb $DUCKDB_VERSION ($("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["duckdb_threads"])' "$RESULTS/results.json") threads), tpchgen-cli $TPCHGEN_VERSION, sqlglot $SQLGLOT_VERSION"
"$PY" - "$RESULTS/ingest.tsv" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
total = sum(int(r[1]) for r in rows)
secs = sum(int(r[4]) for r in rows) / 1e6
print(f"trib ingest: {total:,} rows in 8 tables, {secs:.1f} s (" + ", ".join(f"{r[0]} {int(r[4]) / 1e6:.1f} s" for r in rows) + ")")
PY
echo
report_rc=0
"$PY" "$HERE/report.py" "$RESULTS/results.json" "${SERVER_HWM:-}" || report_rc=$?
if [[ -s "$RESULTS/serve_errors.txt" ]]; then
    echo
    echo "trib serve logged $(wc -l <"$RESULTS/serve_errors.txt") error lines, the first:"
    head -n 5 "$RESULTS/serve_errors.txt" | cut -c1-400
fi
exit "$report_rc"
