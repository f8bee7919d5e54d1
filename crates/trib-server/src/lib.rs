//! The HTTP API of Tributary (axum).
//!
//! ```text
//!   POST /v1/products/{p}/events ──► per-product queue ──► writer task: group commit
//!        (NDJSON | JSON | CSV)          (bounded: 429)       (records or latency bound)
//!                                                                │ one Delta commit per table,
//!   200 {accepted, dead_lettered} ◄──── after the commit ────────┘ each batch's id recorded
//!   GET /healthz   GET /metrics (Prometheus)
//!
//!   GET /v1/products[/{p}[/v{major}/rows]]   POST /v1/sql ──► trib-access gateway
//!        (Bearer token → roles; masks, row filters, sandbox, audit: see `reads`)
//! ```
//!
//! A request is answered 200 only after its rows and dead letters are durable. With an
//! `Idempotency-Key`, a retried request is recognised and lands once. This crate owns
//! HTTP concerns (status codes, limits, queues, metrics); validation and tables belong
//! to `trib-ingest` and `trib-lake`.

mod error;
mod ingest;
pub mod metrics;
pub mod openapi;
mod pg;
mod reads;
mod routes;

pub use error::ApiError;
pub use ingest::IngestHub;
pub use pg::serve_pg;
pub use reads::{Reads, SharedReads};
pub use routes::{App, router};

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
    /// The runtime that compacts bronze tables beside their writers (the server's own
    /// when `None`): a rewrite is CPU work that must not take the workers that answer
    /// requests.
    pub background: Option<tokio::runtime::Handle>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            group_commit_records: 50_000,
            group_commit_latency: Duration::from_millis(5),
            queue: 1024,
            background: None,
        }
    }
}

/// Serves until `shutdown` resolves; requests in flight finish first. With `reads`,
/// the read API is served too and its audit is committed every second and at the end.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: IngestHub,
    reads: Option<SharedReads>,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let auditor = reads.as_ref().map(|r| r.gateway().auditor().clone());
    let flusher = auditor.clone().map(|a| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(AUDIT_FLUSH_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = a.flush().await {
                    tracing::error!(error = %e, "cannot commit the audit; keeping the entries for the next try");
                }
            }
        })
    });
    // Point-read indexes follow their tables: rebuilt when a table has a new version.
    let refresher = reads.clone().map(|r| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POINT_REFRESH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = r.gateway().refresh_points().await {
                    tracing::warn!(error = %e, "cannot refresh the point-read indexes; retrying");
                }
            }
        })
    });
    let app = router(hub, reads, &settings);
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    if let Some(f) = flusher {
        f.abort();
    }
    if let Some(r) = refresher {
        r.abort();
    }
    if let Some(a) = auditor
        && let Err(e) = a.flush().await
    {
        tracing::error!(error = %e, "cannot commit the last audit entries");
    }
    served
}

/// How often point-read indexes look for new versions of their tables.
const POINT_REFRESH_EVERY: Duration = Duration::from_millis(200);

/// How often the server commits the audit entries of the reads it answered.
const AUDIT_FLUSH_EVERY: Duration = Duration::from_secs(1);
