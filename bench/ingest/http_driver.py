#!/usr/bin/env python3
"""Sends an NDJSON file to `trib serve` from concurrent producers, as a fleet of
gateways would: bodies of a fixed number of lines, each with its own Idempotency-Key, a
kept-alive connection per producer, and a retry with the same key on 429/503. Standard
library only.

    http_driver.py URL PRODUCT FILE [--producers 8] [--lines 5000]

Prints one JSON object on stdout: received, accepted, dead_lettered, requests, retries,
seconds (first send to last ack), events_per_s, and ack latency p50/p99/max in ms.
"""

import argparse
import http.client
import json
import queue
import sys
import threading
import time
import urllib.parse
import uuid

import os

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from stats import percentile  # noqa: E402  (bench/stats.py, shared with the other driver)


def bodies(path, lines_per_body):
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [b"\n".join(lines[i : i + lines_per_body]) + b"\n" for i in range(0, len(lines), lines_per_body)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="base URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("product")
    ap.add_argument("file")
    ap.add_argument("--producers", type=int, default=8)
    ap.add_argument("--lines", type=int, default=5000, help="NDJSON lines per request body")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--rate", type=float, default=0.0,
                    help="events per second to offer (open loop: body i is due at i*lines/rate); 0 sends as fast as acks come")
    a = ap.parse_args()

    url = urllib.parse.urlsplit(a.url)
    path = f"/v1/products/{a.product}/events"
    work = queue.Queue()
    run = uuid.uuid4().hex[:12]
    for i, body in enumerate(bodies(a.file, a.lines)):
        work.put((i, f"bench-{run}-{i}", body))
    lock = threading.Lock()
    totals = {"received": 0, "accepted": 0, "dead_lettered": 0, "requests": 0, "retries": 0, "duplicates": 0}
    latencies = []
    errors = []

    def producer():
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=a.timeout)
        mine = []
        while True:
            try:
                i, key, body = work.get_nowait()
            except queue.Empty:
                break
            if a.rate > 0:
                # Paced: wait for the body's slot, so the offered load is steady.
                due = started + i * a.lines / a.rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": key}
            attempt = 0
            while True:
                sent = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    # A dropped connection: reconnect and resend under the same key.
                    conn.close()
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=a.timeout)
                    attempt += 1
                    if attempt > 5:
                        errors.append(f"{key}: {e}")
                        break
                    continue
                acked = time.perf_counter()
                if resp.status in (429, 503) and attempt < 50:
                    attempt += 1
                    with lock:
                        totals["retries"] += 1
                    time.sleep(float(resp.getheader("Retry-After", "0.05") or 0.05))
                    continue
                if resp.status != 200:
                    errors.append(f"{key}: HTTP {resp.status}: {data[:300]!r}")
                    break
                ack = json.loads(data)
                mine.append((acked - sent) * 1000.0)
                with lock:
                    totals["requests"] += 1
                    totals["received"] += ack.get("received", 0)
                    totals["accepted"] += ack.get("accepted", 0)
                    totals["dead_lettered"] += ack.get("dead_lettered", 0)
                    totals["duplicates"] += 1 if ack.get("duplicate") else 0
                break
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=producer) for _ in range(a.producers)]
    started = time.perf_counter()  # read by the producers when pacing
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    out = dict(
        totals,
        seconds=seconds,
        events_per_s=totals["received"] / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else float("nan"),
        producers=a.producers,
        offered_rate=a.rate,
        lines_per_request=a.lines,
        errors=errors[:10],
    )
    print(json.dumps(out))
    if errors:
        print(f"{len(errors)} requests failed; first: {errors[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
