//! Routes and handlers.

use crate::ServerSettings;
use crate::error::ApiError;
use crate::ingest::IngestHub;
use crate::reads::{self, SharedReads};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serde_json::json;
use trib_ingest::dead_letter::Provenance;
use trib_ingest::pipeline::{Body, Pending};
use trib_ingest::{BatchId, Format};

/// What the handlers share: the ingest queues and, where reads are served, the gateway.
#[derive(Clone)]
pub struct App {
    pub hub: IngestHub,
    pub reads: Option<SharedReads>,
}

impl FromRef<App> for IngestHub {
    fn from_ref(app: &App) -> Self {
        app.hub.clone()
    }
}

impl FromRef<App> for Option<SharedReads> {
    fn from_ref(app: &App) -> Self {
        app.reads.clone()
    }
}

/// The application: every route, with the body limit applied.
pub fn router(hub: IngestHub, reads: Option<SharedReads>, settings: &ServerSettings) -> Router {
    crate::metrics::handle();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/v1/products", get(products))
        .route("/v1/products/{product}", get(reads::describe))
        .route("/v1/products/{product}/{version}/rows", get(reads::rows))
        .route("/v1/products/{product}/events", post(events))
        .route("/v1/sql", post(reads::sql))
        .route("/v1/catalog/search", get(reads::catalog_search))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .with_state(App { hub, reads })
}

/// Liveness: answers while the server runs.
#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200, description = "The server runs", body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", security(()), responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(crate) async fn openapi() -> impl IntoResponse {
    use utoipa::OpenApi;
    Json(crate::openapi::ApiDoc::openapi())
}

/// Prometheus metrics: ingest rates, dead letters, commit, ack and query durations.
#[utoipa::path(get, path = "/metrics", security(()), responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
}

/// Every product version: address, owner, layer, status, and whether the caller may read it.
#[utoipa::path(get, path = "/v1/products", responses(
    (status = 200, description = "The products", body = crate::openapi::ProductList),
    (status = 401, description = "No or a bad token", body = crate::openapi::ErrorBody),
))]
pub(crate) async fn products(
    State(hub): State<IngestHub>,
    State(reads): State<Option<SharedReads>>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    if reads.is_some() {
        return reads::list(State(reads), headers).await;
    }
    let items: Vec<serde_json::Value> = hub
        .products()
        .into_iter()
        .map(|(name, layer)| json!({ "product": name, "layer": layer.as_str(), "events": layer == trib_spec::Layer::Bronze }))
        .collect();
    Ok(Json(json!({ "products": items })).into_response())
}

/// Longest idempotency key accepted; keys are ids, not payloads.
const MAX_KEY_LEN: usize = 200;

/// Events into a bronze product: NDJSON, a JSON array or CSV (by `Content-Type`),
/// validated against the contract; rejects go to the dead-letter table. Answered once
/// durable; an `Idempotency-Key` makes a retry land once.
#[utoipa::path(post, path = "/v1/products/{product}/events",
    params(
        ("product" = String, Path, description = "`domain.name` of a bronze product"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request land once"),
    ),
    request_body(content = String, description = "Records", content_type = "application/x-ndjson"),
    responses(
        (status = 200, description = "Committed", body = crate::openapi::IngestAnswer),
        (status = 400, description = "Malformed body", body = crate::openapi::ErrorBody),
        (status = 401, description = "No or a bad token", body = crate::openapi::ErrorBody),
        (status = 403, description = "No write grant", body = crate::openapi::ErrorBody),
        (status = 404, description = "Unknown or not a bronze product", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body too large"),
        (status = 415, description = "Unsupported content type", body = crate::openapi::ErrorBody),
        (status = 429, description = "Queue full; retry after Retry-After", body = crate::openapi::ErrorBody),
        (status = 503, description = "Storage failed; nothing stored", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn events(
    State(hub): State<IngestHub>,
    State(reads): State<Option<SharedReads>>,
    Path(product): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let result = match reads.as_ref().map(|r| r.check_write(&headers, &product)) {
        Some(Err(e)) => Err(e),
        _ => accept(&hub, &product, &headers, body).await,
    };
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status(),
    };
    metrics::counter!(crate::metrics::INGEST_REQUESTS, "product" => product.clone(), "status" => status.as_u16().to_string()).increment(1);
    result
}

async fn accept(
    hub: &IngestHub,
    product: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Json<crate::openapi::IngestAnswer>, ApiError> {
    hub.check(product)?;
    let format = match headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default())
    {
        None | Some("") => hub.default_format(product),
        Some(ct) => Format::from_content_type(ct).ok_or_else(|| ApiError::UnsupportedMediaType(ct.to_string()))?,
    };
    let id = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .map_err(|_| ApiError::BadRequest("the Idempotency-Key header must be printable ASCII".into()))?;
            if key.is_empty() || key.len() > MAX_KEY_LEN {
                return Err(ApiError::BadRequest(format!(
                    "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} characters"
                )));
            }
            Some(BatchId::new(format!("http:{key}"), 0))
        }
    };
    let provenance = Provenance {
        received_at_micros: chrono_now_micros(),
        source: "http".into(),
        batch_id: id
            .as_ref()
            .map_or_else(|| format!("http:{}", uuid_like()), |b| b.app_id.clone()),
    };
    let pending = Pending {
        body: Body::Encoded { format, bytes: body },
        provenance,
        id,
    };
    let r = hub.submit(product, pending).await?;
    Ok(Json(crate::openapi::IngestAnswer {
        product: product.to_string(),
        received: r.received,
        accepted: r.accepted,
        dead_lettered: r.dead_lettered,
        dead_letters_by_reason: r.by_reason.iter().map(|(k, v)| (k.code().to_string(), *v)).collect(),
        expectation_warnings: r.expectation_warnings.clone(),
        duplicate: r.duplicate,
        version: r.bronze_version,
    }))
}

fn chrono_now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A unique enough id for batches without an idempotency key (time and a counter).
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{:x}-{:x}", chrono_now_micros(), N.fetch_add(1, Ordering::Relaxed))
}
