//! ODCS export and import: schema validity, lossless round trips, and the public ODCS
//! examples.

use serde_json::Value;
use std::path::{Path, PathBuf};
use trib_spec::odcs::{self, Imported};
use trib_spec::render::render_contract;
use trib_spec::yaml::Source;
use trib_spec::{Bound, CheckKind, Contract, DataType, Layer, Source as ProductSource, StreamKind, parse_contract};

fn manifest() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
}

fn interop() -> PathBuf {
    manifest().join("../../../shared/interop")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(name: &str, text: &str) -> Contract {
    let file = parse_contract(Source::new(name, text));
    let errors: Vec<String> = file.diagnostics.iter().map(ToString::to_string).collect();
    file.contract
        .unwrap_or_else(|| panic!("{name} does not parse:\n{}\n{text}", errors.join("\n")))
}

fn rich() -> Contract {
    let path = manifest().join("tests/fixtures/payments.transactions.yaml");
    parse("payments.transactions.yaml", &read(&path))
}

/// A second contract: a bronze Kafka product with the fields the rich one leaves out.
fn stream() -> Contract {
    parse(
        "clicks.yaml",
        r##"
product: web.clicks_raw
version: 0.3.0-beta.1
owner: web-team
contact: { webhook: "https://hooks.example.com/web?a=1&b=2" }
description: "Raw clicks.\n  Indented line, trailing spaces  \n"
status: draft
layer: bronze
source: { kind: kafka, format: json, topic: web.clicks }
schema:
  - { name: click_id, type: int64, required: true }
  - { name: "true", type: string, description: "yes" }
  - { name: Url, type: string, tags: ["#", "a: b"] }
  - { name: at, type: timestamp }
  - { name: score, type: float }
quality:
  - row_count: { max: 5 }
  - range: { column: score, min: -1.5, max: "1e3" }
  - not_null: [click_id]
    name: ids
    severity: warn
  - freshness: { max_age: 30s, column: at }
sla: { availability: 100% }
"##,
    )
}

fn odcs_schema() -> jsonschema::Validator {
    let path = interop().join("odcs/schema/odcs-json-schema-v3.1.0.json");
    let schema: Value = serde_json::from_str(&read(&path)).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn assert_valid_odcs(doc: &Value) {
    let validator = odcs_schema();
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} schema errors:\n{}\n\n{}",
        errors.len(),
        errors.join("\n"),
        odcs::to_yaml(doc)
    );
}

