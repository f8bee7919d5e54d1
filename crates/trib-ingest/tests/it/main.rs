//! Validation of real-looking batches against the example project's contracts.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Decimal128Type, TimestampMicrosecondType};
use std::path::Path;
use trib_ingest::{Format, Reason, Validator, decode};
use trib_spec::Contract;

mod debezium;
mod fast;
mod kafka;

fn contract(rel: &str) -> Contract {
    let path = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../trib/template")
        .join(rel);
    let text = std::fs::read_to_string(&path).expect("template contract");
    let file = trib_spec::parse_contract(trib_spec::yaml::Source::new(rel, text));
    file.contract.expect("valid contract")
}

const ORDERS: &str = r#"{"order_id":"o-1","customer_id":"c-1","customer_email":"a@example.com","country":"DE","status":"placed","amount":19.99,"currency":"EUR","ordered_at":"2026-03-15T14:00:00Z","updated_at":"2026-03-15T14:00:00Z"}
{"order_id":"o-2","customer_id":"c-2","status":"paid","amount":"1234567890.10","ordered_at":1773583200000,"updated_at":"2026-03-15 14:05:00","extra":"ignored"}
{"order_id":"o-3","customer_id":"c-3","status":"placed","amount":"12.345","ordered_at":"2026-03-15T14:00:00Z","updated_at":"2026-03-15T14:00:00Z"}
{"order_id":"o-4","customer_id":"c-4","status":"placed","amount":"ten","ordered_at":"2026-03-15T14:00:00Z","updated_at":"2026-03-15T14:00:00Z"}
{"order_id":"o-5","status":"placed","amount":1,"ordered_at":"2026-03-15T14:00:00Z","updated_at":"2026-03-15T14:00:00Z"}
{"order_id":"o-6","customer_id":"c-6","status":"placed","amount":1,"ordered_at":"last tuesday","updated_at":"2026-03-15T14:00:00Z"}
not json at all
[1,2,3]
{"order_id":"o-9","customer_id":"c-9","status":"shipped","amount":0,"ordered_at":"2026-03-15T14:00:00+02:00","updated_at":"2026-03-15T14:00:00Z"}
"#;

#[test]
fn every_record_ends_in_bronze_or_dead_letters() {
    let c = contract("products/orders/orders_raw.yaml");
    let records = decode(Format::Ndjson, ORDERS.as_bytes()).expect("decodes");
    let received = records.len();
    assert_eq!(received, 9);
    let v = Validator::new(&c).validate(records).expect("validates");
    assert_eq!(v.received(), received, "the law: received = accepted + dead-lettered");
    assert_eq!(v.batch.num_rows(), 3);
    assert_eq!(v.accepted_positions, vec![1, 2, 9]);
    let reasons: Vec<(u64, Reason, Option<&str>)> = v
        .dead_letters
        .iter()
        .map(|d| (d.position, d.reason, d.field.as_deref()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (3, Reason::OutOfRange, Some("amount")),
            (4, Reason::TypeMismatch, Some("amount")),
            (5, Reason::MissingRequired, Some("customer_id")),
            (6, Reason::TypeMismatch, Some("ordered_at")),
            (7, Reason::Malformed, None),
            (8, Reason::NotAnObject, None),
        ]
    );
    let msg = |pos: u64| {
        v.dead_letters
            .iter()
            .find(|d| d.position == pos)
            .map(|d| d.message.as_str())
            .expect("letter")
    };
    assert_eq!(msg(4), "field `amount`: expected decimal(12,2), found a string \"ten\"");
    assert_eq!(
        msg(3),
        "field `amount`: \"12.345\" does not fit decimal(12,2): it has more decimal places than the column keeps"
    );
    assert_eq!(msg(5), "required field `customer_id` (string) is missing");
    assert!(v.dead_letters[4].raw == "not json at all");
    assert_eq!(v.unknown_fields.get("extra"), Some(&1));

    // Types are exact.
    let amount = v
        .batch
        .column_by_name("amount")
        .expect("amount")
        .as_primitive::<Decimal128Type>();
    assert_eq!(amount.value(0), 1999);
    assert_eq!(amount.value(1), 123456789010);
    let ordered = v
        .batch
        .column_by_name("ordered_at")
        .expect("ts")
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ordered.value(0), 1_773_583_200_000_000);
    assert_eq!(ordered.value(1), 1_773_583_200_000_000, "epoch millis");
    assert_eq!(
        ordered.value(2),
        1_773_583_200_000_000 - 2 * 3_600_000_000,
        "offsets convert to UTC"
    );
    let email = v.batch.column_by_name("customer_email").expect("email");
    assert!(email.is_null(1));
}

