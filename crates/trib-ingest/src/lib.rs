//! Incoming records: decoded from their wire format, validated against the product's
//! contract, and split into typed Arrow rows for bronze and dead letters for the rest.
//!
//! ```text
//!   bytes ──format──► records (raw text each) ──validate──► RecordBatch (bronze)
//!                                   │                  └──► DeadLetter (raw + reason)
//!                                   └── malformed ─────────► DeadLetter
//! ```
//!
//! The law: every record received ends either in the batch or in the dead letters, and
//! the counts add up ([`Validated::received`]). Debezium tombstones (null values that
//! only tell Kafka to compact a key away) are not records: they are counted apart, in
//! [`Validated::skipped_tombstones`]. [`Ingestor`] commits both through `trib-lake`,
//! exactly once per batch id; sources (files, later HTTP and Kafka) feed it.
//!
//! CDC products ([`Format::Debezium`], see [`debezium`]) store each change's row image
//! followed by the system columns of `trib_spec::cdc_columns`.

pub mod dead_letter;
pub mod debezium;
pub mod decode;
pub mod expect;
mod fast;
pub mod file;
pub mod format;
pub mod kafka;
mod late;
pub mod metrics;
pub mod pipeline;
#[cfg(feature = "test-broker")]
pub mod test_broker;
pub mod validate;
mod value;

pub use dead_letter::{DeadLetter, Reason};
pub use decode::{Record, decode, decode_messages};
pub use format::Format;
pub use pipeline::{BatchId, BatchReport, Ingestor, Prepared, Preparer};
pub use validate::{Validated, Validator};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body as a whole cannot be read (not one bad record: the framing is broken).
    #[error("the body is not valid {format}: {message}")]
    Malformed { format: Format, message: String },
    /// Change events sent to a product that is not CDC, or plain records to one that is.
    #[error(
        "`{product}` {}\nhint: {}",
        if *cdc { "is a CDC product: it takes Debezium change events, not plain records" }
        else { "is not a CDC product: it takes plain records, not Debezium change events" },
        if *cdc { "send the connector's events as format `debezium` (Content-Type `application/vnd.debezium+json`)" }
        else { "declare `source: { kind: cdc }` in its contract, or send the rows as NDJSON" }
    )]
    WrongFormat { product: String, cdc: bool },
    /// A `fail` expectation did not hold: the whole batch is refused.
    #[error(
        "expectation `{name}` of `{product}` failed for {rows} record(s), the first at position {first_position}: `{sql}` is false; the batch was refused\nhint: fix the records, or set `on_violation: drop` to dead-letter them instead"
    )]
    ExpectationFailed {
        product: String,
        name: String,
        sql: String,
        rows: u64,
        first_position: u64,
    },
    /// An expectation's SQL could not be evaluated (e.g. a type error).
    #[error("cannot evaluate the expectations of `{product}`: {message}")]
    Expectation { product: String, message: String },
    /// Writing to a table failed.
    #[error(transparent)]
    Lake(trib_lake::Error),
    /// Reading the input failed.
    #[error("cannot read `{what}`: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Arrow refused rows that validation accepted: a bug, not bad input.
    #[error("internal error building Arrow rows for `{product}`: {source}")]
    Arrow {
        product: String,
        #[source]
        source: arrow::error::ArrowError,
    },
}

impl Error {
    /// Whether the sender can fix this by changing the input.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::Malformed { .. } | Error::WrongFormat { .. } | Error::ExpectationFailed { .. }
        )
    }
}
