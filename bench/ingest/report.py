#!/usr/bin/env python3
"""Counts the rows of each run's Delta table with the `deltalake` package (an outside
reader, not trib) and prints the comparison table.

    report.py RESULTS_DIR N

RESULTS_DIR holds one JSON file per run (cli.json, http.json, peer.json), each with
`label`, `table`, `seconds`, `rss_kib` and, for HTTP, `p50_ms`/`p99_ms`. Exits 1 when the
row counts differ.
"""

import json
import os
import sys

from deltalake import DeltaTable


def rows(table_dir):
    return DeltaTable(table_dir).to_pyarrow_dataset().count_rows()


def main():
    results, n = sys.argv[1], int(sys.argv[2])
    runs = []
    for name in ("cli", "http", "paced", "peer"):
        path = os.path.join(results, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                r = json.load(f)
            r["rows"] = rows(r["table"])
            r["rate"] = r["rows"] / r["seconds"] if r["seconds"] > 0 else 0.0
            runs.append(r)
    peer = next((r for r in runs if r["name"] == "peer"), None)

    def cell(v, fmt):
        return "-" if v is None else format(v, fmt)

    header = ["tool", "rows", "seconds", "rows/s", "vs peer", "peak RSS MiB", "ack p50 ms", "ack p99 ms"]
    table = [header]
    for r in runs:
        ratio = r["rate"] / peer["rate"] if peer and peer["rate"] else None
        table.append(
            [
                r["label"],
                f"{r['rows']:,}",
                f"{r['seconds']:.2f}",
                f"{r['rate']:,.0f}",
                "1.00x" if r is peer else cell(ratio, ".2f") + ("x" if ratio is not None else ""),
                cell(r["rss_kib"] / 1024 if r.get("rss_kib") else None, ".0f"),
                cell(r.get("p50_ms"), ".1f"),
                cell(r.get("p99_ms"), ".1f"),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for k, row in enumerate(table):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    for r in runs:
        if len(r.get("rounds", [])) > 1:
            rounds = " ".join(f"{x:.2f}" for x in r["rounds"])
            print(f"{r['label']}: {rounds} s in {len(r['rounds'])} rounds, the median above")
    counts = {r["label"]: r["rows"] for r in runs}
    if len(set(counts.values())) == 1:
        print(f"\nrow counts match: {next(iter(counts.values())):,} in each table ({n:,} events generated)")
        return 0
    print(f"\nrow counts differ: {counts} ({n:,} events generated)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
