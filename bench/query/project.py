"""Turns a project made by `trib init` into the TPC-H project of the query benchmark.

    project.py PROJECT_DIR DATA_DIR

Removes the example products, models and policies; writes one bronze contract per
TPC-H table (products/tpch/<table>.yaml) with the column types read from the Parquet
file that tpchgen-cli wrote, a silver merge model `tpch.orders_latest` (one row per
o_orderkey, for point reads), and two roles in trib.toml:

- `tpch-analysts`: clearance confidential, PII in clear, every row;
- `tpch-restricted`: clearance confidential, PII masked, and row filters on lineitem
  and orders that keep every row but must be evaluated on every read.
"""

import pathlib
import shutil
import sys

import pyarrow as pa
import pyarrow.parquet as pq

TABLES = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]
# PII columns (confidential): what a role without PII clearance sees as NULL.
PII = {"c_phone", "c_address", "s_phone", "s_address"}
# Filters of `tpch-restricted` that hold for every row of the data.
ROW_FILTERS = {"lineitem": "l_quantity >= 0", "orders": "o_totalprice >= 0"}
OWNER = "tpch-data-team"

ROLES = """
[[roles]]
name = "tpch-analysts"
description = "TPC-H analysts: confidential columns, PII in clear, every row"
pii = true
clearance = "confidential"

[[roles]]
name = "tpch-restricted"
description = "TPC-H analysts with PII masked and row filters on lineitem and orders"
pii = false
clearance = "confidential"
"""


def contract_type(t):
    """The contract's type for an Arrow type of the Parquet file."""
    if pa.types.is_int64(t):
        return "int64"
    if pa.types.is_int32(t):
        return "int32"
    if pa.types.is_decimal(t):
        return f'"decimal({t.precision},{t.scale})"'
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_float64(t):
        return "double"
    raise ValueError(f"no contract type for Arrow type {t}")


def columns(schema):
    out = []
    for f in schema:
        parts = [f"name: {f.name}", f"type: {contract_type(f.type)}"]
        if not f.nullable:
            parts.append("required: true")
        if f.name in PII:
            parts += ["pii: true", "classification: confidential"]
        out.append("  - { " + ", ".join(parts) + " }")
    return "\n".join(out)


def access(table):
    restricted = "{ role: tpch-restricted, level: read }"
    if table in ROW_FILTERS:
        restricted = f'{{ role: tpch-restricted, level: read, row_filter: "{ROW_FILTERS[table]}" }}'
    return f"access:\n  - {{ role: tpch-analysts, level: read }}\n  - {restricted}"


def bronze(table, schema):
    return f"""product: tpch.{table}
version: 1.0.0
owner: {OWNER}
description: TPC-H {table} as tpchgen-cli writes it.
status: active
layer: bronze
source: {{ kind: file, format: parquet }}
schema:
{columns(schema)}
{access(table)}
"""


def orders_latest(schema):
    return f"""product: tpch.orders_latest
version: 1.0.0
owner: {OWNER}
description: TPC-H orders, one row per o_orderkey (merged), for reads by key.
status: active
layer: silver
source:
  inputs: [tpch.orders]
  transform: models/orders_latest.sql
  materialized: merge
key: [o_orderkey]
schema:
{columns(schema)}
{access("orders")}
quality:
  - unique: o_orderkey
"""


def main():
    project, data = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    for sub in ("products", "models"):
        shutil.rmtree(project / sub)
        (project / sub).mkdir()
    for rego in (project / "policies").glob("*.rego"):
        rego.unlink()
    (project / "products" / "tpch").mkdir()
    schemas = {t: pq.read_schema(data / f"{t}.parquet") for t in TABLES}
    for table, schema in schemas.items():
        (project / "products" / "tpch" / f"{table}.yaml").write_text(bronze(table, schema))
    (project / "products" / "tpch" / "orders_latest.yaml").write_text(orders_latest(schema=schemas["orders"]))
    (project / "models" / "orders_latest.sql").write_text("SELECT * FROM tpch.orders\n")
    with open(project / "trib.toml", "a") as f:
        f.write(ROLES)


if __name__ == "__main__":
    main()
