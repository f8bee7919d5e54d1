//! Validation of real-looking batches against the example project's contracts.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Decimal128Type, TimestampMicrosecondType};
use std::path::Path;
use trib_ingest::{Format, Reason, Validator, decode};
use trib_spec::Contract;

fn contract(rel: &str) -> Contract {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../trib/template").join(rel);
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
