//! Full-text search over product names, descriptions, columns, tags, owners and
//! domains: SQLite FTS5 (BM25) or PostgreSQL full text (`ts_rank`), every word of the
//! query as a prefix; a product whose address or name is the query comes first.

use crate::Result;
use crate::store::{Backend, Catalog, ProductRecord, on_pool};
use sqlx::Row;
use sqlx::sqlite::SqlitePool;

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub product: String,
    pub major: i64,
    pub version: String,
    pub owner: String,
    pub domain: String,
    pub description: Option<String>,
    pub address: String,
    /// The query is the product's address or name.
    pub exact: bool,
    /// Relevance, higher is better (comparable within one search).
    pub score: f64,
    /// `active`, `draft`, `deprecated` or `retired` (retired versions rank last).
    pub status: String,
    /// When a deprecated version stops being served.
    pub deprecation_date: Option<String>,
}

/// The words of a query: letters, digits, `_` split off as separate words too (column
/// names are indexed both ways).
fn words(q: &str) -> Vec<String> {
    q.split(|c: char| !(c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Searchable text: names with `_`, `.` and `-` also split into words.
fn searchable(s: &str) -> String {
    let split: String = s
        .chars()
        .map(|c| if matches!(c, '_' | '.' | '-') { ' ' } else { c })
        .collect();
    if split == s {
        s.to_string()
    } else {
        format!("{s} {split}")
    }
}

pub(crate) async fn index_sqlite(catalog: &Catalog, pool: &SqlitePool, r: &ProductRecord) -> Result<()> {
    let mut tx = pool.begin().await.map_err(|e| catalog.db(e))?;
    sqlx::query("DELETE FROM product_search WHERE product = $1 AND major = $2")
        .bind(&r.product)
        .bind(r.major)
        .execute(&mut *tx)
        .await
        .map_err(|e| catalog.db(e))?;
    sqlx::query(
        "INSERT INTO product_search (product, major, name, description, columns, tags, owner, domain) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.product)
    .bind(r.major)
    .bind(searchable(&r.name))
    .bind(r.description.clone().unwrap_or_default())
    .bind(searchable(&r.columns))
    .bind(&r.tags)
    .bind(searchable(&r.owner))
    .bind(&r.domain)
    .execute(&mut *tx)
    .await
    .map_err(|e| catalog.db(e))?;
    tx.commit().await.map_err(|e| catalog.db(e))
}

impl Catalog {
    /// Products matching every word of `q` (as prefixes), exact names first, then by
    /// relevance.
    pub async fn search(&self, q: &str, limit: i64) -> Result<Vec<SearchHit>> {
        let words = words(q);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let exact = q.trim().to_lowercase();
        // Each database's own full-text query; the rest is the same.
        let (sql, matching) = match &self.backend {
            Backend::Sqlite(_) => (
                "SELECT p.product, p.major, p.version, p.owner, p.domain, p.description, p.address,
                        (lower(p.product) = $2 OR lower(p.name) = $2) AS exact, -bm25(product_search) AS score,
                        p.status, p.sunset
                    FROM product_search JOIN products p ON p.product = product_search.product AND p.major = product_search.major
                    WHERE product_search MATCH $1
                    ORDER BY exact DESC, p.status = 'retired', score DESC, p.product, p.major DESC LIMIT $3",
                words
                    .iter()
                    .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ),
            Backend::Postgres(_) => (
                "SELECT product, major, version, owner, domain, description, address,
                        (lower(product) = $2 OR lower(name) = $2) AS exact,
                        ts_rank(search, to_tsquery('simple', $1))::float8 AS score, status, sunset
                    FROM products
                    WHERE search @@ to_tsquery('simple', $1)
                    ORDER BY exact DESC, status = 'retired', score DESC, product, major DESC LIMIT $3",
                words.iter().map(|w| format!("{w}:*")).collect::<Vec<_>>().join(" & "),
            ),
        };
        let rows = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(matching)
                .bind(&exact)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(|e| self.db(e))?
                .iter()
                .map(hit)
                .collect::<Result<Vec<_>, sqlx::Error>>()
        });
        rows.map_err(|e| self.db(e))
    }

    /// How many products the catalog holds (for benchmarks and reports).
    pub async fn count(&self) -> Result<i64> {
        on_pool!(self, pool => {
            sqlx::query("SELECT count(*) FROM products")
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get::<i64, _>(0))
                .map_err(|e| self.db(e))
        })
    }
}

fn hit<R>(r: &R) -> Result<SearchHit, sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(SearchHit {
        product: r.try_get(0)?,
        major: r.try_get(1)?,
        version: r.try_get(2)?,
        owner: r.try_get(3)?,
        domain: r.try_get(4)?,
        description: r.try_get(5)?,
        address: r.try_get(6)?,
        exact: r.try_get(7)?,
        score: r.try_get(8)?,
        status: r.try_get(9)?,
        deprecation_date: r.try_get(10)?,
    })
}