fn import_text(name: &str, text: &str) -> Imported {
    odcs::import(&Source::new(name, text)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn imported_contract(name: &str, text: &str) -> (Contract, Imported) {
    let imported = import_text(name, text);
    let warnings: Vec<String> = imported.warnings.iter().map(ToString::to_string).collect();
    let contract = imported.contract.clone().unwrap_or_else(|| {
        panic!(
            "{name} imports no contract:\n{}\n{}",
            warnings.join("\n"),
            imported.yaml
        )
    });
    (contract, imported)
}

fn column_types(c: &Contract) -> Vec<(String, String)> {
    c.schema
        .iter()
        .map(|col| (col.name.value.clone(), col.data_type.value.to_string()))
        .collect()
}

#[test]
fn render_round_trips() {
    for c in [rich(), stream()] {
        let yaml = render_contract(&c);
        assert_eq!(parse("rendered.yaml", &yaml), c, "{yaml}");
        // Canonical: rendering the rendered contract changes nothing.
        assert_eq!(render_contract(&parse("rendered.yaml", &yaml)), yaml);
    }
}

#[test]
fn export_is_valid_odcs() {
    for c in [rich(), stream()] {
        let doc = odcs::export(&c);
        assert_valid_odcs(&doc);
        // The YAML text reads back as the same document.
        let yaml = odcs::to_yaml(&doc);
        let (root, warnings) = trib_spec::yaml::parse(&Source::new("x.odcs.yaml", yaml.as_str())).expect("yaml");
        assert!(warnings.is_empty());
        assert_eq!(root.to_json(), doc, "{yaml}");
    }
}

#[test]
fn export_uses_native_odcs_fields() {
    let doc = odcs::export(&rich());
    assert_eq!(doc["apiVersion"], "v3.1.0");
    assert_eq!(doc["kind"], "DataContract");
    assert_eq!(doc["id"], "payments.transactions");
    assert_eq!(doc["domain"], "payments");
    assert_eq!(doc["version"], "2.1.0");
    assert_eq!(doc["team"]["name"], "payments-data-team");
    assert_eq!(doc["support"][0]["url"], "mailto:payments@example.com");
    let object = &doc["schema"][0];
    assert_eq!(object["name"], "transactions");
    assert_eq!(object["physicalType"], "table");
    let prop = |name: &str| {
        object["properties"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("property {name}"))
            .clone()
    };
    let id = prop("transaction_id");
    assert_eq!(id["primaryKey"], true);
    assert_eq!(id["primaryKeyPosition"], 1);
    assert_eq!(id["required"], true);
    assert_eq!(id["quality"][0]["metric"], "duplicateValues");
    assert_eq!(id["quality"][1]["metric"], "nullValues");
    let amount = prop("amount");
    assert_eq!(amount["logicalType"], "number");
    assert_eq!(amount["physicalType"], "decimal(18,2)");
    assert_eq!(amount["classification"], "confidential");
    assert_eq!(amount["quality"][0]["type"], "sql");
    assert_eq!(
        amount["quality"][0]["query"],
        "SELECT COUNT(*) FROM payments.transactions WHERE amount < 0 OR amount > 1000000.5"
    );
    let status = prop("status");
    assert_eq!(status["quality"][0]["metric"], "invalidValues");
    assert_eq!(status["quality"][0]["arguments"]["validValues"][3], "yes");
    let items = prop("items");
    assert_eq!(items["logicalType"], "array");
    assert_eq!(items["items"]["logicalType"], "object");
    assert_eq!(items["items"]["properties"][2]["physicalType"], "decimal(10,2)");
    assert_eq!(prop("card")["properties"][0]["name"], "brand");
    assert_eq!(prop("attempts")["logicalTypeOptions"]["format"], "i64");
    assert_eq!(prop("occurred_at")["partitioned"], true);
    assert_eq!(prop("customer_id")["customProperties"][0]["property"], "tributary.pii");
    assert_eq!(
        prop("customer_id")["relationships"][0]["to"],
        "crm.customers.odcs.yaml#/schema/customers/properties/customer_id"
    );
    let row_count = object["quality"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["metric"] == "rowCount"))
        .expect("rowCount");
    assert_eq!(row_count["mustBeGreaterOrEqualTo"], 1);
    let roles = doc["roles"].as_array().expect("roles");
    assert_eq!(roles[1]["customProperties"][0]["value"], "region = 'EU'");
    let sla: Vec<&str> = doc["slaProperties"]
        .as_array()
        .expect("sla")
        .iter()
        .filter_map(|p| p["property"].as_str())
        .collect();
    assert_eq!(sla, ["latency", "availability", "completeness", "retention"]);
    let custom: Vec<&str> = doc["customProperties"]
        .as_array()
        .expect("custom")
        .iter()
        .filter_map(|p| p["property"].as_str())
        .collect();
    assert!(
        custom.contains(&"tributary.source") && custom.contains(&"tributary.quality"),
        "{custom:?}"
    );
}

#[test]
fn export_then_import_is_lossless() {
    for c in [rich(), stream()] {
        let text = odcs::to_yaml(&odcs::export(&c));
        let (back, imported) = imported_contract("x.odcs.yaml", &text);
        assert_eq!(back, c, "{text}\n---\n{}", imported.yaml);
        let warnings: Vec<String> = imported.warnings.iter().map(ToString::to_string).collect();
        assert!(warnings.is_empty(), "{}", warnings.join("\n"));
        assert_eq!(imported.yaml, render_contract(&c));
    }
}

#[test]
fn import_without_custom_properties_keeps_native_fields() {
    // What another tool sees: the export minus our custom properties.
    let mut doc = odcs::export(&rich());
    if let Value::Object(m) = &mut doc {
        m.remove("customProperties");
    }
    let (c, imported) = imported_contract("native.odcs.yaml", &odcs::to_yaml(&doc));
    let original = rich();
    assert_eq!(c.product, original.product);
    assert_eq!(
        c.schema.iter().map(|c| &c.name).collect::<Vec<_>>(),
        original.schema.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
    assert_eq!(column_types(&c), column_types(&original));
    assert_eq!(c.key, original.key);
    assert_eq!(c.layer, Layer::Bronze);
    assert_eq!(c.sla.freshness, original.sla.freshness);
    assert_eq!(c.retention, original.retention);
    assert!(c.pii_columns().any(|col| col.name.value == "customer_id"));
    let kinds: Vec<&str> = c.quality.iter().map(|q| q.kind.name()).collect();
    for kind in ["unique", "not_null", "accepted_values", "row_count"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    // Checks written as SQL and relationships have no native import: each is reported.
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.code == "odcs::unmapped" && w.message.contains("type `sql`"))
    );
    assert!(imported.warnings.iter().any(|w| w.message.contains("relationships")));
}

/// Every `*.yaml` under `dir`, recursively, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn imports_every_public_example() {
    let mut files = yaml_files(&interop().join("odcs/examples"));
    files.extend(yaml_files(&interop().join("datacontract")).into_iter().filter(|p| {
        !p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("invalid"))
    }));
    assert!(files.len() >= 25, "{files:?}");
    for path in files {
        let name = path.display().to_string();
        let (c, imported) = imported_contract(&name, &read(&path));
        // The YAML is a contract that parses to the same contract.
        assert_eq!(parse(&name, &imported.yaml), c, "{name}");
        for w in &imported.warnings {
            assert!(!w.is_error(), "{name}: {w}");
            assert!(w.location.is_some(), "{name}: {w}");
            assert!(w.help.is_some(), "{name}: {w}");
        }
    }
}

