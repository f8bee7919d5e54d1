//! Trust in a data product, earned from what it does rather than what it declares:
//! the contract's quality checks run as SQL, SLOs are measured from the tables and the
//! audit, certification follows from them, and owning teams hear about every breach.
//!
//! ```text
//!   new rows (ingest batch,  ──► checks ──► _trib.quality_results ─┐
//!   model commit: may block)                                        │
//!   whole product (scheduled) ─► checks ─┘                          ▼
//!   tables, dead letters, audit ──► SLO measurements ──► _trib.slo_measurements
//!                                        │ rolling windows, error budgets
//!                                        ▼
//!                  certification: draft → candidate → certified ⇄ degraded
//!                                 → decertified → candidate   (_trib.certifications)
//!                                        │ incidents open and close (_trib.incidents)
//!                                        ▼
//!                  signed webhook deliveries, retried (_trib.alert_deliveries)
//! ```
//!
//! Time comes from an injected [`trib_core::Clock`], so a test walks a product through
//! every state without sleeping. This crate reads product tables and writes only its
//! own `_trib.*` tables; it never changes product data.

pub mod alerts;
pub mod anomaly;
pub mod certify;
pub mod checks;
mod gate;
pub mod metrics;
pub mod results;
pub mod slo;
mod store;
pub mod trust;

pub use alerts::{Alert, Notifier};
pub use certify::{Board, CertState};
pub use checks::{CheckResult, Checker, Scope, Status};
pub use gate::Gate;
pub use slo::{Measurement, SloKind};
pub use trust::{Evaluation, Trust};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A check's SQL did not plan or run: the contract's to fix.
    #[error(
        "check `{check}` of `{product}`: {source}\nhint: fix the check in the contract; `trib check` validates its columns"
    )]
    Check {
        product: String,
        check: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
    #[error("unknown product `{0}`\nhint: `trib show` lists the products of the project")]
    UnknownProduct(String),
    #[error(transparent)]
    Lake(#[from] trib_lake::Error),
    /// Rows that should fit did not: a bug.
    #[error("internal error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A query over a `_trib` table failed: a bug.
    #[error("internal error reading `{table}`: {source}")]
    System {
        table: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
}

impl Error {
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Check { .. } | Error::UnknownProduct(_))
    }
}
