//! The read side of the API: product descriptions, rows per product version and SQL,
//! all through the access gateway (`trib-access`), which decides and audits.
//!
//! ```text
//!   GET  /v1/products                       every product version and its address
//!   GET  /v1/products/{p}                   contract, versions, what the caller sees
//!   GET  /v1/products/{p}/v{major}/rows     ?columns=a,b &col=value &col=gt.value
//!                                           &limit= &cursor= &as_of=
//!   POST /v1/sql                            {"sql": "..."} or the query as text
//! ```
//!
//! Answers are JSON, CSV, NDJSON, an Arrow IPC stream or Parquet by `Accept`.

use crate::error::ApiError;
use crate::openapi::{
    ColumnDescription, GrantDescription, ProductDescription, ProductList, ProductSummary, RowsPage, SqlAnswer,
    SqlRequest, VersionDescription,
};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use std::sync::Arc;
use trib_access::{ColumnAccess, Format, Gateway, Principal, QueryPath, QueryResult, TokenStore};
use trib_spec::Contract;

/// Who may read, and how they are recognised.
pub struct Reads {
    gateway: Arc<Gateway>,
    tokens: TokenStore,
    /// The identity of requests without a token; `None` refuses them (a server bound
    /// to a non-loopback address).
    anonymous: Option<Principal>,
    /// Queries run here, apart from the runtime that answers requests and commits
    /// ingest: a long scan must not hold up acknowledgements.
    queries: QueryRuntime,
    /// The catalog, for search; `None` when it could not be opened.
    catalog: Option<trib_catalog::Catalog>,
}

/// A runtime owned by the server; shut down without waiting, since it may be dropped
/// from within another runtime.
struct QueryRuntime(Option<tokio::runtime::Runtime>);

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Reads {
    pub fn new(gateway: Gateway, tokens: TokenStore, anonymous: Option<Principal>) -> std::io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("trib-query")
            // Deep plans recurse in DataFusion; see `trib`'s runtime for the size.
            .thread_stack_size(16 * 1024 * 1024)
            .enable_all()
            .build()?;
        Ok(Self {
            gateway: Arc::new(gateway),
            tokens,
            anonymous,
            queries: QueryRuntime(Some(runtime)),
            catalog: None,
        })
    }

    /// Answers `GET /v1/catalog/search` from `catalog`.
    pub fn with_catalog(mut self, catalog: trib_catalog::Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Runs a query on the query runtime.
    pub async fn query(
        &self,
        principal: &Principal,
        sql: &str,
        path: QueryPath,
    ) -> Result<QueryResult, trib_access::Error> {
        let Some(rt) = self.queries.0.as_ref() else {
            return Err(trib_access::Error::Internal("the query runtime is gone".into()));
        };
        let gateway = self.gateway.clone();
        let principal = principal.clone();
        let sql = sql.to_string();
        match rt
            .spawn(async move { gateway.query(&principal, &sql, path).await })
            .await
        {
            Ok(answer) => answer,
            Err(e) => Err(trib_access::Error::Internal(format!("the query task failed: {e}"))),
        }
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    /// The caller: its bearer token, or the anonymous identity where there is one.
    pub fn principal(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        match headers.get(header::AUTHORIZATION) {
            Some(value) => {
                let text = value.to_str().unwrap_or_default();
                let token = text
                    .strip_prefix("Bearer ")
                    .or_else(|| text.strip_prefix("bearer "))
                    .ok_or_else(|| {
                        ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
                    })?;
                Ok(self.tokens.authenticate(token.trim(), self.gateway.settings())?)
            }
            None => self
                .anonymous
                .clone()
                .ok_or_else(|| ApiError::Unauthorized("this server takes no anonymous requests: send a token".into())),
        }
    }

    /// Refuses events from a caller that may not write to the product.
    pub fn check_write(&self, headers: &HeaderMap, product: &str) -> Result<(), ApiError> {
        let principal = self.principal(headers)?;
        let Some(contract) = self.gateway.contract(product, None) else {
            return Ok(()); // the ingest path answers 404 itself
        };
        if self.gateway.may_write(&principal, contract) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "`{}` may not send events to `{product}`",
                principal.name
            )))
        }
    }
}

