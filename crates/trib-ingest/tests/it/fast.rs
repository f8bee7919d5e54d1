//! The NDJSON fast path (`Validator::validate_body`) against the record path
//! (`decode` + `Validator::validate`): the same rows, dead letters, messages and
//! positions for every record, in bodies small enough for one thread and large enough
//! to be cut into chunks.

use arrow::array::RecordBatch;
use trib_ingest::{Format, Validated, Validator, decode};
use trib_spec::Contract;

const CONTRACT: &str = r#"
product: lab.samples
version: 1.0.0
owner: lab-team
description: One row per sample, every scalar type.
status: active
layer: bronze
source: { kind: http, format: json }
schema:
  - { name: id, type: string, required: true }
  - { name: ok, type: bool }
  - { name: n32, type: int32 }
  - { name: n64, type: int64 }
  - { name: f32, type: float }
  - { name: f64, type: double }
  - { name: amount, type: "decimal(8,2)" }
  - { name: day, type: date }
  - { name: at, type: timestamp, required: true }
  - { name: local, type: timestamp_ntz }
"#;

/// Lines that each take one branch of the fast path or leave it.
const EDGES: &[&str] = &[
    r#"{"id":"a","ok":true,"n32":1,"n64":-2,"f32":1.5,"f64":2.25,"amount":"12.30","day":"2026-03-15","at":"2026-03-15T14:00:00Z","local":"2026-03-15 14:00:00"}"#,
    r#"{"id":"b","at":1773583200}"#,
    r#"{"id":"c","at":1773583200123}"#,
    r#"{"id":"d","at":"1773583200"}"#,
    r#"{"id":"e\n\"quoted\"","at":"2026-03-15T14:00:00+02:00"}"#,
    r#"{"id":12,"at":1773583200}"#,
    r#"{"id":true,"at":1773583200}"#,
    r#"{"id":"f","ok":"true","at":1773583200}"#,
    r#"{"id":"g","ok":"yes","at":1773583200}"#,
    r#"{"id":"h","n32":3.0,"at":1773583200}"#,
    r#"{"id":"i","n32":3.5,"at":1773583200}"#,
    r#"{"id":"j","n32":3000000000,"at":1773583200}"#,
    r#"{"id":"k","n64":"7","at":1773583200}"#,
    r#"{"id":"l","f32":1e39,"at":1773583200}"#,
    r#"{"id":"m","f64":1e400,"at":1773583200}"#,
    r#"{"id":"n","amount":12.345,"at":1773583200}"#,
    r#"{"id":"o","amount":1e3,"at":1773583200}"#,
    r#"{"id":"p","amount":"1234567.89","at":1773583200}"#,
    r#"{"id":"q","amount":"ten","at":1773583200}"#,
    r#"{"id":"r","day":"15/03/2026","at":1773583200}"#,
    r#"{"id":"s","day":20260315,"at":1773583200}"#,
    r#"{"id":"t","at":"last tuesday"}"#,
    r#"{"id":"u"}"#,
    r#"{"id":null,"at":1773583200}"#,
    r#"{"ID":"v","at":1773583200}"#,
    r#"{"id":"w","at":1773583200,"extra":1,"other":{"x":[1,2]},"extra":2}"#,
    r#"{"id":"x","at":1773583200,"id":"x2"}"#,
    r#"{"id":"y","at":1773583200} trailing"#,
    r#"{"id":"z","at":1773583200,"f64":[1]}"#,
    r#"{"i\u0064":"esc","at":1773583200}"#,
    r#"[1,2]"#,
    r#""just text""#,
    r#"not json"#,
    r#"{"id":"crlf","at":1773583200}"#,
    "",
    "   ",
    r#"{"id":"last","at":1773583200,"local":1773583200}"#,
];

fn contract() -> Contract {
    let file = trib_spec::parse_contract(trib_spec::yaml::Source::new("lab/samples.yaml", CONTRACT.to_string()));
    file.contract.expect("valid contract")
}

fn record_path(v: &Validator, body: &[u8]) -> Validated {
    v.validate(decode(Format::Ndjson, body).expect("decodes"))
        .expect("validates")
}

fn fast_path(v: &Validator, body: &[u8]) -> Validated {
    v.validate_body(Format::Ndjson, bytes::Bytes::copy_from_slice(body))
        .expect("validates")
}

fn assert_same(a: &Validated, b: &Validated) {
    assert_eq!(a.accepted_positions, b.accepted_positions, "accepted positions");
    assert_eq!(a.batch.schema(), b.batch.schema(), "schema");
    assert_eq!(rows(&a.batch), rows(&b.batch), "rows");
    let dead = |v: &Validated| -> Vec<(u64, String, Option<String>, String, String)> {
        v.dead_letters
            .iter()
            .map(|d| {
                (
                    d.position,
                    d.reason.to_string(),
                    d.field.clone(),
                    d.message.clone(),
                    d.raw.clone(),
                )
            })
            .collect()
    };
    assert_eq!(dead(a), dead(b), "dead letters");
    assert_eq!(a.unknown_fields, b.unknown_fields, "unknown fields");
    let raws = |v: &Validated| (0..v.batch.num_rows()).map(|i| v.raw_text(i)).collect::<Vec<_>>();
    assert_eq!(raws(a), raws(b), "raw text of accepted rows");
}

