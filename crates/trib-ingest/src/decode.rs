//! Bytes → records. Each record keeps its raw text for the dead-letter table; a record
//! that does not parse is not an error of the batch but a dead letter of its own.

use crate::debezium::{self, Change};
use crate::format::Format;
use crate::{Error, Result};
use serde_json::{Map, Value};

/// One incoming record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Position in the body: 1-based line for NDJSON and CSV, 0-based index for arrays.
    pub position: u64,
    /// The record as received, for the dead-letter table.
    pub raw: String,
    pub fields: Fields,
}

#[derive(Debug, Clone)]
pub enum Fields {
    /// Parsed JSON: types as sent.
    Json(Value),
    /// CSV cells: text to be read as the contract's types; empty cells are null.
    Text(Map<String, Value>),
    /// A Debezium change event: the row image and where the change came from.
    Change(Change),
    /// A Debezium tombstone (a null value after a delete, for Kafka log compaction): not
    /// a record, so neither a row nor a dead letter; validation counts it.
    Tombstone,
    /// Could not be parsed at all.
    Malformed(String),
}

/// Splits a body into records. Only a body whose framing is broken (a JSON array that
/// does not parse, a CSV without a header) is an error; bad lines are bad records.
pub fn decode(format: Format, body: &[u8]) -> Result<Vec<Record>> {
    match format {
        Format::Ndjson => Ok(lines(body, Fields::Json)),
        Format::Debezium => Ok(lines(body, debezium::fields)),
        Format::JsonArray => json_array(body),
        Format::Csv => csv(body),
        Format::Parquet => parquet(body),
    }
}

/// Records from a message log (Kafka): one JSON document per message, whatever its
/// line breaks, positioned at the message's offset. A message without a value is a
/// Debezium tombstone for CDC products and a malformed record otherwise.
pub fn decode_messages<'a>(
    format: Format,
    messages: impl IntoIterator<Item = (u64, Option<&'a [u8]>)>,
) -> Result<Vec<Record>> {
    let event: fn(Value) -> Fields = match format {
        Format::Ndjson | Format::JsonArray => Fields::Json,
        Format::Debezium => debezium::fields,
        Format::Csv | Format::Parquet => {
            return Err(Error::Malformed {
                format,
                message:
                    "messages from a log carry one JSON document each; CSV and Parquet are for files and HTTP bodies"
                        .into(),
            });
        }
    };
    Ok(messages
        .into_iter()
        .map(|(position, payload)| {
            let Some(bytes) = payload else {
                let fields = if format == Format::Debezium {
                    Fields::Tombstone
                } else {
                    Fields::Malformed("the message has no value".into())
                };
                return Record {
                    position,
                    raw: String::new(),
                    fields,
                };
            };
            Record {
                position,
                raw: String::from_utf8_lossy(bytes).into_owned(),
                fields: json_fields(bytes, event),
            }
        })
        .collect())
}

/// Parquet rows become JSON records so that they are validated, typed and
/// dead-lettered exactly like every other format (Arrow's JSON writer keeps decimals'
/// digits and writes times as ISO-8601). Positions are 0-based row numbers.
fn parquet(body: &[u8]) -> Result<Vec<Record>> {
    let text = parquet_lines(body)?;
    let mut out = lines(&text, Fields::Json);
    for r in &mut out {
        r.position -= 1;
    }
    Ok(out)
}

/// A Parquet file's rows as NDJSON, one line a row, in order.
pub(crate) fn parquet_lines(body: &[u8]) -> Result<Vec<u8>> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let malformed = |message: String| Error::Malformed {
        format: Format::Parquet,
        message,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(body))
        .map_err(|e| malformed(e.to_string()))?
        .build()
        .map_err(|e| malformed(e.to_string()))?;
    let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
    for batch in reader {
        let batch = batch.map_err(|e| malformed(e.to_string()))?;
        writer.write(&batch).map_err(|e| malformed(e.to_string()))?;
    }
    writer.finish().map_err(|e| malformed(e.to_string()))?;
    Ok(writer.into_inner())
}

/// One JSON value per line, each made into fields by `event`; blank lines are framing.
fn lines(body: &[u8], event: fn(Value) -> Fields) -> Vec<Record> {
    let mut out = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(Record {
            position: i as u64 + 1,
            raw: String::from_utf8_lossy(line).into_owned(),
            fields: json_fields(line, event),
        });
    }
    out
}

