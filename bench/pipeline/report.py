#!/usr/bin/env python3
"""Reads silver and gold as each tool left them, checks them against each other and
against the generator's expectation, and prints the comparison.

    report.py RESULTS_DIR EXPECTED_JSON TRIB_SILVER TRIB_GOLD PEER_DUCKDB

trib's tables are read with the `deltalake` package (an outside reader, not trib), the
peer's with duckdb. RESULTS_DIR holds what run.sh recorded: steps.tsv (tool, step, file,
microseconds, peak RSS KiB per command), loops.tsv (tool, microseconds of its whole
loop), trib_ingest.jsonl and trib_run.jsonl (trib's JSON output per file),
dbt_run_results.N.json (dbt's run_results.json of each file), visibility.json
(visibility.py's output plus the server's peak RSS) and serve_errors.txt. Exits 1 when silver or gold differ, or trib failed a model run.
"""

import json
import os
import sys
from collections import defaultdict
from decimal import Decimal

import duckdb
import pyarrow.compute as pc
from deltalake import DeltaTable


def mib(kib):
    return None if kib is None else kib / 1024


def cell(v, fmt):
    return "-" if v is None else format(v, fmt)


def print_table(header, rows):
    table = [header] + rows
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for k, row in enumerate(table):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def trib_tables(silver, gold):
    s = DeltaTable(silver).to_pyarrow_table(columns=["order_id"])
    g = DeltaTable(gold).to_pyarrow_table(columns=["day", "country", "orders", "revenue"])
    rows = {
        (day.date().isoformat(), country): (orders, revenue)
        for day, country, orders, revenue in zip(
            g.column("day").to_pylist(),
            g.column("country").to_pylist(),
            g.column("orders").to_pylist(),
            g.column("revenue").to_pylist(),
        )
    }
    return {
        "silver_rows": s.num_rows,
        "silver_keys": pc.count_distinct(s.column("order_id")).as_py(),
        "gold_rows": g.num_rows,
        "gold": rows,
    }


def peer_tables(db):
    con = duckdb.connect(db, read_only=True)
    silver_rows, silver_keys = con.sql("select count(*), count(distinct order_id) from orders").fetchall()[0]
    bronze_rows = con.sql("select count(*) from orders_raw").fetchall()[0][0]
    g = con.sql("select day, country, orders, revenue from daily_revenue").fetchall()
    con.close()
    return {
        "bronze_rows": bronze_rows,
        "silver_rows": silver_rows,
        "silver_keys": silver_keys,
        "gold_rows": len(g),
        "gold": {(day.date().isoformat(), country): (orders, revenue) for day, country, orders, revenue in g},
    }


