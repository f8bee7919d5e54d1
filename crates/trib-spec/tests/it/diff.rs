//! Breaking-change classification between contract versions.

use trib_spec::diff::{Bump, Impact, diff, required_bump, version_problem};
use trib_spec::yaml::Source;
use trib_spec::{Contract, parse_contract};

const BASE: &str = r#"product: shop.orders
version: 1.2.0
owner: shop-team
description: Orders.
layer: silver
source: { inputs: [shop.orders_raw], transform: models/orders.sql, materialized: merge }
key: [order_id]
sequence_by: updated_at
event_time: ordered_at
partition_by: [day(ordered_at)]
schema:
  - { name: order_id, type: string, required: true }
  - { name: status, type: string }
  - { name: quantity, type: int32 }
  - { name: amount, type: "decimal(10,2)" }
  - { name: note, type: string, description: Free text }
  - { name: ordered_at, type: timestamp }
  - { name: updated_at, type: timestamp }
quality:
  - accepted_values: { column: status, values: [placed, shipped, cancelled] }
"#;

fn contract(text: &str) -> Contract {
    let f = parse_contract(Source::new("c.yaml", text));
    f.contract.unwrap_or_else(|| panic!("invalid: {:?}", f.diagnostics))
}

fn kinds(old: &str, new: &str) -> Vec<(Impact, &'static str)> {
    diff(&contract(old), &contract(new))
        .into_iter()
        .map(|c| (c.impact, c.kind))
        .collect()
}

#[test]
fn identical_contracts_have_no_changes() {
    assert!(kinds(BASE, BASE).is_empty());
    // Moving text around (spans) is not a change.
    let reflowed = BASE.replace("key: [order_id]", "key:\n  - order_id");
    assert!(kinds(BASE, &reflowed).is_empty());
}

#[test]
fn breaking_changes() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "  - { name: note, type: string, description: Free text }\n",
            "",
            "column-removed",
        ),
        (
            "{ name: note, type: string, description: Free text }",
            "{ name: remark, type: string, description: Free text }",
            "column-renamed",
        ),
        (
            "{ name: quantity, type: int32 }",
            "{ name: quantity, type: string }",
            "type-changed",
        ),
        (
            "{ name: amount, type: \"decimal(10,2)\" }",
            "{ name: amount, type: \"decimal(8,2)\" }",
            "type-narrowed",
        ),
        (
            "{ name: status, type: string }",
            "{ name: status, type: string, required: true }",
            "column-now-required",
        ),
        ("key: [order_id]", "key: [order_id, status]", "key-changed"),
        (
            "partition_by: [day(ordered_at)]",
            "partition_by: [hour(ordered_at)]",
            "partition-changed",
        ),
        (
            "values: [placed, shipped, cancelled]",
            "values: [placed, shipped]",
            "accepted-values-removed",
        ),
        (
            "  - { name: updated_at, type: timestamp }\n",
            "  - { name: updated_at, type: timestamp }\n  - { name: channel, type: string, required: true }\n",
            "required-column-added",
        ),
        ("sequence_by: updated_at", "sequence_by: ordered_at", "sequence-changed"),
        ("product: shop.orders", "product: shop.purchases", "product-renamed"),
    ];
    for (from, to, kind) in cases {
        let new = BASE.replace(from, to);
        assert_ne!(new, BASE, "{kind}: edit did not apply");
        let got = kinds(BASE, &new);
        assert!(got.contains(&(Impact::Breaking, kind)), "{kind}: got {got:?}");
        let (old, new) = (contract(BASE), contract(&new));
        let changes = diff(&old, &new);
        assert_eq!(required_bump(&changes), Bump::Major, "{kind}");
        assert!(
            version_problem(&old, &new, &changes).is_some_and(|p| p.contains("new major version")),
            "{kind}"
        );
    }
}

#[test]
fn non_breaking_and_descriptive_changes() {
    let cases: &[(&str, &str, Impact, &str)] = &[
        (
            "  - { name: updated_at, type: timestamp }\n",
            "  - { name: updated_at, type: timestamp }\n  - { name: channel, type: string }\n",
            Impact::NonBreaking,
            "column-added",
        ),
        (
            "{ name: quantity, type: int32 }",
            "{ name: quantity, type: int64 }",
            Impact::NonBreaking,
            "type-widened",
        ),
        (
            "{ name: amount, type: \"decimal(10,2)\" }",
            "{ name: amount, type: \"decimal(12,2)\" }",
            Impact::NonBreaking,
            "type-widened",
        ),
        (
            "{ name: order_id, type: string, required: true }",
            "{ name: order_id, type: string }",
            Impact::NonBreaking,
            "column-now-optional",
        ),
        (
            "values: [placed, shipped, cancelled]",
            "values: [placed, shipped, cancelled, returned]",
            Impact::NonBreaking,
            "accepted-values-added",
        ),
        (
            "description: Free text",
            "description: Anything the customer wrote",
            Impact::Descriptive,
            "column-described",
        ),
        (
            "description: Orders.",
            "description: All orders.",
            Impact::Descriptive,
            "description-changed",
        ),
        (
            "owner: shop-team",
            "owner: commerce-team",
            Impact::Descriptive,
            "owner-changed",
        ),
    ];
    for (from, to, impact, kind) in cases {
        let new = BASE.replace(from, to);
        let got = kinds(BASE, &new);
        assert!(got.contains(&(*impact, kind)), "{kind}: got {got:?}");
        assert!(
            !got.iter().any(|(i, _)| *i == Impact::Breaking),
            "{kind} must not be breaking: {got:?}"
        );
    }
}

#[test]
fn version_bumps_are_enforced() {
    let old = contract(BASE);
    let removed = BASE.replace("  - { name: note, type: string, description: Free text }\n", "");
    let bumped = contract(&removed.replace("version: 1.2.0", "version: 2.0.0"));
    assert_eq!(version_problem(&old, &bumped, &diff(&old, &bumped)), None);
    let minor = contract(&removed.replace("version: 1.2.0", "version: 1.3.0"));
    assert!(version_problem(&old, &minor, &diff(&old, &minor)).is_some());
    let added = BASE.replace(
        "  - { name: updated_at, type: timestamp }\n",
        "  - { name: updated_at, type: timestamp }\n  - { name: channel, type: string }\n",
    );
    let same = contract(&added);
    assert!(version_problem(&old, &same, &diff(&old, &same)).is_some_and(|p| p.contains("stayed")));
    let minor_ok = contract(&added.replace("version: 1.2.0", "version: 1.3.0"));
    assert_eq!(version_problem(&old, &minor_ok, &diff(&old, &minor_ok)), None);
    let back = contract(&BASE.replace("version: 1.2.0", "version: 1.1.0"));
    assert!(version_problem(&old, &back, &diff(&old, &back)).is_some_and(|p| p.contains("backwards")));
}
