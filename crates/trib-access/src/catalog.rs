//! The system catalogs a caller may browse: `information_schema` (DataFusion's own,
//! over empty tables shaped like the products) and enough of Postgres's `pg_catalog`
//! for `psql`'s `\dt` and `\d`, BI tools' schema browsers and drivers' type lookups.
//!
//! The catalog session holds no product data at all: each product the caller may read
//! is an empty table with the columns the caller sees (hidden columns absent), so a
//! catalog query answers "what is there" and nothing else.

use crate::grants::ColumnAccess;
use crate::{Error, Result};
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use sqlparser::ast::{
    BinaryOperator, DataType as SqlType, Expr, Function, ObjectName, ObjectNamePart, VisitMut, VisitorMut,
};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

/// Schemas whose relations are catalog relations, not products.
pub(crate) const SCHEMAS: [&str; 2] = ["information_schema", "pg_catalog"];

/// Whether a relation name (normalised parts) is a catalog relation.
pub(crate) fn is_catalog(parts: &[String]) -> bool {
    match parts {
        [schema, _] => SCHEMAS.contains(&schema.as_str()),
        [table] => table.starts_with("pg_"),
        _ => false,
    }
}

/// One product version as the caller sees it.
pub(crate) struct Entry {
    pub schema: String,
    pub table: String,
    pub owner: String,
    /// Visible columns: name, type, nullable.
    pub columns: Vec<(String, DataType, bool)>,
}

impl Entry {
    pub fn new(
        schema: String,
        table: String,
        owner: String,
        fields: &Schema,
        access: &[(String, ColumnAccess)],
        hashed: bool,
    ) -> Self {
        let columns = fields
            .fields()
            .iter()
            .filter_map(|f| {
                let a = access
                    .iter()
                    .find(|(n, _)| n == f.name())
                    .map_or(ColumnAccess::Clear, |(_, a)| *a);
                match a {
                    ColumnAccess::Hidden => None,
                    ColumnAccess::Masked(_) if hashed => Some((f.name().clone(), DataType::Utf8, true)),
                    ColumnAccess::Masked(_) => Some((f.name().clone(), f.data_type().clone(), true)),
                    ColumnAccess::Clear => Some((f.name().clone(), f.data_type().clone(), f.is_nullable())),
                }
            })
            .collect();
        Self {
            schema,
            table,
            owner,
            columns,
        }
    }
}

/// Whether a statement reads a system catalog (and so is rewritten by [`rewrite`]
/// before anything else looks at it).
pub(crate) fn mentions(statement: &sqlparser::ast::Statement) -> bool {
    let mut found = false;
    let _ = sqlparser::ast::visit_relations(statement, |name| {
        let parts: Vec<String> = name.0.iter().map(|p| p.to_string().to_lowercase()).collect();
        found |= is_catalog(&parts);
        ControlFlow::<()>::Continue(())
    });
    found
}