pub type SharedReads = Arc<Reads>;

fn address(c: &Contract) -> String {
    format!("/v1/products/{}/v{}", c.product.value, c.major())
}

pub async fn list(State(reads): State<Option<SharedReads>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let reads = enabled(reads)?;
    let principal = reads.principal(&headers)?;
    let products = reads
        .gateway
        .contracts()
        .map(|c| ProductSummary {
            product: c.product.value.to_string(),
            version: c.version.value.to_string(),
            major: c.major(),
            domain: c.product.value.domain().to_string(),
            owner: c.owner.clone(),
            layer: c.layer.as_str().to_string(),
            status: c.status.as_str().to_string(),
            description: c.description.clone(),
            address: address(c),
            readable: reads.gateway.view(&principal, c, &[]).is_ok(),
            events: c.layer == trib_spec::Layer::Bronze,
        })
        .collect();
    Ok(axum::Json(ProductList { products }).into_response())
}

/// One product: its contract's schema and grants per version, and which columns the
/// caller sees in clear, masked or not at all.
#[utoipa::path(get, path = "/v1/products/{product}",
    params(("product" = String, Path, description = "`domain.name`")),
    responses(
        (status = 200, description = "The product", body = ProductDescription),
        (status = 401, description = "No or a bad token", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such product", body = crate::openapi::ErrorBody),
    ))]
