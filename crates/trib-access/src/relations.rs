//! The relations a query reads, resolved to product versions, and the sandbox's
//! refusals (table functions, file paths, anything that is not a product).
//!
//! Addresses: `orders.orders` is the newest major; `orders.orders@v1` (or quoted,
//! `"orders.orders@v1"`) an older major still served. Time travel, by Delta version
//! or by time:
//!
//! ```sql
//! SELECT * FROM orders.orders FOR SYSTEM_TIME AS OF '2026-03-15T14:00:00Z'
//! SELECT * FROM orders.orders TIMESTAMP AS OF '2026-03-15 14:00:00'   -- as in Databricks
//! SELECT * FROM orders.orders VERSION AS OF 12
//! SELECT * FROM "orders.orders@v1@2026-03-15T14:00:00Z"
//! ```
//!
//! A time is UTC unless it names an offset; a date alone means its midnight. The table
//! is read as of the last commit at or before that time.

use crate::{Error, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::common::TableReference;
use sqlparser::ast::{
    DescribeAlias, Expr, Ident, ObjectName, ObjectNamePart, Query, Statement, TableAlias, TableFactor, TableVersion,
    Value, Visit, VisitMut, Visitor, VisitorMut,
};
use std::collections::BTreeSet;
use std::fmt;
use std::ops::ControlFlow;

/// A point in a table's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsOf {
    Version(u64),
    Timestamp(DateTime<Utc>),
}

impl fmt::Display for AsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsOf::Version(v) => write!(f, "version {v}"),
            AsOf::Timestamp(t) => write!(f, "{}", t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        }
    }
}

/// Parses a time-travel point: a Delta version (digits), an RFC 3339 time, a
/// `YYYY-MM-DD HH:MM:SS` time in UTC, or a date (its midnight, UTC).
pub fn parse_as_of(text: &str) -> Option<AsOf> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().map(AsOf::Version);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(AsOf::Timestamp(t.with_timezone(&Utc)));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(AsOf::Timestamp(t.and_utc()));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| AsOf::Timestamp(t.and_utc()))
}

/// One product version a query reads, and the name it is registered under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relation {
    /// `domain.name`.
    pub product: String,
    /// A pinned major; `None` is the newest.
    pub major: Option<u64>,
    pub as_of: Option<AsOf>,
    /// How the (rewritten) query names it.
    pub reference: TableReference,
    /// A system catalog relation (`information_schema.*`, `pg_catalog.*`), not a product.
    pub catalog: bool,
}