/// One JSON document made into fields by `event`, or why it is not one.
pub(crate) fn json_fields(bytes: &[u8], event: fn(Value) -> Fields) -> Fields {
    match std::str::from_utf8(bytes) {
        Err(e) => Fields::Malformed(format!("not UTF-8 text: {e}")),
        Ok(text) => match serde_json::from_str::<Value>(text) {
            Ok(v) => event(v),
            Err(e) => Fields::Malformed(format!("invalid JSON: {e}")),
        },
    }
}

fn json_array(body: &[u8]) -> Result<Vec<Record>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Error::Malformed {
        format: Format::JsonArray,
        message: format!("{e} (send an array of objects, or NDJSON with one object per line)"),
    })?;
    let items = match value {
        Value::Array(items) => items,
        // A single object is a batch of one.
        obj @ Value::Object(_) => vec![obj],
        other => {
            return Err(Error::Malformed {
                format: Format::JsonArray,
                message: format!("expected an array of objects, found {}", kind(&other)),
            });
        }
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, v)| Record {
            position: i as u64,
            raw: v.to_string(),
            fields: Fields::Json(v),
        })
        .collect())
}

fn csv(body: &[u8]) -> Result<Vec<Record>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(body);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::Malformed {
            format: Format::Csv,
            message: format!("cannot read the header row: {e}"),
        })?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(Error::Malformed {
            format: Format::Csv,
            message: "the first row must name the columns".into(),
        });
    }
    let mut out = Vec::new();
    let mut raw = csv::ByteRecord::new();
    loop {
        let next_line = reader.position().line();
        match reader.read_byte_record(&mut raw) {
            Ok(false) => break,
            Ok(true) => {
                let line = raw.position().map_or(next_line, csv::Position::line);
                let text = raw
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>();
                let raw_line = text.join(",");
                let fields = if text.len() != headers.len() {
                    Fields::Malformed(format!(
                        "row has {} cells, the header has {}",
                        text.len(),
                        headers.len()
                    ))
                } else {
                    Fields::Text(
                        headers
                            .iter()
                            .zip(text)
                            .map(|(h, v)| (h.clone(), if v.is_empty() { Value::Null } else { Value::String(v) }))
                            .collect(),
                    )
                };
                out.push(Record {
                    position: line,
                    raw: raw_line,
                    fields,
                });
            }
            Err(e) => {
                out.push(Record {
                    position: next_line,
                    raw: String::new(),
                    fields: Fields::Malformed(format!("invalid CSV: {e}")),
                });
                // The reader cannot resynchronise after some errors; stop at the first.
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    break;
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_keeps_bad_lines_as_records() {
        let recs = decode(Format::Ndjson, b"{\"a\":1}\n\nnot json\r\n{\"a\":2}").expect("decodes");
        assert_eq!(recs.len(), 3);
        assert!(matches!(recs[1].fields, Fields::Malformed(_)));
        assert_eq!(recs[1].position, 3);
        assert_eq!(recs[1].raw, "not json");
    }

    #[test]
    fn json_arrays_and_objects() {
        assert_eq!(
            decode(Format::JsonArray, b"[{\"a\":1},{\"a\":2}]")
                .expect("array")
                .len(),
            2
        );
        assert_eq!(decode(Format::JsonArray, b"{\"a\":1}").expect("object").len(), 1);
        assert!(decode(Format::JsonArray, b"[{\"a\":1},").is_err());
        assert!(decode(Format::JsonArray, b"42").is_err());
    }

    #[test]
    fn messages_are_one_document_each() {
        let msgs: Vec<(u64, Option<&[u8]>)> = vec![(7, Some(b"{\n  \"a\": 1\n}")), (8, None), (9, Some(b"nope"))];
        let recs = decode_messages(Format::Ndjson, msgs.clone()).expect("json");
        assert_eq!(recs.iter().map(|r| r.position).collect::<Vec<_>>(), [7, 8, 9]);
        assert!(matches!(recs[0].fields, Fields::Json(_)));
        assert!(matches!(recs[1].fields, Fields::Malformed(_)));
        assert!(matches!(recs[2].fields, Fields::Malformed(_)));
        let cdc = decode_messages(Format::Debezium, msgs).expect("debezium");
        assert!(matches!(cdc[1].fields, Fields::Tombstone));
        assert!(decode_messages(Format::Csv, Vec::new()).is_err());
    }

    #[test]
    fn csv_rows_are_text() {
        let recs = decode(Format::Csv, b"a,b\n1,x\n2,\n3\n").expect("csv");
        assert_eq!(recs.len(), 3);
        let Fields::Text(m) = &recs[1].fields else {
            panic!("text")
        };
        assert_eq!(m["b"], Value::Null);
        assert!(matches!(recs[2].fields, Fields::Malformed(_)));
        assert_eq!(recs[2].position, 4);
    }
}
