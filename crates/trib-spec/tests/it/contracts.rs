//! Contract parsing and validation: every problem in one run, located, with hints.

use trib_core::Diagnostic;
use trib_spec::yaml::Source;
use trib_spec::{DataType, parse_contract};

const GOOD: &str = r#"product: payments.transactions
version: 2.1.0
owner: payments-data-team
description: Card transactions, one row per transaction, latest state.
status: active
layer: silver
source:
  inputs: [payments.transactions_raw]
  transform: models/transactions.sql
  materialized: merge
key: [transaction_id]
sequence_by: updated_at
event_time: occurred_at
watermark: { allowed_lateness: 5m }
partition_by: [day(occurred_at)]
cluster_by: [customer_id]
schema:
  - { name: transaction_id, type: string, required: true }
  - { name: customer_id, type: string, pii: true }
  - { name: amount, type: "decimal(18,2)", classification: confidential }
  - { name: status, type: string }
  - { name: region, type: string }
  - { name: occurred_at, type: timestamp }
  - { name: updated_at, type: timestamp }
  - { name: items, type: "list<struct<sku: string, qty: int32>>" }
sla:
  freshness: 5m
  availability: 99.9%
  completeness: { within: 5m, target: 99.5% }
access:
  - { role: payments-analysts, level: read }
  - { role: risk-team, level: read, row_filter: "region = 'EU'" }
quality:
  - unique: transaction_id
  - not_null: [transaction_id, customer_id]
  - accepted_values: { column: status, values: [authorized, captured, failed] }
  - expect: { name: positive_amount, sql: "amount >= 0", on_violation: drop }
retention: 7y
"#;

fn errors(text: &str) -> Vec<Diagnostic> {
    let file = parse_contract(Source::new("c.yaml", text));
    assert!(file.contract.is_none(), "expected the contract to be rejected");
    file.diagnostics.into_vec()
}

fn codes_lines(diags: &[Diagnostic]) -> Vec<(String, usize)> {
    diags
        .iter()
        .map(|d| (d.code.clone(), d.location.as_ref().map_or(0, |l| l.line)))
        .collect()
}

#[test]
fn design_example_parses_into_typed_fields() {
    let file = parse_contract(Source::new("c.yaml", GOOD));
    assert!(file.diagnostics.is_empty(), "{:?}", file.diagnostics);
    let c = file.contract.expect("valid");
    assert_eq!(c.product.to_string(), "payments.transactions");
    assert_eq!(c.domain(), "payments");
    assert_eq!(c.version.to_string(), "2.1.0");
    assert_eq!(c.major(), 2);
    assert_eq!(c.sla.freshness.map(|d| d.as_secs()), Some(300));
    assert_eq!(c.sla.availability, Some(99.9));
    assert_eq!(c.sla.completeness.as_ref().map(|x| x.target), Some(99.5));
    assert_eq!(c.retention.map(|d| d.to_string()), Some("7y".into()));
    assert_eq!(c.partition_by[0].to_string(), "day(occurred_at)");
    assert_eq!(
        c.access[1].row_filter.as_ref().map(|f| f.value.as_str()),
        Some("region = 'EU'")
    );
    assert_eq!(c.quality.len(), 4);
    assert_eq!(
        c.column("items").map(|col| col.data_type.value.clone()),
        DataType::parse("list<struct<sku: string, qty: int32>>").ok()
    );
    let arrow = c.arrow_schema();
    assert_eq!(arrow.fields().len(), 8);
    assert!(!arrow.field_with_name("transaction_id").expect("field").is_nullable());
    assert_eq!(
        arrow.field_with_name("amount").expect("field").data_type(),
        &arrow_schema::DataType::Decimal128(18, 2)
    );
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = GOOD
        .replace("owner: payments-data-team", "ownr: payments-data-team")
        .replace("status: active", "status: activ")
        .replace("type: \"decimal(18,2)\"", "type: \"decimal(18 2)\"")
        .replace("sequence_by: updated_at", "sequence_by: updatd_at")
        .replace("freshness: 5m", "freshness: five minutes")
        .replace("role: risk-team, level: read", "role: risk-team, level: reed");
    let diags = errors(&text);
    let got = codes_lines(&diags);
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).expect(needle) + 1;
    let expected = [
        ("contract::missing-field", 1),
        ("contract::unknown-field", line_of("ownr:")),
        ("contract::unknown-value", line_of("status: activ")),
        ("contract::bad-type", line_of("decimal(18 2)")),
        ("contract::bad-duration", line_of("five minutes")),
        ("contract::unknown-value", line_of("reed")),
    ];
    for e in expected {
        assert!(got.contains(&(e.0.to_string(), e.1)), "missing {e:?} in {got:?}");
    }
    let unknown = diags
        .iter()
        .find(|d| d.code == "contract::unknown-field")
        .expect("unknown field");
    assert_eq!(unknown.help.as_deref(), Some("did you mean `owner`?"));
    let status = diags.iter().find(|d| d.message.contains("activ")).expect("status");
    assert!(
        status
            .help
            .as_deref()
            .is_some_and(|h| h.contains("did you mean `active`")),
        "{status:?}"
    );
    // The caret of a bad type points into the type string.
    let bad_type = diags.iter().find(|d| d.code == "contract::bad-type").expect("bad type");
    let loc = bad_type.location.as_ref().expect("located");
    assert_eq!(
        &text[loc.offset..loc.offset + 1],
        "2",
        "points at the missing comma: {loc:?}"
    );
}