#[test]
fn full_example_maps_columns_and_types() {
    let text = read(&interop().join("odcs/examples/all/full-example.odcs.yaml"));
    let (c, imported) = imported_contract("full-example.odcs.yaml", &text);
    assert_eq!(c.product.to_string(), "seller.tbl");
    assert_eq!(c.version.to_string(), "1.1.0");
    assert_eq!(c.owner, "my-team");
    assert_eq!(c.tags, ["transactions", "finance", "payments"]);
    assert_eq!(
        column_types(&c),
        [
            ("transaction_reference_date".to_string(), "date".to_string()),
            ("rcvr_id".into(), "string".into()),
            ("rcvr_cntry_code".into(), "string".into()),
        ]
    );
    assert_eq!(c.key.iter().map(|k| k.value.as_str()).collect::<Vec<_>>(), ["rcvr_id"]);
    assert_eq!(c.partition_by.len(), 1);
    assert_eq!(c.partition_by[0].column.value, "transaction_reference_date");
    assert_eq!(c.contact.email.as_deref(), Some("datacontract-ann@bitol.io"));
    assert_eq!(c.contact.slack.as_deref(), Some("#product-help"));
    assert_eq!(c.access.len(), 4);
    assert_eq!(c.sla.freshness.map(|d| d.to_string()).as_deref(), Some("4d"));
    assert_eq!(c.retention.map(|d| d.to_string()).as_deref(), Some("3y"));
    let checks: Vec<&CheckKind> = c.quality.iter().map(|q| &q.kind).collect();
    assert!(
        checks
            .iter()
            .any(|k| matches!(k, CheckKind::NotNull(cols) if cols[0].value == "rcvr_cntry_code"))
    );
    assert!(checks.iter().any(|k| matches!(
        k,
        CheckKind::RowCount {
            min: Some(1_000_001),
            max: None
        }
    )));
    let unmapped: Vec<&str> = imported
        .warnings
        .iter()
        .filter(|w| w.code == "odcs::unmapped")
        .map(|w| w.message.as_str())
        .collect();
    for construct in [
        "`price`",
        "server `my-postgres`",
        "`receivers`",
        "authoritativeDefinitions",
        "relationships",
    ] {
        assert!(
            unmapped.iter().any(|m| m.contains(construct)),
            "{construct} in {unmapped:#?}"
        );
    }
    // Warnings point into the file.
    let price = imported
        .warnings
        .iter()
        .find(|w| w.message.contains("`price`"))
        .expect("price");
    let line = text.lines().position(|l| l.starts_with("price:")).map(|i| i + 1);
    assert_eq!(price.location.as_ref().map(|l| l.line), line);
}

