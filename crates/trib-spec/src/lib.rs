//! Data product contracts: YAML in, a validated [`Contract`] out, and everything that
//! reasons about contracts without touching data: Arrow types, project-wide checks,
//! breaking-change diffs, ODCS interchange and the JSON Schema of the format.
//!
//! ```text
//!   products/<domain>/*.yaml ──yaml──► located tree ──contract──► Contract ─┬─► diff
//!   models/*.sql ──sql (DataFusion's parser)──► relations ──project checks ─┼─► odcs
//!                                                                           └─► arrow schema
//! ```
//!
//! It must not read or write data, open tables, or talk to services.

pub mod contract;
pub mod decode;
pub mod diff;
pub mod json;
pub mod model;
pub mod odcs;
pub mod project;
pub mod render;
pub mod schema;
pub mod sql;
pub mod tiers;
pub mod types;
pub mod yaml;

pub use contract::{ContractFile, parse_contract};
pub use model::*;
pub use project::{Project, load_project, load_project_with};
pub use types::DataType;
