//! One enforcement point for every read of a data product, whichever door it comes
//! through (CLI, HTTP SQL, HTTP rows, the Postgres protocol):
//!
//! ```text
//!  token ──► Principal (roles) ─┐
//!                               ▼
//!  SQL ──► parse ──► read-only? ──► relations ──► may the principal read each one?
//!          (time travel:            │               │
//!           @vN, @TIMESTAMP,        │               ▼
//!           FOR SYSTEM_TIME AS OF,  │   a secured view per product: the Delta scan,
//!           VERSION AS OF)          │   its row filter, hidden and masked columns
//!                                   ▼               │
//!              a fresh session that holds only those views (no files, no DDL)
//!                                   │
//!                                   ▼
//!              plan ─► run under a memory limit and a timeout ─► rows
//!                                   │
//!                                   ▼
//!              audit: who, when, products, columns, rows, query (a Delta table)
//! ```
//!
//! The views are logical plans that DataFusion inlines into the query's plan, so
//! projections and filters still reach the Delta scan while a masked column can only
//! ever be read through its mask. This crate decides who may read what; it does not
//! speak HTTP or the Postgres protocol, and it never writes product data.

mod audit;
mod catalog;
mod dialect;
mod error;
mod gateway;
mod grants;
mod mask;
mod output;
mod point;
mod principal;
mod relations;
mod shared;
mod tokens;

pub use audit::{AuditEntry, Auditor, audit_schema};
pub use error::{Error, Result};
pub use gateway::{Gateway, Lifecycle, QueryPath, QueryResult};
pub use grants::{ColumnAccess, Grants, ProductView};
pub use output::{Format, encode};
pub use principal::{ADMIN_ROLE, Principal};
pub use relations::{AsOf, Relation, parse_as_of};
pub use tokens::{TokenRecord, TokenStore};
