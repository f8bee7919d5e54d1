//! The catalog's schema, as sqlx migrations: the same tables on both databases, and
//! each database's own full-text search.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

const TABLES: &str = "
CREATE TABLE products (
    product TEXT NOT NULL,
    major BIGINT NOT NULL,
    version TEXT NOT NULL,
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    layer TEXT NOT NULL,
    description TEXT,
    address TEXT NOT NULL,
    contract_hash TEXT NOT NULL,
    git_commit TEXT,
    contract TEXT NOT NULL,
    columns TEXT NOT NULL,
    tags TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (product, major)
);
CREATE TABLE product_versions (
    product TEXT NOT NULL,
    major BIGINT NOT NULL,
    version TEXT NOT NULL,
    contract_hash TEXT NOT NULL,
    git_commit TEXT,
    applied_at TEXT NOT NULL
);
CREATE INDEX product_versions_product ON product_versions (product, major);
CREATE TABLE consumers (
    id TEXT PRIMARY KEY,
    product TEXT NOT NULL,
    major BIGINT NOT NULL,
    consumer TEXT NOT NULL,
    contact TEXT NOT NULL,
    purpose TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT
);
CREATE INDEX consumers_product ON consumers (product, major);
";

/// SQLite: an FTS5 table beside `products`, kept in step by the store.
const SQLITE_SEARCH: &str = "
CREATE VIRTUAL TABLE product_search USING fts5(
    product UNINDEXED, major UNINDEXED, name, description, columns, tags, owner, domain,
    tokenize = 'unicode61'
);
";

/// PostgreSQL: an expression index over the searchable text.
const POSTGRES_SEARCH: &str = "
CREATE INDEX products_search ON products USING GIN (to_tsvector('simple', search_text(name, description, columns, tags, owner, domain)));
";

const POSTGRES_FUNCTIONS: &str = "
CREATE FUNCTION search_text(name TEXT, description TEXT, columns TEXT, tags TEXT, owner TEXT, domain TEXT)
RETURNS TEXT LANGUAGE SQL IMMUTABLE AS $$
    SELECT translate(name || ' ' || coalesce(description, '') || ' ' || columns || ' ' || tags || ' ' || owner || ' ' || domain, '_.-', '   ')
$$;
";

/// PostgreSQL: the search vector stored with each row, so that ranking reads it
/// instead of parsing the text again for every match.
const POSTGRES_STORED_VECTOR: &str = "
ALTER TABLE products ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', search_text(name, description, columns, tags, owner, domain))) STORED;
CREATE INDEX products_search_vector ON products USING GIN (search);
DROP INDEX products_search;
";

/// Both databases: a product version's lifecycle once a newer major supersedes it, and
/// where a consumer wants to hear about changes.
const LIFECYCLE: &str = "
ALTER TABLE products ADD COLUMN deprecated_at TEXT;
ALTER TABLE products ADD COLUMN sunset TEXT;
ALTER TABLE products ADD COLUMN superseded_by BIGINT;
ALTER TABLE products ADD COLUMN retired_at TEXT;
ALTER TABLE consumers ADD COLUMN webhook TEXT;
";

fn migration(version: i64, description: &'static str, sql: &'static str) -> Migration {
    Migration::new(
        version,
        description.into(),
        MigrationType::Simple,
        sql.into_sql_str(),
        false,
    )
}

pub fn sqlite() -> Migrator {
    Migrator::with_migrations(vec![
        migration(1, "products, versions, consumers", TABLES),
        migration(2, "full-text search (FTS5)", SQLITE_SEARCH),
        migration(3, "lifecycle and consumer webhooks", LIFECYCLE),
    ])
}

pub fn postgres() -> Migrator {
    Migrator::with_migrations(vec![
        migration(1, "products, versions, consumers", TABLES),
        migration(2, "search text", POSTGRES_FUNCTIONS),
        migration(3, "full-text search index", POSTGRES_SEARCH),
        migration(4, "stored search vector", POSTGRES_STORED_VECTOR),
        migration(5, "lifecycle and consumer webhooks", LIFECYCLE),
    ])
}
