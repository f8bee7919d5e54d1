//! `trib apply`, `trib catalog search` and `trib consumers` on the example project,
//! with the catalog in SQLite (the default).

use crate::Example;
use serde_json::json;

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
    std::fs::write(ex.path("old-orders.yaml"), ex.read("products/orders/orders.yaml")).expect("copy");
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
    // `trib diff` tells the same.
    let run = ex.trib(&["diff", "old-orders.yaml", "products/orders/orders.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for expected in [
        "consumer affected: bi-dashboard (bi@example.com, weekly revenue, approved)",
        "downstream product affected: orders.daily_revenue v1 (owner orders-data-team)",
        "downstream product affected: finance.monthly_revenue v1 (owner finance-data-team, indirect)",
    ] {
        assert!(run.stdout.contains(expected), "`{expected}` not in:\n{}", run.stdout);
    }
    let run = ex.trib(&[
        "diff",
        "old-orders.yaml",
        "products/orders/orders.yaml",
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["affects"]["consumers"][0]["consumer"], "bi-dashboard");
    assert_eq!(doc["affects"]["downstream"].as_array().map(Vec::len), Some(2));
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

/// A webhook receiver on loopback: each request's `x-trib-event` header and JSON body.
fn receiver() -> (String, std::sync::mpsc::Receiver<(String, serde_json::Value)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let (mut event, mut length) = (String::new(), 0usize);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("x-trib-event:") {
                    event = v.trim().to_string();
                }
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tx.send((event, serde_json::from_slice(&body).expect("json body")));
        }
    });
    (url, rx)
}

