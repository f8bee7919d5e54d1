#!/usr/bin/env bash
# A merge model catching up with a day of changes (1,000,000 by default: 80% updates of
# recent orders, some twice, 20% new orders) into a silver table of 50,000,000 orders,
# as `trib run` does it: with a merge memory limit, without one, and the peer a user
# would script (the deltalake package: read the changes, keep the latest per order,
# `merge`). Prints seconds and peak RSS side by side. See bench/README.md.
#
#   bench/merge/run.sh [ROWS] [CHANGES] [LIMIT_MB]
set -euo pipefail

ROWS=${1:-50000000}
CHANGES=${2:-1000000}
LIMIT_MB=${3:-512}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
PYARROW_VERSION=26.0.1
DELTALAKE_VERSION=1.6.6

log "building the merge benchmark (release)"
(cd "$ROOT" && cargo build --release -q -p trib-engine --example merge_bench)
BENCH="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/merge_bench"
VENV="${TRIB_BENCH_VENV:-$HOME/.cache/tributary/bench-venv-merge}"
python_venv "$VENV" "pyarrow==$PYARROW_VERSION" "deltalake==$DELTALAKE_VERSION"
gnu_time
scratch merge

log "setup: $ROWS orders in silver, $CHANGES changes in bronze"
"$BENCH" setup "$WORK/limited" "$ROWS" "$CHANGES"
printf '[project]\nname = "bench"\n\n[storage]\nmerge_memory_mb = %s\n' "$LIMIT_MB" >"$WORK/limited/trib.toml"
cp -r "$WORK/limited" "$WORK/unlimited"
printf '[project]\nname = "bench"\n' >"$WORK/unlimited/trib.toml"
cp -r "$WORK/limited" "$WORK/peer"
du -sh "$WORK/limited/.trib/lake/bench/orders/v1" >&2

TSV="$WORK/results.tsv"
peak() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
measure() { # NAME TIMEFILE COMMAND...
    local name=$1 timefile=$2
    shift 2
    log "$name"
    local out
    if [[ ${#TIMEV[@]} -gt 0 ]]; then
        out=$("${TIMEV[@]}" "$timefile" "$@")
    else
        out=$("$@")
    fi
    echo "$out" >&2
    local rss=""
    [[ -f "$timefile" ]] && rss=$(( $(peak "$timefile") / 1024 ))
    python3 - "$name" "$out" "$rss" >>"$TSV" <<'PY'
import json, sys
name, out, rss = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
print("\t".join([name, f"{out['read']}", f"{out['rows']}", f"{out['seconds']:.2f}", rss or "-"]))
PY
}
measure "trib run, merge_memory_mb = $LIMIT_MB" "$WORK/limited.time" "$BENCH" merge "$WORK/limited"
measure "trib run, no memory limit" "$WORK/unlimited.time" "$BENCH" merge "$WORK/unlimited"
measure "deltalake $DELTALAKE_VERSION (python)" "$WORK/peer.time" "$PY" "$HERE/peer.py" \
    "$WORK/peer/.trib/lake/bench/orders_raw/v1" "$WORK/peer/.trib/lake/bench/orders/v1"

"$BENCH" check "$WORK/limited" "$ROWS" "$CHANGES" >&2
"$BENCH" check "$WORK/peer" "$ROWS" "$CHANGES" >&2

echo
echo "merge of $CHANGES changes into $ROWS rows, $(nproc) cores"
echo
python3 - "$TSV" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
head = ["run", "changes read", "rows merged", "seconds", "peak RSS MiB"]
w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
print("  ".join(h.rjust(w[i]) if i else h.ljust(w[i]) for i, h in enumerate(head)))
print("  ".join("-" * x for x in w))
for r in rows:
    print("  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(r)))
PY
