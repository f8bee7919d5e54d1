//! The OpenAPI document of the API, generated from the handlers' annotations and the
//! answer types below, served at `GET /v1/openapi.json`.

use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tributary",
        description = "Data products: events in, rows and SQL out, through one access gateway (roles, PII masks, row filters, audit)."
    ),
    paths(
        crate::routes::healthz,
        crate::routes::metrics,
        crate::routes::products,
        crate::routes::events,
        crate::reads::describe,
        crate::reads::rows,
        crate::reads::sql,
        crate::reads::catalog_search,
        crate::routes::openapi,
    ),
    components(schemas(
        ErrorBody,
        IngestAnswer,
        ProductList,
        ProductSummary,
        SearchAnswer,
        SearchHit,
        ProductDescription,
        VersionDescription,
        ColumnDescription,
        GrantDescription,
        RowsPage,
        SqlRequest,
        SqlAnswer,
        SqlColumn,
    )),
    modifiers(&Bearer),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Every error: a stable code, a message and how to fix it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// e.g. `unknown_product`, `forbidden`, `bad_query`, `busy`.
    pub error: String,
    pub message: String,
    pub hint: String,
}

/// The answer to a batch of events, sent once it is durable.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAnswer {
    pub product: String,
    pub received: u64,
    pub accepted: u64,
    pub dead_lettered: u64,
    /// Dead letters by reason code (`type_mismatch`, `missing_required`, …).
    pub dead_letters_by_reason: BTreeMap<String, u64>,
    /// Rows kept despite failing an expectation with `on_violation: warn`, by expectation.
    pub expectation_warnings: BTreeMap<String, u64>,
    /// Whether this was a retry of a batch already committed (same `Idempotency-Key`).
    pub duplicate: bool,
    /// The bronze table version that holds the batch.
    pub version: Option<u64>,
}

/// Catalog search results, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchAnswer {
    pub query: String,
    pub hits: Vec<SearchHit>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    pub product: String,
    pub major: u64,
    pub version: String,
    pub owner: String,
    pub domain: String,
    pub description: Option<String>,
    /// Where its rows are: `/v1/products/{product}/v{major}`.
    pub address: String,
    /// The query is the product's address or name.
    pub exact: bool,
    /// Relevance within this search, higher is better.
    pub score: f64,
    /// Whether the caller may read it.
    pub readable: bool,
    /// Certification earned from its SLOs, once evaluated.
    pub certification: Option<String>,
    /// `active`, `draft`, `deprecated` (served until `deprecation_date`) or `retired`.
    pub status: String,
    pub deprecation_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    pub products: Vec<ProductSummary>,
}

/// One product version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSummary {
    /// `domain.name`.
    pub product: String,
    /// Semantic version of the contract.
    pub version: String,
    pub major: u64,
    pub domain: String,
    pub owner: String,
    /// `bronze`, `silver`, `gold` or `view`.
    pub layer: String,
    /// `draft`, `active`, `deprecated` or `retired`.
    pub status: String,
    pub description: Option<String>,
    /// Where its rows are: `/v1/products/{product}/v{major}`.
    pub address: String,
    /// Whether the caller may read it.
    pub readable: bool,
    /// Whether it takes events (`POST …/events`).
    pub events: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductDescription {
    pub product: String,
    pub owner: Option<String>,
    pub description: Option<String>,
    pub versions: Vec<VersionDescription>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDescription {
    pub version: String,
    pub major: u64,
    /// `draft`, `active`, `deprecated` (served until `deprecation_date`) or `retired`
    /// (no longer served): the contract's, or the catalog's once a newer major
    /// superseded it.
    pub status: String,
    /// When a deprecated version stops being served.
    pub deprecation_date: Option<String>,
    pub layer: String,
    pub address: String,
    pub key: Vec<String>,
    pub event_time: Option<String>,
    pub columns: Vec<ColumnDescription>,
    pub access: Vec<GrantDescription>,
    /// Whether the caller may read this version.
    pub readable: bool,
    /// Whether the caller sees only some rows.
    pub row_filtered: bool,
    /// Certification earned from its SLOs (`candidate`, `certified`, `degraded`,
    /// `decertified`, `draft`), once evaluated.
    pub certification: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnDescription {
    pub name: String,
    /// The contract's type, e.g. `decimal(12,2)`.
    #[serde(rename = "type")]
    pub data_type: String,
    pub required: bool,
    pub pii: bool,
    pub classification: Option<String>,
    pub description: Option<String>,
    /// How the caller sees it: `clear`, `masked`, `hidden`, or `none` (no access).
    pub access: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantDescription {
    pub role: String,
    pub level: String,
    pub row_filter: Option<String>,
}

/// A page of rows (JSON); other formats carry the cursor in `X-Next-Cursor`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowsPage {
    pub product: String,
    pub version: u64,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Value>,
    /// Pass back as `cursor=` for the next page; absent on the last.
    pub next_cursor: Option<String>,
    pub warnings: Vec<String>,
}

/// A query, as JSON; a body of another content type is the query itself.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct SqlRequest {
    pub sql: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SqlAnswer {
    pub columns: Vec<SqlColumn>,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Value>,
    pub row_count: u64,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SqlColumn {
    pub name: String,
    /// Arrow type, e.g. `Utf8`, `Decimal128(12, 2)`.
    #[serde(rename = "type")]
    pub data_type: String,
}
