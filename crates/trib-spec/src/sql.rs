//! SQL in contracts: transforms, row filters and expectations, parsed with the parser
//! DataFusion uses (`sqlparser`, generic dialect) so that what passes here plans there.

use sqlparser::ast::{Expr, Statement, visit_expressions, visit_relations};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;
use std::collections::BTreeSet;
use std::ops::ControlFlow;

/// A SQL parse error with its 1-based position in the SQL text, when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl From<ParserError> for SqlError {
    fn from(e: ParserError) -> Self {
        let text = match e {
            ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
            ParserError::RecursionLimitExceeded => "expression nests too deeply".to_string(),
        };
        // sqlparser appends " at Line: L, Column: C".
        let (message, line, column) = match text.rsplit_once(" at Line: ") {
            Some((msg, pos)) => {
                let mut parts = pos.split(", Column: ");
                let line = parts.next().and_then(|l| l.trim().parse().ok());
                let column = parts.next().and_then(|c| c.trim().parse().ok());
                (msg.to_string(), line, column)
            }
            None => (text, None, None),
        };
        Self { message, line, column }
    }
}

/// Parses a boolean or scalar expression, refusing trailing text.
pub fn parse_expr(sql: &str) -> Result<Expr, SqlError> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(sql)?;
    let expr = parser.parse_expr()?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(SqlError {
            message: format!("unexpected `{}` after the expression", next.token),
            line: Some(next.span.start.line as usize),
            column: Some(next.span.start.column as usize),
        });
    }
    Ok(expr)
}

/// Column names an expression reads (the last part of compound identifiers).
pub fn expr_columns(sql: &str) -> Result<BTreeSet<String>, SqlError> {
    let expr = parse_expr(sql)?;
    let mut out = BTreeSet::new();
    let _ = visit_expressions(&expr, |e| {
        match e {
            Expr::Identifier(id) => {
                out.insert(id.value.clone());
            }
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last() {
                    out.insert(last.value.clone());
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(out)
}

/// A parsed model query: one read-only `SELECT` (or `WITH … SELECT`).
#[derive(Debug, Clone)]
pub struct ModelQuery {
    pub statement: Statement,
    /// Tables the query reads, as written (`orders.orders_raw`), CTE names excluded.
    pub relations: Vec<String>,
}

/// Why a model's SQL is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelSqlError {
    #[error("{0}")]
    Parse(SqlError),
    #[error("a model holds exactly one query, found {0} statements")]
    StatementCount(usize),
    #[error("a model is a query (`SELECT` or `WITH`), found `{0}`")]
    NotAQuery(String),
}

pub fn parse_model(sql: &str) -> Result<ModelQuery, ModelSqlError> {
    let mut statements = Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| ModelSqlError::Parse(e.into()))?;
    if statements.len() != 1 {
        return Err(ModelSqlError::StatementCount(statements.len()));
    }
    let statement = statements.remove(0);
    let Statement::Query(_) = &statement else {
        let head: String = statement
            .to_string()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        return Err(ModelSqlError::NotAQuery(head));
    };
    let mut ctes = BTreeSet::new();
    collect_ctes(&statement, &mut ctes);
    let mut relations = Vec::new();
    let _ = visit_relations(&statement, |rel| {
        let name = rel
            .0
            .iter()
            .map(|p| p.as_ident().map_or_else(|| p.to_string(), |i| i.value.clone()))
            .collect::<Vec<_>>()
            .join(".");
        if !ctes.contains(&name.to_ascii_lowercase()) && !relations.contains(&name) {
            relations.push(name);
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(ModelQuery { statement, relations })
}

fn collect_ctes(statement: &Statement, out: &mut BTreeSet<String>) {
    // `visit_relations` reports references to CTEs like tables, by their one-part name;
    // CTEs may be declared in any nested query.
    struct Ctes<'a>(&'a mut BTreeSet<String>);
    impl sqlparser::ast::Visitor for Ctes<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                for cte in &with.cte_tables {
                    self.0.insert(cte.alias.name.value.to_ascii_lowercase());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = sqlparser::ast::Visit::visit(statement, &mut Ctes(out));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_and_their_columns() {
        let cols = expr_columns("amount >= 0 AND t.region = 'EU'").expect("parses");
        assert_eq!(cols.into_iter().collect::<Vec<_>>(), vec!["amount", "region"]);
        let e = parse_expr("amount >= 0 extra").expect_err("trailing");
        assert!(e.message.contains("extra"), "{}", e.message);
        let e = parse_expr("amount >=\n = 3").expect_err("incomplete");
        assert_eq!((e.line, e.column), (Some(2), Some(2)), "{e:?}");
    }

    #[test]
    fn model_relations_skip_ctes() {
        let q = parse_model(
            "WITH recent AS (SELECT * FROM orders.orders_raw) SELECT r.*, c.name FROM recent r JOIN crm.customers c ON r.customer_id = c.id",
        )
        .expect("parses");
        assert_eq!(q.relations, vec!["orders.orders_raw", "crm.customers"]);
        assert!(matches!(parse_model("DROP TABLE x"), Err(ModelSqlError::NotAQuery(_))));
        assert!(matches!(
            parse_model("SELECT 1; SELECT 2"),
            Err(ModelSqlError::StatementCount(2))
        ));
        let q = parse_model("SELECT * FROM \"orders.orders_raw@v1\"").expect("parses");
        assert_eq!(q.relations, vec!["orders.orders_raw@v1"]);
    }
}