#[test]
fn csv_and_json_arrays() {
    let c = contract("products/iot/sensor_readings.yaml");
    let csv = "device_id,site,reading_at,temperature_c,humidity_pct,battery_v\nd1,plant-a,2026-03-15T14:00:00Z,21.5,40,3.7\nd2,plant-a,2026-03-15T14:00:01Z,hot,40,3.7\n,plant-b,2026-03-15T14:00:02Z,20,,\n";
    let v = Validator::new(&c)
        .validate(decode(Format::Csv, csv.as_bytes()).expect("csv"))
        .expect("validates");
    assert_eq!((v.batch.num_rows(), v.dead_letters.len()), (1, 2));
    assert_eq!(v.dead_letters[0].position, 3, "CSV positions are file lines");
    assert_eq!(v.dead_letters[1].reason, Reason::MissingRequired);

    let json = r#"[{"device_id":"d1","site":"s","reading_at":"2026-03-15T14:00:00Z","temperature_c":20},
                   {"device_id":"d2","site":"s","reading_at":"2026-03-15T14:00:00Z","battery_v":1e40}]"#;
    let v = Validator::new(&c)
        .validate(decode(Format::JsonArray, json.as_bytes()).expect("json"))
        .expect("validates");
    assert_eq!(v.batch.num_rows(), 1);
    assert_eq!(v.dead_letters[0].reason, Reason::OutOfRange);
    assert_eq!(v.dead_letters[0].position, 1);
}

#[test]
fn nested_columns() {
    let c = contract("products/web/clicks_raw.yaml");
    let body = r#"{"event_id":"e1","session_id":"s1","event_type":"page_view","url":"/","occurred_at":"2026-03-15T14:00:00Z","properties":{"product_id":"p1","position":3}}
{"event_id":"e2","session_id":"s1","event_type":"page_view","url":"/","occurred_at":"2026-03-15T14:00:00Z","properties":{"position":"third"}}
"#;
    let v = Validator::new(&c)
        .validate(decode(Format::Ndjson, body.as_bytes()).expect("ndjson"))
        .expect("validates");
    assert_eq!(v.batch.num_rows(), 1);
    assert_eq!(
        v.dead_letters[0].message,
        "field `properties`: field `position`: expected int32, found a string \"third\""
    );
    let props = v.batch.column_by_name("properties").expect("struct").as_struct();
    assert_eq!(
        props
            .column_by_name("position")
            .expect("position")
            .as_primitive::<arrow::datatypes::Int32Type>()
            .value(0),
        3
    );
}

#[test]
fn broken_framing_is_an_error_of_the_batch() {
    let err = decode(Format::JsonArray, b"[{\"a\": 1}, {").expect_err("broken");
    assert!(err.is_user_error());
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    let err = decode(Format::Csv, b"").map(|r| r.len());
    assert!(matches!(err, Ok(0) | Err(_)));
}

mod tables {
    use super::*;
    use trib_ingest::dead_letter::Provenance;
    use trib_ingest::file::{FileIngest, ingest_reader};
    use trib_ingest::{BatchId, Ingestor};
    use trib_lake::Lake;

    fn provenance() -> Provenance {
        Provenance {
            received_at_micros: 1_773_583_200_000_000,
            source: "test".into(),
            batch_id: "b1".into(),
        }
    }

