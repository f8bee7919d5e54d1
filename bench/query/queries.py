"""The 22 TPC-H queries, made to run unchanged on trib and on DuckDB.

    queries.py SRC_DIR OUT_DIR

Reads SRC_DIR/q1.sql … q22.sql (DataFusion's dialect) and writes OUT_DIR/q1.sql …
q22.sql, each one SELECT in which every TPC-H table is qualified with the schema
`tpch` (on trib the product `tpch.lineitem`, on DuckDB a view in schema `tpch`).
Only table references named like one of the eight tables and not already qualified
change; aliases, CTE names and everything else stay. q15's `CREATE VIEW revenue0 …;
SELECT …; DROP VIEW revenue0;` becomes `WITH revenue0 (…) AS (…) SELECT …`: neither
side may (trib) or should (a benchmark) create objects.
"""

import pathlib
import sys

import sqlglot
from sqlglot import exp

TABLES = {"customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"}
SCHEMA = "tpch"
# DataFusion's SQL is close to PostgreSQL's; both engines read sqlglot's PostgreSQL
# output (CAST(… AS DATE), INTERVAL '3 MONTH', SUBSTRING(x FROM 1 FOR 2)).
DIALECT = "postgres"


def qualify(tree):
    for table in tree.find_all(exp.Table):
        if table.name.lower() in TABLES and not table.args.get("db"):
            table.set("db", exp.to_identifier(SCHEMA))
    return tree


def to_one_select(statements):
    """One SELECT from the statements of a file; a CREATE VIEW before it becomes a CTE."""
    views = []
    selects = []
    for s in statements:
        if s is None:
            continue
        if isinstance(s, exp.Create) and s.kind == "VIEW":
            target = s.this
            if isinstance(target, exp.Schema):
                name = target.this.name
                columns = [c.name for c in target.expressions]
            else:
                name, columns = target.name, []
            views.append((name, columns, s.expression))
        elif isinstance(s, exp.Drop):
            continue
        else:
            selects.append(s)
    if len(selects) != 1:
        raise ValueError(f"expected one query, found {len(selects)}")
    query = selects[0]
    for name, columns, body in views:
        alias = exp.TableAlias(this=exp.to_identifier(name), columns=[exp.to_identifier(c) for c in columns])
        cte = exp.CTE(this=body, alias=alias)
        key = "with_" if "with_" in query.arg_types else "with"
        if query.args.get(key) is None:
            query.set(key, exp.With(expressions=[cte]))
        else:
            query.args[key].append("expressions", cte)
    return query


def rewrite(text):
    statements = sqlglot.parse(text, read=DIALECT)
    query = qualify(to_one_select(statements))
    return query.sql(dialect=DIALECT, comments=False)


def main():
    src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for n in range(1, 23):
        sql = rewrite((src / f"q{n}.sql").read_text())
        (out / f"q{n}.sql").write_text(sql + "\n")


if __name__ == "__main__":
    main()