/// Rewrites Postgres-only spellings psql and drivers use into what DataFusion plans:
/// `OPERATOR(pg_catalog.~)` → `~`, `x COLLATE …` → `x`, `x::regclass` (and the other
/// `reg*` and `oid` casts) → `x`, `pg_catalog.f(…)` → `f(…)`, `pg_class` →
/// `pg_catalog.pg_class`.
pub(crate) fn rewrite(statement: &mut sqlparser::ast::Statement) {
    struct Rewriter;
    impl VisitorMut for Rewriter {
        type Break = ();

        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let replacement = match expr {
                Expr::Collate { expr: inner, .. } => Some((**inner).clone()),
                Expr::Cast {
                    expr: inner, data_type, ..
                } if is_oid_type(data_type) => Some((**inner).clone()),
                Expr::Cast { data_type, .. } => {
                    if let Some(t) = standard_type(data_type) {
                        *data_type = t;
                    }
                    None
                }
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::PGCustomBinaryOperator(parts),
                    right,
                } => {
                    let op = match parts.last().map(String::as_str) {
                        Some("~") => BinaryOperator::PGRegexMatch,
                        Some("!~") => BinaryOperator::PGRegexNotMatch,
                        Some("~*") => BinaryOperator::PGRegexIMatch,
                        Some("!~*") => BinaryOperator::PGRegexNotIMatch,
                        Some("=") => BinaryOperator::Eq,
                        Some("<>") => BinaryOperator::NotEq,
                        _ => return ControlFlow::Continue(()),
                    };
                    Some(Expr::BinaryOp {
                        left: left.clone(),
                        op,
                        right: right.clone(),
                    })
                }
                // `array(SELECT …)` over the role catalogs: no roles, no array.
                Expr::Function(Function { name, .. }) if name.to_string().eq_ignore_ascii_case("array") => {
                    Some(Expr::Value(sqlparser::ast::Value::Null.with_empty_span()))
                }
                Expr::Function(Function { name, .. }) => {
                    strip_pg_catalog(name);
                    None
                }
                // A scalar subquery over catalogs Tributary holds nothing in is NULL, which
                // spares DataFusion correlations it cannot plan (psql's `\d` has two).
                Expr::Subquery(query) if reads_an_empty_catalog(query) => {
                    Some(Expr::Value(sqlparser::ast::Value::Null.with_empty_span()))
                }
                Expr::Subquery(query) => {
                    at_most_one_row(query);
                    None
                }
                _ => None,
            };
            if let Some(r) = replacement {
                *expr = r;
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_query(&mut self, query: &mut sqlparser::ast::Query) -> ControlFlow<()> {
            // The ordering of an emptied SELECT may name columns it no longer has.
            if let sqlparser::ast::SetExpr::Select(select) = query.body.as_mut()
                && nothing_from_empty(select)
            {
                query.order_by = None;
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_select(&mut self, select: &mut sqlparser::ast::Select) -> ControlFlow<()> {
            nothing_from_empty(select);
            ControlFlow::Continue(())
        }

        fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
            if let [ObjectNamePart::Identifier(table)] = relation.0.as_slice()
                && table.value.to_lowercase().starts_with("pg_")
            {
                let table = table.clone();
                relation.0 = vec![
                    ObjectNamePart::Identifier(sqlparser::ast::Ident::new("pg_catalog")),
                    ObjectNamePart::Identifier(table),
                ];
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(statement, &mut Rewriter);
}

/// A SELECT from one always-empty catalog returns no rows, whatever it computes: its
/// columns become NULLs under the same names, so functions and operators Tributary does
/// not have (psql's `\d` asks for statistics objects, publications, policies) need not
/// be planned.
fn nothing_from_empty(select: &mut sqlparser::ast::Select) -> bool {
    use sqlparser::ast::{Ident, JoinOperator, SelectItem, TableFactor, TableWithJoins};
    let is_empty = |factor: &TableFactor| match factor {
        TableFactor::Table { name, .. } => {
            let last = name.0.last().map(|p| p.to_string().to_lowercase()).unwrap_or_default();
            EMPTY.iter().any(|(t, _)| *t == last)
        }
        _ => false,
    };
    // An empty catalog anywhere an inner join (or a comma) takes it empties the result.
    let empty = select.from.iter().find_map(|from: &TableWithJoins| {
        if is_empty(&from.relation) {
            return Some(from.relation.clone());
        }
        from.joins
            .iter()
            .find(|j| {
                matches!(
                    j.join_operator,
                    JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_)
                ) && is_empty(&j.relation)
            })
            .map(|j| j.relation.clone())
    });
    let Some(empty) = empty else { return false };
    select.from = vec![TableWithJoins {
        relation: empty,
        joins: Vec::new(),
    }];
    let null = || Expr::Value(sqlparser::ast::Value::Null.with_empty_span());
    for (i, item) in select.projection.iter_mut().enumerate() {
        let alias = match item {
            SelectItem::ExprWithAlias { alias, .. } => alias.clone(),
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => id.clone(),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) => {
                ids.last().cloned().unwrap_or_else(|| Ident::new(format!("column{i}")))
            }
            SelectItem::UnnamedExpr(_) => Ident::new(format!("column{i}")),
            _ => continue,
        };
        *item = SelectItem::ExprWithAlias { expr: null(), alias };
    }
    select.selection = None;
    true
}

/// Whether `query` reads one of the catalogs that are always empty. psql's scalar
/// subqueries join their catalogs with inner joins, so one empty catalog makes them
/// return no row, which is NULL.
fn reads_an_empty_catalog(query: &sqlparser::ast::Query) -> bool {
    let mut empty = false;
    let _ = sqlparser::ast::visit_relations(query, |name| {
        let last = name.0.last().map(|p| p.to_string().to_lowercase()).unwrap_or_default();
        empty |= EMPTY.iter().any(|(t, _)| *t == last);
        ControlFlow::<()>::Continue(())
    });
    empty
}

/// psql's scalar subqueries over the catalogs return at most one row by Postgres's
/// keys; DataFusion wants that said with an aggregate, so the one column becomes
/// `max(column)`, which is the same value.
fn at_most_one_row(query: &mut sqlparser::ast::Query) {
    use sqlparser::ast::{SelectItem, SetExpr};
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    if select.projection.len() != 1 {
        return;
    }
    let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = &mut select.projection[0] else {
        return;
    };
    if let Expr::Function(f) = e {
        let name = f.name.to_string().to_lowercase();
        if [
            "count",
            "max",
            "min",
            "sum",
            "avg",
            "array_agg",
            "string_agg",
            "bool_and",
            "bool_or",
        ]
        .contains(&name.as_str())
        {
            return;
        }
    }
    let wrapped = format!("max({e})");
    if let Ok(max) = sqlparser::parser::Parser::new(&sqlparser::dialect::GenericDialect)
        .try_with_sql(&wrapped)
        .and_then(|mut p| p.parse_expr())
    {
        *e = max;
    }
}

fn strip_pg_catalog(name: &mut ObjectName) {
    if let [ObjectNamePart::Identifier(schema), _] = name.0.as_slice()
        && schema.value.eq_ignore_ascii_case("pg_catalog")
    {
        name.0.remove(0);
    }
}

/// `pg_catalog.text` and friends as the SQL types DataFusion knows.
fn standard_type(t: &SqlType) -> Option<SqlType> {
    let SqlType::Custom(name, _) = t else { return None };
    let last = name.0.last().map(|p| p.to_string().to_lowercase()).unwrap_or_default();
    Some(match last.as_str() {
        "int2" => SqlType::SmallInt(None),
        "int4" | "int" => SqlType::Int(None),
        "int8" => SqlType::BigInt(None),
        "bool" => SqlType::Boolean,
        "float4" => SqlType::Real,
        "float8" => SqlType::DoublePrecision,
        "numeric" => SqlType::Numeric(sqlparser::ast::ExactNumberInfo::None),
        _ => SqlType::Text,
    })
}

fn is_oid_type(t: &SqlType) -> bool {
    let SqlType::Custom(name, _) = t else { return false };
    let last = name.0.last().map(|p| p.to_string().to_lowercase()).unwrap_or_default();
    [
        "regclass",
        "regtype",
        "regnamespace",
        "regproc",
        "regprocedure",
        "regrole",
        "oid",
    ]
    .contains(&last.as_str())
}

/// The Postgres type of an Arrow type: oid, name as `format_type` prints it, and typmod.
fn pg_type(t: &DataType) -> (i64, String, i32) {
    match t {
        DataType::Boolean => (16, "boolean".into(), -1),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => (21, "smallint".into(), -1),
        DataType::Int32 | DataType::UInt16 => (23, "integer".into(), -1),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => (20, "bigint".into(), -1),
        DataType::Float16 | DataType::Float32 => (700, "real".into(), -1),
        DataType::Float64 => (701, "double precision".into(), -1),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => (
            1700,
            format!("numeric({p},{s})"),
            ((i32::from(*p) << 16) | i32::from(*s as u8)) + 4,
        ),
        DataType::Date32 | DataType::Date64 => (1082, "date".into(), -1),
        DataType::Timestamp(_, Some(_)) => (1184, "timestamp with time zone".into(), -1),
        DataType::Timestamp(_, None) => (1114, "timestamp without time zone".into(), -1),
        DataType::Time32(_) | DataType::Time64(_) => (1083, "time without time zone".into(), -1),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            (17, "bytea".into(), -1)
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::Struct(_) | DataType::Map(_, _) => {
            (3802, "jsonb".into(), -1)
        }
        _ => (25, "text".into(), -1),
    }
}

/// The base types `pg_type` lists: oid, name.
const TYPES: [(i64, &str); 14] = [
    (16, "bool"),
    (17, "bytea"),
    (20, "int8"),
    (21, "int2"),
    (23, "int4"),
    (25, "text"),
    (700, "float4"),
    (701, "float8"),
    (1043, "varchar"),
    (1082, "date"),
    (1083, "time"),
    (1114, "timestamp"),
    (1184, "timestamptz"),
    (1700, "numeric"),
];

/// Catalogs psql consults that Tributary has nothing in: name, columns (`:t` text,
/// `:b` boolean, otherwise an oid or number).
const EMPTY: [(&str, &[&str]); 12] = [
    ("pg_attrdef", &["oid", "adrelid", "adnum", "adbin:t"]),
    ("pg_collation", &["oid", "collname:t", "collnamespace"]),
    (
        "pg_index",
        &[
            "indexrelid",
            "indrelid",
            "indisprimary:b",
            "indisunique:b",
            "indisclustered:b",
            "indisvalid:b",
            "indisreplident:b",
            "indkey:t",
        ],
    ),
    (
        "pg_constraint",
        &[
            "oid",
            "conrelid",
            "conname:t",
            "contype:t",
            "conindid",
            "condeferrable:b",
            "condeferred:b",
            "convalidated:b",
            "conparentid",
            "connamespace",
            "conkey:t",
        ],
    ),
    (
        "pg_inherits",
        &["inhrelid", "inhparent", "inhseqno", "inhdetachpending:b"],
    ),
    (
        "pg_policy",
        &[
            "oid",
            "polrelid",
            "polname:t",
            "polpermissive:b",
            "polroles:t",
            "polqual:t",
            "polwithcheck:t",
            "polcmd:t",
        ],
    ),
    (
        "pg_statistic_ext",
        &[
            "oid",
            "stxrelid",
            "stxname:t",
            "stxnamespace",
            "stxkeys:t",
            "stxkind:t",
            "stxstattarget",
            "stxexprs:t",
        ],
    ),
    (
        "pg_publication",
        &[
            "oid",
            "pubname:t",
            "puballtables:b",
            "pubinsert:b",
            "pubupdate:b",
            "pubdelete:b",
            "pubtruncate:b",
            "pubviaroot:b",
        ],
    ),
    (
        "pg_publication_rel",
        &["oid", "prrelid", "prpubid", "prqual:t", "prattrs:t"],
    ),
    (
        "pg_trigger",
        &[
            "oid",
            "tgrelid",
            "tgname:t",
            "tgenabled:t",
            "tgisinternal:b",
            "tgparentid",
        ],
    ),
    (
        "pg_rewrite",
        &[
            "oid",
            "ev_class",
            "rulename:t",
            "ev_type:t",
            "ev_enabled:t",
            "is_instead:b",
        ],
    ),
    ("pg_description", &["objoid", "classoid", "objsubid", "description:t"]),
];

const FIRST_NAMESPACE_OID: i64 = 16_000;
const FIRST_RELATION_OID: i64 = 16_384;
const PG_CATALOG_OID: i64 = 11;

/// Registers the catalog of `entries` into `ctx` (created with `information_schema`
/// enabled): one empty table per product, and the `pg_catalog` tables.
pub(crate) fn register(ctx: &SessionContext, entries: &[Entry]) -> Result<()> {
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| Error::Internal("the default catalog is missing".into()))?;
    let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("catalog: {e}"));
    let mut namespaces: BTreeMap<String, i64> = BTreeMap::new();
    for e in entries {
        let next = FIRST_NAMESPACE_OID + namespaces.len() as i64;
        namespaces.entry(e.schema.clone()).or_insert(next);
        if catalog.schema(&e.schema).is_none() {
            catalog
                .register_schema(&e.schema, Arc::new(MemorySchemaProvider::new()))
                .map_err(|x| internal(&x))?;
        }
        let fields: Vec<Field> = e
            .columns
            .iter()
            .map(|(n, t, nullable)| Field::new(n, t.clone(), *nullable))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let table = MemTable::try_new(schema, vec![vec![]]).map_err(|x| internal(&x))?;
        ctx.register_table(
            datafusion::common::TableReference::partial(e.schema.as_str(), e.table.as_str()),
            Arc::new(table),
        )
        .map_err(|x| internal(&x))?;
    }
    catalog
        .register_schema("pg_catalog", Arc::new(MemorySchemaProvider::new()))
        .map_err(|x| internal(&x))?;
    let add = |name: &str, batch: RecordBatch| -> Result<()> {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|x| internal(&x))?;
        ctx.register_table(
            datafusion::common::TableReference::partial("pg_catalog", name),
            Arc::new(table),
        )
        .map_err(|x| internal(&x))?;
        Ok(())
    };

    // pg_namespace
    let mut ns: Vec<(i64, String)> = vec![(PG_CATALOG_OID, "pg_catalog".into())];
    ns.extend(namespaces.iter().map(|(n, o)| (*o, n.clone())));
    add(
        "pg_namespace",
        batch(vec![
            ("oid", int64(ns.iter().map(|(o, _)| *o))),
            ("nspname", text(ns.iter().map(|(_, n)| n.clone()))),
            ("nspowner", int64(ns.iter().map(|_| 10))),
        ])?,
    )?;

    // pg_class and pg_attribute
    let mut owners: BTreeMap<i64, String> = BTreeMap::new();
    let (mut c_oid, mut c_name, mut c_ns, mut c_owner, mut c_natts) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut a_rel, mut a_name, mut a_type, mut a_num, mut a_mod, mut a_notnull) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (i, e) in entries.iter().enumerate() {
        let oid = FIRST_RELATION_OID + i as i64;
        let owner_oid = 20_000 + i as i64;
        owners.insert(owner_oid, e.owner.clone());
        c_oid.push(oid);
        c_name.push(e.table.clone());
        c_ns.push(namespaces[&e.schema]);
        c_owner.push(owner_oid);
        c_natts.push(e.columns.len() as i16);
        for (j, (name, t, nullable)) in e.columns.iter().enumerate() {
            let (type_oid, _, typmod) = pg_type(t);
            a_rel.push(oid);
            a_name.push(name.clone());
            a_type.push(type_oid);
            a_num.push(j as i16 + 1);
            a_mod.push(typmod);
            a_notnull.push(!nullable);
        }
    }
    let n = c_oid.len();
    let falses = || -> ArrayRef { Arc::new(BooleanArray::from(vec![false; n])) };
    let chars = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
    let zeros = || -> ArrayRef { Arc::new(Int64Array::from(vec![0i64; n])) };
    add(
        "pg_class",
        batch(vec![
            ("oid", Arc::new(Int64Array::from(c_oid))),
            ("relname", Arc::new(StringArray::from(c_name))),
            ("relnamespace", Arc::new(Int64Array::from(c_ns))),
            ("relkind", chars("r")),
            ("relowner", Arc::new(Int64Array::from(c_owner))),
            ("relam", Arc::new(Int64Array::from(vec![2i64; n]))),
            ("reltype", zeros()),
            ("reloftype", zeros()),
            ("reltablespace", zeros()),
            ("reltoastrelid", zeros()),
            ("relnatts", Arc::new(Int16Array::from(c_natts))),
            ("relchecks", Arc::new(Int16Array::from(vec![0i16; n]))),
            ("relhasindex", falses()),
            ("relhasrules", falses()),
            ("relhastriggers", falses()),
            ("relhassubclass", falses()),
            ("relrowsecurity", falses()),
            ("relforcerowsecurity", falses()),
            ("relispartition", falses()),
            ("relispopulated", Arc::new(BooleanArray::from(vec![true; n]))),
            ("relpersistence", chars("p")),
            ("relreplident", chars("d")),
            ("relpartbound", Arc::new(StringArray::from(vec![None::<&str>; n]))),
            ("reloptions", Arc::new(StringArray::from(vec![None::<&str>; n]))),
        ])?,
    )?;
    let m = a_rel.len();
    add(
        "pg_attribute",
        batch(vec![
            ("attrelid", Arc::new(Int64Array::from(a_rel))),
            ("attname", Arc::new(StringArray::from(a_name))),
            ("atttypid", Arc::new(Int64Array::from(a_type))),
            ("attnum", Arc::new(Int16Array::from(a_num))),
            ("atttypmod", Arc::new(Int32Array::from(a_mod))),
            ("attnotnull", Arc::new(BooleanArray::from(a_notnull))),
            ("attisdropped", Arc::new(BooleanArray::from(vec![false; m]))),
            ("atthasdef", Arc::new(BooleanArray::from(vec![false; m]))),
            ("attidentity", Arc::new(StringArray::from(vec![""; m]))),
            ("attgenerated", Arc::new(StringArray::from(vec![""; m]))),
            ("attcollation", Arc::new(Int64Array::from(vec![0i64; m]))),
        ])?,
    )?;
    add(
        "pg_type",
        batch(vec![
            ("oid", int64(TYPES.iter().map(|(o, _)| *o))),
            ("typname", text(TYPES.iter().map(|(_, n)| (*n).to_string()))),
            ("typnamespace", int64(TYPES.iter().map(|_| PG_CATALOG_OID))),
            ("typtype", text(TYPES.iter().map(|_| "b".to_string()))),
            ("typcollation", int64(TYPES.iter().map(|_| 0))),
        ])?,
    )?;
    add(
        "pg_am",
        batch(vec![("oid", int64([2i64])), ("amname", text(["heap".to_string()]))])?,
    )?;
    add(
        "pg_database",
        batch(vec![
            ("oid", int64([1i64])),
            ("datname", text(["tributary".to_string()])),
        ])?,
    )?;
    for (name, columns) in EMPTY {
        let fields: Vec<Field> = columns
            .iter()
            .map(|c| match c.split_once(':') {
                Some((n, "t")) => Field::new(n, DataType::Utf8, true),
                Some((n, _)) => Field::new(n, DataType::Boolean, true),
                None => Field::new(*c, DataType::Int64, true),
            })
            .collect();
        add(name, RecordBatch::new_empty(Arc::new(Schema::new(fields))))?;
    }

    ctx.register_udf(udf("pg_table_is_visible", 1, DataType::Boolean, |_, rows| {
        Ok(Arc::new(BooleanArray::from(vec![true; rows])))
    }));
    let owners = Arc::new(owners);
    ctx.register_udf(udf("pg_get_userbyid", 1, DataType::Utf8, move |args, rows| {
        let ids = args[0].to_array(rows)?;
        let ids = datafusion::arrow::compute::cast(&ids, &DataType::Int64)?;
        let ids = ids
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("pg_get_userbyid".into()))?;
        let names: StringArray = ids
            .iter()
            .map(|id| id.map(|id| owners.get(&id).cloned().unwrap_or_else(|| "tributary".into())))
            .collect();
        Ok(Arc::new(names))
    }));
    ctx.register_udf(udf("format_type", 2, DataType::Utf8, |args, rows| {
        let ids = datafusion::arrow::compute::cast(&args[0].to_array(rows)?, &DataType::Int64)?;
        let mods = datafusion::arrow::compute::cast(&args[1].to_array(rows)?, &DataType::Int64)?;
        let (ids, mods) = match (
            ids.as_any().downcast_ref::<Int64Array>(),
            mods.as_any().downcast_ref::<Int64Array>(),
        ) {
            (Some(i), Some(m)) => (i.clone(), m.clone()),
            _ => return Err(datafusion::error::DataFusionError::Internal("format_type".into())),
        };
        let names: StringArray = ids
            .iter()
            .zip(mods.iter())
            .map(|(id, m)| id.map(|id| format_type(id, m.unwrap_or(-1))))
            .collect();
        Ok(Arc::new(names))
    }));
    for name in [
        "pg_get_expr",
        "obj_description",
        "col_description",
        "pg_get_constraintdef",
    ] {
        ctx.register_udf(udf(name, usize::MAX, DataType::Utf8, |_, rows| {
            Ok(Arc::new(StringArray::from(vec![None::<&str>; rows])))
        }));
    }
    Ok(())
}

