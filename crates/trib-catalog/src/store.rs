//! The store: product versions as deployed, their history, and consumers' requests.

use crate::{Error, Result};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::path::Path;
use std::str::FromStr;

/// One product major version as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRecord {
    pub product: String,
    pub major: i64,
    pub version: String,
    pub domain: String,
    pub name: String,
    pub owner: String,
    pub status: String,
    pub layer: String,
    pub description: Option<String>,
    /// Where it is served: `/v1/products/{product}/v{major}`.
    pub address: String,
    /// SHA-256 of the contract's text.
    pub contract_hash: String,
    /// The project's git commit when it was applied, when in git.
    pub git_commit: Option<String>,
    /// The contract's YAML as applied.
    pub contract: String,
    /// Column names, space-separated (searched).
    pub columns: String,
    /// Tags, space-separated (searched).
    pub tags: String,
    pub applied_at: String,
    /// When a newer major superseded it (or its contract said `deprecated`).
    pub deprecated_at: Option<String>,
    /// Its deprecation date: served until then, retired by the first apply after it.
    pub sunset: Option<String>,
    /// The major version that superseded it.
    pub superseded_by: Option<i64>,
    pub retired_at: Option<String>,
}

/// The hash by which the catalog tells contract texts apart: SHA-256, hex.
pub fn contract_hash(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

impl ProductRecord {
    /// The record of a contract, from its text, as applied now.
    pub fn of(contract: &trib_spec::Contract, text: &str, git_commit: Option<String>) -> Self {
        let product = contract.product.value.to_string();
        let major = contract.major() as i64;
        Self {
            domain: contract.product.value.domain().to_string(),
            name: contract.product.value.name().to_string(),
            version: contract.version.value.to_string(),
            owner: contract.owner.clone(),
            status: contract.status.as_str().to_string(),
            layer: contract.layer.as_str().to_string(),
            description: contract.description.clone(),
            address: format!("/v1/products/{product}/v{major}"),
            contract_hash: contract_hash(text),
            git_commit,
            contract: text.to_string(),
            columns: contract
                .schema
                .iter()
                .map(|c| c.name.value.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            tags: contract.tags.join(" "),
            applied_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            deprecated_at: None,
            sunset: None,
            superseded_by: None,
            retired_at: None,
            product,
            major,
        }
    }

    /// Served to readers: not retired.
    pub fn is_served(&self) -> bool {
        self.status != "retired"
    }
}

/// What the catalog knows of one product version without its contract: enough to plan
/// an apply of thousands of contracts in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub product: String,
    pub major: i64,
    pub version: String,
    pub status: String,
    pub contract_hash: String,
    pub sunset: Option<String>,
    pub superseded_by: Option<i64>,
}

/// A consumer's request for a product version, and its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: String,
    pub product: String,
    pub major: i64,
    pub consumer: String,
    pub contact: String,
    pub purpose: String,
    /// `requested`, `approved`.
    pub status: String,
    pub requested_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    /// Where notices about the product version are POSTed (deprecation, retirement).
    pub webhook: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The catalog of one project.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(crate) backend: Backend,
    url: String,
}