#[test]
fn columns_named_elsewhere_must_exist_and_fit() {
    let text = GOOD
        .replace("sequence_by: updated_at", "sequence_by: status")
        .replace("partition_by: [day(occurred_at)]", "partition_by: [hour(status)]")
        .replace("cluster_by: [customer_id]", "cluster_by: [custmer_id]")
        .replace("key: [transaction_id]", "key: [items]")
        .replace("\"amount >= 0\"", "\"amont >= 0\"");
    let diags = errors(&text);
    let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    for c in [
        "contract::bad-sequence-type",
        "contract::bad-partition",
        "contract::unknown-column",
        "contract::bad-key-type",
    ] {
        assert!(codes.contains(&c), "missing {c}: {codes:?}");
    }
    let sql = diags
        .iter()
        .find(|d| d.message.contains("amont"))
        .expect("expect column");
    assert_eq!(sql.help.as_deref(), Some("did you mean `amount`?"));
    let cluster = diags
        .iter()
        .find(|d| d.message.contains("custmer_id"))
        .expect("cluster column");
    assert_eq!(cluster.help.as_deref(), Some("did you mean `customer_id`?"));
}

#[test]
fn structural_yaml_problems() {
    let dup = errors(&GOOD.replace("layer: silver\n", "layer: silver\nlayer: gold\n"));
    assert!(
        dup.iter()
            .any(|d| d.code == "yaml::duplicate-key" && d.location.as_ref().map(|l| l.line) == Some(7)),
        "{dup:?}"
    );

    let dup_col = errors(&GOOD.replace(
        "  - { name: region, type: string }",
        "  - { name: Status, type: string }",
    ));
    assert!(
        dup_col.iter().any(|d| d.code == "contract::duplicate-column"),
        "{dup_col:?}"
    );

    let wrong_kind = errors(&GOOD.replace("key: [transaction_id]", "key: { a: b }"));
    assert!(
        wrong_kind
            .iter()
            .any(|d| d.code == "contract::wrong-type" && d.message.contains("`key` must be a list")),
        "{wrong_kind:?}"
    );

    let syntax = errors("product: a.b\nschema: [\n");
    assert_eq!(syntax[0].code, "yaml::syntax");
    assert!(syntax[0].location.is_some());

    let not_a_map = errors("- just\n- a list\n");
    assert_eq!(not_a_map[0].code, "contract::wrong-type");

    assert_eq!(errors("")[0].code, "contract::empty-file");
    assert_eq!(errors("version: 1\n")[0].code, "contract::missing-field");
}

