//! JSON lines straight to typed Arrow columns: the hot loop of NDJSON ingestion.
//!
//! ```text
//!  chunk of lines ─┬─ JSON object of known keys and plain values ─► typed builders
//!                  └─ anything else ─► the caller's fallback ─► a canonical row into
//!                                      the same builders, or nothing (a dead letter)
//! ```
//!
//! A line is read here only when nothing about it needs judgement: every key is a
//! column's exact name or one the plan does not know, and every value is of the kind
//! its column takes as sent (text for strings and dates, numbers for numbers, epoch
//! numbers or ISO-8601 text for timestamps). Values keep their exact text
//! (see [`crate::object`]), so decimals and epoch timestamps read the digits
//! sent. Everything else goes to the fallback, which decides (in `trib-ingest`, the
//! record-by-record validator), so that the verdict on a record never depends on the
//! path. The functions here are not generic: they are compiled, and optimised, in this
//! crate.

use crate::text::{epoch_micros, exact_decimal, parse_date, parse_timestamp};
use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder, Int32Builder,
    Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType as ArrowType, SchemaRef};
use arrow::error::ArrowError;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a column's values are read.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Str,
    Bool,
    I32,
    I64,
    F32,
    F64,
    Dec { precision: u8, scale: u8 },
    Date,
    Ts,
}

/// A column of the plan.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub required: bool,
}

/// The columns of one schema, in order, with the Arrow schema the batches take.
#[derive(Debug, Clone)]
pub struct Plan {
    pub columns: Vec<Column>,
    pub schema: SchemaRef,
}

/// What one chunk of lines became.
#[derive(Debug)]
pub struct Chunk {
    pub batch: RecordBatch,
    /// Line number (from 1 within the chunk) of each row, in batch order.
    pub positions: Vec<u64>,
    /// Keys the plan does not know, with how many lines had them.
    pub unknown: BTreeMap<String, u64>,
    /// Line ends in the chunk: where the next chunk's line numbers start.
    pub newlines: u64,
}

/// What the fallback made of a line: its canonical row (see [`canonical`]), or nothing
/// (the line is a dead letter or not a record; the fallback keeps it). An accepted
/// row's raw text is its line either way.
pub type Fallback<'f> = dyn FnMut(&[u8], u64, &mut BTreeMap<String, u64>) -> Option<Map<String, Value>> + 'f;

/// A value ready for its column's builder.
#[derive(Debug, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Str(Cow<'a, str>),
    Bool(bool),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Dec(i128),
    Date(i32),
    Ts(i64),
}

/// Reads the lines of `body[start..end]`, numbered from 1 within the chunk. Lines the
/// fast path cannot take go to `fallback`.
pub fn chunk(
    plan: &Plan,
    body: &[u8],
    start: usize,
    end: usize,
    fallback: &mut Fallback<'_>,
) -> Result<Chunk, ArrowError> {
    let text = &body[start..end];
    // Checked as a whole once; lines cut at line ends are then valid on their own.
    let valid = std::str::from_utf8(text).ok();
    let mut builders: Vec<ColumnBuilder> = plan
        .columns
        .iter()
        .map(|c| ColumnBuilder::new(c.kind, text.len() / 100))
        .collect();
    let mut positions = Vec::new();
    let mut unknown: BTreeMap<String, u64> = BTreeMap::new();
    let mut slots: Vec<Option<&str>> = vec![None; plan.columns.len()];
    let mut scalars: Vec<Scalar> = Vec::with_capacity(plan.columns.len());
    let mut unknown_keys: Vec<&str> = Vec::new();
    let mut line_no = 0u64;
    let mut newlines = 0u64;
    let mut at = 0;
    while at <= text.len() {
        let stop = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |p| at + p);
        line_no += 1;
        let line_end = if stop > at && text[stop - 1] == b'\r' {
            stop - 1
        } else {
            stop
        };
        let line = &text[at..line_end];
        let line_text = match valid {
            Some(t) => t.get(at..line_end),
            None => std::str::from_utf8(line).ok(),
        };
        at = stop + 1;
        if stop < text.len() {
            newlines += 1;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        slots.iter_mut().for_each(|s| *s = None);
        scalars.clear();
        unknown_keys.clear();
        if line_text.is_some_and(|l| read(plan, l, &mut slots, &mut scalars, &mut unknown_keys)) {
            for (b, v) in builders.iter_mut().zip(scalars.drain(..)) {
                b.push(v);
            }
            // Counted once per record, as a record's map keys are.
            unknown_keys.sort_unstable();
            unknown_keys.dedup();
            for k in &unknown_keys {
                *unknown.entry((*k).to_string()).or_default() += 1;
            }
            positions.push(line_no);
            continue;
        }
        if let Some(row) = fallback(line, line_no, &mut unknown) {
            for (c, b) in plan.columns.iter().zip(builders.iter_mut()) {
                let v = row.get(&c.name).unwrap_or(&Value::Null);
                let s = canonical(v, c.kind).ok_or_else(|| {
                    ArrowError::InvalidArgumentError(format!(
                        "column `{}`: the checked value {v} does not fit its builder",
                        c.name
                    ))
                })?;
                b.push(s);
            }
            positions.push(line_no);
        }
    }
    let columns: Vec<ArrayRef> = builders
        .into_iter()
        .zip(plan.schema.fields())
        .map(|(b, f)| b.finish(f.data_type()))
        .collect();
    Ok(Chunk {
        batch: RecordBatch::try_new(plan.schema.clone(), columns)?,
        positions,
        unknown,
        newlines,
    })
}