/// A new major supersedes the old: the plan says so, the old major is deprecated with
/// its date and still served (with a warning), its consumer and the owner of the
/// product built on it are told by webhook, and retiring it stops it being served.
#[test]
fn a_new_major_deprecates_the_old_and_tells_its_consumers() {
    let ex = crate::query::orders();
    let (hooks, received) = receiver();
    // The owning team of orders.daily_revenue hears about its inputs.
    ex.edit(
        "trib.toml",
        "# webhook = \"https://hooks.example.com/tributary/orders\"",
        &format!("webhook = \"{hooks}/team\""),
    );
    assert_eq!(ex.trib(&["apply", "--yes"]).code, 0);
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
        "--webhook",
        &format!("{hooks}/bi"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ex.trib(&["consumers", "approve", run.stdout.trim()]).code, 0);

    // v2 drops a column: a new file, a new major, a new table.
    let v1 = ex.read("products/orders/orders.yaml");
    let v2 = v1.replace("version: 1.0.0", "version: 2.0.0").replace(
        "  - { name: customer_email, type: string, pii: true, classification: confidential }\n",
        "",
    );
    std::fs::write(ex.path("products/orders/orders_v2.yaml"), v2).expect("write");
    let run = ex.trib(&["apply", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sunset = (chrono::Utc::now() + chrono::Duration::days(90))
        .format("%Y-%m-%d")
        .to_string();
    for expected in [
        "+ orders.orders v2 2.0.0 (new, at /v1/products/orders.orders/v2)".to_string(),
        format!("↓ orders.orders v1 1.0.0: deprecated (superseded by v2 2.0.0), served until {sunset}"),
        "breaking     column `customer_email` removed".to_string(),
        "consumer notified: bi-dashboard (bi@example.com, weekly revenue, approved)".to_string(),
    ] {
        assert!(run.stderr.contains(&expected), "`{expected}` not in:\n{}", run.stderr);
    }
    // orders.daily_revenue reads orders.orders unpinned: from now on v2; its dependents
    // through it.
    assert!(
        run.stderr.contains(
            "downstream product now reading v2 (unpinned input): orders.daily_revenue v1 (owner orders-data-team)"
        ),
        "unpinned readers follow the newest major: {}",
        run.stderr
    );
    // Pinned to v1, it is affected.
    ex.edit(
        "products/orders/daily_revenue.yaml",
        "inputs: [orders.orders]",
        "inputs: [orders.orders@v1]",
    );
    ex.edit("products/orders/daily_revenue.yaml", "version: 1.0.0", "version: 1.1.0");
    let run = ex.trib(&["apply", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("downstream product: orders.daily_revenue v1 (owner orders-data-team)"),
        "{}",
        run.stderr
    );
    // finance.monthly_revenue is built on orders.daily_revenue; its team has no webhook.
    assert!(
        run.stderr
            .contains("downstream product (indirect): finance.monthly_revenue v1 (owner finance-data-team)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("sent 2 of 3 lifecycle notices"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("finance-data-team not told: team `finance-data-team` has no webhook"),
        "{}",
        run.stderr
    );
    let mut notices: Vec<(String, serde_json::Value)> = (0..2)
        .map(|_| {
            received
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("a notice")
        })
        .collect();
    notices.sort_by_key(|(_, b)| b["team"].as_str().unwrap_or_default().to_string());
    let (event, bi) = &notices[0];
    assert_eq!(event, "version.deprecated");
    assert_eq!(bi["team"], "bi-dashboard");
    assert_eq!(bi["product"], "orders.orders");
    assert_eq!(bi["major"], 1);
    assert_eq!(bi["details"]["deprecation_date"], sunset.as_str());
    assert_eq!(bi["details"]["successor"]["major"], 2);
    assert_eq!(bi["details"]["successor"]["address"], "/v1/products/orders.orders/v2");
    assert!(
        bi["details"]["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["impact"] == "breaking" && c["path"].as_str().is_some_and(|p| p.contains("customer_email"))),
        "{bi:#}"
    );
    let (_, team) = &notices[1];
    assert_eq!(team["team"], "orders-data-team");
    assert_eq!(
        team["details"]["recipient"]["downstream_products"][0],
        "orders.daily_revenue@v1"
    );
    // Applied again: nothing more to do, nobody told twice.
    let run = ex.trib(&["apply", "--yes"]);
    assert!(run.stderr.contains("nothing to apply"), "{}", run.stderr);

    // Still served, with its date.
    let run = ex.trib(&[
        "query",
        "SELECT count(*) AS n FROM orders.orders@v1",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\"n\":9"), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "`orders.orders@v1` is deprecated and served until {sunset}; read `orders.orders@v2` before it is retired"
        )),
        "{}",
        run.stderr
    );
    let run = ex.trib(&["catalog", "search", "orders.orders", "--format", "json"]);
    let hits: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let v1 = hits
        .as_array()
        .expect("hits")
        .iter()
        .find(|h| h["product"] == "orders.orders" && h["major"] == 1)
        .expect("v1 found");
    assert_eq!(
        (v1["status"].clone(), v1["deprecation_date"].clone()),
        (json!("deprecated"), json!(sunset))
    );
    let run = ex.trib(&["show", "orders.orders@v1"]);
    assert!(
        run.stdout.contains(&format!("deprecated, served until {sunset}")),
        "{}",
        run.stdout
    );

    // Retired by its contract: no longer served, and its consumers are told.
    ex.edit("products/orders/orders.yaml", "status: active", "status: retired");
    ex.edit("products/orders/orders.yaml", "version: 1.0.0", "version: 1.0.1");
    ex.edit(
        "products/orders/daily_revenue.yaml",
        "inputs: [orders.orders@v1]",
        "inputs: [orders.orders]",
    );
    ex.edit("products/orders/daily_revenue.yaml", "version: 1.1.0", "version: 1.2.0");
    let run = ex.trib(&["apply", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("- orders.orders v1 1.0.1: retired (its contract says `status: retired`)"),
        "{}",
        run.stderr
    );
    let (event, retired) = received
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a notice");
    assert_eq!(event, "version.retired");
    assert_eq!(retired["team"], "bi-dashboard");
    let run = ex.trib(&["query", "SELECT count(*) FROM orders.orders@v1"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("`orders.orders@v1` was retired") && run.stderr.contains("read `orders.orders@v2`"),
        "{}",
        run.stderr
    );
    // Retired versions rank after the served ones.
    let run = ex.trib(&["catalog", "search", "orders.orders", "--format", "json"]);
    let hits: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let order: Vec<(i64, &str)> = hits
        .as_array()
        .expect("hits")
        .iter()
        .filter(|h| h["product"] == "orders.orders")
        .map(|h| {
            (
                h["major"].as_i64().unwrap_or_default(),
                h["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(order, [(2, "active"), (1, "retired")]);
    // Over HTTP: the versions' states, and 410 Gone for the retired one's rows.
    let (mut server, http, _) = crate::serve_with_addresses(
        &ex.dir,
        &["--listen", "127.0.0.1:0", "--models-poll-ms", "0", "--pg-listen", "off"],
        std::process::Stdio::null(),
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (described, rows) = rt.block_on(async {
        let client = reqwest::Client::new();
        let described: serde_json::Value = client
            .get(format!("{http}/v1/products/orders.orders"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        let rows = client
            .get(format!("{http}/v1/products/orders.orders/v1/rows"))
            .send()
            .await
            .expect("get");
        (described, (rows.status().as_u16(), rows.text().await.expect("text")))
    });
    let _ = server.kill();
    let _ = server.wait();
    let versions = described["versions"].as_array().expect("versions");
    let state = |major: u64| {
        let v = versions.iter().find(|v| v["major"] == major).expect("version");
        (v["status"].clone(), v["deprecation_date"].clone())
    };
    assert_eq!(state(1), (json!("retired"), json!(sunset)), "{described:#}");
    assert_eq!(state(2), (json!("active"), serde_json::Value::Null), "{described:#}");
    assert_eq!(rows.0, 410, "{}", rows.1);
    assert!(rows.1.contains("retired"), "{}", rows.1);
}

/// `trib docs`: a site browsable from disk, every link resolving to a file, with the
/// catalog's facts (consumers, versions) and the lineage the plans give.
#[test]
fn docs_site_from_disk() {
    let ex = Example::init();
    // Text that must be escaped, not interpreted.
    ex.edit(
        "products/web/clicks.yaml",
        "description: ",
        "description: <script>alert(1)</script> & ",
    );
    assert_eq!(ex.trib(&["apply", "--yes"]).code, 0);
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
    let run = ex.trib(&["docs", "--out", "site"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("wrote 10 product pages"), "{}", run.stderr);
    let site = ex.path("site");

    // Every page's local links and stylesheet point at files that exist.
    let mut pages = vec![site.join("index.html")];
    for entry in std::fs::read_dir(site.join("products")).expect("products") {
        pages.push(entry.expect("entry").path());
    }
    assert_eq!(pages.len(), 11);
    for page in &pages {
        let html = std::fs::read_to_string(page).expect("page");
        assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"));
        let mut links = 0;
        for part in html.split("href=\"").skip(1) {
            let target = &part[..part.find('"').expect("closing quote")];
            assert!(
                !target.starts_with("http"),
                "{}: a link off disk: {target}",
                page.display()
            );
            let file = page.parent().expect("dir").join(target);
            assert!(file.is_file(), "{}: `{target}` does not exist", page.display());
            links += 1;
        }
        assert!(links > 1, "{}", page.display());
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
        assert!(!html.contains("<script>alert"), "{}: unescaped text", page.display());
    }

    let index = std::fs::read_to_string(site.join("index.html")).expect("index");
    // Every product linked, and one edge per input in the graph.
    let catalog: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("catalog.json")).expect("json")).expect("json");
    let products = catalog["products"].as_array().expect("products");
    assert_eq!(products.len(), 10);
    let inputs: usize = products
        .iter()
        .map(|p| p["inputs"].as_array().expect("inputs").len())
        .sum();
    assert_eq!(inputs, 7);
    assert_eq!(index.matches("class=\"edge\"").count(), inputs);
    for p in products {
        assert!(index.contains(&format!("href=\"products/{}\"", p["page"].as_str().expect("page"))));
    }
    assert!(
        index.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp;"),
        "escaped description"
    );
    // Every model's column lineage is derived from its plan (merges, windows, joins and
    // aggregates of the example project), each output column accounted for.
    for p in products.iter().filter(|p| p["source"]["kind"] == "model") {
        let lineage = &p["column_lineage"];
        assert!(lineage["error"].is_null(), "{}: {}", p["id"], lineage["error"]);
        let columns: Vec<&str> = lineage["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c["column"].as_str())
            .collect();
        for col in p["schema"].as_array().expect("schema") {
            let name = col["name"].as_str().expect("name");
            assert!(
                columns.contains(&name),
                "{}: no lineage for `{name}`: {columns:?}",
                p["id"]
            );
        }
    }

    // The catalog's facts beside the contract's.
    let orders = products.iter().find(|p| p["id"] == "orders.orders@v1").expect("orders");
    assert_eq!(orders["consumers"][0]["consumer"], "bi-dashboard");
    assert_eq!(orders["catalog"]["applied_version"], "1.0.0");
    assert_eq!(orders["catalog"]["up_to_date"], true);
    let page = std::fs::read_to_string(site.join("products/orders.orders.v1.html")).expect("page");
    assert!(
        page.contains("<tr><td><code>customer_email</code></td><td>string</td><td></td><td><span class=\"badge pii\">PII</span></td><td>confidential</td>"),
        "{page}"
    );
    assert!(page.contains("<td>bi-dashboard</td><td>requested</td>"), "{page}");
    // Column lineage of a gold model, from its plan; its neighbourhood graph has its
    // input and its consumer product, itself highlighted.
    let page = std::fs::read_to_string(site.join("products/orders.daily_revenue.v1.html")).expect("page");
    assert!(
        page.contains("<a href=\"orders.orders.v1.html\">orders.orders@v1</a>.<code>amount</code> (aggregated)"),
        "{page}"
    );
    assert!(page.contains("class=\"node layer-gold focus\""), "{page}");
    assert_eq!(
        page.matches("class=\"edge\"").count(),
        3,
        "raw → orders → daily → monthly"
    );
}
