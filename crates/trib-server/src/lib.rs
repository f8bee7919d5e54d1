//! The HTTP API of Tributary (axum).
//!
//! ```text
//!   POST /v1/products/{p}/events ──► per-product queue ──► writer task: group commit
//!        (NDJSON | JSON | CSV)          (bounded: 429)       (records or latency bound)
//!                                                                │ one Delta commit per table,
//!   200 {accepted, dead_lettered} ◄──── after the commit ────────┘ each batch's id recorded
//!   GET /healthz   GET /metrics (Prometheus)
//! ```
//!
//! A request is answered 200 only after its rows and dead letters are durable. With an
//! `Idempotency-Key`, a retried request is recognised and lands once. This crate owns
//! HTTP concerns (status codes, limits, queues, metrics); validation and tables belong
//! to `trib-ingest` and `trib-lake`.

mod error;
mod ingest;
pub mod metrics;
mod routes;

pub use error::ApiError;
pub use ingest::IngestHub;
pub use routes::router;

use std::time::Duration;

/// How the server runs (from flags, `TRIB_*` variables and `trib.toml`).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub max_body_bytes: usize,
    /// A product's waiting requests are committed together once they hold this many
    /// records ...
    pub group_commit_records: usize,
    /// ... or once the oldest has waited this long.
    pub group_commit_latency: Duration,
    /// Requests that may wait per product before new ones get 429.
    pub queue: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            group_commit_records: 50_000,
            group_commit_latency: Duration::from_millis(20),
            queue: 1024,
        }
    }
}

/// Serves until `shutdown` resolves; requests in flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: IngestHub,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(hub, &settings);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
