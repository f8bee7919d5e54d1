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
        "received = bronze + dead letters for every product: yes",
        "4 of 4 batches recognised as already committed, 0 new rows",
        "as orders-analysts (no PII clearance: masked)",
        "refused: `marketing` may not read `orders.orders`",
        "reads recorded in _trib.audit",
        "checks of orders.orders (trib quality): ",
        "iot.sensor_readings: every SLO met for 5d",
        "web.clicks_raw: SLO breached: validity",
        "web.clicks_raw: error budget exhausted: validity",
        "web.clicks_raw: recovered: every SLO met again",
        "11 alerts, 11 with a valid HMAC-SHA256 signature",
        "registered 10 product versions in `sqlite://.trib/catalog.db`",
        "consumer affected: bi-dashboard (bi-team@example.com, weekly revenue report, approved)",
        "downstream product affected: orders.daily_revenue v1",
    ] {
        assert!(run.stdout.contains(needle), "missing `{needle}` in\n{}", run.stdout);
    }
    // A second run replaces the first demo.
    let again = trib(tmp.path(), &["demo"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

#[test]
fn ingest_a_file_then_again() {
    let ex = Example::init();
    let file = ex.path("readings.ndjson");
    let mut body = String::new();
    for i in 0..30 {
        body.push_str(&format!("{{\"device_id\":\"d{i}\",\"site\":\"north\",\"reading_at\":\"2026-03-15T14:00:{:02}Z\",\"temperature_c\":21.5}}\n", i));
    }
    body.push_str("{\"device_id\":\"bad\",\"site\":\"north\",\"reading_at\":\"2026-03-15T14:00:00Z\",\"temperature_c\":\"warm\"}\n");
    body.push_str("not json\n");
    std::fs::write(&file, body).expect("write");
    let run = ex.trib(&[
        "ingest",
        "iot.sensor_readings",
        file.to_str().expect("utf8"),
        "--batch-size",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(
        (
            doc["received"].as_u64(),
            doc["accepted"].as_u64(),
            doc["dead_lettered"].as_u64()
        ),
        (Some(32), Some(30), Some(2))
    );
    assert_eq!(
        doc["dead_letters_by_reason"],
        serde_json::json!({ "malformed": 1, "type_mismatch": 1 })
    );
    assert_eq!(doc["batches"], 4);
    assert!(ex.path(".trib/lake/iot/sensor_readings/v1/_delta_log").exists());
    assert!(
        ex.path(".trib/lake/_dead_letters/iot/sensor_readings/v1/_delta_log")
            .exists()
    );

    let again = ex.trib(&[
        "ingest",
        "iot.sensor_readings",
        file.to_str().expect("utf8"),
        "--batch-size",
        "10",
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("0 received"), "{}", again.stderr);
    assert!(
        again.stderr.contains("4 of 4 batches were already ingested"),
        "{}",
        again.stderr
    );
}

#[test]
fn ingest_from_stdin_and_refusals() {
    use std::io::Write;
    let ex = Example::init();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .args(["ingest", "web.clicks_raw", "-", "--format", "json"])
        .current_dir(&ex.dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"{\"event_id\":\"e1\",\"session_id\":\"s1\",\"event_type\":\"page_view\",\"url\":\"/\",\"occurred_at\":\"2026-03-15T14:00:00Z\"}\n{\"event_id\":\"e2\"}\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (doc["accepted"].as_u64(), doc["dead_lettered"].as_u64()),
        (Some(1), Some(1))
    );

    let silver = ex.trib(&["ingest", "orders.orders", "-"]);
    assert_eq!(silver.code, 2);
    assert!(
        silver.stderr.contains("records are ingested into bronze products"),
        "{}",
        silver.stderr
    );
    let unknown = ex.trib(&["ingest", "orders.nope", "x.ndjson"]);
    assert_eq!(unknown.code, 2);
    let broken = ex.path("broken.json");
    std::fs::write(&broken, "[{\"device_id\": ").expect("write");
    let framing = ex.trib(&["ingest", "iot.sensor_readings", broken.to_str().expect("utf8")]);
    assert_eq!(framing.code, 2);
    assert!(framing.stderr.contains("not valid JSON"), "{}", framing.stderr);
}

#[test]
fn maintain_after_ingest() {
    let ex = Example::init();
    // Nothing written yet: nothing to maintain, and no table gets created.
    let empty = ex.trib(&["maintain", "--format", "json"]);
    assert_eq!(empty.code, 0, "{}", empty.stderr);
    let doc: serde_json::Value = serde_json::from_str(&empty.stdout).expect("json");
    assert_eq!(doc["tables"], serde_json::json!([]));
    assert!(!ex.path(".trib/lake/iot").exists());

    // 100 readings on both sides of last midnight (two day partitions, all within the
    // watermark's two minutes and the seven days kept) in batches of 10: 10 commits of
    // 2 small files each.
    let file = ex.path("readings.ndjson");
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().expect("a day before");
    let mut body = String::new();
    for i in 0..100 {
        let at = if i % 2 == 0 {
            format!("{yesterday}T23:59")
        } else {
            format!("{today}T00:00")
        };
        body.push_str(&format!(
            "{{\"device_id\":\"d{}\",\"site\":\"north\",\"reading_at\":\"{at}:{:02}Z\",\"temperature_c\":21.5}}\n",
            i % 7,
            i % 60
        ));
    }
    body.push_str("not json\n");
    std::fs::write(&file, body).expect("write");
    let ingest = ex.trib(&[
        "ingest",
        "iot.sensor_readings",
        file.to_str().expect("utf8"),
        "--batch-size",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(ingest.code, 0, "{}", ingest.stderr);

    let dry = ex.trib(&["maintain", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stderr
            .contains("iot.sensor_readings v1: would compact 20 files in 2 partitions"),
        "{}",
        dry.stderr
    );
    assert!(dry.stderr.contains("nothing was changed"), "{}", dry.stderr);
    let log = ex.path(".trib/lake/iot/sensor_readings/v1/_delta_log");
    let checkpoints = || {
        std::fs::read_dir(&log)
            .expect("log")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".checkpoint.parquet"))
            .count()
    };
    assert_eq!(checkpoints(), 0, "a dry run writes nothing");

    let run = ex.trib(&["maintain", "iot.sensor_readings", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["dry_run"], false);
    let tables = doc["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 2, "data and dead letters: {doc:#}");
    let data = tables.iter().find(|t| t["table"] == "data").expect("data table");
    assert_eq!(data["product"], "iot.sensor_readings");
    assert_eq!(data["compaction"]["files_removed"], 20);
    assert_eq!(
        (data["rows_before"].as_u64(), data["rows_after"].as_u64()),
        (Some(100), Some(100))
    );
    assert_eq!(data["compaction"]["files_added"], 2);
    assert_eq!(data["z_order"]["status"], "rewritten");
    assert_eq!(data["z_order"]["columns"], serde_json::json!(["device_id"]));
    assert_eq!(data["checkpoint_version"], data["version_after"]);
    // Seven days of retention: nothing removed a moment ago may be vacuumed.
    assert_eq!(data["vacuum"]["files"], 0);
    assert_eq!(data["vacuum"]["retention_seconds"], 7 * 86_400);
    assert_eq!(checkpoints(), 1);
    let dead = tables
        .iter()
        .find(|t| t["table"] == "dead_letters")
        .expect("dead letters");
    assert_eq!(dead["z_order"]["status"], "not_clustered");

    // Again: nothing left to rewrite, and the rewritten table still knows every batch it
    // took (the txn actions survive compaction), so a re-ingest writes nothing twice.
    let again = ex.trib(&["maintain"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("no small files to compact, already z-ordered by device_id"),
        "{}",
        again.stderr
    );
    let reingest = ex.trib(&[
        "ingest",
        "iot.sensor_readings",
        file.to_str().expect("utf8"),
        "--batch-size",
        "10",
    ]);
    assert!(
        reingest.stderr.contains("11 of 11 batches were already ingested"),
        "{}",
        reingest.stderr
    );
}

/// Rows of a query's JSON output.
fn json_rows(run: &crate::Run) -> Vec<serde_json::Value> {
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str::<Vec<serde_json::Value>>(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn maintain_expires_raw_rows_and_the_minute_tier_keeps_their_aggregates() {
    let ex = Example::init();
    // Readings ten days ago (past the raw tier's seven days) and an hour ago, the old
    // ones first so that the watermark takes them all.
    let now = chrono::Utc::now();
    let mut body = String::new();
    for (age, device) in [
        (chrono::Duration::days(10), "d-old"),
        (chrono::Duration::hours(1), "d-new"),
    ] {
        let at = (now - age).format("%Y-%m-%dT%H:%M:00Z");
        for i in 0..5 {
            body.push_str(&format!(
                "{{\"device_id\":\"{device}\",\"site\":\"north\",\"reading_at\":\"{at}\",\"temperature_c\":{}}}\n",
                20 + i
            ));
        }
    }
    let file = ex.path("readings.ndjson");
    std::fs::write(&file, body).expect("write");
    let ingest = ex.trib(&["ingest", "iot.sensor_readings", file.to_str().expect("utf8")]);
    assert_eq!(ingest.code, 0, "{}", ingest.stderr);
    let run = ex.trib(&["run", "--select", "iot.sensor_readings+"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let minutes = |ex: &Example| {
        json_rows(&ex.trib(&[
            "query",
            "SELECT device_id, readings, temperature_max FROM iot.readings_1m ORDER BY device_id",
            "--format",
            "json",
        ]))
    };
    let before = minutes(&ex);
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(before[1]["device_id"], "d-old");
    assert_eq!(before[1]["readings"], 5);

    let dry = ex.trib(&["maintain", "iot.sensor_readings", "--dry-run"]);
    assert!(dry.stderr.contains("would expire 5 rows older than"), "{}", dry.stderr);
    let run = ex.trib(&["maintain", "iot.sensor_readings", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let data = doc["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "data"))
        .expect("data table");
    assert_eq!(data["expired"]["rows"], 5, "{data:#}");
    assert_eq!(data["rows_after"], 5, "{data:#}");
    let raw = json_rows(&ex.trib(&[
        "query",
        "SELECT DISTINCT device_id FROM iot.sensor_readings",
        "--format",
        "json",
    ]));
    assert_eq!(raw, vec![serde_json::json!({"device_id": "d-new"})]);
    // Still append-only for every other writer.
    let mut commits: Vec<_> = std::fs::read_dir(ex.path(".trib/lake/iot/sensor_readings/v1/_delta_log"))
        .expect("log")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .map(|e| e.path())
        .collect();
    commits.sort();
    let last_setting = commits
        .iter()
        .rev()
        .map(|p| std::fs::read_to_string(p).expect("commit"))
        .find(|text| text.contains("delta.appendOnly"))
        .expect("a commit setting the table's properties");
    assert!(last_setting.contains("\"delta.appendOnly\":\"true\""), "{last_setting}");

    // The expiry is not a change for the models: the minute tier keeps the aggregates
    // of the expired readings, after a run and after a replay.
    let run = ex.trib(&["run", "--select", "iot.sensor_readings+"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(minutes(&ex), before);
    let replay = ex.trib(&["replay", "iot.readings_1m"]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert_eq!(minutes(&ex), before);
}
