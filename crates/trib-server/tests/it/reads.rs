//! The read API on a real socket over the example project's real Delta tables: every
//! HTTP path × every kind of role, tokens, and a server that takes no anonymous calls.

use std::collections::BTreeSet;
use std::sync::Arc;
use trib_access::{Gateway, TokenStore};
use trib_server::{IngestHub, Reads, ServerSettings};

const COUNTRIES: [&str; 4] = ["DE", "US", "FR", "JP"];

fn order(i: usize) -> String {
    format!(
        r#"{{"order_id":"o-{i:03}","customer_id":"c-{i}","customer_email":"c{i}@example.com","country":"{}","status":"placed","amount":"{i}.25","currency":"EUR","ordered_at":"2026-03-15T10:00:{:02}Z","updated_at":"2026-03-15T10:00:{:02}Z"}}"#,
        COUNTRIES[i % 4],
        i % 60,
        i % 60
    )
}

struct Api {
    base: String,
    tokens: std::collections::HashMap<&'static str, String>,
    store: TokenStore,
    dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The example project with 20 orders in silver, served with no anonymous access, and
/// one token per role.
async fn api() -> Api {
    let (dir, project) = trib_test::example(|s| s);
    let lake = trib_lake::Lake::from_settings(&project.settings.storage, &project.dir).expect("lake");
    let raw = project
        .contracts()
        .find(|c| c.product.value.to_string() == "orders.orders_raw")
        .expect("raw");
    let body: String = (0..20).map(|i| order(i) + "\n").collect();
    let mut ing = trib_ingest::Ingestor::open(&lake, raw).await.expect("ingestor");
    let provenance = trib_ingest::dead_letter::Provenance {
        received_at_micros: 0,
        source: "test".into(),
        batch_id: "b".into(),
    };
    ing.ingest(trib_ingest::Format::Ndjson, body.as_bytes(), &provenance, None)
        .await
        .expect("ingest");
    trib_engine::Engine::new(lake.clone(), &project)
        .run(&("orders.orders".to_string(), 1))
        .await
        .expect("run");

    let store = TokenStore::open(dir.path());
    let mut tokens = std::collections::HashMap::new();
    for (who, role) in [
        ("owner", "orders-data-team"),
        ("masked", "orders-analysts"),
        ("filtered", "eu-analysts"),
        ("stranger", "marketing"),
        ("writer-less", "customer-care"),
    ] {
        let (_, t) = store.create(who, vec![role.to_string()]).expect("token");
        tokens.insert(who, t);
    }
    let gateway = Gateway::new(lake.clone(), &project).expect("gateway");
    let reads = Arc::new(Reads::new(gateway, TokenStore::open(dir.path()), None).expect("reads"));
    let settings = ServerSettings::default();
    let hub = IngestHub::start(lake, project.contracts().cloned().collect(), &settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(trib_server::serve(listener, hub, Some(reads), settings, async move {
        let _ = stopped.await;
    }));
    Api {
        base,
        tokens,
        store,
        dir,
        _stop: stop,
    }
}

/// What one caller got: the columns and the rows, as JSON objects.
#[derive(Debug)]
struct Seen {
    columns: BTreeSet<String>,
    rows: Vec<serde_json::Value>,
}

impl Api {
    async fn sql(&self, who: &str, sql: &str) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/sql", self.base))
            .bearer_auth(&self.tokens[who])
            .json(&serde_json::json!({ "sql": sql }))
            .send()
            .await
            .expect("send");
        (r.status().as_u16(), r.json().await.expect("json"))
    }

    async fn rows(&self, who: &str, query: &str) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .get(format!("{}/v1/products/orders.orders/v1/rows{query}", self.base))
            .bearer_auth(&self.tokens[who])
            .send()
            .await
            .expect("send");
        (r.status().as_u16(), r.json().await.expect("json"))
    }
}

fn seen(rows: &serde_json::Value) -> Seen {
    let rows: Vec<serde_json::Value> = rows.as_array().expect("rows").clone();
    let columns = rows
        .first()
        .and_then(|r| r.as_object())
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    Seen { columns, rows }
}

fn emails(s: &Seen) -> Vec<Option<String>> {
    s.rows
        .iter()
        .map(|r| r.get("customer_email").and_then(|v| v.as_str()).map(String::from))
        .collect()
}

