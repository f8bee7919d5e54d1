//! What the decoder targets share: the example project's contracts, parsed once, and the
//! counting law every decoded body must keep.

// Each target uses part of it.
#![allow(dead_code)]

use std::sync::LazyLock;
use trib_ingest::decode::Fields;
use trib_ingest::{Format, Validator};
use trib_spec::Contract;
use trib_spec::yaml::Source;

fn contract(name: &str, text: &str) -> Contract {
    let file = trib_spec::parse_contract(Source::new(name, text));
    file.contract
        .unwrap_or_else(|| panic!("`{name}` is a valid contract: {:?}", file.diagnostics))
}

/// Validators of the example project's bronze products that take plain records: decimals
/// and instants (orders), a struct and nullable strings (clicks), floats (readings).
pub static PLAIN: LazyLock<Vec<Validator>> = LazyLock::new(|| {
    [
        (
            "orders_raw.yaml",
            include_str!("../../../crates/trib/template/products/orders/orders_raw.yaml"),
        ),
        (
            "clicks_raw.yaml",
            include_str!("../../../crates/trib/template/products/web/clicks_raw.yaml"),
        ),
        (
            "sensor_readings.yaml",
            include_str!("../../../crates/trib/template/products/iot/sensor_readings.yaml"),
        ),
    ]
    .into_iter()
    .map(|(name, text)| Validator::new(&contract(name, text)))
    .collect()
});

/// A CDC product shaped like the Debezium samples' `inventory.products` and
/// `inventory.customers`, plus the types Debezium encodes: decimals, dates, instants.
pub static CDC: LazyLock<Validator> = LazyLock::new(|| {
    let c = contract("inventory_items.yaml", CDC_CONTRACT);
    assert!(c.is_cdc());
    Validator::new(&c)
});

const CDC_CONTRACT: &str = "\
product: inventory.items
version: 1.0.0
owner: inventory-team
layer: bronze
source: { kind: cdc }
key: [id]
schema:
  - { name: id, type: int64, required: true }
  - { name: name, type: string }
  - { name: description, type: string }
  - { name: weight, type: double }
  - { name: email, type: string }
  - { name: price, type: \"decimal(18,4)\" }
  - { name: birth_date, type: date }
  - { name: created_at, type: timestamp }
  - { name: updated_at, type: timestamp_ntz }
";

/// Decodes `data` as `format` and validates the records with each of `validators`:
/// no panic, and every record that is not a tombstone ends as a row or a dead letter.
pub fn check(format: Format, data: &[u8], validators: &[&Validator]) {
    let records = match trib_ingest::decode(format, data) {
        Ok(r) => r,
        Err(e) => {
            // Line-framed formats never fail as a whole; the others only as the sender's error.
            assert!(
                matches!(format, Format::JsonArray | Format::Csv),
                "{format} framing failed: {e}"
            );
            assert!(e.is_user_error(), "a framing error must be the sender's: {e:?}");
            let _ = e.to_string();
            return;
        }
    };
    let tombstones = records
        .iter()
        .filter(|r| matches!(r.fields, Fields::Tombstone))
        .count();
    if format != Format::Debezium {
        assert_eq!(tombstones, 0, "only Debezium has tombstones");
    }
    for validator in validators {
        let validated = validator
            .validate(records.clone())
            .unwrap_or_else(|e| panic!("validation failed as a whole: {e:?}"));
        assert_eq!(
            validated.received(),
            records.len() - tombstones,
            "records in = rows + dead letters (tombstones apart)"
        );
        assert_eq!(validated.skipped_tombstones, tombstones as u64);
        assert_eq!(validated.accepted_positions.len(), validated.batch.num_rows());
        assert_eq!(validated.batch.schema(), validator.schema());
        for d in &validated.dead_letters {
            assert!(!d.message.is_empty(), "a dead letter says why: {d:?}");
        }
    }
}