/// Runs the same statements on whichever pool the catalog has.
macro_rules! on_pool {
    ($self:expr, $pool:ident => $body:expr) => {
        match &$self.backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

const COLUMNS: &str = "product, major, version, domain, name, owner, status, layer, description, address, contract_hash, git_commit, contract, columns, tags, applied_at, deprecated_at, sunset, superseded_by, retired_at";

impl Catalog {
    /// Opens (and creates, for SQLite) the catalog at `url`, relative paths under
    /// `project_dir`, and brings its schema up to date.
    pub async fn open(url: &str, project_dir: &Path) -> Result<Self> {
        let db = |source| Error::Database {
            url: url.to_string(),
            source,
        };
        let backend = if let Some(path) = url.strip_prefix("sqlite://") {
            let path = project_dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
                .map_err(db)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(db)?;
            crate::migrations::sqlite()
                .run(&pool)
                .await
                .map_err(|source| Error::Migrate { source })?;
            Backend::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(db)?;
            crate::migrations::postgres()
                .run(&pool)
                .await
                .map_err(|source| Error::Migrate { source })?;
            Backend::Postgres(pool)
        } else {
            return Err(Error::Url { url: url.to_string() });
        };
        Ok(Self {
            backend,
            url: redact(url),
        })
    }

    /// The catalog's URL without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    pub(crate) fn db(&self, source: sqlx::Error) -> Error {
        Error::Database {
            url: self.url.clone(),
            source,
        }
    }

    /// Records a product version as applied: the current record, a line of history,
    /// and its search entry, in one transaction.
    pub async fn register(&self, r: &ProductRecord) -> Result<()> {
        let upsert = "INSERT INTO products (product, major, version, domain, name, owner, status, layer, description, address, contract_hash, git_commit, contract, columns, tags, applied_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (product, major) DO UPDATE SET version = excluded.version, domain = excluded.domain,
               name = excluded.name, owner = excluded.owner, layer = excluded.layer,
               status = CASE WHEN products.status = 'retired' OR (products.status = 'deprecated' AND excluded.status IN ('draft', 'active'))
                             THEN products.status ELSE excluded.status END,
               description = excluded.description, address = excluded.address, contract_hash = excluded.contract_hash,
               git_commit = excluded.git_commit, contract = excluded.contract, columns = excluded.columns,
               tags = excluded.tags, applied_at = excluded.applied_at";
        let history = "INSERT INTO product_versions (product, major, version, contract_hash, git_commit, applied_at) VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(|e| self.db(e))?;
            sqlx::query(upsert)
                .bind(&r.product)
                .bind(r.major)
                .bind(&r.version)
                .bind(&r.domain)
                .bind(&r.name)
                .bind(&r.owner)
                .bind(&r.status)
                .bind(&r.layer)
                .bind(&r.description)
                .bind(&r.address)
                .bind(&r.contract_hash)
                .bind(&r.git_commit)
                .bind(&r.contract)
                .bind(&r.columns)
                .bind(&r.tags)
                .bind(&r.applied_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
            sqlx::query(history)
                .bind(&r.product)
                .bind(r.major)
                .bind(&r.version)
                .bind(&r.contract_hash)
                .bind(&r.git_commit)
                .bind(&r.applied_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
            tx.commit().await.map_err(|e| self.db(e))?;
        });
        if let Backend::Sqlite(pool) = &self.backend {
            crate::search::index_sqlite(self, pool, r).await?;
        }
        Ok(())
    }

    /// One product version, when applied.
    pub async fn get(&self, product: &str, major: i64) -> Result<Option<ProductRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM products WHERE product = $1 AND major = $2");
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(product)
                .bind(major)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.db(e))?;
            row.map(|r| record(&r)).transpose().map_err(|e| self.db(e))
        })
    }

    /// Every applied product version, by address.
    pub async fn products(&self) -> Result<Vec<ProductRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM products ORDER BY product, major");
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
                .map_err(|e| self.db(e))?;
            rows.iter().map(record).collect::<Result<Vec<_>, _>>().map_err(|e| self.db(e))
        })
    }

    /// Every apply of a product: (major, version, contract hash, commit, when), oldest first.
    pub async fn history(&self, product: &str) -> Result<Vec<(i64, String, String, Option<String>, String)>> {
        let sql = "SELECT major, version, contract_hash, git_commit, applied_at FROM product_versions WHERE product = $1 ORDER BY applied_at, major";
        on_pool!(self, pool => {
            let rows = sqlx::query(sql).bind(product).fetch_all(pool).await.map_err(|e| self.db(e))?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| self.db(e))
        })
    }

    /// Every applied version of one product (or of all) without its contract text, by
    /// address.
    pub async fn summaries(&self, product: Option<&str>) -> Result<Vec<Summary>> {
        let sql = "SELECT product, major, version, status, contract_hash, sunset, superseded_by FROM products
                   WHERE ($1 IS NULL OR product = $1) ORDER BY product, major";
        on_pool!(self, pool => {
            let rows = sqlx::query(sql).bind(product).fetch_all(pool).await.map_err(|e| self.db(e))?;
            rows.iter()
                .map(|r| {
                    Ok(Summary {
                        product: r.try_get(0)?,
                        major: r.try_get(1)?,
                        version: r.try_get(2)?,
                        status: r.try_get(3)?,
                        contract_hash: r.try_get(4)?,
                        sunset: r.try_get(5)?,
                        superseded_by: r.try_get(6)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| self.db(e))
        })
    }

    /// Marks a product version deprecated, superseded by `by` (a newer major, when one
    /// is the reason) and served until `sunset`. A version already deprecated keeps its
    /// first date; a retired one stays retired. True when it changed.
    pub async fn deprecate(&self, product: &str, major: i64, by: Option<i64>, sunset: &str) -> Result<bool> {
        let sql = "UPDATE products SET status = 'deprecated', deprecated_at = $1, sunset = $2, superseded_by = coalesce($3, superseded_by)
                   WHERE product = $4 AND major = $5 AND (status IN ('draft', 'active') OR (status = 'deprecated' AND sunset IS NULL))";
        let changed = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(now())
                .bind(sunset)
                .bind(by)
                .bind(product)
                .bind(major)
                .execute(pool)
                .await
                .map_err(|e| self.db(e))?
                .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Retires a product version: no longer served; its table and history are kept.
    /// True when it changed.
    pub async fn retire(&self, product: &str, major: i64) -> Result<bool> {
        let sql = "UPDATE products SET status = 'retired', retired_at = $1 WHERE product = $2 AND major = $3 AND retired_at IS NULL";
        let changed = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(now())
                .bind(product)
                .bind(major)
                .execute(pool)
                .await
                .map_err(|e| self.db(e))?
                .rows_affected()
        });
        Ok(changed > 0)
    }

    /// How many times each product version was applied: `(product, major, applies)`.
    pub async fn apply_counts(&self) -> Result<Vec<(String, i64, i64)>> {
        let sql =
            "SELECT product, major, count(*) FROM product_versions GROUP BY product, major ORDER BY product, major";
        on_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await.map_err(|e| self.db(e))?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| self.db(e))
        })
    }

    /// A consumer asks for a product version: the request the owner approves.
    pub async fn request_access(
        &self,
        product: &str,
        major: i64,
        consumer: &str,
        contact: &str,
        purpose: &str,
        webhook: Option<&str>,
    ) -> Result<Consumer> {
        let c = Consumer {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            product: product.to_string(),
            major,
            consumer: consumer.to_string(),
            contact: contact.to_string(),
            purpose: purpose.to_string(),
            status: "requested".into(),
            requested_at: now(),
            decided_at: None,
            decided_by: None,
            webhook: webhook.map(str::to_string),
        };
        let sql = "INSERT INTO consumers (id, product, major, consumer, contact, purpose, status, requested_at, webhook) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(&c.id)
                .bind(&c.product)
                .bind(c.major)
                .bind(&c.consumer)
                .bind(&c.contact)
                .bind(&c.purpose)
                .bind(&c.status)
                .bind(&c.requested_at)
                .bind(&c.webhook)
                .execute(pool)
                .await
                .map_err(|e| self.db(e))?;
        });
        Ok(c)
    }

    /// The owner's approval of a request.
    pub async fn approve(&self, id: &str, by: &str) -> Result<Consumer> {
        let sql = "UPDATE consumers SET status = 'approved', decided_at = $1, decided_by = $2 WHERE id = $3";
        let updated = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(now())
                .bind(by)
                .bind(id)
                .execute(pool)
                .await
                .map_err(|e| self.db(e))?
                .rows_affected()
        });
        if updated == 0 {
            return Err(Error::UnknownRequest(id.to_string()));
        }
        self.consumers(None)
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| Error::UnknownRequest(id.to_string()))
    }

    /// Consumers of one product (or all), oldest request first.
    pub async fn consumers(&self, product: Option<&str>) -> Result<Vec<Consumer>> {
        let sql = "SELECT id, product, major, consumer, contact, purpose, status, requested_at, decided_at, decided_by, webhook FROM consumers
                   WHERE ($1 IS NULL OR product = $1) ORDER BY requested_at, id";
        on_pool!(self, pool => {
            let rows = sqlx::query(sql).bind(product).fetch_all(pool).await.map_err(|e| self.db(e))?;
            rows.iter()
                .map(|r| {
                    Ok(Consumer {
                        id: r.try_get(0)?,
                        product: r.try_get(1)?,
                        major: r.try_get(2)?,
                        consumer: r.try_get(3)?,
                        contact: r.try_get(4)?,
                        purpose: r.try_get(5)?,
                        status: r.try_get(6)?,
                        requested_at: r.try_get(7)?,
                        decided_at: r.try_get(8)?,
                        decided_by: r.try_get(9)?,
                        webhook: r.try_get(10)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| self.db(e))
        })
    }
}

fn record<R>(r: &R) -> Result<ProductRecord, sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ProductRecord {
        product: r.try_get(0)?,
        major: r.try_get(1)?,
        version: r.try_get(2)?,
        domain: r.try_get(3)?,
        name: r.try_get(4)?,
        owner: r.try_get(5)?,
        status: r.try_get(6)?,
        layer: r.try_get(7)?,
        description: r.try_get(8)?,
        address: r.try_get(9)?,
        contract_hash: r.try_get(10)?,
        git_commit: r.try_get(11)?,
        contract: r.try_get(12)?,
        columns: r.try_get(13)?,
        tags: r.try_get(14)?,
        applied_at: r.try_get(15)?,
        deprecated_at: r.try_get(16)?,
        sunset: r.try_get(17)?,
        superseded_by: r.try_get(18)?,
        retired_at: r.try_get(19)?,
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
