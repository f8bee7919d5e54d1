//! Every metric of the server, named once, rendered for Prometheus at `/metrics`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const INGEST_RECORDS: &str = "trib_ingest_records_total";
pub const INGEST_REQUESTS: &str = "trib_ingest_requests_total";
pub const INGEST_COMMIT_SECONDS: &str = "trib_ingest_commit_seconds";
pub const INGEST_GROUP_REQUESTS: &str = "trib_ingest_group_requests";
pub const INGEST_QUEUE_DEPTH: &str = "trib_ingest_queue_depth";
pub const INGEST_ACK_SECONDS: &str = "trib_ingest_ack_seconds";
pub const INGEST_PREPARE_SECONDS: &str = "trib_ingest_prepare_seconds";
pub const COMPACTION_SECONDS: &str = "trib_compaction_seconds";

/// Seconds: fine around tens of milliseconds, where ingest latency is judged.
const INGEST_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// The process-wide recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            // Ingest latencies are judged in milliseconds (an ack p99 under 50 ms, say):
            // finer buckets where that judgement falls.
            .and_then(|b| {
                [INGEST_ACK_SECONDS, INGEST_COMMIT_SECONDS, INGEST_PREPARE_SECONDS]
                    .into_iter()
                    .try_fold(b, |b, name| {
                        b.set_buckets_for_metric(Matcher::Full(name.to_string()), INGEST_LATENCY_BUCKETS)
                    })
            })
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder was set first; then our handle renders nothing.
        let _ = metrics::set_global_recorder(recorder);
        metrics::describe_counter!(
            INGEST_RECORDS,
            "Records received, by product and outcome (accepted, dead_lettered)"
        );
        metrics::describe_counter!(INGEST_REQUESTS, "Ingest requests, by product and HTTP status");
        metrics::describe_histogram!(
            INGEST_ACK_SECONDS,
            "From a request's body received to its answer (after the commit), by product"
        );
        metrics::describe_histogram!(
            COMPACTION_SECONDS,
            "Compactions of a bronze table's small files by the server, by product"
        );
        metrics::describe_histogram!(
            INGEST_PREPARE_SECONDS,
            "Decoding, validation and expectations of one request body, by product"
        );
        metrics::describe_histogram!(
            INGEST_COMMIT_SECONDS,
            metrics::Unit::Seconds,
            "Duration of one group commit (validation and both table commits)"
        );
        metrics::describe_histogram!(INGEST_GROUP_REQUESTS, "Requests committed together in one group commit");
        metrics::describe_gauge!(INGEST_QUEUE_DEPTH, "Requests waiting for a group commit, by product");
        handle
    })
}
