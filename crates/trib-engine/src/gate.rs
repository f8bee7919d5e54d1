//! A look at the rows a model run is about to commit, by whoever cares about them
//! (quality checks live in a crate above this one).

use arrow::array::RecordBatch;
use trib_spec::Contract;

/// Inspects the rows of each model commit before it is made.
#[async_trait::async_trait]
pub trait CommitGate: Send + Sync {
    /// `rows` are what the run would write (for merges, the upserted rows; deletes are
    /// left out). `Some(reason)` stops the commit: the run fails and its input stays
    /// unread, so the next run tries again.
    async fn inspect(&self, contract: &Contract, rows: &RecordBatch) -> Option<String>;
}