def main():
    results, expected_path, trib_silver, trib_gold, peer_db = sys.argv[1:6]
    with open(expected_path) as f:
        expected = json.load(f)
    n = expected["events"]

    steps = defaultdict(lambda: defaultdict(list))  # tool -> step -> [(file, seconds, rss)]
    with open(os.path.join(results, "steps.tsv")) as f:
        for line in f:
            tool, step, i, us, rss = line.rstrip("\n").split("\t")
            steps[tool][step].append((int(i), int(us) / 1e6, int(rss) if rss else None))
    loops = {}
    with open(os.path.join(results, "loops.tsv")) as f:
        for line in f:
            tool, us = line.split()
            loops[tool] = int(us) / 1e6

    def peak(tool):
        values = [r for s in steps[tool].values() for _, _, r in s if r is not None]
        return max(values) if values else None

    ingests = [json.loads(l) for l in open(os.path.join(results, "trib_ingest.jsonl")) if l.strip()]
    runs = [json.loads(l) for l in open(os.path.join(results, "trib_run.jsonl")) if l.strip()]
    received = sum(r["received"] for r in ingests)
    accepted = sum(r["accepted"] for r in ingests)
    dead = sum(r["dead_lettered"] for r in ingests)
    reasons = defaultdict(int)
    for r in ingests:
        for k, v in r.get("dead_letters_by_reason", {}).items():
            reasons[k] += v
    failed_runs = [m for per_file in runs for m in per_file if m["outcome"]["status"] not in ("committed", "up_to_date")]

    t = trib_tables(trib_silver, trib_gold)
    p = peer_tables(peer_db)
    t_rev = sum((rev for _, rev in t["gold"].values()), Decimal(0))
    p_rev = sum((rev for _, rev in p["gold"].values()), Decimal(0))
    exp_rev = Decimal(expected["gold_revenue"])

    rows = []
    for tool, label, silver, rev in (
        ("trib", "trib ingest + run", t["silver_rows"], t_rev),
        ("dbt", "dbt-core + dbt-duckdb", p["silver_rows"], p_rev),
    ):
        secs = loops[tool]
        rate = n / secs if secs > 0 else 0.0
        peer_rate = n / loops["dbt"] if loops["dbt"] > 0 else 0.0
        rows.append(
            [
                label,
                f"{n:,}",
                f"{secs:.2f}",
                f"{rate:,.0f}",
                f"{rate / peer_rate:.2f}x" if peer_rate else "-",
                cell(mib(peak(tool)), ".0f"),
                f"{silver:,}",
                f"{rev:,}",
            ]
        )
    print_table(["tool", "events", "seconds", "events/s", "vs peer", "peak RSS MiB", "silver rows", "gold revenue"], rows)

    def per_file(tool, step):
        return ", ".join(f"{s:.2f}" for _, s, _ in sorted(steps[tool][step]))

    # Time inside the models, as each tool reports it: the rest of a step is starting
    # the process, reading the project and (dbt) compiling.
    trib_models = [sum(m["seconds"] for m in per) for per in runs]
    dbt_models = []
    for i in range(1, len(steps["dbt"]["run"]) + 1):
        path = os.path.join(results, f"dbt_run_results.{i}.json")
        if os.path.exists(path):
            with open(path) as f:
                dbt_models.append(sum(r["execution_time"] for r in json.load(f)["results"]))

    def listed(values):
        return ", ".join(f"{v:.2f}" for v in values)

    ti = sum(s for _, s, _ in steps["trib"]["ingest"])
    tr = sum(s for _, s, _ in steps["trib"]["run"])
    dd = sum(s for _, s, _ in steps["dbt"]["run"])
    print()
    print(f"trib: ingest {ti:.2f} s + run {tr:.2f} s over {len(steps['trib']['run'])} files, "
          f"{sum(trib_models):.2f} s of the runs in the models")
    print(f"  ingest per file s:  {per_file('trib', 'ingest')}")
    print(f"  run per file s:     {per_file('trib', 'run')}")
    print(f"  models per file s:  {listed(trib_models)} (as `trib run --format json` reports them)")
    print(f"  {received:,} received, {accepted:,} into bronze, {dead:,} dead-lettered"
          + (f" ({dict(reasons)})" if reasons else ""))
    if steps.get("trib-nochecks"):
        # What the contracts' checks add to each batch's way from file to silver and
        # gold: ingest + run with them, against the same without them.
        def per_batch(tool):
            by = defaultdict(float)
            for step in ("ingest", "run"):
                for i, s, _ in steps[tool][step]:
                    by[i] += s
            return by
        with_checks, without = per_batch("trib"), per_batch("trib-nochecks")
        print("checks: ingest-to-silver per batch, with the contracts' checks and without")
        rows = []
        for i in sorted(with_checks):
            a, b = with_checks[i], without.get(i, 0.0)
            rows.append([str(i), f"{b:.2f}", f"{a:.2f}", f"{100 * (a - b) / b:+.1f}%" if b else "-"])
        a, b = sum(with_checks.values()), sum(without.values())
        rows.append(["all", f"{b:.2f}", f"{a:.2f}", f"{100 * (a - b) / b:+.1f}%" if b else "-"])
        print_table(["batch", "no checks s", "checks s", "checks add"], rows)
    print(f"dbt: dbt run {dd:.2f} s over {len(steps['dbt']['run'])} files, {sum(dbt_models):.2f} s of it in the models")
    print(f"  dbt run per file s: {per_file('dbt', 'run')}")
    print(f"  models per file s:  {listed(dbt_models)} (bronze included; dbt's run_results.json)")
    print(f"  {p['bronze_rows']:,} rows in bronze")

    ok = True
    problems = []
    if failed_runs:
        problems.append(f"trib model runs failed: {failed_runs}")
    if dead:
        problems.append(f"trib dead-lettered {dead:,} events ({dict(reasons)}); the generator writes none that should be")
    if not (t["silver_rows"] == p["silver_rows"] == expected["silver_rows"]):
        problems.append(f"silver rows differ: trib {t['silver_rows']:,}, dbt {p['silver_rows']:,}, expected {expected['silver_rows']:,}")
    for name, d in (("trib", t), ("dbt", p)):
        if d["silver_keys"] != d["silver_rows"]:
            problems.append(f"{name} silver holds {d['silver_rows']:,} rows for {d['silver_keys']:,} order_ids")
    if not (t_rev == p_rev == exp_rev):
        problems.append(f"gold revenue differs: trib {t_rev}, dbt {p_rev}, expected {exp_rev}")
    differ = {k for k in set(t["gold"]) | set(p["gold"]) if t["gold"].get(k) != p["gold"].get(k)}
    if differ:
        sample = sorted(differ)[:5]
        problems.append(
            f"{len(differ)} gold rows (day, country) differ, e.g. "
            + "; ".join(f"{k}: trib {t['gold'].get(k)}, dbt {p['gold'].get(k)}" for k in sample)
        )
    print()
    if problems:
        ok = False
        for m in problems:
            print(f"MISMATCH: {m}", file=sys.stderr)
    else:
        print(
            f"results match: {t['silver_rows']:,} orders in silver, {t['gold_rows']:,} gold rows (day, country) "
            f"equal row by row, revenue {t_rev:,} (as the generator expects)"
        )

    vis_path = os.path.join(results, "visibility.json")
    if os.path.exists(vis_path):
        with open(vis_path) as f:
            v = json.load(f)
        print()
        if v.get("failed"):
            print("ack → silver: the visibility run failed")
            ok = False
        else:
            print_table(
                [
                    "trib serve, ack → silver",
                    "orders acked",
                    "visible",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "ack p50 ms",
                    "ack p99 ms",
                    "peak RSS MiB",
                ],
                [
                    [
                        f"{v['rps']:g} req/s x {v['orders_per_request']} orders, {v['send_seconds']:g} s",
                        f"{v['orders_acked']:,}",
                        f"{v['orders_visible']:,}",
                        f"{v['p50_ms']:.0f}",
                        f"{v['p99_ms']:.0f}",
                        f"{v['max_ms']:.0f}",
                        f"{v['ack_p50_ms']:.0f}",
                        f"{v['ack_p99_ms']:.0f}",
                        cell(mib(v.get("rss_kib")), ".0f"),
                    ]
                ],
            )
            print(f"\ntarget p99 < 1000 ms: {'met' if v['p99_ms'] < 1000 else 'NOT met'}")
    err_path = os.path.join(results, "serve_errors.txt")
    if os.path.exists(err_path) and os.path.getsize(err_path):
        print("\ntrib serve logged:", file=sys.stderr)
        with open(err_path) as f:
            print(f.read()[:3000], file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
