#!/usr/bin/env python3
"""NDJSON sensor readings of `iot.sensor_readings`, byte for byte what
`crates/trib/src/generate.rs` (`readings`) writes for the same count, share of bad
records and seed: 50 devices on two sites, one reading every 10 seconds each.

    gen_readings.py N OUT [--bad-per-mille 0] [--seed 3]
"""

import argparse

MASK = (1 << 64) - 1
MUL = 6364136223846793005
INC = 1442695040888963407
# 2026-03-15T00:00:00Z, as in generate.rs.
BASE = 1_773_532_800


class Rng:
    """generate.rs's seeded LCG, so both generators give the same bytes."""

    def __init__(self, seed):
        self.state = (seed * MUL + INC) & MASK

    def next(self):
        self.state = (self.state * MUL + INC) & MASK
        return (self.state >> 33) ^ (self.state >> 17)

    def below(self, n):
        return self.next() % max(n, 1)

    def chance(self, per_mille):
        return self.below(1000) < per_mille


def readings(n, bad_per_mille, seed, out):
    rng = Rng(seed)
    devices = 50
    lines = []
    for i in range(n):
        device = i % devices
        at = BASE + (i // devices) * 10
        temp = 18.0 + device * 0.1 + rng.below(400) / 100.0
        hum = 30.0 + rng.below(4000) / 100.0
        site = "plant-north" if device < 25 else "plant-south"
        if rng.chance(bad_per_mille):
            kind = rng.below(3)
            if kind == 0:
                line = f'{{"device_id":"d-{device}","site":"{site}","reading_at":"soon","temperature_c":{temp:.2f}}}'
            elif kind == 1:
                line = f'{{"device_id":"d-{device}","site":"{site}","reading_at":{at},"temperature_c":"hot"}}'
            else:
                line = f'{{"site":"{site}","reading_at":{at}}}'
        else:
            battery = 3.0 + rng.below(100) / 100.0
            line = (
                f'{{"device_id":"d-{device}","site":"{site}","reading_at":{at},"temperature_c":{temp:.2f},'
                f'"humidity_pct":{hum:.2f},"battery_v":{battery:.2f}}}'
            )
        lines.append(line)
        if len(lines) == 100_000:
            out.write("\n".join(lines) + "\n")
            lines.clear()
    if lines:
        out.write("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("n", type=int)
    p.add_argument("out")
    p.add_argument("--bad-per-mille", type=int, default=0)
    p.add_argument("--seed", type=int, default=3)
    a = p.parse_args()
    with open(a.out, "w", encoding="utf-8", newline="\n") as f:
        readings(a.n, a.bad_per_mille, a.seed, f)


if __name__ == "__main__":
    main()
