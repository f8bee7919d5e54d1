"""Prints the query benchmark's tables from driver.py's results.

    report.py RESULTS_JSON SERVER_RSS_KIB

Exits 1 when a query failed on either side or the row counts of trib (admin) and
DuckDB differ; the tables are printed either way.
"""

import json
import math
import statistics
import sys

RATIO_TARGET = 1.2
OVERHEAD_TARGET = 5.0
POINT_P99_TARGET = 5.0


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def table(header, rows, align):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(
        str(x).ljust(w) if a == "<" else str(x).rjust(w) for x, w, a in zip(r, widths, align)
    ).rstrip()
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def met(ok):
    return "met" if ok else "not met"


def main():
    res = json.load(open(sys.argv[1]))
    rss = sys.argv[2] if len(sys.argv) > 2 else ""
    problems = []

    rows, ratios, overheads, df_ratios, over_df = [], [], [], [], []
    for q in res["queries"]:
        t, d, r = q["trib_ms"], q["duckdb_ms"], q["restricted_ms"]
        f = q.get("datafusion_ms")
        ratio = t / d if t is not None else None
        if f is not None:
            df_ratios.append(f / d)
            if t is not None:
                over_df.append(t / f)
        overhead = (r - t) / t * 100 if t is not None and r is not None else None
        same_rows = q["rows_trib"] == q["rows_duckdb"]
        note = ""
        if not same_rows:
            note = f"duckdb {q['rows_duckdb']:,}"
            problems.append(f"{q['query']}: trib (admin) returned {q['rows_trib']} rows, DuckDB {q['rows_duckdb']}")
        if same_rows and q.get("columns_differ"):
            note = f"values of column {q['columns_differ']} differ from duckdb"
            problems.append(f"{q['query']}: trib (admin) and DuckDB answers differ in column(s) {q['columns_differ']}")
        if q["rows_restricted"] is not None and q["rows_restricted"] != q["rows_trib"]:
            note = (note + "; " if note else "") + f"restricted {q['rows_restricted']:,}"
        for e in q["errors"]:
            problems.append(f"{q['query']}: {e}")
        if ratio is not None:
            ratios.append(ratio)
        # Overhead only where both roles get the same rows: a role whose masked column
        # empties the answer (q22 filters on c_phone) does different work.
        if overhead is not None and q["rows_restricted"] == q["rows_trib"]:
            overheads.append(overhead)
        rows.append(
            [
                q["query"],
                fmt(t),
                fmt(d),
                fmt(ratio, ".2f") + ("x" if ratio is not None else ""),
                fmt(f),
                fmt(r),
                fmt(overhead, "+.1f") + ("%" if overhead is not None else ""),
                fmt(q["rows_trib"], ",") if q["rows_trib"] is not None else "-",
                note,
            ]
        )
    for f in res["failed"]:
        rows.append([f["query"], "-", "-", "-", "-", "-", "-", "-", "failed"])
        problems.append(f"{f['query']}: " + "; ".join(f["errors"]))
    rows.sort(key=lambda r: int(r[0][1:]))

    table(
        ["query", "trib ms", "duckdb ms", "ratio", "datafusion ms", "restricted ms", "overhead", "rows", "rows differ"],
        rows,
        "<>>>>>>><",
    )
    print()
    med_ratio = statistics.median(ratios) if ratios else math.nan
    geo_ratio = math.exp(statistics.fmean(math.log(x) for x in ratios)) if ratios else math.nan
    med_over = statistics.median(overheads) if overheads else math.nan
    tot_t = sum(q["trib_ms"] or 0 for q in res["queries"])
    tot_d = sum(q["duckdb_ms"] for q in res["queries"])
    tot_r = sum(q["restricted_ms"] or 0 for q in res["queries"])
    agree = sum(1 for q in res["queries"] if q["rows_trib"] == q["rows_duckdb"] and q.get("columns_differ") == [])
    print(f"queries timed: {len(ratios)} of 22 (median of {res['runs']} runs after 1 warm-up each)")
    print(f"answers of trib (admin) and DuckDB agree in {agree} of 22: rows, sums of numeric columns (within 1e-6 relative or per row), other values")
    print(f"sum of medians: trib {tot_t:,.0f} ms, duckdb {tot_d:,.0f} ms, restricted {tot_r:,.0f} ms")
    print(f"median ratio trib/duckdb: {med_ratio:.2f}x (target <= {RATIO_TARGET}x: {met(med_ratio <= RATIO_TARGET)})")
    print(f"geometric mean ratio:     {geo_ratio:.2f}x")
    if df_ratios:
        print(
            f"engine reference, {res['datafusion']} over the same data files, in process:"
            f" median ratio datafusion/duckdb {statistics.median(df_ratios):.2f}x,"
            f" trib/datafusion {statistics.median(over_df):.2f}x"
        )
    elif res.get("datafusion_missing"):
        print(f"engine reference: not run ({res['datafusion_missing']})")
    df_failed = [q["query"] for q in res["queries"] if q.get("datafusion_error")]
    if df_failed:
        print(f"engine reference failed on {', '.join(df_failed)} (left out of its ratio)")
    print(
        f"median access overhead:   {med_over:+.1f}% over {len(overheads)} queries with the same rows for both roles"
        f" (target <= {OVERHEAD_TARGET:.0f}%: {met(med_over <= OVERHEAD_TARGET)})"
    )
    print()

    p = res["point"]
    prow = []
    for name, label in (
        ("trib_index", "trib GET .../rows?o_orderkey=K (index)"),
        ("trib_sql", "trib POST /v1/sql WHERE o_orderkey = K"),
        ("duckdb", "duckdb over Parquet, prepared"),
    ):
        s = p.get(name)
        if not s:
            continue
        prow.append([label, f"{s['n']:,}", fmt(s["p50_ms"], ".2f"), fmt(s["p99_ms"], ".2f"), fmt(s["max_ms"], ".2f"), f"{s['bad']}"])
        if s["bad"]:
            problems.append(f"point reads {name}: {s['bad']} answers without exactly one row, e.g. {s['bad_examples']}")
    table(["point reads of tpch.orders_latest", "reads", "p50 ms", "p99 ms", "max ms", "not 1 row"], prow, "<>>>>>")
    print()
    idx = p.get("trib_index")
    if idx:
        counted = p.get("index_reads_counted")
        if counted is not None:
            print(f"reads answered from the index (trib_point_read_seconds_count): {counted:,} of {idx['n'] + p['warmup']:,} including warm-up")
        print(f"index p99: {idx['p99_ms']:.2f} ms (target < {POINT_P99_TARGET:.0f} ms: {met(idx['p99_ms'] < POINT_P99_TARGET)})")
    if rss:
        print(f"trib serve peak RSS: {int(rss) / 1024:,.0f} MiB; driver process with DuckDB in it: {res['driver_rss_kib'] / 1024:,.0f} MiB")

    if problems:
        print()
        print("problems:")
        for pr in problems:
            print(f"  {pr}")
        sys.exit(1)


if __name__ == "__main__":
    main()
