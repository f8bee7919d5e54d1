//! The HTTP API on a real socket, writing real Delta tables.

use std::path::Path;
use std::time::Duration;
use trib_server::{IngestHub, ServerSettings};

mod reads;

fn contracts() -> Vec<trib_spec::Contract> {
    let dir =
        Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../trib/template/products");
    let mut out = Vec::new();
    for domain in std::fs::read_dir(&dir).expect("products") {
        for file in std::fs::read_dir(domain.expect("domain").path()).expect("files") {
            let path = file.expect("file").path();
            let text = std::fs::read_to_string(&path).expect("read");
            let c = trib_spec::parse_contract(trib_spec::yaml::Source::new(path.display().to_string(), text))
                .contract
                .expect("valid");
            out.push(c);
        }
    }
    out
}

struct Server {
    base: String,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    async fn start(settings: ServerSettings) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let lake = trib_lake::Lake::new("lake", dir.path()).expect("lake");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let hub = IngestHub::start(lake, contracts(), &settings);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(trib_server::serve(listener, hub, None, settings, async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            dir,
            stop: Some(stop),
        }
    }

    fn url(&self, product: &str) -> String {
        format!("{}/v1/products/{product}/events", self.base)
    }

    async fn count(&self, rel: &str) -> i64 {
        let lake = trib_lake::Lake::new("lake", self.dir.path()).expect("lake");
        let url = lake.root().join(rel).expect("url");
        let t = trib_lake::ProductTable::open_url(&lake, url, rel).await.expect("table");
        t.snapshot()
            .expect("state")
            .log_data()
            .iter()
            .map(|f| f.num_records().unwrap_or(0) as i64)
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A reading; all fall within one minute, so concurrent producers never send one that
/// is behind the product's two-minute watermark.
fn reading(i: usize) -> String {
    format!(
        "{{\"device_id\":\"d{}\",\"site\":\"north\",\"reading_at\":\"2026-03-15T14:00:{:02}.{:03}Z\",\"temperature_c\":{}.5}}\n",
        i % 50,
        i % 60,
        i % 1000,
        i % 30
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_committed_before_the_answer() {
    let s = Server::start(ServerSettings::default()).await;
    let client = reqwest::Client::new();
    let body: String = (0..10).map(reading).collect::<String>() + "{\"device_id\":\"x\"}\nnot json\n";
    let r = client
        .post(s.url("iot.sensor_readings"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        (
            doc["received"].as_u64(),
            doc["accepted"].as_u64(),
            doc["dead_lettered"].as_u64()
        ),
        (Some(12), Some(10), Some(2))
    );
    assert_eq!(
        doc["dead_letters_by_reason"],
        serde_json::json!({ "malformed": 1, "missing_required": 1 })
    );
    // Durable on answer: a fresh reader sees the rows.
    assert_eq!(s.count("iot/sensor_readings/v1/").await, 10);
    assert_eq!(s.count("_dead_letters/iot/sensor_readings/v1/").await, 2);

    // JSON arrays and CSV by content type.
    let arr = format!(
        "[{}]",
        (10..13)
            .map(|i| reading(i).trim().to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let r = client
        .post(s.url("iot.sensor_readings"))
        .header("content-type", "application/json")
        .body(arr)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let csv = "device_id,site,reading_at,temperature_c\nd1,north,2026-03-15T15:00:00Z,20.5\n";
    let r = client
        .post(s.url("iot.sensor_readings"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(s.count("iot/sensor_readings/v1/").await, 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_make_retries_land_once() {
    let s = Server::start(ServerSettings::default()).await;
    let client = reqwest::Client::new();
    let body: String = (0..5).map(reading).collect();
    for attempt in 0..3 {
        let r = client
            .post(s.url("iot.sensor_readings"))
            .header("idempotency-key", "batch-42")
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        let doc: serde_json::Value = r.json().await.expect("json");
        assert_eq!(doc["duplicate"], attempt > 0, "attempt {attempt}: {doc}");
    }
    assert_eq!(s.count("iot/sensor_readings/v1/").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_the_right_status() {
    let s = Server::start(ServerSettings {
        max_body_bytes: 1024,
        ..ServerSettings::default()
    })
    .await;
    let client = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            client
                .post(s.url("nope.nothing"))
                .body("{}")
                .send()
                .await
                .expect("send")
        ),
        404
    );
    let r = client
        .post(s.url("orders.orders"))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    let doc: serde_json::Value = r.json().await.expect("json");
    assert_eq!(doc["error"], "not_ingestible");
    assert_eq!(
        status(
            client
                .post(s.url("iot.sensor_readings"))
                .header("content-type", "text/xml")
                .body("<a/>")
                .send()
                .await
                .expect("send")
        ),
        415
    );
    assert_eq!(
        status(
            client
                .post(s.url("iot.sensor_readings"))
                .body("x".repeat(5000))
                .send()
                .await
                .expect("send")
        ),
        413
    );
    let r = client
        .post(s.url("iot.sensor_readings"))
        .header("content-type", "application/json")
        .body("[{\"device_id\":")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let doc: serde_json::Value = r.json().await.expect("json");
    assert!(
        doc["message"].as_str().is_some_and(|m| m.contains("not valid JSON")),
        "{doc}"
    );
    assert_eq!(
        status(
            client
                .post(s.url("iot.sensor_readings"))
                .header("idempotency-key", "k".repeat(300))
                .body("{}")
                .send()
                .await
                .expect("send")
        ),
        400
    );
    // Nothing of the refused requests was stored.
    let metrics = client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("trib_ingest_requests_total"), "{metrics}");
    assert!(metrics.contains("status=\"415\""), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_producers_are_group_committed() {
    let s = Server::start(ServerSettings {
        group_commit_latency: Duration::from_millis(50),
        ..ServerSettings::default()
    })
    .await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for p in 0..8usize {
        let (client, url) = (client.clone(), s.url("iot.sensor_readings"));
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            for b in 0..10usize {
                let body: String = (0..20).map(|i| reading(p * 1000 + b * 20 + i)).collect();
                let r = client
                    .post(&url)
                    .header("idempotency-key", format!("p{p}-b{b}"))
                    .body(body)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(r.status(), 200);
                let doc: serde_json::Value = r.json().await.expect("json");
                accepted += doc["accepted"].as_u64().expect("accepted");
            }
            accepted
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("producer");
    }
    assert_eq!(total, 1600);
    assert_eq!(s.count("iot/sensor_readings/v1/").await, 1600);
    // 80 requests in fewer commits than requests.
    let lake = trib_lake::Lake::new("lake", s.dir.path()).expect("lake");
    let t = trib_lake::ProductTable::open_url(&lake, lake.root().join("iot/sensor_readings/v1/").expect("url"), "t")
        .await
        .expect("open");
    let version = t.version().expect("version");
    assert!(
        version < 80,
        "expected group commits, got {version} versions for 80 requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429() {
    let s = Server::start(ServerSettings {
        queue: 1,
        group_commit_records: 1,
        ..ServerSettings::default()
    })
    .await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..30usize {
        let (client, url) = (client.clone(), s.url("iot.sensor_readings"));
        tasks.push(tokio::spawn(async move {
            let r = client.post(&url).body(reading(i)).send().await.expect("send");
            let retry_after = r.headers().get("retry-after").is_some();
            (r.status().as_u16(), retry_after)
        }));
    }
    let mut ok = 0;
    let mut busy = 0;
    for t in tasks {
        match t.await.expect("task") {
            (200, _) => ok += 1,
            (429, true) => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(busy > 0, "no 429 among 30 concurrent requests with a queue of 1");
    assert_eq!(s.count("iot/sensor_readings/v1/").await, ok);
}

/// A long stream of small requests makes a small file per commit; the server compacts
/// them as it goes, and no row is lost or doubled by the compactions running beside
/// the appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_commits_are_compacted_as_they_come() {
    let s = Server::start(ServerSettings {
        group_commit_records: 1,
        group_commit_latency: Duration::ZERO,
        ..ServerSettings::default()
    })
    .await;
    let client = reqwest::Client::new();
    let requests = 230usize;
    for i in 0..requests {
        let r = client
            .post(s.url("iot.sensor_readings"))
            .body(reading(i))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200, "request {i}");
    }
    // A compaction starts 50 commits after the previous one finished (how many finish
    // among 230 commits depends on the build's speed); let the last one finish. Without
    // them, each commit would have left a file.
    let lake = trib_lake::Lake::new("lake", s.dir.path()).expect("lake");
    let url = lake.root().join("iot/sensor_readings/v1/").expect("url");
    let mut files = usize::MAX;
    for _ in 0..100 {
        let t = trib_lake::ProductTable::open_url(&lake, url.clone(), "t")
            .await
            .expect("open");
        files = t.snapshot().expect("state").log_data().num_files();
        if files <= requests / 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(files <= requests / 2, "{files} files after {requests} commits");
    assert_eq!(s.count("iot/sensor_readings/v1/").await, requests as i64);
}
