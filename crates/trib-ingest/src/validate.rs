//! Records → typed Arrow rows of the contract's schema, or dead letters.

use crate::dead_letter::{DeadLetter, Reason};
use crate::debezium::{Change, prepare};
use crate::decode::{Fields, Record};
use crate::format::Format;
use crate::value::{coerce, preview};
use crate::{Error, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use trib_spec::{Contract, DataType};

struct Column {
    name: String,
    data_type: DataType,
    required: bool,
}

/// Validates records against one contract version.
pub struct Validator {
    product: String,
    columns: Vec<Column>,
    /// Takes Debezium change events and adds `trib_spec::cdc_columns` to each row.
    cdc: bool,
    schema: SchemaRef,
    /// The fast path for NDJSON, when every column is a plain scalar.
    fast: Option<crate::fast::FastPlan>,
}

/// The outcome of validating one batch.
#[derive(Debug)]
pub struct Validated {
    /// Accepted rows, in the contract's schema.
    pub batch: RecordBatch,
    /// Positions of the accepted rows, in batch order.
    pub accepted_positions: Vec<u64>,
    /// Raw text of the accepted rows, in batch order, for rows an expectation drops.
    pub accepted_raw: RawRows,
    pub dead_letters: Vec<DeadLetter>,
    /// Fields sent that the contract does not declare, with how often; they are not kept.
    pub unknown_fields: BTreeMap<String, u64>,
    /// Debezium tombstones seen: not records, so outside [`Validated::received`].
    pub skipped_tombstones: u64,
}

/// Why an accepted row is taken out after all: reason, field at fault, message.
pub(crate) type Verdict = Option<(Reason, Option<String>, String)>;

impl Validated {
    /// The raw text of accepted row `i`.
    pub fn raw_text(&self, i: usize) -> String {
        self.accepted_raw
            .text(i, self.accepted_positions.get(i).copied().unwrap_or_default())
    }

    /// Positions counted from 0 instead of 1 (rows of a Parquet file).
    fn number_from_zero(&mut self) {
        for p in &mut self.accepted_positions {
            *p -= 1;
        }
        for d in &mut self.dead_letters {
            d.position -= 1;
        }
        self.accepted_raw.first = 0;
    }

    /// Records received: always accepted + dead-lettered.
    pub fn received(&self) -> usize {
        self.batch.num_rows() + self.dead_letters.len()
    }

    /// Moves the accepted rows with a verdict (one per row, in batch order) to the dead
    /// letters, raw text and all; the counts still add up.
    pub(crate) fn reject(&mut self, verdicts: Vec<Verdict>) -> Result<(), arrow::error::ArrowError> {
        if verdicts.iter().all(Option::is_none) {
            return Ok(());
        }
        let kept: Vec<bool> = verdicts.iter().map(Option::is_none).collect();
        for (i, v) in verdicts.into_iter().enumerate() {
            if let Some((reason, field, message)) = v {
                self.dead_letters.push(DeadLetter {
                    position: self.accepted_positions[i],
                    reason,
                    field,
                    message,
                    raw: self.raw_text(i),
                });
            }
        }
        self.batch = arrow::compute::filter_record_batch(&self.batch, &arrow::array::BooleanArray::from(kept.clone()))?;
        let mut k = kept.iter();
        self.accepted_positions.retain(|_| k.next().copied().unwrap_or(false));
        self.accepted_raw.retain(&kept);
        self.dead_letters.sort_by_key(|d| d.position);
        Ok(())
    }
}

/// Raw text of accepted rows, for the few that a later check moves to the dead letters:
/// kept per row, or, for an NDJSON body whose rows are its lines, found from the row's
/// position when asked, so that the common case keeps nothing per row.
#[derive(Debug, Default)]
pub struct RawRows {
    body: bytes::Bytes,
    rows: Vec<String>,
    /// Set for a body whose rows are its lines: where each line starts, made when first
    /// needed.
    lines: Option<std::sync::OnceLock<Vec<usize>>>,
    /// The position of the first line.
    first: u64,
}

impl RawRows {
    /// Rows whose text is their line of `body` (NDJSON), by position from 1.
    pub(crate) fn lines(body: bytes::Bytes) -> Self {
        Self {
            body,
            rows: Vec::new(),
            lines: Some(std::sync::OnceLock::new()),
            first: 1,
        }
    }

    pub(crate) fn push_text(&mut self, text: String) {
        self.rows.push(text);
    }

    /// The text of row `i`, at `position`.
    fn text(&self, i: usize, position: u64) -> String {
        let Some(lines) = &self.lines else {
            return self.rows.get(i).cloned().unwrap_or_default();
        };
        let starts = lines.get_or_init(|| {
            std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', &self.body).map(|p| p + 1))
                .collect()
        });
        let n = usize::try_from((position + 1).saturating_sub(self.first)).unwrap_or(usize::MAX);
        let Some(&start) = n.checked_sub(1).and_then(|k| starts.get(k)) else {
            return String::new();
        };
        let end = starts.get(n).map_or(self.body.len(), |next| next - 1);
        let line = &self.body[start..end];
        String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned()
    }

    /// Keeps the rows whose flag is set.
    pub(crate) fn retain(&mut self, keep: &[bool]) {
        if self.lines.is_none() {
            let mut k = keep.iter();
            self.rows.retain(|_| k.next().copied().unwrap_or(false));
        }
    }
}

/// One record, checked: a row in canonical form, a dead letter, or not a record at all.
pub(crate) enum Checked {
    Row {
        row: Map<String, Value>,
        position: u64,
        raw: String,
    },
    Dead(DeadLetter),
    Tombstone,
}

impl Validator {
    pub fn new(contract: &Contract) -> Self {
        Self {
            product: contract.product.value.to_string(),
            columns: contract
                .schema
                .iter()
                .map(|c| Column {
                    name: c.name.value.clone(),
                    data_type: c.data_type.value.clone(),
                    required: c.required,
                })
                .collect(),
            cdc: contract.is_cdc(),
            schema: Arc::new(contract.data_schema()),
            fast: crate::fast::FastPlan::new(contract),
        }
    }

    pub fn product(&self) -> &str {
        &self.product
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Whether this validator takes Debezium change events.
    pub fn is_cdc(&self) -> bool {
        self.cdc
    }

    /// Splits records into rows and dead letters. Change events for a product that is not
    /// CDC, or plain records for one that is, refuse the whole batch: the sender picked
    /// the wrong format, no record of it would fit.
    pub fn validate(&self, records: Vec<Record>) -> Result<Validated> {
        let mut rows: Vec<Value> = Vec::with_capacity(records.len());
        let mut accepted_positions = Vec::with_capacity(records.len());
        let mut accepted_raw = RawRows::default();
        let mut dead_letters = Vec::new();
        let mut unknown_fields: BTreeMap<String, u64> = BTreeMap::new();
        let mut skipped_tombstones = 0;
        for record in records {
            match self.check(record, &mut unknown_fields)? {
                Checked::Row { row, position, raw } => {
                    rows.push(Value::Object(row));
                    accepted_positions.push(position);
                    accepted_raw.push_text(raw);
                }
                Checked::Dead(d) => dead_letters.push(d),
                Checked::Tombstone => skipped_tombstones += 1,
            }
        }
        let batch = self.to_batch(&rows)?;
        Ok(Validated {
            batch,
            accepted_positions,
            accepted_raw,
            dead_letters,
            unknown_fields,
            skipped_tombstones,
        })
    }

    /// Decodes and validates a whole body. NDJSON for products of plain columns takes
    /// the fast path (straight to Arrow columns, in parallel for large bodies), with the
    /// same verdict for every record as [`Validator::validate`].
    pub fn validate_body(&self, format: Format, body: bytes::Bytes) -> Result<Validated> {
        match (&self.fast, format) {
            (Some(plan), Format::Ndjson) => plan.validate(self, body),
            // Parquet rows as NDJSON lines take the same column path: the same verdicts
            // as record by record, many times faster. Their positions are 0-based.
            (Some(plan), Format::Parquet) => {
                let lines = crate::decode::parquet_lines(&body)?;
                let mut v = plan.validate(self, bytes::Bytes::from(lines))?;
                v.number_from_zero();
                Ok(v)
            }
            _ => self.validate(crate::decode(format, &body)?),
        }
    }

    /// One record: its canonical row, or why it is a dead letter. Change events for a
    /// product that is not CDC, or plain records for one that is, are an error.
    pub(crate) fn check(&self, record: Record, unknown_fields: &mut BTreeMap<String, u64>) -> Result<Checked> {
        let plain = matches!(record.fields, Fields::Json(_) | Fields::Text(_));
        if (plain && self.cdc) || (matches!(record.fields, Fields::Change(_)) && !self.cdc) {
            return Err(Error::WrongFormat {
                product: self.product.clone(),
                cdc: self.cdc,
            });
        }
        let (fields, text, change) = match record.fields {
            Fields::Json(Value::Object(m)) => (m, false, None),
            Fields::Text(m) => (m, true, None),
            Fields::Change(mut c) => (std::mem::take(&mut c.row), false, Some(c)),
            Fields::Tombstone => return Ok(Checked::Tombstone),
            Fields::Json(other) => {
                return Ok(Checked::Dead(DeadLetter {
                    position: record.position,
                    reason: Reason::NotAnObject,
                    field: None,
                    message: format!(
                        "a record must be a JSON object, found {} {}",
                        crate::decode::kind(&other),
                        preview(&other)
                    ),
                    raw: record.raw,
                }));
            }
            Fields::Malformed(why) => {
                return Ok(Checked::Dead(DeadLetter {
                    position: record.position,
                    reason: Reason::Malformed,
                    field: None,
                    message: why,
                    raw: record.raw,
                }));
            }
        };
        match self.row(&fields, text, change.as_ref()) {
            Ok(mut row) => {
                for k in fields.keys() {
                    if !self.columns.iter().any(|c| &c.name == k) {
                        *unknown_fields.entry(k.clone()).or_default() += 1;
                    }
                }
                if let Some(c) = change {
                    // The system columns of `trib_spec::cdc_columns`.
                    row.insert("_op".into(), c.op.code().into());
                    row.insert("_source_ts".into(), c.source_ts_micros.into());
                    row.insert("_lsn".into(), c.lsn.into());
                    row.insert("_source".into(), c.source.into());
                }
                Ok(Checked::Row {
                    row,
                    position: record.position,
                    raw: record.raw,
                })
            }
            Err((reason, field, message)) => Ok(Checked::Dead(DeadLetter {
                position: record.position,
                reason,
                field: Some(field),
                message,
                raw: record.raw,
            })),
        }
    }

    /// One record → one canonical row, or the first problem found (reason, field, message).
    fn row(
        &self,
        fields: &Map<String, Value>,
        text: bool,
        change: Option<&Change>,
    ) -> Result<Map<String, Value>, (Reason, String, String)> {
        let mut row = Map::with_capacity(self.columns.len());
        for col in &self.columns {
            let found = fields
                .get_key_value(&col.name)
                .or_else(|| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(&col.name)));
            let v = found.map(|(_, v)| v);
            match v {
                None | Some(Value::Null) => {
                    if col.required {
                        let message = match v {
                            None => format!("required field `{}` ({}) is missing", col.name, col.data_type),
                            Some(_) => format!("required field `{}` ({}) is null", col.name, col.data_type),
                        };
                        return Err((Reason::MissingRequired, col.name.clone(), message));
                    }
                    row.insert(col.name.clone(), Value::Null);
                }
                Some(v) => {
                    let v = match change {
                        Some(c) => {
                            let logical = found.and_then(|(k, _)| c.unmapped.get(k)).map(String::as_str);
                            prepare(&col.name, v, &col.data_type, logical)
                                .map_err(|m| (Reason::TypeMismatch, col.name.clone(), m))?
                        }
                        None => Cow::Borrowed(v),
                    };
                    match coerce(&v, &col.data_type, text) {
                        Ok(c) => {
                            row.insert(col.name.clone(), c);
                        }
                        Err(m) => {
                            let reason = if m.out_of_range {
                                Reason::OutOfRange
                            } else {
                                Reason::TypeMismatch
                            };
                            return Err((reason, col.name.clone(), format!("field `{}`: {}", col.name, m.message)));
                        }
                    }
                }
            }
        }
        Ok(row)
    }

    fn to_batch(&self, rows: &[Value]) -> Result<RecordBatch> {
        let arrow_err = |source| Error::Arrow {
            product: self.product.clone(),
            source,
        };
        let mut decoder = arrow::json::ReaderBuilder::new(self.schema.clone())
            .with_batch_size(rows.len().max(1))
            .build_decoder()
            .map_err(arrow_err)?;
        // Through JSON text rather than `serialize`: numbers keep their exact digits.
        let mut text = Vec::with_capacity(rows.len() * 128);
        for row in rows {
            serde_json::to_writer(&mut text, row)
                .map_err(|e| arrow_err(arrow::error::ArrowError::JsonError(e.to_string())))?;
            text.push(b'\n');
        }
        let mut offset = 0;
        while offset < text.len() {
            let read = decoder.decode(&text[offset..]).map_err(arrow_err)?;
            if read == 0 {
                break;
            }
            offset += read;
        }
        Ok(decoder
            .flush()
            .map_err(arrow_err)?
            .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone())))
    }
}
