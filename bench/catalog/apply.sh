#!/usr/bin/env bash
# `trib apply` end to end on a project of many contracts, on SQLite and on PostgreSQL
# (a throwaway cluster of Debian's PostgreSQL): `trib check` (parse, validate, policies),
# the first apply (every table created, every version registered), an apply with
# nothing to do, and an apply of one changed contract (a column added, minor bump),
# which is what a producer waits for. Prints a table. See bench/README.md.
#
#   bench/catalog/apply.sh [N]      N generated contracts, default 10000
set -euo pipefail

N=${1:-10000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trib_binary
scratch catalog-apply

pg_cluster

# A project: the example's settings and policies, N generated contracts in 20 domains
# (bronze streams with checks, PII, access; a tenth of them silver models).
make_project() {
    local dir=$1
    (cd "$WORK" && "$TRIB" init "$(basename "$dir")" >/dev/null 2>&1)
    rm -rf "$dir/products" "$dir/models"
    python3 - "$dir" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
domains = ["sales", "billing", "logistics", "marketing", "support", "hr", "risk", "payments", "catalog", "search",
           "ads", "iot", "fleet", "supply", "pricing", "growth", "identity", "content", "legal", "finance"]
words = ["customer", "order", "invoice", "shipment", "campaign", "ticket", "device", "payment", "product", "session"]
os.makedirs(f"{root}/models", exist_ok=True)
for i in range(n):
    d = domains[i % len(domains)]
    w = words[(i // len(domains)) % len(words)]
    name = f"{w}_events_{i}"
    os.makedirs(f"{root}/products/{d}", exist_ok=True)
    model = i % 10 == 9
    lines = [
        f"product: {d}.{name}", "version: 1.0.0", f"owner: {d}-team-{i % 7}",
        f"description: The {w} events of the {d} domain, number {i}.", "status: active",
    ]
    # Models read the previous product of their domain.
    prev = i - len(domains)
    if model and prev >= 0:
        pw = words[(prev // len(domains)) % len(words)]
        lines += ["layer: silver", "source:", f"  inputs: [{d}.{pw}_events_{prev}]", f"  transform: models/{name}.sql",
                  "  materialized: append"]
        with open(f"{root}/models/{name}.sql", "w") as f:
            f.write(f"SELECT id, {pw}_id AS {w}_id, amount, email, created_at FROM {d}.{pw}_events_{prev}\n")
    else:
        lines += ["layer: bronze", "source: { kind: http, format: json }"]
    lines += [
        f"tags: [{d}, {w}]", "event_time: created_at", "schema:",
        "  - { name: id, type: string, required: true }",
        f"  - {{ name: {w}_id, type: string, required: true }}",
        "  - { name: amount, type: \"decimal(12,2)\" }",
        "  - { name: email, type: string, pii: true, classification: confidential }",
        "  - { name: created_at, type: timestamp, required: true }",
        "sla: { freshness: 1h }",
        "access:", "  - { role: orders-analysts, level: read }",
        "quality:", "  - unique: id", f"  - not_null: [id, {w}_id]",
        "retention: 7y" if d in ("finance", "payments") else "retention: 90d",
    ]
    with open(f"{root}/products/{d}/{name}.yaml", "w") as f:
        f.write("\n".join(lines) + "\n")
PY
}

# seconds COMMAND...: wall time of a command in seconds (3 decimals); its output kept.
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >>"$WORK/out.log" 2>&1 || { tail -n 30 "$WORK/out.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    python3 -c "print(f'{$t1 - $t0:.3f}')"
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

TSV="$WORK/results.tsv"
for store in sqlite postgresql; do
    dir="$WORK/p-$store"
    log "$store: generating $N contracts"
    make_project "$dir"
    if [[ $store == postgresql ]]; then
        export TRIB_CATALOG_URL="postgres://trib@127.0.0.1:$PORT/postgres"
    else
        unset TRIB_CATALOG_URL
    fi
    cd "$dir"
    log "$store: trib check"
    check=$(seconds "$TRIB" check)
    log "$store: first apply (creates $N tables)"
    first=$(seconds "$TRIB" apply --yes)
    # The first apply wrote thousands of tables: let the disk catch up before timing.
    sync
    log "$store: apply with nothing to do (3 runs)"
    noops=()
    for _ in 1 2 3; do noops+=("$(seconds "$TRIB" apply --yes)"); done
    noop=$(median "${noops[@]}")
    # One producer's change at a time: a column added, minor version; 5 contracts.
    files=(products/sales/*.yaml)
    ones=()
    for i in 0 1 2 3 4; do
        f=${files[$i]}
        sed -i 's/^version: 1.0.0/version: 1.1.0/; s/^schema:/schema:\n  - { name: channel, type: string }/' "$f"
        log "$store: apply of one changed contract ($f)"
        : >"$WORK/out.log"
        ones+=("$(seconds "$TRIB" apply --yes)")
        grep -q "applied 1 product version" "$WORK/out.log" || { echo "the change was not applied" >&2; tail "$WORK/out.log" >&2; exit 1; }
    done
    one=$(median "${ones[@]}")
    worst=$(printf '%s\n' "${ones[@]}" | sort -n | tail -n 1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$store" "$N" "$check" "$first" "$noop" "$one" "$worst" >>"$TSV"
    cd "$WORK"
done

echo
echo "trib apply on a project of $N contracts, $(nproc) cores"
echo
python3 - "$TSV" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
head = ["catalog", "contracts", "check s", "first apply s", "no-op apply s", "one changed s (median of 5)", "worst s"]
w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
print("  ".join(h.rjust(w[i]) if i else h.ljust(w[i]) for i, h in enumerate(head)))
print("  ".join("-" * x for x in w))
for r in rows:
    print("  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(r)))
print()
for r in rows:
    v = float(r[5])
    print(f"{r[0]}: apply of one changed contract, median {v} s, worst {r[6]} s (target < 1 s): {'met' if v < 1 else 'NOT met'}")
PY