/// Checks that `statement` only reads, resolves every relation it reads to a product
/// version and rewrites time-travel clauses into names the session knows. Names the
/// query defines itself (CTEs) are left alone.
pub(crate) fn resolve(statement: &mut Statement) -> Result<Vec<Relation>> {
    if !matches!(statement, Statement::Query(_)) && explained(statement).is_none() {
        return Err(Error::NotReadOnly {
            statement: statement_kind(statement),
            hint: "query products with SELECT (or WITH … SELECT); data changes through ingestion and models",
        });
    }
    let mut ctes = Ctes(BTreeSet::new());
    let _ = Visit::visit(&*statement, &mut ctes);
    let mut resolver = Resolver {
        ctes: ctes.0,
        relations: Vec::new(),
    };
    if let ControlFlow::Break(e) = VisitMut::visit(statement, &mut resolver) {
        return Err(e);
    }
    let mut out: Vec<Relation> = Vec::new();
    for r in resolver.relations {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// The query under `EXPLAIN [ANALYZE]`, if `statement` is one; the gateway lets only
/// admins explain, since a plan shows every filter and mask of the views under it.
pub(crate) fn explained(statement: &Statement) -> Option<&Statement> {
    match statement {
        Statement::Explain {
            describe_alias: DescribeAlias::Explain,
            statement,
            ..
        } if matches!(**statement, Statement::Query(_)) => Some(statement),
        _ => None,
    }
}

fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let kind = match words.as_slice() {
        [first, second] if ["CREATE", "DROP", "ALTER", "SHOW"].contains(&first.to_ascii_uppercase().as_str()) => {
            format!("{first} {second}")
        }
        [first, ..] => first.to_string(),
        [] => "an empty statement".to_string(),
    };
    format!("`{}`", kind.to_ascii_uppercase())
}

struct Ctes(BTreeSet<String>);

impl Visitor for Ctes {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(normalise(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

/// An identifier as DataFusion reads it: unquoted ones in lowercase.
fn normalise(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

struct Resolver {
    ctes: BTreeSet<String>,
    relations: Vec<Relation>,
}

impl VisitorMut for Resolver {
    type Break = Error;

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<Error> {
        match self.table_factor(factor) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }
}

impl Resolver {
    fn table_factor(&mut self, factor: &mut TableFactor) -> Result<()> {
        let (name, alias, args, version) = match factor {
            TableFactor::Table {
                name,
                alias,
                args,
                version,
                ..
            } => (name, alias, args, version),
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } | TableFactor::UNNEST { .. } => return Ok(()),
            other => {
                let text = other.to_string();
                let head: String = text.chars().take(40).collect();
                return Err(Error::Refused {
                    what: format!("`{head}`"),
                    hint: "read products by name; table functions and file readers are not available".into(),
                });
            }
        };
        if args.is_some() {
            return Err(Error::Refused {
                what: format!("the table function `{name}`"),
                hint: "read products by name; table functions and file readers are not available".into(),
            });
        }
        let mut parts = Vec::with_capacity(name.0.len());
        for part in &name.0 {
            match part {
                ObjectNamePart::Identifier(ident) => parts.push(ident.clone()),
                ObjectNamePart::Function(_) => {
                    return Err(Error::Refused {
                        what: format!("the name `{name}`"),
                        hint: "name products as `domain.name`".into(),
                    });
                }
            }
        }
        if let [only] = parts.as_slice()
            && version.is_none()
            && self.ctes.contains(&normalise(only))
        {
            return Ok(());
        }
        let text: Vec<String> = parts.iter().map(normalise).collect();
        let joined = text.join(".");
        if version.is_none() && crate::catalog::is_catalog(&text) {
            self.relations.push(Relation {
                product: joined,
                major: None,
                as_of: None,
                reference: TableReference::bare(text.last().cloned().unwrap_or_default()),
                catalog: true,
            });
            return Ok(());
        }
        let unknown = |hint: String| Error::UnknownProduct {
            name: joined.clone(),
            hint,
        };
        if text.len() > 2 || (text.len() == 1 && !joined.contains('.')) {
            return Err(unknown(
                "products are named `domain.name` (for example `orders.orders`); `trib show` lists them".into(),
            ));
        }
        let mut segments = joined.split('@');
        let product = segments.next().unwrap_or_default().to_string();
        let mut major = None;
        let mut as_of = None;
        for segment in segments {
            if let Some(m) = segment.strip_prefix('v').and_then(|m| m.parse::<u64>().ok())
                && major.is_none()
                && as_of.is_none()
            {
                major = Some(m);
            } else if let Some(at) = parse_as_of(segment).filter(|_| as_of.is_none()) {
                as_of = Some(at);
            } else {
                return Err(unknown(format!(
                    "after `@` comes a major version (`@v1`) and then a point in time (`@2026-03-15T14:00:00Z` or a table version `@12`); `{segment}` is neither"
                )));
            }
        }
        if let Some(v) = version.take() {
            if as_of.is_some() {
                return Err(Error::TimeTravel {
                    product: product.clone(),
                    at: v.to_string(),
                    message: "the name already holds a point in time".into(),
                    hint: "give the point in time once: in the name after `@`, or with `AS OF`",
                });
            }
            as_of = Some(clause_as_of(&product, &v)?);
        }
        let reference = match (major, as_of, text.as_slice()) {
            (None, None, [domain, table]) => TableReference::partial(domain.as_str(), table.as_str()),
            _ => {
                let mut key = product.clone();
                if let Some(m) = major {
                    key.push_str(&format!("@v{m}"));
                }
                match as_of {
                    Some(AsOf::Version(v)) => key.push_str(&format!("@{v}")),
                    Some(AsOf::Timestamp(t)) => key.push_str(&format!("@{}", t.timestamp_micros())),
                    None => {}
                }
                if text.len() != 1 || text[0] != key {
                    // Renamed: keep the product's own name as the qualifier columns use.
                    *name = ObjectName::from(vec![Ident::with_quote('"', key.clone())]);
                    if alias.is_none() {
                        let table = product.rsplit('.').next().unwrap_or(&product).to_string();
                        *alias = Some(TableAlias {
                            explicit: true,
                            name: Ident::new(table),
                            columns: Vec::new(),
                            at: None,
                        });
                    }
                }
                TableReference::bare(key)
            }
        };
        self.relations.push(Relation {
            product,
            major,
            as_of,
            reference,
            catalog: false,
        });
        Ok(())
    }
}

fn clause_as_of(product: &str, version: &TableVersion) -> Result<AsOf> {
    let err = |message: &str| Error::TimeTravel {
        product: product.to_string(),
        at: version.to_string(),
        message: message.to_string(),
        hint: "write `FOR SYSTEM_TIME AS OF '2026-03-15T14:00:00Z'`, `TIMESTAMP AS OF '2026-03-15 14:00:00'` or `VERSION AS OF 12`",
    };
    let literal = |expr: &Expr| -> Option<String> {
        match expr {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
                n @ Value::Number(..) => Some(n.to_string()),
                _ => None,
            },
            Expr::TypedString(t) => match &t.value.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        }
    };
    match version {
        TableVersion::ForSystemTimeAsOf(e) | TableVersion::TimestampAsOf(e) => {
            let text = literal(e).ok_or_else(|| err("the point in time must be a literal"))?;
            match parse_as_of(&text) {
                Some(t @ AsOf::Timestamp(_)) => Ok(t),
                _ => Err(err(&format!("`{text}` is not a time"))),
            }
        }
        TableVersion::VersionAsOf(e) => {
            let text = literal(e).ok_or_else(|| err("the version must be a number"))?;
            match parse_as_of(&text) {
                Some(v @ AsOf::Version(_)) => Ok(v),
                _ => Err(err(&format!("`{text}` is not a table version"))),
            }
        }
        _ => Err(err("this kind of time travel is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::QueryDialect;
    use sqlparser::parser::Parser;

    fn relations(sql: &str) -> Result<(Vec<Relation>, String)> {
        let mut statements = Parser::parse_sql(&QueryDialect, sql).expect("parses");
        let mut s = statements.remove(0);
        let r = resolve(&mut s)?;
        Ok((r, s.to_string()))
    }

    #[test]
    fn addresses_majors_and_points_in_time() {
        let (r, _) = relations("SELECT * FROM orders.orders o JOIN orders.orders_raw@v1 r ON o.id = r.id").expect("ok");
        assert_eq!(r[0].product, "orders.orders");
        assert_eq!(r[0].reference, TableReference::partial("orders", "orders"));
        assert_eq!((r[1].product.as_str(), r[1].major), ("orders.orders_raw", Some(1)));

        let (r, sql) =
            relations("SELECT orders.id FROM orders.orders FOR SYSTEM_TIME AS OF '2026-03-15T14:00:00Z'").expect("ok");
        let t = DateTime::parse_from_rfc3339("2026-03-15T14:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(r[0].as_of, Some(AsOf::Timestamp(t)));
        assert!(sql.contains("AS orders"), "{sql}");
        assert!(!sql.contains("SYSTEM_TIME"), "{sql}");

        let (r, _) = relations("SELECT * FROM orders.orders VERSION AS OF 3").expect("ok");
        assert_eq!(r[0].as_of, Some(AsOf::Version(3)));
        let (r, _) = relations("SELECT * FROM orders.orders TIMESTAMP AS OF '2026-03-15'").expect("ok");
        let midnight = DateTime::parse_from_rfc3339("2026-03-15T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(r[0].as_of, Some(AsOf::Timestamp(midnight)));
        let (r, _) = relations("SELECT * FROM \"orders.orders@v2@2026-03-15 14:00:00\"").expect("ok");
        assert_eq!(r[0].major, Some(2));
        assert_eq!(r[0].as_of, Some(AsOf::Timestamp(t)));
    }

    #[test]
    fn ctes_subqueries_and_refusals() {
        let (r, _) = relations(
            "WITH o AS (SELECT * FROM orders.orders) SELECT * FROM o WHERE id IN (SELECT id FROM web.clicks)",
        )
        .expect("ok");
        let names: Vec<_> = r.iter().map(|r| r.product.as_str()).collect();
        assert_eq!(names, ["orders.orders", "web.clicks"]);

        assert!(matches!(
            relations("DROP TABLE orders.orders"),
            Err(Error::NotReadOnly { .. })
        ));
        assert!(matches!(
            relations("SELECT * FROM read_csv('/etc/passwd')"),
            Err(Error::Refused { .. })
        ));
        assert!(matches!(
            relations("SELECT * FROM '/etc/passwd'"),
            Err(Error::UnknownProduct { .. })
        ));
        assert!(matches!(
            relations("SELECT * FROM information_schema.tables"),
            Ok((ref r, _)) if r[0].catalog
        ));
        assert!(matches!(
            relations("SELECT * FROM orders.orders@yesterday"),
            Err(Error::UnknownProduct { .. })
        ));
        assert!(matches!(
            relations("SELECT * FROM orders.orders FOR SYSTEM_TIME AS OF now()"),
            Err(Error::TimeTravel { .. })
        ));
    }
}
