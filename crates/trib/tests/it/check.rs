//! `trib check` on the example project, and on the example broken in each way a user
//! can break it. The rendered diagnostics are snapshots.

use crate::Example;

#[test]
fn init_then_check_passes() {
    let ex = Example::init();
    let run = ex.trib(&["check"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("checked 10 products, 7 models, 3 policies: 0 errors, 0 warnings"),
        "{}",
        run.stderr
    );
    // Init refuses to overwrite a project.
    let again = crate::trib(ex.dir.parent().expect("parent"), &["init", "shop"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already holds a project"), "{}", again.stderr);
}

/// Breaks the example with one edit and returns `trib check`'s rendered diagnostics.
fn broken(file: &str, from: &str, to: &str) -> String {
    let ex = Example::init();
    ex.edit(file, from, to);
    let run = ex.trib(&["check"]);
    assert_eq!(run.code, 1, "expected problems; stderr: {}", run.stderr);
    run.stderr
}

macro_rules! snapshot {
    ($name:literal, $file:expr, $from:expr, $to:expr) => {{
        let out = broken($file, $from, $to);
        insta::assert_snapshot!($name, out);
    }};
}

#[test]
fn unknown_field_suggests_the_known_one() {
    snapshot!(
        "unknown_field",
        "products/orders/orders.yaml",
        "sequence_by: updated_at",
        "sequense_by: updated_at"
    );
}

#[test]
fn wrong_value_type() {
    snapshot!(
        "wrong_value_type",
        "products/orders/orders.yaml",
        "required: true }\n  - { name: customer_id",
        "required: maybe }\n  - { name: customer_id"
    );
}

#[test]
fn bad_column_type() {
    snapshot!(
        "bad_column_type",
        "products/iot/sensor_readings.yaml",
        "{ name: battery_v, type: float }",
        "{ name: battery_v, type: flaot }"
    );
}

#[test]
fn key_names_a_missing_column() {
    snapshot!(
        "missing_key_column",
        "products/orders/orders.yaml",
        "key: [order_id]",
        "key: [order_no]"
    );
}

#[test]
fn duplicate_key_in_yaml() {
    snapshot!(
        "duplicate_key",
        "products/web/clicks.yaml",
        "layer: silver\n",
        "layer: silver\nlayer: gold\n"
    );
}

#[test]
fn transform_reads_an_undeclared_input() {
    snapshot!(
        "undeclared_input",
        "models/daily_revenue.sql",
        "FROM orders.orders\n",
        "FROM orders.orders\nJOIN web.clicks ON true\n"
    );
}

#[test]
fn transform_does_not_parse() {
    snapshot!(
        "bad_sql",
        "models/readings_1m.sql",
        "GROUP BY device_id",
        "GROUP device_id"
    );
}

#[test]
fn input_cycle() {
    let ex = Example::init();
    ex.edit(
        "products/orders/orders.yaml",
        "inputs: [orders.orders_raw]",
        "inputs: [orders.orders_raw, orders.daily_revenue]",
    );
    ex.edit(
        "models/orders.sql",
        "FROM orders.orders_raw",
        "FROM orders.orders_raw, orders.daily_revenue",
    );
    let run = ex.trib(&["check", "--format", "json"]);
    assert_eq!(run.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let cycle = doc["diagnostics"]
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["code"] == "project::cycle")
        .expect("cycle reported");
    assert_eq!(
        cycle["message"],
        "products depend on each other in a cycle: `orders.daily_revenue` → `orders.orders` → `orders.daily_revenue`"
    );
}

#[test]
fn unknown_role() {
    snapshot!(
        "unknown_role",
        "products/web/clicks.yaml",
        "role: marketing",
        "role: marketeers"
    );
}

#[test]
fn pii_policy_violation() {
    snapshot!(
        "policy_pii_access",
        "products/web/clicks_raw.yaml",
        "access:\n  - { role: marketing, level: read }\n",
        ""
    );
}

#[test]
fn finance_retention_policy_violation() {
    snapshot!(
        "policy_finance_retention",
        "products/finance/monthly_revenue.yaml",
        "retention: 10y",
        "retention: 3y"
    );
}

#[test]
fn breaking_change_without_major_bump() {
    let ex = Example::init();
    ex.git(&["init", "-q"]);
    ex.git(&["add", "."]);
    ex.git(&["commit", "-qm", "v1"]);
    assert_eq!(ex.trib(&["check"]).code, 0);
    ex.edit(
        "products/orders/orders.yaml",
        "  - { name: currency, type: string }\n",
        "",
    );
    ex.edit(
        "products/orders/orders.yaml",
        "{ name: country, type: string }",
        "{ name: country, type: string, required: true }",
    );
    ex.edit("models/orders.sql", "    upper(currency) AS currency,\n", "");
    let run = ex.trib(&["check"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    insta::assert_snapshot!("version_bump", run.stderr);

    // With the major version bumped, the same change passes.
    ex.edit("products/orders/orders.yaml", "version: 1.0.0", "version: 2.0.0");
    let run = ex.trib(&["check"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("versions compared with HEAD"), "{}", run.stderr);
}

#[test]
fn json_output_for_ci() {
    let ex = Example::init();
    ex.edit(
        "products/orders/orders.yaml",
        "owner: orders-data-team",
        "ownr: orders-data-team",
    );
    ex.edit("products/iot/readings_1m.yaml", "type: int64", "type: int65");
    let run = ex.trib(&["check", "--format", "json"]);
    assert_eq!(run.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json on stdout");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["errors"], 3, "{doc:#}");
    let diags = doc["diagnostics"].as_array().expect("list");
    let unknown = diags
        .iter()
        .find(|d| d["code"] == "contract::unknown-field")
        .expect("unknown field");
    assert_eq!(unknown["location"]["file"], "products/orders/orders.yaml");
    assert_eq!(unknown["location"]["line"], 4);
    assert_eq!(unknown["location"]["column"], 1);
    assert_eq!(unknown["help"], "did you mean `owner`?");
    let ty = diags
        .iter()
        .find(|d| d["code"] == "contract::bad-type")
        .expect("bad type");
    assert_eq!(ty["location"]["file"], "products/iot/readings_1m.yaml");
    assert!(
        ty["help"].as_str().is_some_and(|h| h.contains("did you mean `int64`")),
        "{ty}"
    );
}

#[test]
fn broken_settings() {
    let ex = Example::init();
    ex.edit("trib.toml", "[storage]", "[storag]");
    let run = ex.trib(&["check"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("settings::invalid"), "{}", run.stderr);
    assert!(run.stderr.contains("storag"), "{}", run.stderr);
}

#[test]
fn binary_junk_and_huge_files_get_diagnostics() {
    let ex = Example::init();
    std::fs::write(
        ex.path("products/orders/junk.yaml"),
        [0xff, 0xfe, 0x00, 0x12, 0x80, b'\n'],
    )
    .expect("write");
    std::fs::write(ex.path("products/orders/nul.yaml"), "product: orders.nul\x00\n").expect("write");
    let huge = format!("product: orders.huge\ndescription: \"{}\"\n", "x".repeat(5 << 20));
    std::fs::write(ex.path("products/orders/huge.yaml"), huge).expect("write");
    let run = ex.trib(&["check", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let codes: Vec<&str> = doc["diagnostics"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    for code in ["yaml::not-utf8", "yaml::binary", "yaml::too-large"] {
        assert!(codes.contains(&code), "missing {code}: {codes:?}");
    }
}

#[test]
fn settings_come_from_the_environment_too() {
    let ex = Example::init();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .arg("check")
        .current_dir(&ex.dir)
        .env("NO_COLOR", "1")
        .env("TRIB_POLICIES_DIR", "no-such-dir")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 policies"), "{stderr}");
}
