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
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/v1/products", get(products))
        .route("/v1/products/{product}", get(reads::describe))
        .route("/v1/products/{product}/{version}/rows", get(reads::rows))
        .route("/v1/products/{product}/events", post(events))
        .route("/v1/sql", post(reads::sql))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .with_state(App { hub, reads })
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
}

async fn products(
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

async fn events(
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
) -> Result<Json<serde_json::Value>, ApiError> {
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
    let by_reason: serde_json::Map<String, serde_json::Value> = r
        .by_reason
        .iter()
        .map(|(k, v)| (k.code().to_string(), (*v).into()))
        .collect();
    Ok(Json(json!({
        "product": product,
        "received": r.received,
        "accepted": r.accepted,
        "dead_lettered": r.dead_lettered,
        "dead_letters_by_reason": by_reason,
        "expectation_warnings": r.expectation_warnings,
        "duplicate": r.duplicate,
        "version": r.bronze_version,
    })))
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