pub async fn describe(
    State(reads): State<Option<SharedReads>>,
    Path(product): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reads = enabled(reads)?;
    let principal = reads.principal(&headers)?;
    let versions: Vec<&Contract> = reads
        .gateway
        .contracts()
        .filter(|c| c.product.value.to_string() == product)
        .collect();
    if versions.is_empty() {
        return Err(ApiError::UnknownProduct(product));
    }
    let described = versions
        .iter()
        .map(|c| {
            let names: Vec<String> = c.schema.iter().map(|col| col.name.value.clone()).collect();
            let view = reads.gateway.view(&principal, c, &names).ok();
            let seen = |name: &str| match view.as_ref().and_then(|v| v.columns.iter().find(|(n, _)| n == name)) {
                None => "none",
                Some((_, ColumnAccess::Clear)) => "clear",
                Some((_, ColumnAccess::Masked(_))) => "masked",
                Some((_, ColumnAccess::Hidden)) => "hidden",
            };
            let lifecycle = reads.gateway.lifecycle(&product, c.major());
            VersionDescription {
                version: c.version.value.to_string(),
                major: c.major(),
                status: lifecycle
                    .as_ref()
                    .map_or_else(|| c.status.as_str().to_string(), |l| l.status.clone()),
                deprecation_date: lifecycle.and_then(|l| l.sunset),
                layer: c.layer.as_str().to_string(),
                address: address(c),
                key: c.key.iter().map(|k| k.value.clone()).collect(),
                event_time: c.event_time.as_ref().map(|e| e.value.clone()),
                columns: c
                    .schema
                    .iter()
                    .map(|col| ColumnDescription {
                        name: col.name.value.clone(),
                        data_type: col.data_type.value.to_string(),
                        required: col.required,
                        pii: col.pii,
                        classification: col.classification.map(|k| k.as_str().to_string()),
                        description: col.description.clone(),
                        access: seen(&col.name.value).to_string(),
                    })
                    .collect(),
                access: c
                    .access
                    .iter()
                    .map(|g| GrantDescription {
                        role: g.role.value.clone(),
                        level: g.level.as_str().to_string(),
                        row_filter: g.row_filter.as_ref().map(|f| f.value.clone()),
                    })
                    .collect(),
                readable: view.is_some(),
                row_filtered: view.as_ref().is_some_and(|v| v.row_filter.is_some()),
                certification: reads.gateway.certification(&product, c.major()),
            }
        })
        .collect();
    let latest = versions.last().copied();
    Ok(axum::Json(ProductDescription {
        product,
        owner: latest.map(|c| c.owner.clone()),
        description: latest.and_then(|c| c.description.clone()),
        versions: described,
    })
    .into_response())
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

/// Rows of one product version, as the caller may see them: `columns=a,b` selects,
/// `col=value` or `col=gt.value` (`eq`, `neq`, `gt`, `gte`, `lt`, `lte`, `like`)
/// filters, compared as the column's type; pages in key order with `cursor`; `as_of`
/// reads the past (a time or a table version). JSON, NDJSON, CSV, Arrow IPC or Parquet
/// by `Accept`.
#[utoipa::path(get, path = "/v1/products/{product}/v{major}/rows",
    params(
        ("product" = String, Path, description = "`domain.name`"),
        ("major" = u64, Path, description = "Major version"),
        ("columns" = Option<String>, Query, description = "Comma-separated columns"),
        ("limit" = Option<u64>, Query, description = "Rows per page, 1 to 10000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("as_of" = Option<String>, Query, description = "A time (2026-03-15T14:00:00Z) or a table version"),
    ),
    responses(
        (status = 200, description = "A page of rows", body = RowsPage),
        (status = 400, description = "A bad parameter or query", body = crate::openapi::ErrorBody),
        (status = 401, description = "No or a bad token", body = crate::openapi::ErrorBody),
        (status = 403, description = "No grant", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such product version", body = crate::openapi::ErrorBody),
    ))]
pub async fn rows(
    State(reads): State<Option<SharedReads>>,
    Path((product, version)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reads = enabled(reads)?;
    let principal = reads.principal(&headers)?;
    let major: u64 = version
        .strip_prefix('v')
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("`{version}` is not a major version such as `v1`")))?;
    let contract = reads
        .gateway
        .contract(&product, Some(major))
        .ok_or_else(|| ApiError::UnknownProduct(format!("{product}@v{major}")))?;
    let request = RowsRequest::parse(contract, &params)?;
    // A lookup by the whole key is served from the in-memory index when the product
    // has one; anything else, and products without, go through SQL.
    let point = match request.point_key(contract) {
        Some(key) => reads
            .gateway
            .point(&principal, &product, major, &key, QueryPath::Http)
            .await?
            .map(|r| request.project(r))
            .transpose()?,
        None => None,
    };
    let result = match point {
        Some(r) => r,
        None => {
            let sql = request.sql(contract);
            reads.query(&principal, &sql, QueryPath::Http).await?
        }
    };
    let next = request.next_cursor(contract, &result);
    let format = accept(&headers);
    let mut response = if format == Format::Json {
        let rows = encode_rows(&result)?;
        let body = format!(
            "{{\"product\":{},\"version\":{major},\"rows\":{rows},\"next_cursor\":{},\"warnings\":{}}}",
            serde_json::Value::from(product.clone()),
            serde_json::to_string(&next).unwrap_or_else(|_| "null".into()),
            serde_json::Value::from(result.warnings.clone()),
        );
        ([(header::CONTENT_TYPE, Format::Json.content_type())], body).into_response()
    } else {
        encoded(&result, format)?
    };
    if let Some(c) = next.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert("x-next-cursor", c);
    }
    warn_headers(&mut response, &result);
    Ok(response)
}

/// One read-only SQL query over the products the caller may read (DataFusion's
/// dialect; time travel with `FOR SYSTEM_TIME AS OF`, `VERSION AS OF`, `product@v1`).
#[utoipa::path(post, path = "/v1/sql",
    request_body(content = SqlRequest, description = "The query, as JSON or as the text body"),
    responses(
        (status = 200, description = "The answer", body = SqlAnswer),
        (status = 400, description = "Not a read-only query, or a mistake in it", body = crate::openapi::ErrorBody),
        (status = 401, description = "No or a bad token", body = crate::openapi::ErrorBody),
        (status = 403, description = "A product the caller may not read", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such product", body = crate::openapi::ErrorBody),
        (status = 408, description = "Over the time limit", body = crate::openapi::ErrorBody),
        (status = 422, description = "Failed while running, or over the memory limit", body = crate::openapi::ErrorBody),
    ))]
