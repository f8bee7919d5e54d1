//! `trib apply`, `trib catalog search` and `trib consumers` on the example project,
//! with the catalog in SQLite (the default).

use crate::Example;

#[test]
fn apply_search_consumers_and_impact() {
    let ex = Example::init();
    // Not on a terminal: the plan, and no apply without `--yes`.
    let run = ex.trib(&["apply"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("+ orders.orders v1 1.0.0 (new, at /v1/products/orders.orders/v1)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("pass `--yes`"), "{}", run.stderr);
    let run = ex.trib(&["apply", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("applied 10 product versions"), "{}", run.stderr);
    assert!(ex.path(".trib/catalog.db").exists());
    let run = ex.trib(&["apply", "--yes"]);
    assert!(run.stderr.contains("nothing to apply"), "{}", run.stderr);

    let run = ex.trib(&["catalog", "search", "orders.orders", "--format", "json"]);
    let hits: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(hits[0]["product"], "orders.orders");
    assert_eq!(hits[0]["exact"], true);
    assert_eq!(hits[0]["certification"], "not evaluated");
    let run = ex.trib(&["catalog", "search", "sensor"]);
    assert!(run.stdout.contains("iot.sensor_readings"), "{}", run.stdout);
    assert_eq!(ex.trib(&["catalog", "search", "nothing-like-it"]).code, 1);

    // A consumer registers for orders.orders@v1 and its owner approves.
    let run = ex.trib(&[
        "consumers",
        "request",
        "orders.orders@v1",
        "--consumer",
        "bi-dashboard",
        "--contact",
        "bi@example.com",
        "--purpose",
        "weekly revenue",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.stdout.trim().to_string();
    let run = ex.trib(&["consumers", "approve", &id]);
    assert!(
        run.stderr
            .contains("approved: `bi-dashboard` consumes `orders.orders@v1` (by orders-data-team)"),
        "{}",
        run.stderr
    );
    let run = ex.trib(&["consumers", "list", "orders.orders", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(list[0]["status"], "approved");

    // A breaking change within v1: refused, with whom it would hurt.
    ex.edit(
        "products/orders/orders.yaml",
        "  - { name: customer_email, type: string, pii: true, classification: confidential }\n",
        "",
    );
    let run = ex.trib(&["apply", "--yes"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("orders.orders v1 1.0.0 → 1.0.0: refused: breaking: column `customer_email` removed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("consumer affected: bi-dashboard (bi@example.com, weekly revenue, approved)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("downstream product affected: orders.daily_revenue v1"),
        "{}",
        run.stderr
    );
    // A compatible change with its minor version applies.
    ex.edit(
        "products/orders/orders.yaml",
        "  - { name: currency, type: string }\n",
        "  - { name: customer_email, type: string, pii: true, classification: confidential }\n  - { name: currency, type: string }\n  - { name: channel, type: string }\n",
    );
    ex.edit("products/orders/orders.yaml", "version: 1.0.0", "version: 1.1.0");
    let run = ex.trib(&["apply", "--yes", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let orders = plan
        .as_array()
        .expect("plan")
        .iter()
        .find(|p| p["product"] == "orders.orders")
        .expect("orders");
    assert_eq!(orders["action"], "change");
    assert_eq!(orders["detail"]["from"], "1.0.0");
}

#[test]
fn search_over_http() {
    let ex = Example::init();
    assert_eq!(ex.trib(&["apply", "--yes"]).code, 0);
    let (mut server, http, _) = crate::serve_with_addresses(
        &ex.dir,
        &["--listen", "127.0.0.1:0", "--models-poll-ms", "0", "--pg-listen", "off"],
        std::process::Stdio::null(),
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (exact, words, openapi) = rt.block_on(async {
        let client = reqwest::Client::new();
        let get = |path: String| {
            let client = client.clone();
            async move {
                client
                    .get(path)
                    .send()
                    .await
                    .expect("get")
                    .json::<serde_json::Value>()
                    .await
                    .expect("json")
            }
        };
        (
            get(format!("{http}/v1/catalog/search?q=orders.orders")).await,
            get(format!("{http}/v1/catalog/search?q=revenue%20country&limit=5")).await,
            get(format!("{http}/v1/openapi.json")).await,
        )
    });
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(exact["hits"][0]["product"], "orders.orders", "{exact:#}");
    assert_eq!(exact["hits"][0]["readable"], true);
    let found: Vec<&str> = words["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .filter_map(|h| h["product"].as_str())
        .collect();
    assert!(found.contains(&"orders.daily_revenue"), "{found:?}");
    assert!(openapi["paths"]["/v1/catalog/search"].is_object());
}

/// The owner's approval of a consumer is the grant the serving layer enforces.
#[test]
fn an_approved_consumer_reads_the_product() {
    let ex = crate::query::orders();
    let run = ex.trib(&["token", "create", "bi-dashboard", "--role", "marketing"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.stdout.trim().to_string();
    let sql = "SELECT count(*) AS n FROM orders.orders";
    let refused = ex.trib(&["query", sql, "--token", &token]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("may not read `orders.orders`"),
        "{}",
        refused.stderr
    );
    let run = ex.trib(&[
        "consumers",
        "request",
        "orders.orders",
        "--consumer",
        "bi-dashboard",
        "--contact",
        "bi@example.com",
        "--purpose",
        "weekly revenue",
    ]);
    let id = run.stdout.trim().to_string();
    // Requested is not approved.
    assert_ne!(ex.trib(&["query", sql, "--token", &token]).code, 0);
    assert_eq!(ex.trib(&["consumers", "approve", &id]).code, 0);
    let run = ex.trib(&[
        "query",
        "SELECT * FROM orders.orders",
        "--token",
        &token,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(rows.as_array().expect("rows").len(), 9);
    // As a consumer outside any role's clearance: public columns only, PII hidden.
    assert!(rows[0].get("customer_email").is_none(), "{}", rows[0]);
    assert!(rows[0].get("order_id").is_some());
}

#[test]
fn lineage_both_ways_in_every_format() {
    let ex = Example::init();
    let run = ex.trib(&["lineage", "orders.daily_revenue"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("orders.daily_revenue@v1 ← orders.orders@v1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("orders.orders@v1 ← orders.orders_raw@v1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("orders.daily_revenue@v1 → finance.monthly_revenue@v1"),
        "{}",
        run.stdout
    );
    let run = ex.trib(&["lineage", "orders.orders_raw", "--downstream", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let down: Vec<String> = doc["downstream"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            format!(
                "{} -> {}",
                e["from"].as_str().unwrap_or(""),
                e["to"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        down,
        vec![
            "orders.daily_revenue@v1 -> finance.monthly_revenue@v1",
            "orders.orders@v1 -> orders.daily_revenue@v1",
            "orders.orders_raw@v1 -> orders.orders@v1",
        ]
    );
    assert!(doc["upstream"].as_array().expect("edges").is_empty());
    let run = ex.trib(&["lineage", "orders.orders", "--format", "mermaid"]);
    assert!(run.stdout.starts_with("graph LR"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("orders_orders_raw_v1[\"orders.orders_raw@v1\"] --> orders_orders_v1[\"orders.orders@v1\"]"),
        "{}",
        run.stdout
    );
    let run = ex.trib(&["lineage", "orders.orders", "--format", "dot", "--upstream"]);
    assert!(
        run.stdout.contains("\"orders.orders_raw@v1\" -> \"orders.orders@v1\";"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("daily_revenue"), "{}", run.stdout);
}

#[test]
fn column_lineage_from_the_models_plans() {
    let ex = Example::init();
    let run = ex.trib(&["lineage", "orders.daily_revenue", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let column = |name: &str| -> Vec<(String, String, String)> {
        doc["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .find(|c| c["column"] == name)
            .unwrap_or_else(|| panic!("no {name}"))["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .map(|s| {
                (
                    s["product"].as_str().unwrap_or_default().to_string(),
                    s["column"].as_str().unwrap_or_default().to_string(),
                    s["how"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let o = |c: &str, how: &str| ("orders.orders".to_string(), c.to_string(), how.to_string());
    assert_eq!(column("revenue"), vec![o("amount", "aggregated")]);
    assert_eq!(column("day"), vec![o("ordered_at", "transformed")]);
    assert_eq!(column("country"), vec![o("country", "copied")]);
    assert!(column("orders").is_empty());
    assert_eq!(doc["filtered_on"], serde_json::json!(["orders.orders.status"]));
    assert_eq!(
        doc["grouped_by"],
        serde_json::json!(["orders.orders.country", "orders.orders.ordered_at"])
    );

    let run = ex.trib(&["lineage", "orders.orders", "--column", "status"]);
    assert!(
        run.stdout.contains("transformed  orders.orders_raw.status"),
        "{}",
        run.stdout
    );
    let run = ex.trib(&["lineage", "orders.orders", "--column", "nope"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("has no column `nope`"), "{}", run.stderr);
}
