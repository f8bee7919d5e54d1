//! Metric names of this crate, in one place.

use crate::certify::CertState;
use crate::checks::CheckRun;

pub const CHECK_RUNS: &str = "trib_quality_check_runs_total";
pub const CHECK_FAILURES: &str = "trib_quality_check_failures_total";
pub const CHECK_SECONDS: &str = "trib_quality_check_seconds";
pub const CERTIFICATION_TRANSITIONS: &str = "trib_certification_transitions_total";
pub const ALERT_ATTEMPTS: &str = "trib_alert_attempts_total";

pub(crate) fn record_run(run: &CheckRun, took: std::time::Duration) {
    let scope = run.scope.as_str();
    metrics::counter!(CHECK_RUNS, "product" => run.product.clone(), "scope" => scope).increment(1);
    metrics::histogram!(CHECK_SECONDS, "scope" => scope).record(took.as_secs_f64());
    let failed = run.failed().count() as u64;
    if failed > 0 {
        metrics::counter!(CHECK_FAILURES, "product" => run.product.clone(), "scope" => scope).increment(failed);
    }
}

pub(crate) fn transition(product: &str, to: CertState) {
    metrics::counter!(CERTIFICATION_TRANSITIONS, "product" => product.to_string(), "to" => to.as_str()).increment(1);
}

pub(crate) fn alert_attempt(kind: &'static str, delivered: bool) {
    metrics::counter!(ALERT_ATTEMPTS, "type" => kind, "delivered" => if delivered { "true" } else { "false" })
        .increment(1);
}
