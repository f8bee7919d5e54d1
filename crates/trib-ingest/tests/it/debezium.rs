//! Debezium change events from the interop samples (see `SOURCES.md` there): envelopes
//! with and without the Connect schema, every op, tombstones, and the bronze table of a
//! CDC product with its system columns.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Decimal128Type, Int32Type, Int64Type, TimestampMicrosecondType};
use std::path::{Path, PathBuf};
use trib_ingest::debezium::Op;
use trib_ingest::decode::Fields;
use trib_ingest::{Error, Format, Reason, Validated, Validator, decode};
use trib_spec::Contract;

fn samples() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../../../shared/interop/debezium")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(samples().join(rel)).expect("sample")
}

/// A pretty-printed sample as the one line a Kafka consumer gets for the message.
fn one_line(rel: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&read(rel)).expect("sample is JSON");
    v.to_string()
}

fn cdc_contract(name: &str, key: &str, columns: &str) -> Contract {
    let text = format!(
        "product: inventory.{name}\nversion: 1.0.0\nowner: inventory-team\nlayer: bronze\n\
         source: {{ kind: cdc }}\nkey: [{key}]\nschema:\n{columns}"
    );
    let file = trib_spec::parse_contract(trib_spec::yaml::Source::new(format!("{name}.yaml"), text));
    let contract = file
        .contract
        .unwrap_or_else(|| panic!("valid contract: {:?}", file.diagnostics));
    assert!(contract.is_cdc());
    contract
}

/// The MySQL tutorial's `inventory.customers`.
fn customers() -> Contract {
    cdc_contract(
        "customers",
        "id",
        "  - { name: id, type: int32, required: true }\n  - { name: first_name, type: string }\n\
         \x20 - { name: last_name, type: string }\n  - { name: email, type: string }\n",
    )
}

/// The PostgreSQL tutorial's `inventory.products`, as in Flink's test data.
fn products() -> Contract {
    cdc_contract(
        "products",
        "id",
        "  - { name: id, type: int32, required: true }\n  - { name: name, type: string }\n\
         \x20 - { name: description, type: string }\n  - { name: weight, type: double }\n",
    )
}

fn validate(c: &Contract, body: &str) -> Validated {
    let records = decode(Format::Debezium, body.as_bytes()).expect("line framing never fails");
    Validator::new(c).validate(records).expect("validates")
}

fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    // Query results may hold string views.
    let a = arrow::compute::cast(b.column_by_name(col).expect(col), &arrow::datatypes::DataType::Utf8).expect("text");
    let a = a.as_string::<i32>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect()
}

fn ints(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    let a = b.column_by_name(col).expect(col);
    match a.data_type() {
        arrow::datatypes::DataType::Int32 => a.as_primitive::<Int32Type>().iter().map(|v| v.map(i64::from)).collect(),
        arrow::datatypes::DataType::Int64 => a.as_primitive::<Int64Type>().iter().collect(),
        _ => a.as_primitive::<TimestampMicrosecondType>().iter().collect(),
    }
}

