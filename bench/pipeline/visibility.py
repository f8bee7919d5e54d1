#!/usr/bin/env python3
"""Time from an acknowledged HTTP event to its visibility in silver, for `trib serve`
(which runs the models continuously).

    visibility.py URL SILVER_TABLE_DIR [--seconds 20] [--rps 10] [--orders-per-request 10]

Senders POST NDJSON bodies of new orders (status `placed`, stamped with the current
time) to URL/v1/products/orders.orders_raw/events at a steady pace (open loop: request i
is due at i/rps seconds, sent by whichever of --senders connections takes it) and note,
per order_id, when its request was acknowledged.
A poller looks at the silver Delta table every 50 ms: when the table has a new version
it reads the `order_id` column of the data files it has not read yet (a version adds
files; this reads only those), and notes, per order_id, the time at which that version
had been loaded. After the sender stops, the poller waits up to --drain seconds for the
rest.

Prints one JSON object: orders acked, seen in silver, missing, visible - acked in ms
(p50, p99, max), and the requests' send → ack in ms (p50, p99). Exits 1 when a request failed or an acked order
never showed up. Needs `deltalake` and `pyarrow`; the HTTP side is the standard library.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

import pyarrow.parquet as pq
from deltalake import DeltaTable

import os

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from stats import percentile  # noqa: E402  (bench/stats.py, shared with the other driver)

PRODUCT = "orders.orders_raw"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("table")
    ap.add_argument("--seconds", type=float, default=20.0, help="how long to send")
    ap.add_argument("--rps", type=float, default=10.0, help="requests per second")
    ap.add_argument("--orders-per-request", type=int, default=10)
    ap.add_argument("--senders", type=int, default=4, help="concurrent connections sharing the request slots")
    ap.add_argument("--poll-ms", type=float, default=50.0)
    ap.add_argument("--drain", type=float, default=30.0, help="seconds to wait for the last orders after sending")
    a = ap.parse_args()

    url = urllib.parse.urlsplit(a.url)
    path = f"/v1/products/{PRODUCT}/events"
    run = uuid.uuid4().hex[:8]
    acked = {}  # order_id -> perf_counter at ack
    seen = {}  # order_id -> perf_counter when the version holding it was loaded
    ack_ms = []  # send → ack of each request
    errors = []
    lock = threading.Lock()
    sending = threading.Event()
    sending.set()

    def order_lines(i, now):
        ids = [f"vis-{run}-{i:05d}-{j:03d}" for j in range(a.orders_per_request)]
        body = "".join(
            json.dumps(
                {
                    "order_id": oid,
                    "customer_id": f"c-{j:07d}",
                    "customer_email": f"c{j}@example.com",
                    "country": "DE",
                    "status": "placed",
                    "amount": "19.90",
                    "currency": "EUR",
                    "ordered_at": now,
                    "updated_at": now,
                },
                separators=(",", ":"),
            )
            + "\n"
            for j, oid in enumerate(ids)
        ).encode()
        return ids, body

    slots = iter(range(10**9))

    def sender():
        # Open loop: request i is due at i/rps whatever the acks of the others, so a
        # few senders share the slots; one alone would fall behind as soon as an ack
        # takes longer than 1/rps.
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        while True:
            with lock:
                i = next(slots)
            due = started + i / a.rps
            if due - started >= a.seconds:
                break
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            ids, body = order_lines(i, now)
            headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": f"vis-{run}-{i}"}
            sent = time.perf_counter()
            for attempt in range(20):
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                    if attempt == 19:
                        with lock:
                            errors.append(f"request {i}: {e}")
                    continue
                t = time.perf_counter()
                if resp.status in (429, 503):
                    time.sleep(0.05)
                    continue
                if resp.status != 200:
                    with lock:
                        errors.append(f"request {i}: HTTP {resp.status}: {data[:300]!r}")
                    break
                ack = json.loads(data)
                with lock:
                    if ack.get("accepted") != len(ids):
                        errors.append(f"request {i}: {ack}")
                    ack_ms.append((t - sent) * 1000.0)
                    for oid in ids:
                        acked[oid] = t
                break
        conn.close()

    def poller():
        read_files = set()
        version = None
        dt = None
        drain_until = None
        while True:
            if not sending.is_set():
                if drain_until is None:
                    drain_until = time.perf_counter() + a.drain
                with lock:
                    done = all(oid in seen for oid in acked)
                if done or time.perf_counter() > drain_until:
                    return
            tick = time.perf_counter()
            try:
                if dt is None:
                    if DeltaTable.is_deltatable(a.table):
                        dt = DeltaTable(a.table)
                else:
                    dt.update_incremental()
            except Exception as e:  # the table is being created or committed to
                print(f"poll: {e}", file=sys.stderr)
                dt = None
            if dt is not None and dt.version() != version:
                # The version is loaded: whatever it holds is visible from now on.
                loaded = time.perf_counter()
                version = dt.version()
                for uri in dt.file_uris():
                    if uri in read_files:
                        continue
                    read_files.add(uri)
                    file = uri[len("file://") :] if uri.startswith("file://") else uri
                    ids = pq.read_table(file, columns=["order_id"]).column("order_id").to_pylist()
                    with lock:
                        for oid in ids:
                            if oid not in seen:
                                seen[oid] = loaded
            pause = a.poll_ms / 1000 - (time.perf_counter() - tick)
            if pause > 0:
                time.sleep(pause)

    senders = [threading.Thread(target=sender) for _ in range(a.senders)]
    watcher = threading.Thread(target=poller)
    started = time.perf_counter()  # read by the senders
    watcher.start()
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    sending.clear()
    watcher.join()
    seconds = time.perf_counter() - started
    ack_ms.sort()

    lags = sorted((seen[oid] - t) * 1000.0 for oid, t in acked.items() if oid in seen)
    missing = [oid for oid in acked if oid not in seen]
    # An order seen before its ack: the commit became visible while the response was on
    # its way; counted as it is (a small negative lag), not hidden.
    out = {
        "orders_acked": len(acked),
        "orders_visible": len(lags),
        "missing": len(missing),
        "seconds": seconds,
        "send_seconds": a.seconds,
        "rps": a.rps,
        "orders_per_request": a.orders_per_request,
        "p50_ms": percentile(lags, 50),
        "p99_ms": percentile(lags, 99),
        "max_ms": lags[-1] if lags else float("nan"),
        "requests": len(ack_ms),
        "ack_p50_ms": percentile(ack_ms, 50),
        "ack_p99_ms": percentile(ack_ms, 99),
        "errors": errors[:10],
    }
    print(json.dumps(out))
    if errors or missing or not acked:
        print(f"{len(errors)} failed requests, {len(missing)} acked orders not visible in silver", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