/// Rows as text, one line each, through Arrow's own JSON writer.
fn rows(batch: &RecordBatch) -> Vec<String> {
    let mut w = arrow::json::LineDelimitedWriter::new(Vec::new());
    w.write(batch).expect("json");
    w.finish().expect("json");
    String::from_utf8(w.into_inner())
        .expect("utf-8")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_edge_gets_the_same_verdict_on_both_paths() {
    let v = Validator::new(&contract());
    let mut body = EDGES.join("\n");
    body = body.replace(
        r#"{"id":"crlf","at":1773583200}"#,
        "{\"id\":\"crlf\",\"at\":1773583200}\r",
    );
    let (a, b) = (record_path(&v, body.as_bytes()), fast_path(&v, body.as_bytes()));
    assert_same(&a, &b);
    // Sanity: the edges do split both ways.
    assert!(b.batch.num_rows() >= 15, "{} rows", b.batch.num_rows());
    assert!(b.dead_letters.len() >= 12, "{} dead letters", b.dead_letters.len());
    assert_eq!(b.received(), EDGES.iter().filter(|l| !l.trim().is_empty()).count());
}

#[test]
fn large_bodies_are_cut_into_chunks_without_moving_a_record() {
    let v = Validator::new(&contract());
    // About 8 MB: several chunks whatever the core count, edges spread through them.
    let mut lines = Vec::new();
    for i in 0..60_000u64 {
        if i % 97 == 0 {
            lines.push(EDGES[(i / 97) as usize % EDGES.len()].to_string());
        } else {
            lines.push(format!(
                r#"{{"id":"s-{i}","ok":{},"n32":{},"n64":{},"f32":{}.5,"f64":{}.125,"amount":"{}.{:02}","day":"2026-03-{:02}","at":{},"local":"2026-03-15T10:{:02}:00"}}"#,
                i % 2 == 0,
                i % 1000,
                i * 1_000_003,
                i % 100,
                i,
                i % 100_000,
                i % 100,
                1 + i % 28,
                1_773_532_800 + i,
                i % 60
            ));
        }
    }
    let body = lines.join("\n") + "\n";
    assert!(body.len() > 8 << 20, "{} bytes", body.len());
    let (a, b) = (record_path(&v, body.as_bytes()), fast_path(&v, body.as_bytes()));
    assert_same(&a, &b);
    assert!(b.dead_letters.len() > 100);
}

/// A Parquet file takes the column path too (its rows as NDJSON lines) with the record
/// path's verdicts and its 0-based positions, in one chunk and in several.
#[test]
fn parquet_rows_get_the_same_verdicts_on_both_paths() {
    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;
    let v = Validator::new(&contract());
    for rows in [40usize, 30_000] {
        let n = |i: usize| i as i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("n32", DataType::Int64, true),
            Field::new("n64", DataType::Int64, true),
            Field::new("f32", DataType::Float64, true),
            Field::new("f64", DataType::Float64, true),
            Field::new("amount", DataType::Decimal128(10, 3), true),
            Field::new("day", DataType::Date32, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("local", DataType::Utf8, true),
            Field::new("extra", DataType::Int64, true),
        ]));
        // Every seventh row breaks a rule of its own: a missing id, an int32 overflow,
        // a float past f32, too many decimals, a missing time, a local time that is not one.
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter(
                (0..rows).map(|i| (i % 7 != 1).then(|| format!("r-{i}"))),
            )),
            Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 2 == 0)))),
            Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|i| if i % 7 == 2 { 1 << 40 } else { n(i) }),
            )),
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| n(i) * 1_000_003))),
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| if i % 7 == 4 { 1e39 } else { 0.5 + i as f64 }),
            )),
            Arc::new(Float64Array::from_iter(
                (0..rows).map(|i| (i % 3 != 0).then_some(i as f64 / 8.0)),
            )),
            Arc::new(
                Decimal128Array::from_iter_values(
                    (0..rows).map(|i| if i % 7 == 5 { 12_345 } else { n(i) as i128 * 10 }),
                )
                .with_precision_and_scale(10, 3)
                .expect("decimal"),
            ),
            Arc::new(Date32Array::from_iter_values(
                (0..rows).map(|i| 20_000 + (i % 30) as i32),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter(
                    (0..rows).map(|i| (i % 7 != 6).then_some(1_773_532_800_000_000 + n(i))),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter((0..rows).map(|i| {
                Some(if i % 7 == 3 {
                    "soon".to_string()
                } else {
                    format!("2026-03-15T10:{:02}:00", i % 60)
                })
            }))),
            Arc::new(Int64Array::from_iter_values((0..rows).map(n))),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        let mut file = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut file, schema, None).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let record = v
            .validate(decode(Format::Parquet, &file).expect("decodes"))
            .expect("validates");
        let column = v
            .validate_body(Format::Parquet, bytes::Bytes::from(file))
            .expect("validates");
        assert_same(&record, &column);
        assert_eq!(column.received(), rows);
        assert!(
            column.dead_letters.len() >= rows * 5 / 7 - 1,
            "{}",
            column.dead_letters.len()
        );
        assert_eq!(
            column.dead_letters.first().map(|d| d.position),
            Some(1),
            "positions from 0"
        );
        assert_eq!(column.accepted_positions.first(), Some(&0));
    }
}