#[test]
fn mysql_create_with_and_without_schema() {
    let c = customers();
    for rel in [
        "debezium-test-resources/serde-with-schema.json",
        "debezium-test-resources/serde-without-schema.json",
    ] {
        let v = validate(&c, &one_line(rel));
        assert_eq!(
            (v.batch.num_rows(), v.dead_letters.len()),
            (1, 0),
            "{rel}: {:?}",
            v.dead_letters
        );
        let names: Vec<&str> = v
            .batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "id",
                "first_name",
                "last_name",
                "email",
                "_op",
                "_source_ts",
                "_lsn",
                "_source"
            ]
        );
        assert_eq!(ints(&v.batch, "id"), [Some(1004)]);
        assert_eq!(strings(&v.batch, "first_name"), [Some("Anne".into())]);
        assert_eq!(strings(&v.batch, "_op"), [Some("c".into())]);
        // `source.ts_ms` is 0 (not known) in these 0.10 events: the envelope's time stands in.
        assert_eq!(ints(&v.batch, "_source_ts"), [Some(1_465_491_411_815_000)]);
        assert_eq!(ints(&v.batch, "_lsn"), [Some(154)], "MySQL: the binlog position");
        let source = strings(&v.batch, "_source").remove(0).expect("source");
        assert!(
            source.starts_with(r#"{"version":"0.10.0.Final","connector":"mysql""#),
            "{source}"
        );
        assert!(source.contains(r#""file":"mysql-bin.000003","pos":154"#), "{source}");
    }
}

#[test]
fn updates_take_the_after_image_and_unknown_columns_are_counted() {
    let c = customers();
    let body = [
        one_line("debezium-test-resources/serde-update.json"),
        one_line("debezium-test-resources/serde-unknown-property.json"),
    ]
    .join("\n");
    let v = validate(&c, &body);
    assert_eq!((v.batch.num_rows(), v.dead_letters.len()), (2, 0));
    assert_eq!(strings(&v.batch, "_op"), [Some("u".into()), Some("u".into())]);
    assert_eq!(
        strings(&v.batch, "first_name"),
        [Some("Anne".into()), Some("Anne".into())],
        "the row after the update, not `Anne-Marie` before it"
    );
    assert_eq!(v.unknown_fields.get("middle_name"), Some(&1));
}

#[test]
fn postgres_documentation_event_with_full_schema() {
    let v = validate(
        &customers(),
        &one_line("debezium-docs/postgresql-create-event-with-schema.json"),
    );
    assert_eq!((v.batch.num_rows(), v.dead_letters.len()), (1, 0));
    assert_eq!(ints(&v.batch, "id"), [Some(1)]);
    assert_eq!(strings(&v.batch, "_op"), [Some("c".into())]);
    assert_eq!(ints(&v.batch, "_lsn"), [Some(24_023_128)], "PostgreSQL: the LSN");
    assert_eq!(
        ints(&v.batch, "_source_ts"),
        [Some(1_559_033_904_863_123)],
        "`source.ts_us` when sent"
    );
}

#[test]
fn unwrapped_rows_are_not_change_events() {
    let body = one_line("debezium-test-resources/serde-unwrapped.json");
    let v = validate(&customers(), &body);
    assert_eq!((v.batch.num_rows(), v.received()), (0, 1));
    let d = &v.dead_letters[0];
    assert_eq!((d.reason, d.position), (Reason::Malformed, 1));
    assert!(d.message.starts_with("the change event has no `op`"), "{}", d.message);
    assert_eq!(d.raw, body);

    // The same row as plain NDJSON: a CDC product refuses the batch, as does a plain
    // product refuse change events.
    let plain = decode(Format::Ndjson, body.as_bytes()).expect("ndjson");
    let err = Validator::new(&customers()).validate(plain).expect_err("plain rows");
    assert!(
        matches!(err, Error::WrongFormat { cdc: true, .. }) && err.is_user_error(),
        "{err}"
    );
    let text = "product: inventory.customers_plain\nversion: 1.0.0\nowner: t\nlayer: bronze\n\
                source: { kind: http }\nschema:\n  - { name: id, type: int32 }\n";
    let plain_product = trib_spec::parse_contract(trib_spec::yaml::Source::new("p.yaml", text))
        .contract
        .expect("valid");
    let events = decode(
        Format::Debezium,
        one_line("debezium-test-resources/serde-update.json").as_bytes(),
    )
    .expect("events");
    let err = Validator::new(&plain_product)
        .validate(events)
        .expect_err("change events");
    assert!(err.to_string().contains("is not a CDC product"), "{err}");
    assert!(
        err.to_string().contains("\nhint: declare `source: { kind: cdc }`"),
        "{err}"
    );
}

#[test]
fn tombstones_are_counted_apart_from_records() {
    // The tutorial's tombstone follows the delete of customer 1004, whose message key it
    // shares. No MySQL delete is in the samples as valid JSON: this one is the create
    // sample with its image moved to `before`, as Debezium writes a delete.
    let key: serde_json::Value =
        serde_json::from_str(&read("debezium-docs/tutorial-mysql-delete-and-tombstone-key.json")).expect("key");
    let mut delete: serde_json::Value =
        serde_json::from_str(&read("debezium-test-resources/serde-without-schema.json")).expect("event");
    delete["op"] = "d".into();
    delete["before"] = delete["after"].take();
    assert_eq!(delete["before"]["id"], key["payload"]["id"]);
    let body = format!(
        "{delete}\n{}\nnull\n\n",
        one_line("debezium-docs/tutorial-mysql-tombstone-value.json")
    );
    let records = decode(Format::Debezium, body.as_bytes()).expect("decodes");
    assert_eq!(records.len(), 3);
    assert!(matches!(&records[0].fields, Fields::Change(c) if c.op == Op::Delete));
    assert!(matches!(records[1].fields, Fields::Tombstone) && matches!(records[2].fields, Fields::Tombstone));

    let v = Validator::new(&customers()).validate(records).expect("validates");
    assert_eq!((v.received(), v.skipped_tombstones), (1, 2));
    assert_eq!(strings(&v.batch, "_op"), [Some("d".into())]);
    assert_eq!(
        ints(&v.batch, "id"),
        [Some(1004)],
        "a delete keeps the row before it, for its key"
    );
}

#[test]
fn flink_postgres_streams() {
    let c = products();
    let body = read("flink-test-resources/debezium-postgres-data-schema-exclude.txt");
    let v = validate(&c, &body);
    assert_eq!(
        (v.batch.num_rows(), v.dead_letters.len()),
        (16, 0),
        "{:?}",
        v.dead_letters
    );
    let ops: String = strings(&v.batch, "_op").into_iter().map(|o| o.expect("op")).collect();
    assert_eq!(ops, "rrrrrrrrruuccuud");
    // The delete's row is the one deleted; updates carry the new values.
    assert_eq!(ints(&v.batch, "id")[15], Some(111));
    assert_eq!(
        strings(&v.batch, "description")[9].as_deref(),
        Some("18oz carpenter hammer")
    );
    // Position and time per line, straight from each event's `source`.
    for (i, line) in body.lines().enumerate() {
        let e: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(ints(&v.batch, "_lsn")[i], e["source"]["lsn"].as_i64(), "line {}", i + 1);
        let ts = e["source"]["ts_ms"].as_i64().map(|ms| ms * 1000);
        assert_eq!(ints(&v.batch, "_source_ts")[i], ts, "line {}", i + 1);
    }

    // Without REPLICA IDENTITY FULL, updates still have `after`, but the delete has no
    // row at all: a dead letter that says what to change.
    let v = validate(
        &c,
        &read("flink-test-resources/debezium-postgres-data-replica-identity.txt"),
    );
    assert_eq!((v.batch.num_rows(), v.dead_letters.len()), (15, 1));
    let d = &v.dead_letters[0];
    assert_eq!((d.position, d.reason), (16, Reason::Malformed));
    assert_eq!(
        d.message,
        "`op` \"d\" needs the row image in `before`, which is missing or null (on PostgreSQL, set REPLICA \
         IDENTITY to FULL or at least the key)"
    );
    assert_eq!(strings(&v.batch, "_op")[9].as_deref(), Some("u"));
}

/// Paimon's every-MySQL-type event. Its first 18 lines are a licence comment.
fn paimon_event() -> String {
    let text = read("paimon-test-resources/mysql-alltype-with-schema.txt");
    let event: Vec<&str> = text.lines().skip_while(|l| !l.starts_with('{')).collect();
    assert_eq!(event.len(), 1);
    event[0].to_string()
}

#[test]
fn connect_encodings_map_to_contract_types() {
    let c = cdc_contract(
        "all_types",
        "_id",
        "  - { name: _id, type: int32, required: true }
  - { name: pt, type: \"decimal(2,1)\" }
  - { name: _bigint_unsigned, type: \"decimal(20,0)\" }
  - { name: _numeric, type: \"decimal(8,3)\" }
  - { name: _big_decimal, type: \"decimal(38,10)\" }
  - { name: _fixed, type: \"decimal(38,3)\" }
  - { name: _date, type: date }
  - { name: _datetime3, type: timestamp_ntz }
  - { name: _datetime6, type: timestamp_ntz }
  - { name: _timestamp, type: timestamp }
  - { name: _year, type: int32 }
  - { name: _time, type: int64 }
  - { name: _varbin, type: binary }
  - { name: _bit, type: binary }
  - { name: _json, type: string }
  - { name: _set, type: string }
",
    );
    let v = validate(&c, &paimon_event());
    assert_eq!(
        (v.batch.num_rows(), v.dead_letters.len()),
        (1, 0),
        "{:?}",
        v.dead_letters
    );
    let b = &v.batch;
    let dec = |col: &str| {
        b.column_by_name(col)
            .expect(col)
            .as_primitive::<Decimal128Type>()
            .value(0)
    };
    assert_eq!(dec("pt"), 11);
    assert_eq!(dec("_bigint_unsigned"), 20_000_000_000);
    assert_eq!(dec("_numeric"), 12_345_110);
    // Digits beyond what a double holds survive (`decimal.format=NUMERIC` numbers).
    assert_eq!(dec("_big_decimal"), 22_222_222_222_222_223_000_000_011_111_234_567_890);
    assert_eq!(dec("_fixed"), 123_456_789_876_543_212_345_678_987_654_321_110);
    let date = b.column_by_name("_date").expect("date").as_primitive::<Date32Type>();
    assert_eq!(date.value(0), 19439, "io.debezium.time.Date: days since 1970");
    assert_eq!(
        ints(b, "_datetime3"),
        [Some(1_679_581_805_123_000)],
        "Timestamp: millis"
    );
    assert_eq!(ints(b, "_datetime6"), [Some(1_679_581_805_123_456)], "MicroTimestamp");
    assert_eq!(ints(b, "_timestamp"), [Some(1_679_608_810_123_456)], "ZonedTimestamp");
    assert_eq!(ints(b, "_year"), [Some(2023)]);
    assert_eq!(ints(b, "_time"), [Some(36_803_000_000)], "MicroTime: micros of the day");
    let varbin = b.column_by_name("_varbin").expect("bin").as_binary::<i32>();
    assert_eq!(varbin.value(0), b"more bytes");
    assert_eq!(strings(b, "_json"), [Some(r#"{"a": "b"}"#.into())]);
    assert_eq!(strings(b, "_set"), [Some("a,b".into())]);
    assert_eq!(strings(b, "_op"), [Some("r".into())]);
    assert_eq!(ints(b, "_source_ts"), [Some(1_706_167_086_275_000)]);

    // A time of day has no instant: declared as one, it is a clear dead letter.
    let wrong = cdc_contract(
        "all_types_wrong",
        "_id",
        "  - { name: _id, type: int32, required: true }\n  - { name: _time, type: timestamp }\n",
    );
    let v = validate(&wrong, &paimon_event());
    let d = &v.dead_letters[0];
    assert_eq!((d.reason, d.field.as_deref()), (Reason::TypeMismatch, Some("_time")));
    assert_eq!(
        d.message,
        "field `_time`: Debezium `io.debezium.time.MicroTime` value 36803000000 does not map to timestamp"
    );
}

mod tables {
    use super::*;
    use trib_ingest::dead_letter::Provenance;
    use trib_ingest::{BatchId, Ingestor};
    use trib_lake::Lake;

    #[tokio::test]
    async fn bronze_of_a_cdc_product_keeps_the_system_columns() {
        let dir = tempfile::tempdir().expect("tmp");
        let lake = Lake::new("lake", dir.path()).expect("lake");
        let c = products();
        let mut ing = Ingestor::open(&lake, &c).await.expect("open");
        let columns: Vec<String> = ing
            .bronze()
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            columns,
            [
                "id",
                "name",
                "description",
                "weight",
                "_op",
                "_source_ts",
                "_lsn",
                "_source"
            ]
        );
        // 16 events (the delete without a row image is a dead letter) and a tombstone.
        let body = read("flink-test-resources/debezium-postgres-data-replica-identity.txt") + "\nnull\n";
        let provenance = Provenance {
            received_at_micros: 1_773_583_200_000_000,
            source: "kafka:dbserver1.inventory.products/0".into(),
            batch_id: "b1".into(),
        };
        let id = BatchId::new("kafka:dbserver1.inventory.products/0", 0);
        let r = ing
            .ingest(Format::Debezium, body.as_bytes(), &provenance, Some(&id))
            .await
            .expect("ingest");
        assert_eq!(
            (r.received, r.accepted, r.dead_lettered, r.skipped_tombstones),
            (16, 15, 1, 1)
        );
        assert_eq!(ing.bronze().count().await.expect("count"), 15);
        assert_eq!(ing.dead_letters().count().await.expect("count"), 1);
        let rows = ing
            .bronze()
            .query("SELECT _op, count(*) AS n, max(_lsn) AS lsn FROM t GROUP BY _op ORDER BY _op")
            .await
            .expect("query");
        let b = arrow::compute::concat_batches(&rows[0].schema(), &rows).expect("concat");
        assert_eq!(
            strings(&b, "_op"),
            [Some("c".into()), Some("r".into()), Some("u".into())]
        );
        assert_eq!(ints(&b, "n"), [Some(2), Some(9), Some(4)]);
        assert_eq!(ints(&b, "lsn"), [Some(34_133_072), Some(34_078_720), Some(34_133_584)]);
    }
}