/// Reads one line into `scalars`, one per column; false when it needs the fallback.
fn read<'a>(
    plan: &Plan,
    line: &'a str,
    slots: &mut [Option<&'a str>],
    scalars: &mut Vec<Scalar<'a>>,
    unknown: &mut Vec<&'a str>,
) -> bool {
    // Keys usually come in the contract's order: the column after the last one found
    // is tried first.
    let mut next = 0;
    let read = crate::object::members(line, |key, raw| {
        let found = match plan.columns.get(next) {
            Some(c) if c.name == key => Some(next),
            _ => plan.columns.iter().position(|c| c.name == key),
        };
        match found {
            Some(i) => {
                slots[i] = Some(raw);
                next = i + 1;
                true
            }
            // A column's name in another case: the record path decides.
            None if plan.columns.iter().any(|c| c.name.eq_ignore_ascii_case(key)) => false,
            None => {
                unknown.push(key);
                true
            }
        }
    });
    if !read {
        return false;
    }
    for (c, slot) in plan.columns.iter().zip(slots.iter()) {
        let v = match slot {
            None => Scalar::Null,
            Some(raw) => match scalar(raw, c.kind) {
                Some(v) => v,
                None => return false,
            },
        };
        if c.required && v == Scalar::Null {
            return false;
        }
        scalars.push(v);
    }
    true
}

/// Cuts `body` into about `n` ranges, each ending just after a line end (the last at
/// the end of the body).
pub fn split(body: &[u8], n: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 1..n {
        let target = (body.len() * i / n).max(start);
        let Some(p) = memchr::memchr(b'\n', &body[target..]) else {
            break;
        };
        out.push((start, target + p + 1));
        start = target + p + 1;
    }
    out.push((start, body.len()));
    out
}