    #[tokio::test]
    async fn a_batch_commits_once_to_bronze_and_dead_letters() {
        let dir = tempfile::tempdir().expect("tmp");
        let lake = Lake::new("lake", dir.path()).expect("lake");
        let c = contract("products/orders/orders_raw.yaml");
        let mut ing = Ingestor::open(&lake, &c).await.expect("open");
        let id = BatchId::new("http:key-1", 0);
        let r = ing
            .ingest(Format::Ndjson, ORDERS.as_bytes(), &provenance(), Some(&id))
            .await
            .expect("ingest");
        assert_eq!((r.received, r.accepted, r.dead_lettered, r.duplicate), (9, 3, 6, false));
        assert_eq!(r.by_reason.get(&Reason::TypeMismatch), Some(&2));
        let retry = ing
            .ingest(Format::Ndjson, ORDERS.as_bytes(), &provenance(), Some(&id))
            .await
            .expect("retry");
        assert!(retry.duplicate, "{retry:?}");
        assert_eq!(ing.bronze().count().await.expect("count"), 3);
        assert_eq!(ing.dead_letters().count().await.expect("count"), 6);
        // The dead-letter table says why, with the raw record.
        let rows = ing
            .dead_letters()
            .query("SELECT reason, field, raw FROM t WHERE position = 4")
            .await
            .expect("query");
        let text = |i: usize| arrow::util::display::array_value_to_string(rows[0].column(i), 0).expect("text");
        let (reason, raw) = (text(0), text(2));
        assert_eq!(reason, "type_mismatch");
        assert!(raw.contains("\"amount\":\"ten\""), "{raw}");
        // A batch of only rejects, and one with nothing at all, still commit once.
        let bad = ing
            .ingest(
                Format::Ndjson,
                b"nope\n",
                &provenance(),
                Some(&BatchId::new("http:key-2", 0)),
            )
            .await
            .expect("bad");
        assert_eq!((bad.accepted, bad.dead_lettered), (0, 1));
        let again = ing
            .ingest(
                Format::Ndjson,
                b"nope\n",
                &provenance(),
                Some(&BatchId::new("http:key-2", 0)),
            )
            .await
            .expect("again");
        assert!(again.duplicate);
        assert_eq!(ing.dead_letters().count().await.expect("count"), 7);
        let empty = ing
            .ingest(Format::Ndjson, b"", &provenance(), Some(&BatchId::new("http:key-3", 0)))
            .await
            .expect("empty");
        assert_eq!(empty.received, 0);
    }

    #[tokio::test]
    async fn files_resume_where_they_stopped() {
        let dir = tempfile::tempdir().expect("tmp");
        let lake = Lake::new("lake", dir.path()).expect("lake");
        let c = contract("products/iot/sensor_readings.yaml");
        let mut body = String::new();
        for i in 0..25 {
            if i % 10 == 3 {
                body.push_str("{\"device_id\":\"d\",\"site\":\"s\",\"reading_at\":\"soon\"}\n");
            } else {
                body.push_str(&format!("{{\"device_id\":\"d{i}\",\"site\":\"s\",\"reading_at\":\"2026-03-15T14:00:{:02}Z\",\"temperature_c\":{i}.5}}\n", i % 60));
            }
        }
        let path = dir.path().join("readings.ndjson");
        std::fs::write(&path, &body).expect("write");
        let app = format!("file:{}", trib_ingest::file::content_id(&path).expect("hash"));
        let run = |lake: Lake, c: Contract, app: String, path: std::path::PathBuf| async move {
            let mut ing = Ingestor::open(&lake, &c).await.expect("open");
            let mut seen = 0;
            let mut progress = |b: u64| seen = b;
            let opts = FileIngest {
                format: Format::Ndjson,
                batch_records: 10,
                source: "file:readings.ndjson".into(),
                progress: &mut progress,
            };
            let reader = std::io::BufReader::new(std::fs::File::open(&path).expect("open"));
            let r = ingest_reader(&mut ing, reader, Some(app), opts).await.expect("ingest");
            (
                r,
                ing.bronze().count().await.expect("count"),
                ing.dead_letters().count().await.expect("count"),
            )
        };
        let (first, bronze, dead) = run(lake.clone(), c.clone(), app.clone(), path.clone()).await;
        assert_eq!(first.batches, 3);
        assert_eq!(
            (first.total.received, first.total.accepted, first.total.dead_lettered),
            (25, 22, 3)
        );
        assert_eq!((bronze, dead), (22, 3));
        // The same file again: every chunk is recognised, nothing lands twice.
        let (second, bronze, dead) = run(lake, c, app, path).await;
        assert_eq!((second.batches, second.skipped_batches), (3, 3));
        assert_eq!((bronze, dead), (22, 3));
    }
}

