//! NDJSON of products whose columns are all plain scalars, straight to Arrow columns
//! (`trib_json::columns`), one chunk per core for large bodies. Lines that need
//! judgement go through [`Validator::check`], so the verdict on a record never depends
//! on the path; `tests/it/fast.rs` holds both paths to that.
//!
//! ```text
//!  body ─ cut at line ends, one chunk per core ─┬─ trib_json::columns::chunk ─┬─ typed columns
//!                                               │                             └─ fallback: Validator::check
//!                                               └─ ...                         ─► canonical row or dead letter
//! ```

use crate::dead_letter::DeadLetter;
use crate::decode::{Fields, Record, json_fields};
use crate::validate::{Checked, RawRows, Validated, Validator};
use crate::{Error, Result};
use arrow::array::RecordBatch;
use std::collections::BTreeMap;
use std::sync::Arc;
use trib_json::columns::{self, Column, Kind, Plan};
use trib_spec::{Contract, DataType};

/// Bodies below this size are validated on the calling thread.
const MIN_CHUNK_BYTES: usize = 1 << 20;

/// How one contract's columns are read on the fast path.
pub(crate) struct FastPlan {
    plan: Plan,
}

/// One chunk's rows and dead letters.
struct Part {
    chunk: columns::Chunk,
    dead: Vec<DeadLetter>,
}

impl FastPlan {
    /// `None` for CDC products and products with binary, list or struct columns.
    pub(crate) fn new(contract: &Contract) -> Option<Self> {
        if contract.is_cdc() {
            return None;
        }
        let columns = contract
            .schema
            .iter()
            .map(|c| {
                let kind = match &c.data_type.value {
                    DataType::String => Kind::Str,
                    DataType::Bool => Kind::Bool,
                    DataType::Int32 => Kind::I32,
                    DataType::Int64 => Kind::I64,
                    DataType::Float => Kind::F32,
                    DataType::Double => Kind::F64,
                    DataType::Decimal { precision, scale } => Kind::Dec {
                        precision: *precision,
                        scale: *scale,
                    },
                    DataType::Date => Kind::Date,
                    DataType::Timestamp | DataType::TimestampNtz => Kind::Ts,
                    DataType::Binary | DataType::List(_) | DataType::Struct(_) => return None,
                };
                Some(Column {
                    name: c.name.value.clone(),
                    kind,
                    required: c.required,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            plan: Plan {
                columns,
                schema: Arc::new(contract.data_schema()),
            },
        })
    }

    /// Validates an NDJSON body: in one chunk per core when it is large.
    pub(crate) fn validate(&self, validator: &Validator, body: bytes::Bytes) -> Result<Validated> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunks = columns::split(&body, (body.len() / MIN_CHUNK_BYTES).clamp(1, cores));
        let parts: Vec<Result<Part>> = if chunks.len() <= 1 {
            vec![self.part(validator, &body, 0, body.len())]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = chunks
                    .iter()
                    .map(|&(a, b)| {
                        let body = &body;
                        s.spawn(move || self.part(validator, body, a, b))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        let arrow_err = |source| Error::Arrow {
            product: validator.product().to_string(),
            source,
        };
        let mut out = Validated {
            batch: RecordBatch::new_empty(self.plan.schema.clone()),
            accepted_positions: Vec::new(),
            accepted_raw: RawRows::lines(body.clone()),
            dead_letters: Vec::new(),
            unknown_fields: BTreeMap::new(),
            skipped_tombstones: 0,
        };
        let mut batches = Vec::with_capacity(parts.len());
        let mut line_base = 0;
        for part in parts {
            let Part { chunk, dead } = part?;
            out.accepted_positions
                .extend(chunk.positions.iter().map(|p| p + line_base));
            out.dead_letters.extend(dead.into_iter().map(|mut d| {
                d.position += line_base;
                d
            }));
            for (k, n) in chunk.unknown {
                *out.unknown_fields.entry(k).or_default() += n;
            }
            batches.push(chunk.batch);
            line_base += chunk.newlines;
        }
        out.batch = if batches.len() == 1 {
            batches
                .pop()
                .unwrap_or_else(|| RecordBatch::new_empty(self.plan.schema.clone()))
        } else {
            arrow::compute::concat_batches(&self.plan.schema, &batches).map_err(arrow_err)?
        };
        Ok(out)
    }

    /// One chunk, with the record path as the fallback for the lines it leaves.
    fn part(&self, validator: &Validator, body: &[u8], start: usize, end: usize) -> Result<Part> {
        let mut dead = Vec::new();
        let mut failure = None;
        let mut fallback = |line: &[u8], position: u64, unknown: &mut BTreeMap<String, u64>| {
            let record = Record {
                position,
                raw: String::from_utf8_lossy(line).into_owned(),
                fields: json_fields(line, Fields::Json),
            };
            match validator.check(record, unknown) {
                Ok(Checked::Row { row, .. }) => Some(row),
                Ok(Checked::Dead(d)) => {
                    dead.push(d);
                    None
                }
                Ok(Checked::Tombstone) => None,
                Err(e) => {
                    failure.get_or_insert(e);
                    None
                }
            }
        };
        let chunk = columns::chunk(&self.plan, body, start, end, &mut fallback).map_err(|source| Error::Arrow {
            product: validator.product().to_string(),
            source,
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(Part { chunk, dead })
    }
}