#[test]
fn field_values_are_validated() {
    let cases = [
        (
            GOOD.replace("product: payments.transactions", "product: Payments"),
            "contract::bad-product",
        ),
        (GOOD.replace("version: 2.1.0", "version: 2.1"), "contract::bad-version"),
        (
            GOOD.replace("availability: 99.9%", "availability: 120%"),
            "contract::bad-percent",
        ),
        (
            GOOD.replace("- unique: transaction_id", "- uniq: transaction_id"),
            "contract::unknown-field",
        ),
        (
            GOOD.replace("on_violation: drop", "on_violation: explode"),
            "contract::unknown-value",
        ),
        (GOOD.replace("\"amount >= 0\"", "\"amount >= \""), "contract::bad-sql"),
        (
            GOOD.replace("row_filter: \"region = 'EU'\"", "row_filter: \"region = = 'EU'\""),
            "contract::bad-sql",
        ),
        (
            GOOD.replace("materialized: merge", "materialized: merge\n  kind: http"),
            "contract::source-mixed",
        ),
        (
            GOOD.replace("key: [transaction_id]\n", ""),
            "contract::merge-without-key",
        ),
        (GOOD.replace("layer: silver", "layer: bronze"), "contract::bronze-model"),
        (
            GOOD.replace("allowed_lateness: 5m }", "allowed_lateness: 5m, late: reaggregate }"),
            "contract::late-policy",
        ),
        (
            GOOD.replace("materialized: merge", "materialized: incremental")
                .replace("allowed_lateness: 5m }", "allowed_lateness: 5m, late: dead_letter }"),
            "contract::late-policy",
        ),
        (
            GOOD.replace("event_time: occurred_at\n", "event_time: occurred_at\nevent_id: ref\n"),
            "contract::unknown-column",
        ),
        (
            GOOD.replace(
                "event_time: occurred_at\n",
                "event_time: occurred_at\nevent_id: items\n",
            ),
            "contract::bad-event-id-type",
        ),
        (
            GOOD.replace("event_time: occurred_at\n", ""),
            "contract::watermark-without-event-time",
        ),
        (
            GOOD.replace(
                "- { name: status, type: string }",
                "- { name: \"status code\", type: string }",
            ),
            "contract::bad-column-name",
        ),
        (
            GOOD.replace("[day(occurred_at)]", "[days(occurred_at)]"),
            "contract::bad-partition",
        ),
        (
            format!(
                "{GOOD}tiers:\n  - {{ resolution: 1h, retention: 7d }}\n  - {{ resolution: 1m, retention: 90d }}\n"
            ),
            "contract::bad-tiers",
        ),
    ];
    for (text, code) in cases {
        let diags = errors(&text);
        assert!(
            diags.iter().any(|d| d.code == code),
            "expected {code}, got {:?}",
            codes_lines(&diags)
        );
        for d in &diags {
            assert!(d.location.is_some(), "unlocated: {d:?}");
            assert!(d.help.is_some(), "no hint: {d:?}");
        }
    }
}

#[test]
fn stream_sources() {
    let bronze = "product: web.clicks_raw\nversion: 1.0.0\nowner: web\nlayer: bronze\nsource: { kind: kafka, topic: clicks }\nschema:\n  - { name: id, type: string }\n";
    let c = parse_contract(Source::new("c.yaml", bronze)).contract.expect("valid");
    assert!(
        matches!(&c.source, trib_spec::Source::Stream(s) if s.kind == trib_spec::StreamKind::Kafka && s.topic.as_deref() == Some("clicks"))
    );
    let diags = errors(&bronze.replace(", topic: clicks", ""));
    assert!(diags.iter().any(|d| d.message.contains("topic")), "{diags:?}");
    let reserved = errors(
        &bronze
            .replace("kind: kafka, topic: clicks", "kind: cdc")
            .replace("- { name: id, type: string }", "- { name: _op, type: string }"),
    );
    assert!(
        reserved.iter().any(|d| d.code == "contract::reserved-column"),
        "{reserved:?}"
    );
    let cdc = bronze.replace("kind: kafka, topic: clicks", "kind: cdc");
    let c = parse_contract(Source::new("c.yaml", cdc)).contract.expect("valid");
    assert!(matches!(&c.source, trib_spec::Source::Stream(s) if s.format == trib_spec::StreamFormat::Debezium));
}

/// Small deterministic generator, so the robustness test needs no extra crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn junk_never_panics() {
    let mut rng = Lcg(7);
    let pieces = [
        "product:",
        " ",
        "\n",
        "  ",
        "- ",
        "{",
        "}",
        "[",
        "]",
        ":",
        "\"",
        "'",
        "&a",
        "*a",
        "!!str",
        "<<: *a",
        "~",
        "\t",
        "#",
        "é",
        "\u{0}",
        "schema:",
        "name: x",
        "type: list<",
        "decimal(99,1)",
        "---\n",
        "|",
        ">",
        "?",
        ",",
        "%YAML 1.2\n",
    ];
    for _ in 0..3000 {
        let mut text = String::new();
        let n = rng.next() % 40;
        for _ in 0..n {
            text.push_str(pieces[(rng.next() % pieces.len() as u64) as usize]);
        }
        let _ = parse_contract(Source::new("junk.yaml", text));
    }
    // Mutations of a valid contract.
    for _ in 0..2000 {
        let mut bytes = GOOD.as_bytes().to_vec();
        for _ in 0..(1 + rng.next() % 4) {
            let i = (rng.next() as usize) % bytes.len();
            bytes[i] = (rng.next() % 128) as u8;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = parse_contract(Source::new("mutated.yaml", text));
    }
}

#[test]
fn huge_and_deep_inputs_get_diagnostics() {
    let huge = format!("product: a.b\ndescription: \"{}\"\n", "x".repeat(5 * 1024 * 1024));
    assert_eq!(errors(&huge)[0].code, "yaml::too-large");
    let deep = format!("product: {}{}", "[".repeat(500), "]".repeat(500));
    let d = errors(&deep);
    assert!(
        d.iter().any(|d| d.code == "yaml::too-deep" || d.code == "yaml::syntax"),
        "{d:?}"
    );
}