pub async fn sql(
    State(reads): State<Option<SharedReads>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let reads = enabled(reads)?;
    let principal = reads.principal(&headers)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let text = if is_json {
        serde_json::from_slice::<SqlRequest>(&body)
            .map_err(|e| ApiError::BadRequest(format!("the body must be {{\"sql\": \"...\"}}: {e}")))?
            .sql
    } else {
        String::from_utf8(body.to_vec()).map_err(|_| ApiError::BadRequest("the query is not UTF-8 text".into()))?
    };
    let result = reads.query(&principal, &text, QueryPath::Http).await?;
    let format = accept(&headers);
    let mut response = if format == Format::Json {
        let rows = encode_rows(&result)?;
        let columns: Vec<serde_json::Value> = result
            .schema
            .fields()
            .iter()
            .map(|f| json!({ "name": f.name(), "type": f.data_type().to_string() }))
            .collect();
        let body = format!(
            "{{\"columns\":{},\"rows\":{rows},\"row_count\":{},\"warnings\":{}}}",
            serde_json::Value::from(columns),
            result.rows,
            serde_json::Value::from(result.warnings.clone()),
        );
        ([(header::CONTENT_TYPE, Format::Json.content_type())], body).into_response()
    } else {
        encoded(&result, format)?
    };
    warn_headers(&mut response, &result);
    Ok(response)
}

#[derive(Debug, serde::Deserialize)]
pub struct SearchParams {
    q: String,
    limit: Option<i64>,
}

/// Full-text search over the catalog (names, descriptions, columns, tags, owners,
/// domains); a product whose address or name is the query comes first.
#[utoipa::path(get, path = "/v1/catalog/search",
    params(
        ("q" = String, Query, description = "Words; each matches as a prefix, all must match"),
        ("limit" = Option<i64>, Query, description = "At most this many results (20)"),
    ),
    responses(
        (status = 200, description = "Matching product versions, best first", body = crate::openapi::SearchAnswer),
        (status = 401, description = "No or a bad token", body = crate::openapi::ErrorBody),
        (status = 503, description = "The catalog is not available", body = crate::openapi::ErrorBody),
    ))]
pub async fn catalog_search(
    State(reads): State<Option<SharedReads>>,
    Query(params): Query<SearchParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reads = enabled(reads)?;
    let principal = reads.principal(&headers)?;
    let catalog = reads.catalog.as_ref().ok_or(ApiError::Unavailable)?;
    let hits = catalog
        .search(&params.q, params.limit.unwrap_or(20).clamp(1, 1000))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "catalog search failed");
            ApiError::Unavailable
        })?;
    let hits = hits
        .into_iter()
        .map(|h| crate::openapi::SearchHit {
            certification: reads
                .gateway
                .certification(&h.product, u64::try_from(h.major).unwrap_or_default()),
            readable: reads
                .gateway
                .contract(&h.product, u64::try_from(h.major).ok())
                .is_some_and(|c| reads.gateway.view(&principal, c, &[]).is_ok()),
            product: h.product,
            major: u64::try_from(h.major).unwrap_or_default(),
            version: h.version,
            owner: h.owner,
            domain: h.domain,
            description: h.description,
            address: h.address,
            exact: h.exact,
            score: h.score,
            status: h.status,
            deprecation_date: h.deprecation_date,
        })
        .collect();
    Ok(axum::Json(crate::openapi::SearchAnswer { query: params.q, hits }).into_response())
}

fn enabled(reads: Option<SharedReads>) -> Result<SharedReads, ApiError> {
    reads.ok_or_else(|| ApiError::UnknownProduct("this server serves no reads".into()))
}

fn accept(headers: &HeaderMap) -> Format {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map_or(Format::Json, Format::from_accept)
}

fn encode_rows(result: &QueryResult) -> Result<String, ApiError> {
    let bytes = trib_access::encode(&result.schema, &result.batches, Format::Json).map_err(ApiError::from)?;
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_string())
}

fn encoded(result: &QueryResult, format: Format) -> Result<Response, ApiError> {
    let format = if format == Format::Table { Format::Csv } else { format };
    let bytes = trib_access::encode(&result.schema, &result.batches, format).map_err(ApiError::from)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, format.content_type())], bytes).into_response())
}