#[test]
fn kafka_fixture_becomes_a_kafka_source() {
    let path = interop().join("datacontract/kafka/datacontract.yaml");
    let (c, imported) = imported_contract("datacontract.yaml", &read(&path));
    assert_eq!(c.product.to_string(), "imported.inventory");
    assert_eq!(c.layer, Layer::Bronze);
    let ProductSource::Stream(s) = &c.source else {
        panic!("stream source")
    };
    assert_eq!(s.kind, StreamKind::Kafka);
    assert_eq!(s.topic.as_deref(), Some("inventory-events"));
    assert_eq!(
        column_types(&c),
        [
            ("updated_at".to_string(), "string".to_string()),
            ("available".into(), "int32".into()),
            ("location".into(), "string".into()),
            ("sku".into(), "string".into()),
        ]
    );
    assert!(matches!(
        c.quality[0].kind,
        CheckKind::RowCount {
            min: Some(10),
            max: None
        }
    ));
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.code == "odcs::defaulted" && w.message.contains("domain"))
    );
}

#[test]
fn nested_and_decimal_types() {
    let path = interop().join("datacontract/lint/valid-3.1.0.odcs.yaml");
    let (c, _) = imported_contract("valid-3.1.0.odcs.yaml", &read(&path));
    let address = c.column("address").expect("address");
    assert_eq!(
        address.data_type.to_string(),
        "struct<street: string, city: string, country: string>"
    );
    assert!(address.required);
    // Logical `date` stored as `timestamp_tz`: the physical type is the exact one.
    assert_eq!(
        c.column("delivery_date").map(|c| &c.data_type.value),
        Some(&DataType::Timestamp)
    );
    assert_eq!(
        c.column("inline_object_definition").map(|c| &c.data_type.value),
        Some(&DataType::String)
    );
    assert_eq!(c.sla.availability, Some(95.0));

    let path = interop().join("odcs/examples/data-types/all-data-types.odcs.yaml");
    let (c, imported) = imported_contract("all-data-types.odcs.yaml", &read(&path));
    let types = column_types(&c);
    let t = |n: &str| types.iter().find(|(c, _)| c == n).map(|(_, t)| t.as_str());
    assert_eq!(t("age"), Some("int64"));
    assert_eq!(t("amount"), Some("double"));
    assert_eq!(t("txn_timestamp"), Some("timestamp"));
    assert_eq!(t("txn_time"), Some("string"));
    assert_eq!(t("latest_txns"), Some("list<string>"));
    assert!(imported.warnings.iter().any(|w| w.message.contains("time of day")));

    let (c, _) = imported_contract(
        "decimal.odcs.yaml",
        r#"
apiVersion: v3.1.0
kind: DataContract
id: x
version: 1.0.0
status: active
domain: Sales
team: { name: sales }
schema:
  - name: OrderLines
    properties:
      - { name: price, logicalType: number, physicalType: "NUMERIC(12, 4)", required: true, primaryKey: true }
      - name: tags
        logicalType: array
        items: { logicalType: string }
      - name: line items
        logicalType: array
        items:
          logicalType: object
          properties:
            - { name: sku, logicalType: string }
            - { name: qty, logicalType: integer, logicalTypeOptions: { format: i64, minimum: 1 } }
"#,
    );
    assert_eq!(c.product.to_string(), "sales.order_lines");
    assert_eq!(
        column_types(&c),
        [
            ("price".to_string(), "decimal(12,4)".to_string()),
            ("tags".into(), "list<string>".into()),
            ("line_items".into(), "list<struct<sku: string, qty: int64>>".into()),
        ]
    );
    assert_eq!(c.key[0].value, "price");
}

