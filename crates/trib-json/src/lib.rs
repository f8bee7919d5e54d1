//! Producers' JSON read exactly and fast: scalar text (exact decimals, dates, ISO-8601
//! and epoch timestamps) and NDJSON lines straight to typed Arrow columns.
//!
//! It owns no contract and no table: `trib-ingest` builds a [`columns::Plan`] from a
//! contract and supplies the record-by-record validator as the fallback for every line
//! that needs judgement. Kept apart so that the hot loop is compiled and optimised on
//! its own (see the release profile in the workspace `Cargo.toml`).

pub mod columns;
pub mod object;
pub mod text;
