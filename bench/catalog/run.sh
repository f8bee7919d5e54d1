#!/usr/bin/env bash
# The catalog with many products, on SQLite and on PostgreSQL (a throwaway cluster of
# Debian's PostgreSQL, as scripts/test.sh makes one): registering them, then search
# p50/p99 (300 queries: a word, two words, an exact address, an owner), what
# `trib show` reads (record, history, consumers) p50/p99 for 300 products, and
# registering one changed product. Prints a table. See bench/README.md.
#
#   bench/catalog/run.sh [N]        N products, default 10000
set -euo pipefail

N=${1:-10000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

log "building the catalog benchmark (release)"
(cd "$ROOT" && cargo build --release -q -p trib-catalog --example catalog_bench)
BENCH="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/catalog_bench"

scratch catalog

pg_cluster

TSV="$WORK/results.tsv"
log "sqlite: $N products"
(cd "$WORK" && "$BENCH" "sqlite://sqlite/catalog.db" "$N") >>"$TSV"
log "postgresql: $N products"
"$BENCH" "postgres://trib@127.0.0.1:$PORT/postgres" "$N" >>"$TSV"

echo
echo "catalog of $N products, $(nproc) cores"
echo
python3 - "$TSV" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
head = ["store", "products", "register all s", "search p50 ms", "search p99 ms", "show p50 ms", "show p99 ms", "apply one ms", "hits/search"]
w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
print("  ".join(h.rjust(w[i]) if i else h.ljust(w[i]) for i, h in enumerate(head)))
print("  ".join("-" * x for x in w))
for r in rows:
    print("  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(r)))
print()
ok = True
for r in rows:
    for name, v, limit in (("search p99", float(r[4]), 20), ("show p99", float(r[6]), 20), ("apply one", float(r[7]), 1000)):
        met = v < limit
        ok &= met
        print(f"{r[0]}: {name} {v} ms (target < {limit} ms): {'met' if met else 'NOT met'}")
PY
