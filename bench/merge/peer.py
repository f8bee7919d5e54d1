"""The peer of a merge model: what a user scripts with the deltalake package. Reads the
changes from the bronze Delta table, keeps the latest change per order, and merges them
into the silver table (latest `updated_at` wins). Prints a JSON line.

    python peer.py BRONZE_DIR SILVER_DIR
"""

import json
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

started = time.perf_counter()
bronze, silver = sys.argv[1], sys.argv[2]
changes = DeltaTable(bronze).to_pyarrow_table()
latest = changes.group_by("order_id").aggregate([("updated_at", "max")])
latest = latest.rename_columns(["order_id", "updated_at"])
source = changes.join(latest, ["order_id", "updated_at"], join_type="inner")
# Exact repeats of one change.
source = source.group_by(source.column_names).aggregate([])
(
    DeltaTable(silver)
    .merge(source, "t.order_id = s.order_id", source_alias="s", target_alias="t")
    .when_matched_update_all(predicate="s.updated_at >= t.updated_at")
    .when_not_matched_insert_all()
    .execute()
)
print(json.dumps({"seconds": round(time.perf_counter() - started, 3), "rows": source.num_rows, "read": changes.num_rows}))