mod expectations {
    use super::*;
    use trib_ingest::dead_letter::Provenance;
    use trib_ingest::{BatchId, Ingestor};
    use trib_lake::Lake;

    fn provenance() -> Provenance {
        Provenance {
            received_at_micros: 0,
            source: "test".into(),
            batch_id: "b".into(),
        }
    }

    fn order(id: &str, amount: &str) -> String {
        format!(
            "{{\"order_id\":\"{id}\",\"customer_id\":\"c\",\"status\":\"placed\",\"amount\":{amount},\"ordered_at\":\"2026-03-15T14:00:00Z\",\"updated_at\":\"2026-03-15T14:00:00Z\"}}\n"
        )
    }

    #[tokio::test]
    async fn drop_and_quarantine_move_rows_to_dead_letters() {
        let dir = tempfile::tempdir().expect("tmp");
        let lake = Lake::new("lake", dir.path()).expect("lake");
        // orders_raw: `non_negative_amount: amount >= 0`, on_violation: drop.
        let mut ing = Ingestor::open(&lake, &contract("products/orders/orders_raw.yaml"))
            .await
            .expect("open");
        let body = [
            order("a", "1.00"),
            order("b", "-5.00"),
            order("c", "0"),
            "not json\n".to_string(),
        ]
        .concat();
        let r = ing
            .ingest(Format::Ndjson, body.as_bytes(), &provenance(), None)
            .await
            .expect("ingest");
        assert_eq!((r.received, r.accepted, r.dead_lettered), (4, 2, 2));
        assert_eq!(r.by_reason.get(&Reason::ExpectationFailed), Some(&1));
        let rows = ing
            .dead_letters()
            .query("SELECT position, message, raw FROM t WHERE reason = 'expectation_failed'")
            .await
            .expect("query");
        let text = |i: usize| arrow::util::display::array_value_to_string(rows[0].column(i), 0).expect("text");
        assert_eq!(text(0), "2");
        assert_eq!(
            text(1),
            "expectation `non_negative_amount` failed: `amount >= 0` is false for this record"
        );
        assert!(text(2).contains("\"order_id\":\"b\""));
        assert_eq!(ing.bronze().count().await.expect("count"), 2);

        // sensor_readings: `battery_plausible`, on_violation: quarantine; NULL passes.
        let mut ing = Ingestor::open(&lake, &contract("products/iot/sensor_readings.yaml"))
            .await
            .expect("open");
        let body = "{\"device_id\":\"d1\",\"site\":\"s\",\"reading_at\":\"2026-03-15T14:00:00Z\",\"battery_v\":3.1}\n\
                    {\"device_id\":\"d2\",\"site\":\"s\",\"reading_at\":\"2026-03-15T14:00:00Z\",\"battery_v\":9.5}\n\
                    {\"device_id\":\"d3\",\"site\":\"s\",\"reading_at\":\"2026-03-15T14:00:00Z\"}\n";
        let r = ing
            .ingest(Format::Ndjson, body.as_bytes(), &provenance(), None)
            .await
            .expect("ingest");
        assert_eq!((r.accepted, r.dead_lettered), (2, 1));
        assert_eq!(r.by_reason.get(&Reason::Quarantined), Some(&1));
    }

