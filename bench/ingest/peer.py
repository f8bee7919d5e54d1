#!/usr/bin/env python3
"""What a user would script instead of `trib ingest`: pyarrow's JSON reader and the
`deltalake` package's `write_deltalake`, into a table laid out like trib's bronze table of
`iot.sensor_readings` (same types, `reading_at` as UTC microseconds, partitioned by the
derived `reading_at_day`).

    peer.py FILE TABLE_DIR    prints {"rows": ..., "seconds": ...} on stdout
"""

import json
import sys
import time

started = time.perf_counter()

import pyarrow as pa  # noqa: E402  (imports are part of what the peer pays)
import pyarrow.compute as pc  # noqa: E402
import pyarrow.json as pj  # noqa: E402
from deltalake import write_deltalake  # noqa: E402

# The contract's schema; `reading_at` arrives as epoch seconds, as generate.rs sends it.
SCHEMA = pa.schema(
    [
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("site", pa.string(), nullable=False),
        pa.field("reading_at", pa.int64(), nullable=False),
        pa.field("temperature_c", pa.float64()),
        pa.field("humidity_pct", pa.float64()),
        pa.field("battery_v", pa.float32()),
    ]
)


def main():
    path, table_dir = sys.argv[1], sys.argv[2]
    table = pj.read_json(
        path,
        read_options=pj.ReadOptions(block_size=16 << 20),
        parse_options=pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore"),
    )
    micros = pc.multiply(table["reading_at"], pa.scalar(1_000_000, pa.int64()))
    reading_at = micros.cast(pa.timestamp("us", tz="UTC"))
    table = table.set_column(
        table.schema.get_field_index("reading_at"), pa.field("reading_at", reading_at.type, nullable=False), reading_at
    )
    table = table.append_column("reading_at_day", reading_at.cast(pa.date32()))
    write_deltalake(table_dir, table, partition_by=["reading_at_day"], mode="append")
    print(json.dumps({"rows": table.num_rows, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
