//! The catalog: which product versions are deployed, by whom, from which contract and
//! commit, who consumes them, and search over all of it. One store behind one type,
//! SQLite in the project's `.trib/` by default or PostgreSQL by a settings URL (so that
//! several `trib serve` instances share it), through sqlx; the schema migrates itself
//! on open.
//!
//! ```text
//!   trib apply ──► register(product version: contract, hash, commit, owner, address)
//!                      │
//!        products ─────┼──► search (SQLite FTS5 | PostgreSQL full text), exact names first
//!        product_versions (every apply)   consumers (requests, approvals)
//! ```
//!
//! It stores what contracts say and who asked for what; it reads no data and decides
//! no access by itself.

mod migrations;
mod search;
mod store;

pub use search::SearchHit;
pub use store::{Catalog, Consumer, ProductRecord, Summary, contract_hash};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The catalog URL is not one this build knows.
    #[error(
        "catalog URL `{url}` is not supported\nhint: use `sqlite://PATH` (the default, `sqlite://.trib/catalog.db`) or `postgres://user@host/db` in `[catalog] url`"
    )]
    Url { url: String },
    /// The database could not be reached or refused a statement: external, retryable.
    #[error("catalog database `{url}`: {source}\nhint: check that the database is up and `[catalog] url` is right")]
    Database {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("catalog schema migration failed: {source}")]
    Migrate {
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("cannot create `{}`: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A consumer registration that does not exist.
    #[error("no access request `{0}`\nhint: `trib consumers list` shows the requests and their ids")]
    UnknownRequest(String),
}
