//! Incremental models: a model reads what is new in its inputs, runs its SQL with
//! DataFusion, and writes the result into its Delta table the way its contract
//! materialises it, recording the input versions it read in the same commit.
//!
//! ```text
//!   bronze v7 ──changes since v4──► SQL ──► append | merge by key (latest sequence_by
//!   (input:orders.orders_raw@v1 = 4          wins; Debezium deletes delete)
//!    in the target's last commit)          | incremental: replace the event-time
//!                                            windows the changes touched
//!                                          | full_refresh: overwrite
//!                      one Delta commit: rows + txn input:…@v1 = 7
//! ```
//!
//! Because the versions read are committed with the output (a Delta `txn` per input),
//! a run that dies before its commit is simply run again: nothing is lost or read twice.
//! Inputs are registered under their addresses (`orders.orders_raw`, or
//! `"orders.orders_raw@v1"` for a pinned major). This crate runs models; it does not
//! ingest, serve or decide access.

mod arrival;
pub mod dag;
pub mod functions;
mod gate;
pub mod lineage;
pub mod metrics;
pub mod openlineage;
mod run;
mod watch;

pub use dag::{Dag, Node};
pub use gate::CommitGate;
pub use run::{Engine, Outcome, RunReport, app_id};
pub use watch::Watcher;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown product `{0}`")]
    UnknownProduct(String),
    #[error("`{0}` is not a model: it has no `inputs` and `transform` to run")]
    NotAModel(String),
    #[error("no product matches selector `{selector}`\nhint: {hint}")]
    UnknownSelector { selector: String, hint: String },
    /// The model's SQL or its result does not fit the contract: the user's to fix.
    #[error("model `{product}`: {message}\nhint: {hint}")]
    Model {
        product: String,
        message: String,
        hint: String,
    },
    /// DataFusion refused or failed the query.
    #[error("model `{product}`: {source}")]
    Sql {
        product: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lake(trib_lake::Error),
    /// Rows that should fit did not: a bug.
    #[error("internal error in `{product}`: {source}")]
    Arrow {
        product: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    /// The contract's blocking checks failed on the rows the run would commit.
    #[error(
        "model `{product}`: commit stopped by failing checks: {reason}\nhint: see `trib quality {product}`; fix the input or the model, then run again"
    )]
    Blocked { product: String, reason: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn sql(product: &str, source: datafusion::error::DataFusionError) -> Self {
        Error::Sql {
            product: product.to_string(),
            source,
        }
    }

    pub(crate) fn arrow(product: &str, source: arrow::error::ArrowError) -> Self {
        Error::Arrow {
            product: product.to_string(),
            source,
        }
    }

    /// Whether the user can fix this by changing the project.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::UnknownProduct(_)
                | Error::NotAModel(_)
                | Error::UnknownSelector { .. }
                | Error::Model { .. }
                | Error::Sql { .. }
                | Error::Blocked { .. }
        )
    }
}