    #[tokio::test]
    async fn fail_refuses_the_batch_and_warn_keeps_rows() {
        let text = "product: shop.payments\nversion: 1.0.0\nowner: t\nlayer: bronze\nsource: { kind: http }\nschema:\n  - { name: id, type: string, required: true }\n  - { name: amount, type: \"decimal(10,2)\" }\n  - { name: currency, type: string }\nquality:\n  - { expect: { name: known_currency, sql: \"currency IN ('EUR', 'USD')\", on_violation: warn } }\n  - { expect: { name: has_amount, sql: \"amount IS NOT NULL\", on_violation: fail } }\n";
        let c = trib_spec::parse_contract(trib_spec::yaml::Source::new("p.yaml", text))
            .contract
            .expect("valid");
        let dir = tempfile::tempdir().expect("tmp");
        let lake = Lake::new("lake", dir.path()).expect("lake");
        let mut ing = Ingestor::open(&lake, &c).await.expect("open");
        let ok = "{\"id\":\"1\",\"amount\":5,\"currency\":\"EUR\"}\n{\"id\":\"2\",\"amount\":6,\"currency\":\"CHF\"}\n";
        let r = ing
            .ingest(Format::Ndjson, ok.as_bytes(), &provenance(), None)
            .await
            .expect("ingest");
        assert_eq!(r.accepted, 2);
        assert_eq!(r.expectation_warnings.get("known_currency"), Some(&1));
        let bad = "{\"id\":\"3\",\"amount\":5,\"currency\":\"EUR\"}\n{\"id\":\"4\",\"currency\":\"EUR\"}\n";
        let id = BatchId::new("k", 0);
        let err = ing
            .ingest(Format::Ndjson, bad.as_bytes(), &provenance(), Some(&id))
            .await
            .expect_err("refused");
        assert!(err.is_user_error());
        assert!(err.to_string().contains("expectation `has_amount`"), "{err}");
        assert!(err.to_string().contains("position 2"), "{err}");
        assert_eq!(
            ing.bronze().count().await.expect("count"),
            2,
            "nothing of the refused batch was written"
        );
    }
}

mod parquet_files {
    use super::*;
    use arrow::array::{ArrayRef, Decimal128Array, RecordBatch, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    fn parquet_bytes() -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("order_id", DataType::Utf8, false),
            Field::new("customer_id", DataType::Utf8, true),
            Field::new("status", DataType::Utf8, false),
            Field::new("amount", DataType::Decimal128(14, 3), false),
            Field::new(
                "ordered_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new(
                "updated_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]));
        let ts = 1_773_583_200_000_000i64;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["p1", "p2", "p3"])),
            Arc::new(StringArray::from(vec![Some("c1"), None, Some("c3")])),
            Arc::new(StringArray::from(vec!["placed", "paid", "paid"])),
            Arc::new(
                Decimal128Array::from(vec![12_345_670i128, 1_000, 1_005])
                    .with_precision_and_scale(14, 3)
                    .expect("decimal"),
            ),
            Arc::new(TimestampMicrosecondArray::from(vec![ts, ts, ts]).with_timezone("UTC")),
            Arc::new(TimestampMicrosecondArray::from(vec![ts, ts, ts]).with_timezone("UTC")),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        out
    }

    #[test]
    fn parquet_rows_are_validated_like_json() {
        let c = contract("products/orders/orders_raw.yaml");
        let records = decode(Format::Parquet, &parquet_bytes()).expect("decodes");
        assert_eq!(records.len(), 3);
        let v = Validator::new(&c).validate(records).expect("validates");
        assert_eq!(v.batch.num_rows(), 1);
        let reasons: Vec<(u64, Reason)> = v.dead_letters.iter().map(|d| (d.position, d.reason)).collect();
        assert_eq!(reasons, vec![(1, Reason::MissingRequired), (2, Reason::OutOfRange)]);
        let amount = v
            .batch
            .column_by_name("amount")
            .expect("amount")
            .as_primitive::<Decimal128Type>();
        assert_eq!(amount.value(0), 1_234_567, "12345.670 kept exactly as decimal(12,2)");
        let ts = v
            .batch
            .column_by_name("ordered_at")
            .expect("ts")
            .as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(0), 1_773_583_200_000_000);
        assert!(decode(Format::Parquet, b"PAR1 not really").is_err());
        assert_eq!(Format::from_path(Path::new("x.parquet")), Some(Format::Parquet));
    }
}

mod late_events {
    use super::contract;
    use trib_ingest::dead_letter::Provenance;
    use trib_ingest::pipeline::{Body, Pending};
    use trib_ingest::{Format, Ingestor, Reason};
    use trib_lake::Lake;

    /// Clicks at these minutes past 14:00, in arrival order. `web.clicks_raw` allows
    /// 10 minutes of lateness and dead-letters what is later.
    const MINUTES: [u32; 8] = [0, 30, 15, 25, 20, 45, 34, 36];