fn warn_headers(response: &mut Response, result: &QueryResult) {
    for w in &result.warnings {
        if let Ok(v) = HeaderValue::from_str(w) {
            response.headers_mut().append("x-trib-warning", v);
        }
    }
}

/// A rows request, checked against the contract before any SQL is written.
struct RowsRequest {
    columns: Option<Vec<String>>,
    /// (column, operator, value)
    filters: Vec<(String, &'static str, String)>,
    limit: usize,
    /// Key values of the last row of the previous page.
    after: Option<Vec<String>>,
    as_of: Option<String>,
}

impl RowsRequest {
    fn parse(contract: &Contract, params: &[(String, String)]) -> Result<Self, ApiError> {
        let column = |name: &str| -> Result<String, ApiError> {
            contract.column(name).map(|c| c.name.value.clone()).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "`{name}` is not a column of `{}`; the columns are {}",
                    contract.product.value,
                    contract
                        .schema
                        .iter()
                        .map(|c| format!("`{}`", c.name.value))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        };
        let mut out = RowsRequest {
            columns: None,
            filters: Vec::new(),
            limit: DEFAULT_LIMIT,
            after: None,
            as_of: None,
        };
        for (k, v) in params {
            match k.as_str() {
                "columns" => {
                    out.columns = Some(
                        v.split(',')
                            .map(str::trim)
                            .filter(|c| !c.is_empty())
                            .map(column)
                            .collect::<Result<_, _>>()?,
                    );
                }
                "limit" => {
                    out.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| ApiError::BadRequest(format!("`limit` must be 1 to {MAX_LIMIT}")))?;
                }
                "cursor" => {
                    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(v)
                        .map_err(|_| ApiError::BadRequest("the cursor is not one this server gave out".into()))?;
                    out.after = Some(
                        serde_json::from_slice(&bytes)
                            .map_err(|_| ApiError::BadRequest("the cursor is not one this server gave out".into()))?,
                    );
                }
                "as_of" => out.as_of = Some(v.clone()),
                name => {
                    let (op, value) = match v.split_once('.') {
                        Some(("eq", rest)) => ("=", rest),
                        Some(("neq", rest)) => ("<>", rest),
                        Some(("gt", rest)) => (">", rest),
                        Some(("gte", rest)) => (">=", rest),
                        Some(("lt", rest)) => ("<", rest),
                        Some(("lte", rest)) => ("<=", rest),
                        Some(("like", rest)) => ("LIKE", rest),
                        _ => ("=", v.as_str()),
                    };
                    out.filters.push((column(name)?, op, value.to_string()));
                }
            }
        }
        if out.after.is_some() && contract.key.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "`{}` has no key, so its rows cannot be paged with a cursor",
                contract.product.value
            )));
        }
        if let Some(a) = &out.as_of
            && trib_access::parse_as_of(a).is_none()
        {
            return Err(ApiError::BadRequest(format!(
                "`as_of` must be a table version or a time such as 2026-03-15T14:00:00Z, not `{a}`"
            )));
        }
        Ok(out)
    }

    /// The key values, in key order, when the request is exactly a lookup by key.
    fn point_key(&self, contract: &Contract) -> Option<Vec<String>> {
        if self.after.is_some() || self.as_of.is_some() || contract.key.is_empty() {
            return None;
        }
        if self.filters.len() != contract.key.len() || self.filters.iter().any(|(_, op, _)| *op != "=") {
            return None;
        }
        contract
            .key
            .iter()
            .map(|k| {
                self.filters
                    .iter()
                    .find(|(c, _, _)| *c == k.value)
                    .map(|(_, _, v)| v.clone())
            })
            .collect()
    }

    /// `result` with only the selected columns (a point read returns whole rows).
    fn project(&self, result: QueryResult) -> Result<QueryResult, ApiError> {
        let Some(cols) = self.columns.as_ref().filter(|c| !c.is_empty()) else {
            return Ok(result);
        };
        let schema = result.schema.clone();
        let mut indices = Vec::new();
        for c in cols {
            match schema.index_of(c) {
                Ok(i) => indices.push(i),
                // Hidden from this caller: as in SQL, asking for it is a mistake.
                Err(_) => {
                    return Err(ApiError::BadRequest(format!("`{c}` is not a column you may read")));
                }
            }
        }
        let projected = Arc::new(
            schema
                .project(&indices)
                .map_err(|e| ApiError::BadRequest(format!("columns: {e}")))?,
        );
        let batches = result
            .batches
            .iter()
            .map(|b| b.project(&indices))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::BadRequest(format!("columns: {e}")))?;
        Ok(QueryResult {
            schema: projected,
            batches,
            ..result
        })
    }

    /// The query, in the same SQL any caller could send: it passes the same checks.
    fn sql(&self, contract: &Contract) -> String {
        let select = match &self.columns {
            Some(cols) if !cols.is_empty() => cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", "),
            _ => "*".to_string(),
        };
        let mut sql = format!(
            "SELECT {select} FROM {}",
            ident(&format!("{}@v{}", contract.product.value, contract.major()))
        );
        if let Some(a) = &self.as_of {
            match trib_access::parse_as_of(a) {
                Some(trib_access::AsOf::Version(v)) => sql.push_str(&format!(" VERSION AS OF {v}")),
                _ => sql.push_str(&format!(" FOR SYSTEM_TIME AS OF {}", literal(a))),
            }
        }
        let mut conditions: Vec<String> = self
            .filters
            .iter()
            .map(|(c, op, v)| format!("{} {op} {}", ident(c), typed(contract, c, v)))
            .collect();
        let key: Vec<String> = contract.key.iter().map(|k| k.value.clone()).collect();
        if let Some(after) = &self.after {
            // Rows after the cursor in key order: k1 > a1 OR (k1 = a1 AND k2 > a2) …
            let mut alternatives = Vec::new();
            for i in 0..key.len().min(after.len()) {
                let mut parts: Vec<String> = (0..i)
                    .map(|j| format!("{} = {}", ident(&key[j]), typed(contract, &key[j], &after[j])))
                    .collect();
                parts.push(format!("{} > {}", ident(&key[i]), typed(contract, &key[i], &after[i])));
                alternatives.push(format!("({})", parts.join(" AND ")));
            }
            conditions.push(format!("({})", alternatives.join(" OR ")));
        }
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        if !key.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(&key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", "));
        }
        sql.push_str(&format!(" LIMIT {}", self.limit));
        sql
    }

    /// A cursor after the last row, when the page is full and the key was selected.
    fn next_cursor(&self, contract: &Contract, result: &QueryResult) -> Option<String> {
        if result.rows < self.limit as u64 || contract.key.is_empty() {
            return None;
        }
        let last = result.batches.iter().rev().find(|b| b.num_rows() > 0)?;
        let row = last.num_rows() - 1;
        let mut values = Vec::new();
        for k in &contract.key {
            let col = last.column_by_name(&k.value)?;
            let text = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).ok()?;
            let text = text.as_any().downcast_ref::<arrow::array::StringArray>()?;
            if text.is_null(row) {
                return None;
            }
            values.push(text.value(row).to_string());
        }
        let json = serde_json::to_vec(&values).ok()?;
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }
}

use arrow::array::Array as _;

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A value as a literal of the column's type, so comparisons are numeric or temporal
/// where the column is.
fn typed(contract: &Contract, column: &str, value: &str) -> String {
    let sql_type = contract.column(column).and_then(|c| {
        use arrow::datatypes::DataType as T;
        Some(match c.data_type.value.to_arrow() {
            T::Utf8 | T::LargeUtf8 | T::Utf8View => return None,
            T::Boolean => "BOOLEAN".to_string(),
            T::Int8 | T::Int16 | T::Int32 => "INT".to_string(),
            T::Int64 => "BIGINT".to_string(),
            T::Float32 => "REAL".to_string(),
            T::Float64 => "DOUBLE".to_string(),
            T::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
            T::Date32 | T::Date64 => "DATE".to_string(),
            T::Timestamp(_, _) => "TIMESTAMP".to_string(),
            _ => return None,
        })
    });
    match sql_type {
        Some(t) => format!("CAST({} AS {t})", literal(value)),
        None => literal(value),
    }
}
