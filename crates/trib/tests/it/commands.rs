//! diff, schema, show, contract export/import and demo, through the binary.

use crate::{Example, shared, trib};

#[test]
fn diff_of_two_files() {
    let ex = Example::init();
    let old = ex.path("products/orders/orders.yaml");
    let new = ex.path("orders_v2.yaml");
    let text = ex
        .read("products/orders/orders.yaml")
        .replace(
            "  - { name: currency, type: string }\n",
            "  - { name: currency, type: string }\n  - { name: channel, type: string }\n",
        )
        .replace(
            "{ name: amount, type: \"decimal(12,2)\", required: true }",
            "{ name: amount, type: \"decimal(14,2)\", required: true }",
        )
        .replace("version: 1.0.0", "version: 1.1.0");
    std::fs::write(&new, text).expect("write");
    let run = trib(
        &ex.dir,
        &[
            "diff",
            old.to_str().expect("utf8"),
            new.to_str().expect("utf8"),
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["breaking"], false);
    assert_eq!(doc["required_bump"], "minor");
    let kinds: Vec<&str> = doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["kind"].as_str())
        .collect();
    assert_eq!(kinds, vec!["column-added", "type-widened"]);
}

#[test]
fn diff_against_git() {
    let ex = Example::init();
    ex.git(&["init", "-q"]);
    ex.git(&["add", "."]);
    ex.git(&["commit", "-qm", "v1"]);
    ex.edit(
        "products/web/clicks.yaml",
        "{ name: url, type: string, required: true }",
        "{ name: page, type: string, required: true }",
    );
    let run = ex.trib(&["diff", "web.clicks", "--against", "HEAD"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("breaking      column-renamed"), "{}", run.stdout);
    assert!(run.stdout.contains("column `url` renamed to `page`"), "{}", run.stdout);
    assert!(run.stdout.contains("error: breaking changes"), "{}", run.stdout);
}

#[test]
fn diff_of_the_datacontract_changelog_pair() {
    let dir = shared().join("datacontract/changelog/unit");
    let run = trib(
        &dir,
        &[
            "diff",
            "changelog_unit_v1.yaml",
            "changelog_unit_v2.yaml",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "v2 is a new major version: {}{}", run.stderr, run.stdout);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let changes = doc["changes"].as_array().expect("changes");
    let has = |kind: &str, path: &str| {
        changes
            .iter()
            .any(|c| c["kind"] == kind && c["path"].as_str().is_some_and(|p| p.ends_with(path)))
    };
    assert!(has("column-removed", "customer_id"), "{changes:#?}");
    assert!(has("type-changed", "order_date"), "{changes:#?}");
    assert!(has("column-now-required", "total_amount"), "{changes:#?}");
    assert!(has("column-added", "region"), "{changes:#?}");
    assert_eq!(doc["breaking"], true);
    assert_eq!(doc["required_bump"], "major");
    assert!(doc["version_problem"].is_null());
}

#[test]
fn schema_is_json() {
    let ex = Example::init();
    let run = ex.trib(&["schema"]);
    assert_eq!(run.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&run.stdout).expect("json schema");
    assert_eq!(schema["title"], "Tributary data product contract");
    assert_eq!(
        run.stdout.trim(),
        ex.read("contract.schema.json").trim(),
        "init writes the same schema"
    );
}

#[test]
fn show_a_product() {
    let ex = Example::init();
    let run = ex.trib(&["show", "orders.orders"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for needle in [
        "orders.orders v1.0.0 (silver, active)",
        "merge ← orders.orders_raw",
        "downstream: orders.daily_revenue",
        "Decimal128(12, 2)",
        "Timestamp(µs, \"UTC\")",
        "eu-analysts read where country IN",
    ] {
        assert!(run.stdout.contains(needle), "missing `{needle}` in\n{}", run.stdout);
    }
    let json = ex.trib(&["show", "orders.orders", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(doc["key"], serde_json::json!(["order_id"]));
    let missing = ex.trib(&["show", "orders.nope"]);
    assert_eq!(missing.code, 2);
}

#[test]
fn export_then_import_is_lossless() {
    let ex = Example::init();
    for product in [
        "orders.orders",
        "web.clicks_raw",
        "iot.sensor_readings",
        "finance.monthly_revenue",
    ] {
        let out = ex.path(&format!("{product}.odcs.yaml"));
        let run = ex.trib(&[
            "contract",
            "export",
            product,
            "--format",
            "odcs",
            "-o",
            out.to_str().expect("utf8"),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let odcs = std::fs::read_to_string(&out).expect("exported");
        assert!(odcs.contains("apiVersion: v3.1.0"), "{odcs}");
        let back = ex.trib(&["contract", "import", out.to_str().expect("utf8")]);
        assert_eq!(back.code, 0, "{}", back.stderr);
        // The imported contract, diffed against the original, has no changes at all.
        let imported = ex.path("imported.yaml");
        std::fs::write(&imported, &back.stdout).expect("write");
        let (domain, name) = product.split_once('.').expect("address");
        let original = ex.path(&format!("products/{domain}/{name}.yaml"));
        let diff = ex.trib(&[
            "diff",
            original.to_str().expect("utf8"),
            imported.to_str().expect("utf8"),
            "--format",
            "json",
        ]);
        assert_eq!(diff.code, 0, "{}", diff.stderr);
        let doc: serde_json::Value = serde_json::from_str(&diff.stdout).expect("json");
        assert_eq!(doc["changes"], serde_json::json!([]), "{product}: {doc:#}");
    }
}

#[test]
fn demo_runs_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = trib(tmp.path(), &["demo"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for needle in [
        "10 products, 7 SQL models, 3 policies: 0 errors, 0 warnings",
        "orders.daily_revenue ← orders.orders",
        "caught: products/orders/orders_raw.yaml",
        "breaking      column-removed",
        "error: breaking changes",
        "10/10 import back unchanged",
    ] {
        assert!(run.stdout.contains(needle), "missing `{needle}` in\n{}", run.stdout);
    }
    // A second run replaces the first demo.
    let again = trib(tmp.path(), &["demo"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}
