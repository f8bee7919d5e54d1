"""Times the TPC-H queries on `trib serve` and on DuckDB, and point reads by key.

    driver.py URL QUERIES_DIR DATA_DIR OUT_JSON

Environment: ADMIN_TOKEN and RESTRICTED_TOKEN (bearer tokens of `admin` and
`tpch-restricted`), RUNS (5 timed runs per query and side, after one warm-up),
POINT_READS (2000), POINT_WARMUP (20), SEED (42).

1. checks: each query once on trib (admin) and once on DuckDB; a query that fails on
   either side is reported with its error and left out of the timing;
2. queries: for each query in turn, 1 warm-up + RUNS timed runs of each side, the
   sides taking turns run by run: `POST /v1/sql` as admin (Arrow IPC stream), the same
   as `tpch-restricted`, and one DuckDB connection (views in schema `tpch` over the
   same Parquet files, the full result fetched as an Arrow table); the median of each;
3. point reads: POINT_READS lookups of random existing o_orderkey values, one after the
   other, after POINT_WARMUP lookups that are not timed (the first builds the index):
   `GET /v1/products/tpch.orders_latest/v1/rows?o_orderkey=K` (the in-memory index),
   the same as SQL through `POST /v1/sql`, and DuckDB over the Parquet file with a
   prepared statement. Every answer must hold exactly one row.

4. the engine reference: the same queries on DataFusion's Python bindings (the same
   major version as trib's DataFusion, fully optimised) over the data files of trib's
   Delta tables, in this process, when LAKE names the lake's `tpch` folder and each
   table's folder holds exactly the files of its current version. It shows what the
   engine itself does on these files, apart from trib's query path.

Writes everything to OUT_JSON; report.py prints it. HTTP goes over one kept-alive
connection per side (standard library), so each request costs no TCP handshake.
"""

import decimal
import http.client
import json
import math
import os
import pathlib
import random
import re
import resource
import statistics
import sys
import time
import urllib.parse

import duckdb
import pyarrow as pa

try:
    import datafusion
except ImportError:  # the reference is optional
    datafusion = None

TABLES = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]
ARROW = "application/vnd.apache.arrow.stream"


class Trib:
    """One kept-alive HTTP connection to `trib serve` with one bearer token."""

    def __init__(self, url, token):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.token = token
        self.conn = None

    def _request(self, method, path, body=None, accept="application/json"):
        headers = {"Accept": accept, "Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "text/plain"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, ConnectionError):
                # A connection the server closed while idle: once more on a new one.
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def sql(self, text, accept=ARROW):
        """(seconds from sending to the last byte of the answer, status, body)."""
        t0 = time.perf_counter()
        status, body = self._request("POST", "/v1/sql", text.encode(), accept)
        return time.perf_counter() - t0, status, body

    def get(self, path, accept="application/json"):
        t0 = time.perf_counter()
        status, body = self._request("GET", path, None, accept)
        return time.perf_counter() - t0, status, body


def signature(table):
    """Per column: the sum of a numeric column, else its values sorted as text."""
    out = []
    for col in table.columns:
        values = col.to_pylist()
        present = [v for v in values if v is not None]
        if all(isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool) for v in present):
            out.append(("sum", math.fsum(float(v) for v in present), len(values) - len(present), len(values)))
        else:
            out.append(("values", sorted(str(v) for v in values)))
    return out


def differing_columns(a, b):
    """Positions (1-based) of the columns whose signatures differ. Sums agree within
    1e-6 relative, or 1e-6 per row: DataFusion's avg of a decimal(15,2) is a
    decimal(19,6), rounded to 6 places, where DuckDB's is a double."""
    if len(a) != len(b):
        return [f"{len(a)} against {len(b)} columns"]
    bad = []
    for i, (x, y) in enumerate(zip(a, b)):
        if x[0] != y[0]:
            bad.append(i + 1)
        elif x[0] == "sum":
            if x[2] != y[2] or not math.isclose(x[1], y[1], rel_tol=1e-6, abs_tol=1e-6 * max(1, x[3])):
                bad.append(i + 1)
        elif x[1] != y[1]:
            bad.append(i + 1)
    return bad


def error_text(status, body):
    return f"HTTP {status}: {body.decode(errors='replace').strip()[:400]}"


def point_count(metrics_text):
    m = re.search(r"^trib_point_read_seconds_count(?:\{[^}]*\})? ([0-9.e+]+)$", metrics_text, re.M)
    # The histogram appears with the first point read.
    return int(float(m.group(1))) if m else 0