#[test]
fn broken_custom_properties_are_located() {
    let mut doc = odcs::export(&rich());
    let custom = doc["customProperties"].as_array_mut().expect("custom");
    for p in custom.iter_mut() {
        if p["property"] == "tributary.watermark" {
            p["value"]["allowed_lateness"] = Value::from("soon");
        }
    }
    let text = odcs::to_yaml(&doc);
    let imported = import_text("x.odcs.yaml", &text);
    assert!(imported.contract.is_none());
    let error = imported.warnings.iter().find(|w| w.is_error()).expect("an error");
    assert!(error.message.contains("tributary.watermark"), "{error}");
    let line = error.location.as_ref().map(|l| l.line).expect("located");
    assert!(
        text.lines()
            .nth(line - 1)
            .is_some_and(|l| l.contains("allowed_lateness")),
        "{error}\n{text}"
    );
}

#[test]
fn not_an_odcs_document() {
    for text in [
        "- a\n- b\n",
        "kind: Something\n",
        "dataContractSpecification: 1.1.0\n",
        "a: [\n",
    ] {
        let err = odcs::import(&Source::new("x.yaml", text)).expect_err(text);
        assert!(err.location.is_some() && err.help.is_some(), "{err}");
    }
}

/// Text a YAML writer could get wrong: indicators, words a reader takes for other types,
/// line breaks, control and non-ASCII characters.
const TRICKY: &[&str] = &[
    "yes",
    "No",
    "on",
    "true",
    "null",
    "~",
    "1.0",
    "-1",
    "1e3",
    "1_000",
    "0x1f",
    ".inf",
    "NaN",
    "2020-01-01",
    "'x'",
    "\"x\"",
    "a: b",
    "a #b",
    "#",
    "- x",
    "? x",
    "[a]",
    "{a}",
    "a, b",
    "&a",
    "*a",
    "!x",
    "|",
    ">",
    "%x",
    "@x",
    "`x`",
    " x",
    "x ",
    "a\nb",
    "a\nb\n",
    "a\n\n",
    "\na",
    "  a\nb",
    "tab\there",
    "cr\r\nlf",
    "bell\u{7}",
    "nul\u{0}",
    "del\u{7f}",
    "bom\u{feff}",
    "nel\u{85}",
    "é ü 日本 🦀",
    "a\\b",
    "---",
    "...",
];

#[test]
fn tricky_text_survives_every_round_trip() {
    for text in TRICKY {
        let mut c = rich();
        let s = text.to_string();
        c.owner = s.clone();
        c.description = Some(s.clone());
        c.tags = vec![s.clone(), "plain".into()];
        c.contact.email = Some(s.clone());
        c.contact.slack = Some(format!("#{s}"));
        c.contact.webhook = Some(s.clone());
        c.schema[0].description = Some(s.clone());
        c.schema[0].tags = vec![s.clone()];
        c.access[0].role.value = s.clone();
        if let ProductSource::Model(m) = &mut c.source {
            m.transform.value = s.clone();
        }
        for q in &mut c.quality {
            match &mut q.kind {
                CheckKind::AcceptedValues { values, .. } => values.push(s.clone()),
                CheckKind::Range {
                    min: Some(b @ Bound::Text(_)),
                    ..
                } => *b = Bound::Text(s.clone()),
                CheckKind::Unique(_) => q.name = Some(s.clone()),
                _ => {}
            }
        }
        let yaml = render_contract(&c);
        assert_eq!(parse("rendered.yaml", &yaml), c, "{text:?}:\n{yaml}");
        let doc = odcs::export(&c);
        assert_valid_odcs(&doc);
        let odcs_yaml = odcs::to_yaml(&doc);
        let (back, _) = imported_contract("x.odcs.yaml", &odcs_yaml);
        assert_eq!(back, c, "{text:?}:\n{odcs_yaml}");
    }
}
