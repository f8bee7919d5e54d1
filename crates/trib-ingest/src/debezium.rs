//! Debezium change events, one JSON envelope per line, as a Kafka consumer or Debezium
//! Server writes them.
//!
//! ```text
//!   {"schema":…,"payload":{…}} ─┐
//!   {"op":"u","before":…,"after":…,"source":…} ─┴─► Change { op, row, _source_ts, _lsn, _source }
//!   null, {"schema":null,"payload":null} ──────────► tombstone: counted, not a record
//! ```
//!
//! The row image is `after` for creates, updates and snapshot reads and `before` for
//! deletes, so silver can delete by key. With the Connect `schema` part, values that
//! Debezium encodes (decimals as base64 bytes, dates as epoch days, timestamps as epoch
//! millis/micros/nanos) are turned back into text our coercion reads exactly; logical
//! types with no counterpart (times of day, years, geometry…) are remembered so that a
//! temporal or decimal column does not silently misread them.

use crate::decode::{Fields, kind};
use crate::value::preview;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, SecondsFormat};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use trib_spec::DataType;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
    /// A row read by the connector's initial snapshot.
    Read,
}

impl Op {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "c" => Some(Op::Create),
            "u" => Some(Op::Update),
            "d" => Some(Op::Delete),
            "r" => Some(Op::Read),
            _ => None,
        }
    }

    /// Debezium's code, as stored in `_op`.
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One decoded change event.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub op: Op,
    /// `after` for c/u/r, `before` for d; Debezium encodings already undone.
    pub row: Map<String, Value>,
    /// Fields of `row` whose Connect logical type (the value) was left as sent because
    /// it has no counterpart among our types.
    pub unmapped: BTreeMap<String, String>,
    /// `source.ts_us` or `source.ts_ms` when the connector knew it, else the envelope's `ts_ms`.
    pub source_ts_micros: Option<i64>,
    /// `source.lsn`, else `source.pos`.
    pub lsn: Option<i64>,
    /// The `source` block as compact JSON.
    pub source: Option<String>,
}

/// One line's JSON value → a change, a tombstone, or why it is neither.
pub(crate) fn fields(value: Value) -> Fields {
    let (schema, envelope) = match value {
        Value::Null => return Fields::Tombstone,
        // The JsonConverter with `schemas.enable=true` wraps each event.
        Value::Object(mut m) if m.contains_key("schema") && m.contains_key("payload") => {
            (m.remove("schema"), m.remove("payload").unwrap_or_default())
        }
        other => (None, other),
    };
    let mut envelope = match envelope {
        Value::Null => return Fields::Tombstone,
        Value::Object(m) => m,
        other => {
            return Fields::Malformed(format!(
                "a change event must be a JSON object, found {} {}",
                kind(&other),
                preview(&other)
            ));
        }
    };
    let op = match envelope.get("op") {
        None | Some(Value::Null) => {
            return Fields::Malformed(
                "the change event has no `op`: expected a Debezium envelope with `op`, `before`, `after` and \
                 `source` (rows flattened by ExtractNewRecordState carry no operation)"
                    .into(),
            );
        }
        Some(v) => match v.as_str().and_then(Op::parse) {
            Some(op) => op,
            None => {
                return Fields::Malformed(format!(
                    "unknown `op` {}: expected \"c\" (create), \"u\" (update), \"d\" (delete) or \"r\" (snapshot read)",
                    preview(v)
                ));
            }
        },
    };
    let image = if op == Op::Delete { "before" } else { "after" };
    let mut row = match envelope.remove(image) {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => {
            let hint = if op == Op::Delete {
                " (on PostgreSQL, set REPLICA IDENTITY to FULL or at least the key)"
            } else {
                ""
            };
            return Fields::Malformed(format!(
                "`op` \"{op}\" needs the row image in `{image}`, which is missing or null{hint}"
            ));
        }
        Some(other) => {
            return Fields::Malformed(format!(
                "`{image}` must be an object, found {} {}",
                kind(&other),
                preview(&other)
            ));
        }
    };
    let unmapped = schema
        .as_ref()
        .and_then(|s| image_schema(s, image))
        .map(|fields| undo_encodings(&mut row, fields))
        .unwrap_or_default();
    let source = envelope.get("source").filter(|s| !s.is_null());
    let block = source.and_then(Value::as_object);
    let source_ts_micros = block
        .and_then(|s| {
            let ts_us = s.get("ts_us").and_then(Value::as_i64);
            ts_us.or_else(|| s.get("ts_ms").and_then(Value::as_i64).map(|ms| ms.saturating_mul(1000)))
        })
        // Older MySQL connectors report 0 when they do not know the binlog time.
        .filter(|&ts| ts != 0)
        .or_else(|| {
            envelope
                .get("ts_ms")
                .and_then(Value::as_i64)
                .map(|ms| ms.saturating_mul(1000))
        });
    let lsn = block.and_then(|s| integer(s.get("lsn")).or_else(|| integer(s.get("pos"))));
    Fields::Change(Change {
        op,
        row,
        unmapped,
        source_ts_micros,
        lsn,
        source: source.map(Value::to_string),
    })
}

