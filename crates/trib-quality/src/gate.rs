//! The model-commit gate: a model run's rows are checked as they are committed. When the
//! contract has blocking checks (`block: true`) the commit waits for the checks and an
//! error-severity failure of one of them stops it; otherwise the checks run beside the
//! commit and hold nothing up.

use crate::checks::Checker;
use arrow::array::RecordBatch;
use std::sync::Arc;
use trib_spec::Contract;

/// Runs a contract's checks over each model commit (see [`trib_engine::CommitGate`]).
pub struct Gate {
    checker: Arc<Checker>,
    /// Checks running beside commits, for [`Gate::finish`].
    beside: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Gate {
    pub fn new(checker: Arc<Checker>) -> Self {
        Self {
            checker,
            beside: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Waits for the checks still running beside commits and writes every result.
    pub async fn finish(&self) -> crate::Result<usize> {
        loop {
            let running = std::mem::take(&mut *self.beside.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            if running.is_empty() {
                break;
            }
            for t in running {
                let _ = t.await;
            }
        }
        self.checker.flush().await
    }
}

#[async_trait::async_trait]
impl trib_engine::CommitGate for Gate {
    async fn inspect(&self, contract: &Contract, rows: &RecordBatch) -> Option<String> {
        if contract.quality.is_empty() {
            return None;
        }
        // Only blocking checks hold the commit; without any, the checks run beside it.
        if !contract.quality.iter().any(|q| q.block) {
            let (checker, contract, rows) = (self.checker.clone(), contract.clone(), rows.clone());
            let task = tokio::spawn(async move {
                check(&checker, &contract, &rows).await;
            });
            let mut beside = self.beside.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            beside.retain(|t| !t.is_finished());
            beside.push(task);
            return None;
        }
        check(&self.checker, contract, rows).await
    }
}

/// Runs the checks, logs failures, and has the results written off the caller's path.
async fn check(checker: &Arc<Checker>, contract: &Contract, rows: &RecordBatch) -> Option<String> {
    match checker.check_rows_deferred(contract, rows).await {
        Ok(run) => {
            for r in run.failed() {
                tracing::warn!(product = %run.product, check = %r.check, status = r.status.as_str(), message = %r.message, "check failed on a model commit");
            }
            // Runs that finish meanwhile join the same write.
            let checker = checker.clone();
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