/// A value's raw JSON text as its column's scalar, when it is of the kind the column
/// takes as sent; `None` sends the record down the record path.
fn scalar(raw: &str, kind: Kind) -> Option<Scalar<'_>> {
    let first = *raw.as_bytes().first()?;
    if raw == "null" {
        return Some(Scalar::Null);
    }
    let number = first == b'-' || first.is_ascii_digit();
    let text = || -> Option<Cow<'_, str>> {
        if first != b'"' {
            return None;
        }
        let inner = &raw[1..raw.len() - 1];
        if memchr::memchr(b'\\', inner.as_bytes()).is_some() {
            serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(inner))
        }
    };
    match kind {
        Kind::Str => text().map(Scalar::Str),
        Kind::Bool => match raw {
            "true" | "\"true\"" => Some(Scalar::Bool(true)),
            "false" | "\"false\"" => Some(Scalar::Bool(false)),
            _ => None,
        },
        Kind::I32 if number => raw.parse::<i32>().ok().map(Scalar::I32),
        Kind::I64 if number => raw.parse::<i64>().ok().map(Scalar::I64),
        Kind::F32 if number => {
            let f = raw.parse::<f32>().ok()?;
            if f.is_finite() && f.abs() < f32::MAX {
                return Some(Scalar::F32(f));
            }
            // At f32's largest value: taken only when the text, read exactly, is not past it.
            raw.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && f.abs() <= f64::from(f32::MAX))?;
            raw.parse::<f32>().ok().map(Scalar::F32)
        }
        Kind::F64 if number => raw.parse::<f64>().ok().filter(|f| f.is_finite()).map(Scalar::F64),
        Kind::Dec { precision, scale } => {
            let t = if number { Cow::Borrowed(raw) } else { text()? };
            decimal(t.trim(), precision, scale).map(Scalar::Dec)
        }
        Kind::Date => {
            let t = text()?;
            let d = parse_date(t.trim())?;
            Some(Scalar::Date(days(d)))
        }
        Kind::Ts if number => epoch_micros(raw).map(Scalar::Ts),
        Kind::Ts => {
            let t = text()?;
            let t = t.trim();
            let micros = parse_timestamp(t).or_else(|| {
                if t.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '.') {
                    epoch_micros(t)
                } else {
                    None
                }
            })?;
            Some(Scalar::Ts(micros))
        }
        _ => None,
    }
}

/// A value of the record path's canonical row (see `value::coerce`) as a scalar.
pub fn canonical(v: &Value, kind: Kind) -> Option<Scalar<'static>> {
    if v.is_null() {
        return Some(Scalar::Null);
    }
    Some(match (kind, v) {
        (Kind::Str, Value::String(s)) => Scalar::Str(Cow::Owned(s.clone())),
        (Kind::Bool, Value::Bool(b)) => Scalar::Bool(*b),
        (Kind::I32, Value::Number(n)) => Scalar::I32(i32::try_from(n.as_i64()?).ok()?),
        (Kind::I64, Value::Number(n)) => Scalar::I64(n.as_i64()?),
        (Kind::F32, Value::Number(n)) => Scalar::F32(n.to_string().parse().ok()?),
        (Kind::F64, Value::Number(n)) => Scalar::F64(n.as_f64()?),
        (Kind::Dec { precision, scale }, Value::String(s)) => Scalar::Dec(decimal(s, precision, scale)?),
        (Kind::Date, Value::String(s)) => Scalar::Date(days(parse_date(s)?)),
        (Kind::Ts, Value::Number(n)) => Scalar::Ts(n.as_i64()?),
        _ => return None,
    })
}

fn decimal(text: &str, precision: u8, scale: u8) -> Option<i128> {
    let unscaled = exact_decimal(text, scale)?.ok()?;
    (unscaled.unsigned_abs() < 10u128.pow(u32::from(precision))).then_some(unscaled)
}

fn days(d: chrono::NaiveDate) -> i32 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - epoch).num_days() as i32
}

enum ColumnBuilder {
    Str(StringBuilder),
    Bool(BooleanBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
}

impl ColumnBuilder {
    fn new(kind: Kind, rows: usize) -> Self {
        match kind {
            Kind::Str => Self::Str(StringBuilder::with_capacity(rows, rows * 16)),
            Kind::Bool => Self::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::I32 => Self::I32(Int32Builder::with_capacity(rows)),
            Kind::I64 => Self::I64(Int64Builder::with_capacity(rows)),
            Kind::F32 => Self::F32(Float32Builder::with_capacity(rows)),
            Kind::F64 => Self::F64(Float64Builder::with_capacity(rows)),
            Kind::Dec { .. } => Self::Dec(Decimal128Builder::with_capacity(rows)),
            Kind::Date => Self::Date(Date32Builder::with_capacity(rows)),
            Kind::Ts => Self::Ts(TimestampMicrosecondBuilder::with_capacity(rows)),
        }
    }