/// An integer, or integer text (some connectors send positions as strings).
fn integer(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The Connect schema's field list of `before` or `after`.
fn image_schema<'a>(schema: &'a Value, image: &str) -> Option<&'a Vec<Value>> {
    schema
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("field").and_then(Value::as_str) == Some(image))?
        .get("fields")?
        .as_array()
}

/// Rewrites the values Debezium encodes into what [`crate::value::coerce`] reads
/// exactly; returns the fields with a logical type left as sent.
fn undo_encodings(row: &mut Map<String, Value>, fields: &[Value]) -> BTreeMap<String, String> {
    let mut unmapped = BTreeMap::new();
    for f in fields {
        let (Some(name), Some(logical)) = (
            f.get("field").and_then(Value::as_str),
            f.get("name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some(v) = row.get_mut(name).filter(|v| !v.is_null()) else {
            continue;
        };
        let scale = f
            .get("parameters")
            .and_then(|p| p.get("scale"))
            .and_then(|s| s.as_str()?.parse::<u32>().ok());
        match undo(logical, v, scale) {
            Some(Some(plain)) => *v = plain,
            Some(None) => {}
            None => {
                unmapped.insert(name.to_string(), logical.to_string());
            }
        }
    }
    unmapped
}

/// `Some(Some(v))`: decoded to `v`; `Some(None)`: already plain; `None`: no counterpart.
fn undo(logical: &str, v: &Value, scale: Option<u32>) -> Option<Option<Value>> {
    let text = |s: String| Some(Some(Value::String(s)));
    let micros = |m: Option<i64>| {
        let t = DateTime::from_timestamp_micros(m?)?;
        text(t.to_rfc3339_opts(SecondsFormat::Micros, true))
    };
    match logical {
        "org.apache.kafka.connect.data.Decimal" => match v {
            // `decimal.format=NUMERIC` sends numbers under the same schema.
            Value::Number(_) => Some(None),
            Value::String(b64) => text(decimal_from_bytes(b64, scale?)?),
            _ => None,
        },
        "io.debezium.data.VariableScaleDecimal" => {
            let scale = u32::try_from(v.get("scale")?.as_u64()?).ok()?;
            text(decimal_from_bytes(v.get("value")?.as_str()?, scale)?)
        }
        "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date" => {
            let days = i32::try_from(v.as_i64()?).ok()?;
            text(epoch_day(days)?.format("%Y-%m-%d").to_string())
        }
        "io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp" => {
            micros(v.as_i64()?.checked_mul(1000))
        }
        "io.debezium.time.MicroTimestamp" => micros(v.as_i64()),
        "io.debezium.time.NanoTimestamp" => micros(Some(v.as_i64()?.div_euclid(1000))),
        // ISO-8601 text already; JSON and enums are plain strings.
        "io.debezium.time.ZonedTimestamp" | "io.debezium.data.Json" | "io.debezium.data.Enum" => Some(None),
        _ => None,
    }
}

/// Connect's decimal: the unscaled value as big-endian two's-complement bytes, base64.
fn decimal_from_bytes(b64: &str, scale: u32) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut wide = [fill; 16];
    wide[16 - bytes.len()..].copy_from_slice(&bytes);
    let unscaled = i128::from_be_bytes(wide);
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    let s = usize::try_from(scale).ok()?;
    if s == 0 {
        return Some(format!("{sign}{digits}"));
    }
    let padded = format!("{digits:0>width$}", width = s + 1);
    let (int, frac) = padded.split_at(padded.len() - s);
    Some(format!("{sign}{int}.{frac}"))
}

