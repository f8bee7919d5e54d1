#!/usr/bin/env python3
"""Order events for the example project's `orders.orders_raw`, as a shop would send
them, cut into files in arrival order.

    gen_orders.py N OUTDIR [--files 5] [--days 30] [--seed 7]

Writes OUTDIR/orders_001.ndjson ... (N lines in all, the same count in each file but
the last) and OUTDIR/expected.json: what silver and gold must hold once every file has
been carried through, computed here from the events themselves.

The workload:
- each order goes through several statuses (placed, paid, shipped, delivered; or
  cancelled after placed or paid; a few stay placed), one event per status, each with
  the whole order (the fields of the contract, `amount` a JSON number with two
  decimals, timestamps ISO-8601 UTC);
- events arrive out of order: each one up to 2 minutes after its `updated_at`;
- about 2% arrive late, 10 to 45 minutes after their `updated_at`, behind the latest
  `updated_at` already sent but within the silver contract's allowed lateness (1h), so
  they still merge; such an event can arrive after the order's next status, and must
  then lose to it;
- about 5% are sent twice (byte for byte the same line, up to 10 minutes apart);
- a few events carry the country in lower case, which the silver model upper-cases;
- no two different events of one order share an `updated_at`, so "latest wins" has one
  answer whichever tool merges.
Seeded: the same arguments give the same bytes.
"""

import argparse
import json
import os
import random
import time

# 2026-03-15T00:00:00Z
BASE = 1_773_532_800
COUNTRIES = [
    ("DE", "EUR", 20), ("FR", "EUR", 14), ("NL", "EUR", 8), ("ES", "EUR", 8), ("IT", "EUR", 8),
    ("GB", "GBP", 12), ("US", "USD", 18), ("CA", "CAD", 4), ("SE", "SEK", 3), ("PL", "PLN", 3),
    ("JP", "JPY", 1), ("AU", "AUD", 1),
]
# Lifecycles and their shares: statuses in order, each event after the one before it.
LIFECYCLES = [
    (("placed", "paid", "shipped", "delivered"), 75),
    (("placed", "cancelled"), 10),
    (("placed", "paid", "cancelled"), 10),
    (("placed",), 5),
]
EVENTS_PER_ORDER = sum(len(s) * w for s, w in LIFECYCLES) / sum(w for _, w in LIFECYCLES)
DUPLICATE_SHARE = 0.05
LATE_SHARE = 0.02
LOWER_COUNTRY_SHARE = 0.01


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def step_after(status, prev, rng):
    """Seconds from the previous status to this one; at least a minute, so one order's
    events never share an `updated_at`."""
    if status == "paid":
        return rng.randint(60, 1800)
    if status == "shipped":
        return rng.randint(3600, 86400)
    if status == "delivered":
        return rng.randint(86400, 3 * 86400)
    # cancelled: soon after placing, or within half a day of paying
    return rng.randint(300, 7200) if prev == "placed" else rng.randint(600, 43200)


def generate(n, days, seed):
    rng = random.Random(seed)
    countries = [c for c, _, w in COUNTRIES for _ in range(w)]
    currency = {c: cur for c, cur, _ in COUNTRIES}
    lifecycles = [s for s, w in LIFECYCLES for _ in range(w)]
    # Orders spread evenly over `days`, whatever N: the days (gold's windows) stay the same.
    orders_est = max(1, int(n / (EVENTS_PER_ORDER * (1 + DUPLICATE_SHARE))))
    gap = days * 86400 / orders_est
    customers = max(1, orders_est // 4)

    events = []  # (arrival, seq, order index, updated_at, line)
    orders = []  # (amount cents, final status per updated_at is decided from events)
    seq = 0
    late = dup = 0
    o = 0
    while len(events) < n:
        ordered_at = BASE + int(o * gap) + rng.randint(0, max(0, int(gap) - 1))
        order_id = f"o-{o + 1:08d}"
        cust = rng.randrange(customers)
        country = rng.choice(countries)
        cents = rng.randint(500, 50000)
        amount = f"{cents // 100}.{cents % 100:02d}"
        orders.append(cents)
        t = ordered_at
        prev = None
        for status in rng.choice(lifecycles):
            if prev is not None:
                t += step_after(status, prev, rng)
            prev = status
            c = country.lower() if rng.random() < LOWER_COUNTRY_SHARE else country
            line = (
                f'{{"order_id":"{order_id}","customer_id":"c-{cust:07d}","customer_email":"c{cust}@example.com",'
                f'"country":"{c}","status":"{status}","amount":{amount},"currency":"{currency[country]}",'
                f'"ordered_at":"{iso(ordered_at)}","updated_at":"{iso(t)}"}}'
            )
            if rng.random() < LATE_SHARE:
                # At most 45 minutes, so that with a duplicate's 10 more minutes an
                # event is never more than 55 minutes behind: within the 1h lateness.
                arrival = t + rng.randint(600, 2700)
                late += 1
            else:
                arrival = t + rng.random() * 120
            events.append((arrival, seq, o, t, line))
            seq += 1
            if rng.random() < DUPLICATE_SHARE:
                events.append((arrival + rng.randint(1, 600), seq, o, t, line))
                seq += 1
                dup += 1
        o += 1
    events.sort()
    # Orders were made until N events were due: the few beyond N are cut off the end.
    del events[n:]
    return events, orders, {"late_sent": late, "duplicates_sent": dup}


def expected(events, orders):
    """Silver and gold as they must be: the latest event of each order (exact duplicates
    are the same line), revenue of the orders not cancelled."""
    latest = {}
    for _, _, o, t, line in events:
        if o not in latest or t > latest[o][0]:
            latest[o] = (t, line)
    revenue_cents = 0
    by_status = {}
    for o, (_, line) in latest.items():
        status = json.loads(line)["status"]
        by_status[status] = by_status.get(status, 0) + 1
        if status != "cancelled":
            revenue_cents += orders[o]
    return {
        "silver_rows": len(latest),
        "gold_revenue": f"{revenue_cents // 100}.{revenue_cents % 100:02d}",
        "gold_orders": sum(v for k, v in by_status.items() if k != "cancelled"),
        "final_status": dict(sorted(by_status.items())),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("n", type=int)
    p.add_argument("outdir")
    p.add_argument("--files", type=int, default=5)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    events, orders, counts = generate(a.n, a.days, a.seed)

    # How far behind the latest `updated_at` already sent each event arrives.
    max_seen = None
    behind = 0
    late_seen = 0
    worst = 0
    for _, _, _, t, _ in events:
        if max_seen is not None and t < max_seen:
            behind += 1
            if max_seen - t >= 600:
                late_seen += 1
            worst = max(worst, max_seen - t)
        max_seen = t if max_seen is None else max(max_seen, t)

    os.makedirs(a.outdir, exist_ok=True)
    per_file = -(-len(events) // a.files)
    names = []
    for k in range(a.files):
        chunk = events[k * per_file : (k + 1) * per_file]
        name = os.path.join(a.outdir, f"orders_{k + 1:03d}.ndjson")
        with open(name, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(e[4] for e in chunk))
            if chunk:
                f.write("\n")
        names.append(name)
    exp = expected(events, orders)
    exp.update(
        events=len(events),
        files=names,
        out_of_order=behind,
        late_10min_or_more=late_seen,
        max_behind_seconds=worst,
        **counts,
    )
    with open(os.path.join(a.outdir, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)


if __name__ == "__main__":
    main()
