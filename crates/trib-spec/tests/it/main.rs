//! Integration tests of trib-spec: one binary, one module per area.

mod contracts;
mod diff;
mod odcs;
mod project;
mod schema;