def delta_files(table_dir):
    """The data files of a Delta table's current version, by replaying its JSON commits;
    None when a checkpoint would be needed to know them."""
    log = table_dir / "_delta_log"
    if not log.is_dir() or any(log.glob("*.checkpoint*.parquet")):
        return None
    live = set()
    for commit in sorted(log.glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                live.add(urllib.parse.unquote(action["add"]["path"]))
            elif "remove" in action:
                live.discard(urllib.parse.unquote(action["remove"]["path"]))
    return sorted(live)


def datafusion_reference(lake, scratch):
    """A DataFusion session with schema `tpch` over the tables' current data files
    (symlinked into one folder per table), or (None, reason)."""
    if datafusion is None:
        return None, "the datafusion package is not installed"
    # As many parts as trib splits a query into by default (`access.query_partitions`).
    parts = int(os.environ.get("DF_PARTITIONS") or os.cpu_count() or 1)
    cfg = datafusion.SessionConfig().with_target_partitions(parts)
    ctx = datafusion.SessionContext(cfg)
    ctx.sql("CREATE SCHEMA tpch").collect()
    for t in TABLES:
        files = delta_files(lake / t / "v1")
        if files is None:
            return None, f"tpch.{t} has a checkpoint; its files are not read here"
        folder = scratch / t
        folder.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(files):
            (folder / f"{i:05}.parquet").symlink_to(lake / t / "v1" / f)
        ctx.sql(f"CREATE EXTERNAL TABLE tpch.{t} STORED AS PARQUET LOCATION '{folder}/'").collect()
    return ctx, f"datafusion {datafusion.__version__} (Python bindings), {parts} partitions"


def main():
    url, qdir, data, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[4]
    runs = int(os.environ.get("RUNS", "5"))
    n_points = int(os.environ.get("POINT_READS", "2000"))
    warm_points = int(os.environ.get("POINT_WARMUP", "20"))
    rng = random.Random(int(os.environ.get("SEED", "42")))
    admin = Trib(url, os.environ["ADMIN_TOKEN"])
    restricted = Trib(url, os.environ["RESTRICTED_TOKEN"])

    con = duckdb.connect()
    con.execute("CREATE SCHEMA tpch")
    for t in TABLES:
        path = str(data / f"{t}.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW tpch.{t} AS SELECT * FROM read_parquet('{path}')")
    threads = con.sql("SELECT current_setting('threads')").fetchall()[0][0]
    df_ctx, df_note = (None, "LAKE is not set")
    if os.environ.get("LAKE"):
        df_ctx, df_note = datafusion_reference(pathlib.Path(os.environ["LAKE"]), pathlib.Path(out).parent / "datafusion")

    queries = {n: (qdir / f"q{n}.sql").read_text() for n in range(1, 23)}
    result = {"duckdb_threads": threads, "datafusion": df_note if df_ctx else None, "datafusion_missing": None if df_ctx else df_note, "runs": runs, "queries": [], "failed": [], "point": {"warmup": warm_points}}

    # --- 1. checks: every query parses and runs on both sides --------------------------
    ok = []
    for n, sql in queries.items():
        problems = []
        _, status, body = admin.sql(sql)
        if status != 200:
            problems.append(f"trib: {error_text(status, body)}")
        try:
            con.sql(sql).to_arrow_table()
        except duckdb.Error as e:
            problems.append(f"duckdb: {e}")
        if problems:
            result["failed"].append({"query": f"q{n}", "errors": problems})
            print(f"q{n}: left out: {'; '.join(problems)}", file=sys.stderr)
        else:
            ok.append(n)

    # --- 2. queries ---------------------------------------------------------------------
    def once_trib(client, sql):
        """(ms, Arrow IPC body, None) or (None, None, error text)."""
        seconds, status, body = client.sql(sql)
        if status != 200:
            return None, None, error_text(status, body)
        return seconds * 1000, body, None

    def once_duckdb(sql):
        t0 = time.perf_counter()
        table = con.sql(sql).to_arrow_table()
        return (time.perf_counter() - t0) * 1000, table

    def once_datafusion(sql):
        """(ms, None) or (None, error text)."""
        t0 = time.perf_counter()
        try:
            df_ctx.sql(sql).collect()
        except Exception as e:  # the reference's failure leaves only its column empty
            return None, str(e)[:300]
        return (time.perf_counter() - t0) * 1000, None

    for n in ok:
        sql = queries[n]
        t_df, err_df = [], None if df_ctx else "no reference"
        # One warm-up each, then the sides take turns run by run, so that the machine's
        # drift over a query's runs falls on all of them alike.
        t_admin, t_restr, t_duck = [], [], []
        body_admin = body_restr = table_duck = None
        err_a = err_r = None
        for i in range(1 + runs):
            if err_a is None:
                ms, body_admin, err_a = once_trib(admin, sql)
                if ms is not None and i:
                    t_admin.append(ms)
            if err_r is None:
                ms, body_restr, err_r = once_trib(restricted, sql)
                if ms is not None and i:
                    t_restr.append(ms)
            ms, table_duck = once_duckdb(sql)
            if i:
                t_duck.append(ms)
            if err_df is None:
                ms, err_df = once_datafusion(sql)
                if ms is not None and i:
                    t_df.append(ms)
        t_admin = None if err_a else t_admin
        t_restr = None if err_r else t_restr
        table_admin = None if err_a else pa.ipc.open_stream(body_admin).read_all()
        table_restr = None if err_r else pa.ipc.open_stream(body_restr).read_all()
        rows_admin = None if table_admin is None else table_admin.num_rows
        rows_restr = None if table_restr is None else table_restr.num_rows
        rows_duck = table_duck.num_rows
        # The answers themselves, trib (admin) against DuckDB: same sums of the numeric
        # columns, same values of the others (in any order).
        differ = None if table_admin is None else differing_columns(signature(table_admin), signature(table_duck))
        q = {
            "query": f"q{n}",
            "trib_ms": None if t_admin is None else statistics.median(t_admin),
            "restricted_ms": None if t_restr is None else statistics.median(t_restr),
            "duckdb_ms": statistics.median(t_duck),
            "datafusion_ms": statistics.median(t_df) if t_df and err_df is None else None,
            "datafusion_error": None if df_ctx is None else err_df,
            "runs_ms": {"trib": t_admin, "restricted": t_restr, "duckdb": t_duck, "datafusion": t_df},
            "rows_trib": rows_admin,
            "rows_restricted": rows_restr,
            "rows_duckdb": rows_duck,
            "columns_differ": differ,
            "errors": [e for e in (err_a and f"trib admin: {err_a}", err_r and f"trib restricted: {err_r}") if e],
        }
        result["queries"].append(q)
        print(
            f"q{n}: trib {q['trib_ms'] or float('nan'):.1f} ms, restricted {q['restricted_ms'] or float('nan'):.1f} ms, "
            f"duckdb {q['duckdb_ms']:.1f} ms, rows {rows_admin}/{rows_restr}/{rows_duck}",
            file=sys.stderr,
        )

    # --- 3. point reads -----------------------------------------------------------------
    keys = [r[0] for r in con.sql("SELECT o_orderkey FROM tpch.orders").fetchall()]
    sample = [rng.choice(keys) for _ in range(warm_points + n_points)]

    def point_metric():
        _, status, body = admin.get("/metrics", accept="text/plain")
        return point_count(body.decode()) if status == 200 else None

    def run_points(name, one):
        times, bad = [], []
        for i, k in enumerate(sample):
            seconds, rows, err = one(k)
            if err or rows != 1:
                bad.append(f"o_orderkey={k}: {err or f'{rows} rows'}")
            if i >= warm_points:
                times.append(seconds * 1000)
        times.sort()
        result["point"][name] = {
            "n": len(times),
            "p50_ms": times[len(times) // 2],
            "p99_ms": times[min(len(times) - 1, round(0.99 * (len(times) - 1)))],
            "max_ms": times[-1],
            "mean_ms": statistics.fmean(times),
            "bad": len(bad),
            "bad_examples": bad[:3],
        }
        print(f"point {name}: {result['point'][name]}", file=sys.stderr)

    def by_index(k):
        seconds, status, body = admin.get(f"/v1/products/tpch.orders_latest/v1/rows?o_orderkey={k}")
        if status != 200:
            return seconds, None, error_text(status, body)
        return seconds, len(json.loads(body)["rows"]), None

    def by_sql(k):
        seconds, status, body = admin.sql(
            f"SELECT * FROM tpch.orders_latest WHERE o_orderkey = {k}", accept="application/json"
        )
        if status != 200:
            return seconds, None, error_text(status, body)
        return seconds, len(json.loads(body)["rows"]), None

    lookup = con.cursor()

    def by_duckdb(k):
        t0 = time.perf_counter()
        rows = lookup.execute("SELECT * FROM tpch.orders WHERE o_orderkey = ?", [k]).fetchall()
        return time.perf_counter() - t0, len(rows), None

    before = point_metric()
    run_points("trib_index", by_index)
    after = point_metric()
    result["point"]["index_reads_counted"] = None if before is None or after is None else after - before
    run_points("trib_sql", by_sql)
    run_points("duckdb", by_duckdb)

    result["driver_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pathlib.Path(out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