fn epoch_day(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::TimeDelta::try_days(i64::from(days))?)
}

/// A row image value of `column` before coercion to `ty`, with the Connect logical type
/// left unmapped for it, if any. Debezium sends dates as epoch days even without a
/// schema; an unmapped logical type must not be read as a date, an instant or a decimal
/// by the magnitude of its number.
pub(crate) fn prepare<'a>(
    column: &str,
    v: &'a Value,
    ty: &DataType,
    unmapped: Option<&str>,
) -> Result<Cow<'a, Value>, String> {
    let temporal = matches!(ty, DataType::Date | DataType::Timestamp | DataType::TimestampNtz);
    if let Some(logical) = unmapped
        && (temporal || matches!(ty, DataType::Decimal { .. }))
    {
        return Err(format!(
            "field `{column}`: Debezium `{logical}` value {} does not map to {ty}",
            preview(v)
        ));
    }
    if *ty == DataType::Date
        && let Some(day) = v.as_i64().and_then(|d| epoch_day(i32::try_from(d).ok()?))
    {
        return Ok(Cow::Owned(Value::String(day.format("%Y-%m-%d").to_string())));
    }
    Ok(Cow::Borrowed(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(v: Value) -> Change {
        match fields(v) {
            Fields::Change(c) => c,
            other => panic!("not a change: {other:?}"),
        }
    }

    fn malformed(v: Value) -> String {
        match fields(v) {
            Fields::Malformed(m) => m,
            other => panic!("not malformed: {other:?}"),
        }
    }

    #[test]
    fn row_image_by_op() {
        let c = change(json!({"op": "c", "before": null, "after": {"id": 1}, "ts_ms": 5}));
        assert_eq!((c.op, c.row["id"].clone()), (Op::Create, json!(1)));
        assert_eq!(c.source_ts_micros, Some(5000), "no source: the envelope's ts_ms");
        assert_eq!((c.lsn, c.source), (None, None));
        let d = change(json!({"op": "d", "before": {"id": 2}, "after": null}));
        assert_eq!((d.op, d.row["id"].clone()), (Op::Delete, json!(2)));
    }

    #[test]
    fn tombstones_and_wrapped_envelopes() {
        assert!(matches!(fields(Value::Null), Fields::Tombstone));
        assert!(matches!(
            fields(json!({"schema": null, "payload": null})),
            Fields::Tombstone
        ));
        let c = change(json!({"schema": null, "payload": {"op": "r", "after": {"id": 3}}}));
        assert_eq!(c.op, Op::Read);
        // A row that merely has a `payload` column is not unwrapped.
        assert!(malformed(json!({"payload": {"op": "c"}})).contains("no `op`"));
    }

    #[test]
    fn broken_envelopes_say_what_is_missing() {
        assert!(malformed(json!({"id": 1004})).contains("no `op`"));
        assert!(malformed(json!({"op": "t", "source": {}})).starts_with("unknown `op` \"t\""));
        assert!(malformed(json!({"op": 1})).starts_with("unknown `op` 1"));
        assert_eq!(
            malformed(json!({"op": "u", "before": {"id": 1}})),
            "`op` \"u\" needs the row image in `after`, which is missing or null"
        );
        assert!(malformed(json!({"op": "d", "before": null, "after": null})).contains("REPLICA IDENTITY"));
        assert!(malformed(json!({"op": "c", "after": [1]})).starts_with("`after` must be an object"));
        assert!(malformed(json!([1])).starts_with("a change event must be a JSON object"));
    }

    #[test]
    fn source_time_and_position() {
        let pg = change(json!({"op": "c", "after": {}, "ts_ms": 9,
            "source": {"ts_ms": 1559033904863i64, "ts_us": 1559033904863123i64, "lsn": 24023128, "pos": 1}}));
        assert_eq!(
            (pg.source_ts_micros, pg.lsn),
            (Some(1_559_033_904_863_123), Some(24023128))
        );
        let mysql = change(json!({"op": "c", "after": {}, "ts_ms": 1465491411815i64,
            "source": {"ts_ms": 0, "file": "mysql-bin.000003", "pos": 154}}));
        assert_eq!(mysql.source_ts_micros, Some(1_465_491_411_815_000), "0 means unknown");
        assert_eq!(mysql.lsn, Some(154));
        assert_eq!(
            mysql.source.as_deref(),
            Some(r#"{"ts_ms":0,"file":"mysql-bin.000003","pos":154}"#)
        );
        let text = change(json!({"op": "c", "after": {}, "source": {"lsn": "42"}}));
        assert_eq!(text.lsn, Some(42));
    }

    #[test]
    fn connect_encodings_are_undone() {
        let schema = json!({"fields": [{"field": "after", "fields": [
            {"field": "price", "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "parameters": {"scale": "2"}},
            {"field": "neg", "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "parameters": {"scale": "1"}},
            {"field": "num", "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "parameters": {"scale": "1"}},
            {"field": "vsd", "type": "struct", "name": "io.debezium.data.VariableScaleDecimal"},
            {"field": "day", "type": "int32", "name": "io.debezium.time.Date"},
            {"field": "ms", "type": "int64", "name": "io.debezium.time.Timestamp"},
            {"field": "us", "type": "int64", "name": "io.debezium.time.MicroTimestamp"},
            {"field": "ns", "type": "int64", "name": "io.debezium.time.NanoTimestamp"},
            {"field": "tod", "type": "int64", "name": "io.debezium.time.MicroTime"}
        ]}]});
        let event = json!({"schema": schema, "payload": {"op": "c", "after": {
            // 12345 = 0x3039; -5 = 0xfb
            "price": "MDk=", "neg": "+w==", "num": 1.5, "vsd": {"scale": 3, "value": "MDk="},
            "day": 19439, "ms": 1679581805123i64, "us": 1679581805123456i64, "ns": 1679581805123456789i64,
            "tod": 36803000000i64
        }}});
        let c = change(event);
        assert_eq!(c.row["price"], json!("123.45"));
        assert_eq!(c.row["neg"], json!("-0.5"));
        assert_eq!(c.row["num"], json!(1.5));
        assert_eq!(c.row["vsd"], json!("12.345"));
        assert_eq!(c.row["day"], json!("2023-03-23"));
        assert_eq!(c.row["ms"], json!("2023-03-23T14:30:05.123000Z"));
        assert_eq!(c.row["us"], json!("2023-03-23T14:30:05.123456Z"));
        assert_eq!(c.row["ns"], json!("2023-03-23T14:30:05.123456Z"));
        assert_eq!(c.row["tod"], json!(36803000000i64));
        assert_eq!(
            c.unmapped.get("tod").map(String::as_str),
            Some("io.debezium.time.MicroTime")
        );
    }

    #[test]
    fn prepare_guards_temporal_columns() {
        let none = None;
        let date = DataType::Date;
        assert_eq!(
            prepare("d", &json!(19439), &date, none).map(Cow::into_owned),
            Ok(json!("2023-03-23"))
        );
        assert_eq!(
            prepare("d", &json!("x"), &date, none).map(Cow::into_owned),
            Ok(json!("x"))
        );
        let unmapped = Some("io.debezium.time.MicroTime");
        let err = prepare("t", &json!(36803000000i64), &DataType::Timestamp, unmapped).expect_err("time of day");
        assert_eq!(
            err,
            "field `t`: Debezium `io.debezium.time.MicroTime` value 36803000000 does not map to timestamp"
        );
        assert!(
            prepare("t", &json!(1), &DataType::Int64, unmapped).is_ok(),
            "micros of the day fit int64"
        );
    }
}