    fn click(i: usize, minute: u32) -> String {
        format!(
            r#"{{"event_id":"e-{i}","session_id":"s","event_type":"page_view","url":"/","occurred_at":"2026-03-15T14:{minute:02}:00Z"}}"#
        )
    }

    fn provenance() -> Provenance {
        Provenance {
            received_at_micros: 0,
            source: "test".into(),
            batch_id: "b".into(),
        }
    }

    /// Event ids that ended as late dead letters.
    async fn late_ids(ing: &Ingestor) -> Vec<String> {
        let b = ing
            .dead_letters()
            .query("SELECT raw FROM t WHERE reason = 'late' ORDER BY raw")
            .await
            .expect("query");
        let mut out = Vec::new();
        for batch in &b {
            let c = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).expect("utf8");
            let a = arrow::array::AsArray::as_string::<i32>(&c);
            for i in 0..arrow::array::Array::len(a) {
                let v: serde_json::Value = serde_json::from_str(a.value(i)).expect("json");
                out.push(v["event_id"].as_str().expect("id").to_string());
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn the_watermark_moves_record_by_record_whatever_the_batches() {
        let c = contract("products/web/clicks_raw.yaml");
        // Behind the watermark on arrival: e-2 (14:15 < 14:30 - 10m) and e-6 (14:34 <
        // 14:45 - 10m); e-4 (14:20) is exactly on it, which is on time.
        let want = vec!["e-2".to_string(), "e-6".to_string()];

        // One body.
        let dir = tempfile::tempdir().expect("tmp");
        let lake = Lake::new(dir.path().to_str().expect("utf-8"), dir.path()).expect("lake");
        let mut ing = Ingestor::open(&lake, &c).await.expect("open");
        let body: String = MINUTES.iter().enumerate().map(|(i, m)| click(i, *m) + "\n").collect();
        let r = ing
            .ingest(Format::Ndjson, body.as_bytes(), &provenance(), None)
            .await
            .expect("ingest");
        assert_eq!(r.by_reason.get(&Reason::Late), Some(&2), "{r:?}");
        assert_eq!(late_ids(&ing).await, want);

        // One record per body, through a reopened ingestor half way (the watermark is
        // read back from the table).
        let dir = tempfile::tempdir().expect("tmp");
        let lake = Lake::new(dir.path().to_str().expect("utf-8"), dir.path()).expect("lake");
        let mut ing = Ingestor::open(&lake, &c).await.expect("open");
        for (i, m) in MINUTES.iter().enumerate() {
            if i == 4 {
                ing = Ingestor::open(&lake, &c).await.expect("reopen");
            }
            ing.ingest(Format::Ndjson, click(i, *m).as_bytes(), &provenance(), None)
                .await
                .expect("ingest");
        }
        assert_eq!(late_ids(&ing).await, want);

        // Group commits of three bodies.
        let dir = tempfile::tempdir().expect("tmp");
        let lake = Lake::new(dir.path().to_str().expect("utf-8"), dir.path()).expect("lake");
        let mut ing = Ingestor::open(&lake, &c).await.expect("open");
        let bodies: Vec<String> = MINUTES.iter().enumerate().map(|(i, m)| click(i, *m)).collect();
        for group in bodies.chunks(3) {
            let items = group
                .iter()
                .map(|b| Pending {
                    body: Body::Encoded {
                        format: Format::Ndjson,
                        bytes: b.clone().into_bytes().into(),
                    },
                    provenance: provenance(),
                    id: None,
                })
                .collect();
            for r in ing.ingest_group(items).await.expect("group") {
                r.expect("accepted");
            }
        }
        assert_eq!(late_ids(&ing).await, want);
        let message = ing
            .dead_letters()
            .query("SELECT message FROM t WHERE reason = 'late' LIMIT 1")
            .await
            .expect("query");
        let text = arrow::util::pretty::pretty_format_batches(&message)
            .expect("fmt")
            .to_string();
        assert!(
            text.contains("older than the watermark") && text.contains("10m"),
            "{text}"
        );
    }
}
