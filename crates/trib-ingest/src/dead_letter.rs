//! Records that did not make it into bronze, each with the reason and the raw payload,
//! in the product's dead-letter table.

use arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::SchemaRef;
use std::fmt;
use std::sync::{Arc, LazyLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The record is not valid JSON or CSV.
    Malformed,
    /// A JSON record that is not an object.
    NotAnObject,
    /// A required field is absent or null.
    MissingRequired,
    /// A value of the wrong type.
    TypeMismatch,
    /// A value of the right kind that does not fit (too large, too precise).
    OutOfRange,
    /// An `expect` with `on_violation: drop` failed.
    ExpectationFailed,
    /// An `expect` with `on_violation: quarantine` failed: kept aside for review.
    Quarantined,
    /// Older than the watermark, for a product whose contract says `late: dead_letter`.
    Late,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::Malformed,
        Reason::NotAnObject,
        Reason::MissingRequired,
        Reason::TypeMismatch,
        Reason::OutOfRange,
        Reason::ExpectationFailed,
        Reason::Quarantined,
        Reason::Late,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::NotAnObject => "not_an_object",
            Reason::MissingRequired => "missing_required",
            Reason::TypeMismatch => "type_mismatch",
            Reason::OutOfRange => "out_of_range",
            Reason::ExpectationFailed => "expectation_failed",
            Reason::Quarantined => "quarantined",
            Reason::Late => "late",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One rejected record.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Line (NDJSON, CSV) or index (JSON array) in the body it came in.
    pub position: u64,
    pub reason: Reason,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong: names the field, the expected type and the value seen.
    pub message: String,
    /// The record as received.
    pub raw: String,
}

/// Schema of every product's dead-letter table.
pub fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new(trib_spec::dead_letter_schema()));
    SCHEMA.clone()
}

/// Where and when a batch arrived, stamped on its dead letters.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub received_at_micros: i64,
    /// `http`, `file:<path>`, `kafka:<topic>/<partition>`.
    pub source: String,
    pub batch_id: String,
}

pub fn to_batch(letters: &[DeadLetter], p: &Provenance) -> RecordBatch {
    let n = letters.len();
    let mut received = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut source = StringBuilder::new();
    let mut batch = StringBuilder::new();
    let mut position = Int64Builder::with_capacity(n);
    let mut reason = StringBuilder::new();
    let mut field = StringBuilder::new();
    let mut message = StringBuilder::new();
    let mut raw = StringBuilder::new();
    for l in letters {
        received.append_value(p.received_at_micros);
        source.append_value(&p.source);
        batch.append_value(&p.batch_id);
        position.append_value(i64::try_from(l.position).unwrap_or(i64::MAX));
        reason.append_value(l.reason.code());
        field.append_option(l.field.as_deref());
        message.append_value(&l.message);
        raw.append_value(&l.raw);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(received.finish()),
        Arc::new(source.finish()),
        Arc::new(batch.finish()),
        Arc::new(position.finish()),
        Arc::new(reason.finish()),
        Arc::new(field.finish()),
        Arc::new(message.finish()),
        Arc::new(raw.finish()),
    ];
    // The columns match the schema by construction.
    RecordBatch::try_new(schema(), columns).unwrap_or_else(|_| RecordBatch::new_empty(schema()))
}