    /// Scalars come from the column's own kind; any other is a null.
    fn push(&mut self, v: Scalar) {
        match (self, v) {
            (Self::Str(b), Scalar::Str(s)) => b.append_value(s),
            (Self::Bool(b), Scalar::Bool(x)) => b.append_value(x),
            (Self::I32(b), Scalar::I32(x)) => b.append_value(x),
            (Self::I64(b), Scalar::I64(x)) => b.append_value(x),
            (Self::F32(b), Scalar::F32(x)) => b.append_value(x),
            (Self::F64(b), Scalar::F64(x)) => b.append_value(x),
            (Self::Dec(b), Scalar::Dec(x)) => b.append_value(x),
            (Self::Date(b), Scalar::Date(x)) => b.append_value(x),
            (Self::Ts(b), Scalar::Ts(x)) => b.append_value(x),
            (b, v) => {
                debug_assert_eq!(v, Scalar::Null, "a scalar of another kind");
                b.append_null();
            }
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Str(b) => b.append_null(),
            Self::Bool(b) => b.append_null(),
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::F32(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Dec(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Ts(b) => b.append_null(),
        }
    }

    /// The column, in the schema's type (precision and scale, time zone).
    fn finish(self, ty: &ArrowType) -> ArrayRef {
        match (self, ty) {
            (Self::Str(mut b), _) => Arc::new(b.finish()),
            (Self::Bool(mut b), _) => Arc::new(b.finish()),
            (Self::I32(mut b), _) => Arc::new(b.finish()),
            (Self::I64(mut b), _) => Arc::new(b.finish()),
            (Self::F32(mut b), _) => Arc::new(b.finish()),
            (Self::F64(mut b), _) => Arc::new(b.finish()),
            (Self::Dec(mut b), ArrowType::Decimal128(p, s)) => {
                let a = b.finish();
                Arc::new(a.clone().with_precision_and_scale(*p, *s).unwrap_or(a))
            }
            (Self::Dec(mut b), _) => Arc::new(b.finish()),
            (Self::Date(mut b), _) => Arc::new(b.finish()),
            (Self::Ts(mut b), ArrowType::Timestamp(_, tz)) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            (Self::Ts(mut b), _) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_cuts_after_line_ends() {
        let body = b"aaaa\nbbbb\ncccc\ndddd\n";
        let parts = split(body, 3);
        assert_eq!(parts.first().map(|p| p.0), Some(0));
        assert_eq!(parts.last().map(|p| p.1), Some(body.len()));
        for w in parts.windows(2) {
            assert_eq!(w[0].1, w[1].0);
            assert_eq!(body[w[0].1 - 1], b'\n');
        }
        assert_eq!(split(b"no line end", 4), vec![(0, 11)]);
    }

    #[test]
    fn scalars_read_what_the_record_path_reads() {
        assert_eq!(scalar("\"a\"", Kind::Str), Some(Scalar::Str(Cow::Borrowed("a"))));
        assert_eq!(
            scalar("\"a\\nb\"", Kind::Str),
            Some(Scalar::Str(Cow::Owned("a\nb".into())))
        );
        assert_eq!(scalar("12", Kind::Str), None);
        assert_eq!(scalar("12", Kind::I32), Some(Scalar::I32(12)));
        assert_eq!(scalar("3.0", Kind::I64), None);
        assert_eq!(scalar("\"12\"", Kind::I64), None);
        assert_eq!(scalar("1e400", Kind::F64), None);
        assert_eq!(scalar("1e39", Kind::F32), None);
        assert_eq!(
            scalar("\"12.30\"", Kind::Dec { precision: 5, scale: 2 }),
            Some(Scalar::Dec(1230))
        );
        assert_eq!(scalar("12.345", Kind::Dec { precision: 5, scale: 2 }), None);
        assert_eq!(scalar("1773532800", Kind::Ts), Some(Scalar::Ts(1_773_532_800_000_000)));
        assert_eq!(
            scalar("\"2026-03-15T00:00:00Z\"", Kind::Ts),
            Some(Scalar::Ts(1_773_532_800_000_000))
        );
        assert_eq!(scalar("\"1970-01-02\"", Kind::Date), Some(Scalar::Date(1)));
        assert_eq!(scalar("\"true\"", Kind::Bool), Some(Scalar::Bool(true)));
        assert_eq!(scalar("[1]", Kind::Str), None);
    }
}