fn countries(s: &Seen) -> BTreeSet<String> {
    s.rows
        .iter()
        .filter_map(|r| r.get("country").and_then(|v| v.as_str()).map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_and_role_sees_exactly_its_share() {
    let api = api().await;
    let sql = "SELECT * FROM orders.orders ORDER BY order_id";
    for path in ["sql", "rows"] {
        let get = |who: &'static str| {
            let api = &api;
            async move {
                match path {
                    "sql" => {
                        let (status, doc) = api.sql(who, sql).await;
                        (status, doc.get("rows").map(seen))
                    }
                    _ => {
                        let (status, doc) = api.rows(who, "?limit=100").await;
                        (status, doc.get("rows").map(seen))
                    }
                }
            }
        };
        // Owner: all 20 rows, emails in clear.
        let (status, owner) = get("owner").await;
        assert_eq!(status, 200, "{path}");
        let owner = owner.expect("rows");
        assert_eq!(owner.rows.len(), 20, "{path}");
        assert!(
            emails(&owner)
                .iter()
                .all(|e| e.as_deref().is_some_and(|e| e.ends_with("@example.com")))
        );
        // Without PII clearance: the column is there, every value null.
        let masked = get("masked").await.1.expect("rows");
        assert_eq!(masked.rows.len(), 20, "{path}");
        assert!(
            masked.columns.contains("customer_email"),
            "{path}: {:?}",
            masked.columns
        );
        assert!(
            emails(&masked).iter().all(Option::is_none),
            "{path}: {:?}",
            emails(&masked)
        );
        // Row filter and internal clearance: European rows, no email column at all.
        let filtered = get("filtered").await.1.expect("rows");
        assert_eq!(filtered.rows.len(), 10, "{path}");
        assert_eq!(
            countries(&filtered),
            ["DE", "FR"].map(String::from).into_iter().collect(),
            "{path}"
        );
        assert!(!filtered.columns.contains("customer_email"), "{path}");
        // No grant: 403 and no rows.
        let (status, none) = get("stranger").await;
        assert_eq!(status, 403, "{path}");
        assert!(none.is_none(), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_page_filter_and_travel() {
    let api = api().await;
    // Pages of 7 by key, joined, are every row once, in order.
    let mut cursor = String::new();
    let mut ids = Vec::new();
    loop {
        let q = if cursor.is_empty() {
            "?limit=7&columns=order_id,amount".to_string()
        } else {
            format!("?limit=7&columns=order_id,amount&cursor={cursor}")
        };
        let (status, doc) = api.rows("owner", &q).await;
        assert_eq!(status, 200, "{doc}");
        for r in doc["rows"].as_array().expect("rows") {
            assert_eq!(r.as_object().expect("row").len(), 2, "only the selected columns: {r}");
            ids.push(r["order_id"].as_str().expect("id").to_string());
        }
        match doc["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let want: Vec<String> = (0..20).map(|i| format!("o-{i:03}")).collect();
    assert_eq!(ids, want);
    // Filters compare as the column's type: amount is a decimal, not text.
    let (_, doc) = api.rows("owner", "?amount=gte.9.25&country=US").await;
    let got: Vec<&str> = doc["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["order_id"].as_str().expect("id"))
        .collect();
    assert_eq!(got, ["o-009", "o-013", "o-017"]);
    // A filter cannot widen a row filter.
    let (_, doc) = api.rows("filtered", "?country=US").await;
    assert_eq!(doc["rows"].as_array().expect("rows").len(), 0);
    // Time travel to before the table existed is the caller's mistake.
    let (status, doc) = api.rows("owner", "?as_of=2001-01-01T00:00:00Z").await;
    assert_eq!(status, 400, "{doc}");
    let (status, doc) = api.rows("owner", "?columns=nope").await;
    assert_eq!(status, 400, "{doc}");
    assert!(doc["message"].as_str().expect("message").contains("order_id"), "{doc}");
    // Formats by Accept.
    let r = reqwest::Client::new()
        .get(format!(
            "{}/v1/products/orders.orders/v1/rows?columns=order_id&limit=3",
            api.base
        ))
        .bearer_auth(&api.tokens["owner"])
        .header("accept", "text/csv")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), "order_id\no-000\no-001\no-002\n");
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sql", api.base))
        .bearer_auth(&api.tokens["owner"])
        .header("accept", "application/vnd.apache.arrow.stream")
        .body("SELECT count(*) AS n FROM orders.orders")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.expect("bytes");
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).expect("arrow stream");
    let batches: Vec<_> = reader.collect::<Result<_, _>>().expect("batches");
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("count");
    assert_eq!(n.value(0), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_checked_and_revocable() {
    let api = api().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/sql", api.base);
    let body = "SELECT count(*) FROM orders.orders";
    // Missing: this server is not anonymous.
    let r = client.post(&url).body(body).send().await.expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    // Malformed, forged.
    for bad in ["Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer trib_000000000000_00"] {
        let r = client
            .post(&url)
            .header("authorization", bad)
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401, "{bad}");
        let doc: serde_json::Value = r.json().await.expect("json");
        assert!(doc.get("rows").is_none());
    }
    // Revoked: refused at the next request, by a server that was running all along.
    let (status, _) = api.sql("masked", body).await;
    assert_eq!(status, 200);
    api.store.revoke("masked").expect("revoke");
    let (status, doc) = api.sql("masked", body).await;
    assert_eq!(status, 401, "{doc}");
    // Events need a write grant: customer-care reads orders but does not write them.
    let r = client
        .post(format!("{}/v1/products/orders.orders_raw/events", api.base))
        .bearer_auth(&api.tokens["writer-less"])
        .body(order(99))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    let r = client
        .post(format!("{}/v1/products/orders.orders_raw/events", api.base))
        .bearer_auth(&api.tokens["owner"])
        .body(order(99))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    // Sandbox refusals are 400, unknown products 404.
    let (status, _) = api.sql("owner", "DROP TABLE orders.orders").await;
    assert_eq!(status, 400);
    let (status, _) = api.sql("owner", "SELECT * FROM nope.nothing").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let api = api().await;
    // Served without a token, like /healthz.
    let r = reqwest::get(format!("{}/v1/openapi.json", api.base))
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."), "{doc}");
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    for p in [
        "/healthz",
        "/metrics",
        "/v1/openapi.json",
        "/v1/products",
        "/v1/products/{product}",
        "/v1/products/{product}/events",
        "/v1/products/{product}/v{major}/rows",
        "/v1/sql",
    ] {
        assert!(paths.contains(p), "{p} missing from {paths:?}");
    }
    assert!(
        doc["paths"]["/v1/sql"]["post"]["responses"]["403"].is_object(),
        "{}",
        doc["paths"]["/v1/sql"]
    );
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for s in ["ErrorBody", "IngestAnswer", "ProductSummary", "RowsPage", "SqlAnswer"] {
        assert!(schemas.contains_key(s), "{s}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // The error body the document promises is the one errors have.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sql", api.base))
        .body("SELECT 1")
        .send()
        .await
        .expect("send");
    let err: serde_json::Value = r.json().await.expect("json");
    let promised: BTreeSet<&str> = schemas["ErrorBody"]["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    let got: BTreeSet<&str> = err.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(got, promised);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_reads_by_key_are_served_fresh_and_secured() {
    let api = api().await;
    let get = |who: &'static str, q: &'static str| {
        let api = &api;
        async move {
            let (status, doc) = api.rows(who, q).await;
            (status, doc.get("rows").map(seen))
        }
    };
    // The whole key, so the index answers; the same rows SQL would give.
    let (status, owner) = get("owner", "?order_id=o-005").await;
    assert_eq!(status, 200);
    let owner = owner.expect("rows");
    assert_eq!(owner.rows.len(), 1);
    assert_eq!(owner.rows[0]["customer_email"], "c5@example.com");
    assert_eq!(owner.rows[0]["amount"].to_string(), "5.25");
    let (_, via_sql) = api
        .sql("owner", "SELECT * FROM orders.orders WHERE order_id = 'o-005'")
        .await;
    assert_eq!(via_sql["rows"][0], owner.rows[0], "index and SQL agree");
    // Masks, hidden columns and row filters hold on the fast side too.
    let masked = get("masked", "?order_id=o-005").await.1.expect("rows");
    assert!(masked.columns.contains("customer_email"));
    assert!(masked.rows[0]["customer_email"].is_null());
    let filtered = get("filtered", "?order_id=o-000").await.1.expect("rows");
    assert_eq!(filtered.rows.len(), 1, "DE is in the filter");
    assert!(!filtered.columns.contains("customer_email"));
    let (status, none) = get("filtered", "?order_id=o-001").await;
    assert_eq!(status, 200);
    assert_eq!(none.expect("rows").rows.len(), 0, "US is outside the filter");
    let (status, _) = get("stranger", "?order_id=o-005").await;
    assert_eq!(status, 403);
    let (_, missing) = get("owner", "?order_id=o-999").await;
    assert_eq!(missing.expect("rows").rows.len(), 0);
    let (status, doc) = api
        .rows("filtered", "?order_id=o-000&columns=order_id,customer_email")
        .await;
    assert_eq!(status, 400, "{doc}");
    // Those were served by the index, not by SQL.
    let metrics = reqwest::get(format!("{}/metrics", api.base))
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    let served: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("trib_point_read_seconds_count "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(served >= 6.0, "{served} point reads in\n{metrics}");

    // A new commit reaches the index: o-005 is shipped, and o-100 is new.
    let project = trib_spec::load_project(api.dir.path()).expect("project");
    let lake = trib_lake::Lake::from_settings(&project.settings.storage, &project.dir).expect("lake");
    let shipped = order(5)
        .replace("\"placed\"", "\"shipped\"")
        .replace("10:00:05Z\"}", "10:30:05Z\"}");
    let body = format!("{shipped}\n{}\n", order(100));
    let r = reqwest::Client::new()
        .post(format!("{}/v1/products/orders.orders_raw/events", api.base))
        .bearer_auth(&api.tokens["owner"])
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    trib_engine::Engine::new(lake, &project)
        .run(&("orders.orders".to_string(), 1))
        .await
        .expect("run");
    let mut fresh = false;
    for _ in 0..100 {
        let (_, doc) = api.rows("owner", "?order_id=o-005").await;
        let (_, new) = api.rows("owner", "?order_id=o-100").await;
        if doc["rows"][0]["status"] == "shipped" && new["rows"].as_array().is_some_and(|r| r.len() == 1) {
            fresh = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(fresh, "the index did not follow the new commit");
}
