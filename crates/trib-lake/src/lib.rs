//! The Delta Lake tables of data products, on delta-rs.
//!
//! ```text
//!   Lake (storage root: local dir or s3://bucket/prefix)
//!     ├── <domain>/<name>/v<major>/                 one table per product major version
//!     └── _dead_letters/<domain>/<name>/v<major>/   rejected records with their reasons
//!
//!   append(batch, txn = (app_id, version)) ── already committed? ── yes ─► skipped
//!                                           └─ no ─► one Delta commit carrying the txn
//! ```
//!
//! Every append can carry a Delta application transaction (`txn` action): the commit
//! records `(app_id, version)` atomically with the data, so a retried or replayed batch
//! is recognised and never lands twice. This crate knows tables, not records: decoding
//! and validation live in `trib-ingest`.

mod cdf;
mod error;
mod expire;
mod judge;
mod location;
mod maintain;
mod pack;
mod partition;
mod provider;
mod scan;
mod table;
mod txns;

pub use error::{Error, Result};
pub use expire::{EXPIRED_BEFORE, Expired};
pub use location::Lake;
pub use maintain::{
    MaintainOptions, MaintenanceReport, Retention, Rewrite, Step, ZOrder, compact, compact_product, maintain,
    open_existing,
};
pub use partition::partition_columns;
pub use provider::rechecked;
pub use scan::{files_provider, for_one_query, snapshot_provider};
pub use table::{Appended, Committed, MergeSpec, ProductTable, TableKind, query_table};
