//! The model-commit gate: a model run's rows are checked before they are committed, and
//! blocking error-severity checks (`block: true`) that fail stop the commit.

use crate::checks::Checker;
use arrow::array::RecordBatch;
use std::sync::Arc;
use trib_spec::Contract;

/// Runs a contract's checks over each model commit (see [`trib_engine::CommitGate`]).
pub struct Gate {
    checker: Arc<Checker>,
}

impl Gate {
    pub fn new(checker: Arc<Checker>) -> Self {
        Self { checker }
    }
}

#[async_trait::async_trait]
impl trib_engine::CommitGate for Gate {
    async fn inspect(&self, contract: &Contract, rows: &RecordBatch) -> Option<String> {
        if contract.quality.is_empty() {
            return None;
        }
        match self.checker.check_rows_deferred(contract, rows).await {
            Ok(run) => {
                for r in run.failed() {
                    tracing::warn!(product = %run.product, check = %r.check, status = r.status.as_str(), message = %r.message, "check failed on a model commit");
                }
                // The results are written off the commit's path; runs that finish
                // meanwhile join the same write.
                let checker = self.checker.clone();
                tokio::spawn(async move {
                    if let Err(e) = checker.flush().await {
                        tracing::warn!(error = %e, "check results could not be written; the next flush retries");
                    }
                });
                run.blocking_reason()
            }
            // Checks that cannot run do not hold data back; the failure is logged and
            // shows in the scheduled results.
            Err(e) => {
                tracing::error!(product = %contract.product.value, error = %e, "checks on a model commit could not run");
                None
            }
        }
    }
}