fn format_type(oid: i64, typmod: i64) -> String {
    match oid {
        1700 if typmod >= 4 => {
            let m = typmod - 4;
            format!("numeric({},{})", m >> 16, m & 0xffff)
        }
        1184 => "timestamp with time zone".into(),
        1114 => "timestamp without time zone".into(),
        1083 => "time without time zone".into(),
        701 => "double precision".into(),
        700 => "real".into(),
        other => TYPES
            .iter()
            .find(|(o, _)| *o == other)
            .map(|(_, n)| match *n {
                "bool" => "boolean".to_string(),
                "int8" => "bigint".to_string(),
                "int4" => "integer".to_string(),
                "int2" => "smallint".to_string(),
                n => n.to_string(),
            })
            .unwrap_or_else(|| "text".into()),
    }
}

fn int64(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn text(values: impl IntoIterator<Item = String>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let schema: SchemaRef = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect())
        .map_err(|e| Error::Internal(format!("catalog table: {e}")))
}

type Body = dyn Fn(&[ColumnarValue], usize) -> datafusion::common::Result<ArrayRef> + Send + Sync;

/// A catalog function; `arity` `usize::MAX` takes any number of arguments.
fn udf(
    name: &'static str,
    arity: usize,
    returns: DataType,
    body: impl Fn(&[ColumnarValue], usize) -> datafusion::common::Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    let signature = if arity == usize::MAX {
        Signature::variadic_any(Volatility::Stable)
    } else {
        Signature::any(arity, Volatility::Stable)
    };
    ScalarUDF::from(CatalogFn {
        name,
        signature,
        returns,
        body: Arc::new(body),
    })
}

struct CatalogFn {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    body: Arc<Body>,
}

impl std::fmt::Debug for CatalogFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for CatalogFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for CatalogFn {}

impl std::hash::Hash for CatalogFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for CatalogFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
        Ok(ColumnarValue::Array((self.body)(&args.args, args.number_rows)?))
    }
}
