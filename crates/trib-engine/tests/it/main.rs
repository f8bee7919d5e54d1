//! Models of the example project carried from bronze to silver and gold on real Delta
//! tables: out-of-order and duplicate events, many small runs against one big run, and
//! results checked against an independent computation.

use arrow::array::RecordBatch;
use std::collections::BTreeMap;
use std::path::Path;
use trib_engine::{Engine, Outcome};
use trib_ingest::dead_letter::Provenance;
use trib_ingest::{Format, Ingestor};
use trib_lake::{Lake, ProductTable, TableKind};
use trib_spec::Project;

mod scenarios;
mod slt;

/// The example project (`trib init`'s template) in a temporary directory.
fn example() -> (tempfile::TempDir, Project) {
    trib_test::example(|s| s)
}

/// One order event.
#[derive(Clone)]
struct Event {
    order: usize,
    country: &'static str,
    status: &'static str,
    amount_cents: i64,
    /// Seconds since 2026-03-15T00:00:00Z.
    ordered: i64,
    updated: i64,
}

impl Event {
    fn json(&self) -> String {
        let ts = |s: i64| {
            let base = 1_773_532_800i64; // 2026-03-15T00:00:00Z
            chrono_like(base + s)
        };
        format!(
            r#"{{"order_id":"o-{}","customer_id":"c-{}","country":"{}","status":"{}","amount":"{}.{:02}","currency":"EUR","ordered_at":"{}","updated_at":"{}"}}"#,
            self.order,
            self.order % 17,
            self.country,
            self.status,
            self.amount_cents / 100,
            self.amount_cents % 100,
            ts(self.ordered),
            ts(self.updated)
        )
    }
}

/// ISO-8601 in UTC from epoch seconds, without a date library.
fn chrono_like(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Orders over three days, each placed then paid, shipped or cancelled; delivered in a
/// scrambled order with some events sent twice.
fn events(orders: usize) -> Vec<Event> {
    let countries = ["DE", "FR", "NL", "US"];
    let mut seed = 0x853c49e6748fea9bu64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut out = Vec::new();
    for order in 0..orders {
        let ordered = next(3 * 86_400) as i64;
        let base = Event {
            order,
            country: countries[next(4) as usize],
            status: "placed",
            amount_cents: 500 + next(50_000) as i64,
            ordered,
            updated: ordered,
        };
        let steps: &[&'static str] = match next(6) {
            0 => &["cancelled"],
            1 | 2 => &["paid"],
            _ => &["paid", "shipped"],
        };
        out.push(base.clone());
        for (k, s) in steps.iter().enumerate() {
            out.push(Event {
                status: s,
                updated: ordered + 600 * (k as i64 + 1),
                ..base.clone()
            });
        }
    }
    // Scramble (Fisher-Yates) and duplicate one event in twenty.
    for i in (1..out.len()).rev() {
        let j = next(i as u64 + 1) as usize;
        out.swap(i, j);
    }
    let dups: Vec<Event> = out.iter().step_by(20).cloned().collect();
    out.extend(dups);
    out
}

/// Orders and revenue in cents by (days since the epoch, country).
type Revenue = BTreeMap<(i64, String), (i64, i64)>;

/// The latest state of each order, and revenue by (day, country) without cancelled
/// orders, computed here without the engine.
fn expected(events: &[Event]) -> (BTreeMap<String, String>, Revenue) {
    let mut latest: BTreeMap<usize, &Event> = BTreeMap::new();
    for e in events {
        let keep = latest.get(&e.order).is_none_or(|l| e.updated >= l.updated);
        if keep {
            latest.insert(e.order, e);
        }
    }
    let states = latest
        .iter()
        .map(|(o, e)| (format!("o-{o}"), e.status.to_string()))
        .collect();
    let mut revenue = BTreeMap::new();
    for e in latest.values().filter(|e| e.status != "cancelled") {
        let day = (1_773_532_800 + e.ordered).div_euclid(86_400);
        let r: &mut (i64, i64) = revenue.entry((day, e.country.to_string())).or_default();
        r.0 += 1;
        r.1 += e.amount_cents;
    }
    (states, revenue)
}

async fn ingest(lake: &Lake, project: &Project, events: &[Event]) {
    let c = project
        .contracts()
        .find(|c| c.product.value.to_string() == "orders.orders_raw")
        .expect("orders_raw");
    let mut ing = Ingestor::open(lake, c).await.expect("ingestor");
    let body: String = events.iter().map(|e| e.json() + "\n").collect();
    let p = Provenance {
        received_at_micros: 0,
        source: "test".into(),
        batch_id: "b".into(),
    };
    let r = ing
        .ingest(Format::Ndjson, body.as_bytes(), &p, None)
        .await
        .expect("ingest");
    assert_eq!(r.accepted as usize, events.len(), "{r:?}");
}

async fn run_all(engine: &Engine) -> Vec<(String, Outcome)> {
    let dag = engine.dag();
    let selected = dag.select(&["+finance.monthly_revenue".to_string()]).expect("select");
    let mut out = Vec::new();
    for node in dag.order(&selected) {
        let r = engine.run(&node).await.unwrap_or_else(|e| panic!("{}: {e}", node.0));
        out.push((r.product, r.outcome));
    }
    out
}

async fn rows(lake: &Lake, project: &Project, product: &str, sql: &str) -> Vec<RecordBatch> {
    let c = project
        .contracts()
        .find(|c| c.product.value.to_string() == product)
        .expect("product");
    let t = ProductTable::open_or_create(lake, c, TableKind::Data)
        .await
        .expect("table");
    t.query(sql).await.expect("query")
}

/// Query results may hold string views.
fn utf8(a: &arrow::array::ArrayRef) -> arrow::array::ArrayRef {
    arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8).expect("utf8")
}

fn text(batches: &[RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches)
        .expect("fmt")
        .to_string()
}

async fn states(lake: &Lake, project: &Project) -> BTreeMap<String, String> {
    let b = rows(lake, project, "orders.orders", "SELECT order_id, status FROM t").await;
    let mut out = BTreeMap::new();
    for batch in &b {
        let ids = utf8(batch.column(0));
        let ids = arrow::array::AsArray::as_string::<i32>(&ids);
        let st = utf8(batch.column(1));
        let st = arrow::array::AsArray::as_string::<i32>(&st);
        for i in 0..batch.num_rows() {
            assert!(
                out.insert(ids.value(i).to_string(), st.value(i).to_string()).is_none(),
                "one row per order"
            );
        }
    }
    out
}

async fn revenue(lake: &Lake, project: &Project) -> Revenue {
    let b = rows(
        lake,
        project,
        "orders.daily_revenue",
        "SELECT CAST(to_unixtime(day) / 86400 AS BIGINT) AS d, country, orders, CAST(revenue * 100 AS BIGINT) AS cents FROM t",
    )
    .await;
    let mut out = BTreeMap::new();
    for batch in &b {
        let d = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(batch.column(0));
        let c = utf8(batch.column(1));
        let c = arrow::array::AsArray::as_string::<i32>(&c);
        let n = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(batch.column(2));
        let r = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(batch.column(3));
        for i in 0..batch.num_rows() {
            out.insert((d.value(i), c.value(i).to_string()), (n.value(i), r.value(i)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bronze_to_gold_incrementally_equals_one_big_run_and_the_truth() {
    let all = events(300);
    let (want_states, want_revenue) = expected(&all);

    // Many small batches, the models run after each.
    let (dir_a, project_a) = example();
    let lake_a = Lake::new(".trib/lake", dir_a.path()).expect("lake");
    let engine_a = Engine::new(lake_a.clone(), &project_a);
    for chunk in all.chunks(97) {
        ingest(&lake_a, &project_a, chunk).await;
        let runs = run_all(&engine_a).await;
        assert!(
            runs.iter().all(|(_, o)| matches!(o, Outcome::Committed { .. })),
            "{runs:?}"
        );
    }
    // Nothing new: every model is up to date.
    let runs = run_all(&engine_a).await;
    assert!(runs.iter().all(|(_, o)| *o == Outcome::UpToDate), "{runs:?}");

    // One big batch, one run.
    let (dir_b, project_b) = example();
    let lake_b = Lake::new(".trib/lake", dir_b.path()).expect("lake");
    ingest(&lake_b, &project_b, &all).await;
    run_all(&Engine::new(lake_b.clone(), &project_b)).await;

    assert_eq!(states(&lake_a, &project_a).await, want_states, "silver, small runs");
    assert_eq!(states(&lake_b, &project_b).await, want_states, "silver, one run");
    assert_eq!(revenue(&lake_a, &project_a).await, want_revenue, "gold, small runs");
    assert_eq!(revenue(&lake_b, &project_b).await, want_revenue, "gold, one run");

    // Replay: every model rebuilt from the whole of bronze gives the same tables.
    let before = text(
        &rows(
            &lake_a,
            &project_a,
            "orders.orders",
            "SELECT * FROM t ORDER BY order_id",
        )
        .await,
    );
    for node in engine_a
        .dag()
        .order(&engine_a.dag().select(&["orders.orders+".to_string()]).expect("select"))
    {
        let r = engine_a.replay(&node).await.expect("replay");
        assert!(matches!(r.outcome, Outcome::Committed { .. }), "{r:?}");
    }
    assert_eq!(
        text(
            &rows(
                &lake_a,
                &project_a,
                "orders.orders",
                "SELECT * FROM t ORDER BY order_id"
            )
            .await
        ),
        before,
        "replayed silver"
    );
    assert_eq!(revenue(&lake_a, &project_a).await, want_revenue, "replayed gold");

    let monthly = "SELECT month, country, orders, revenue FROM t ORDER BY month, country";
    assert_eq!(
        text(&rows(&lake_a, &project_a, "finance.monthly_revenue", monthly).await),
        text(&rows(&lake_b, &project_b, "finance.monthly_revenue", monthly).await),
        "full-refresh gold"
    );
}

/// A project of two products: CDC bronze `inventory.products_raw` and its silver merge.
fn cdc_project() -> (tempfile::TempDir, Project) {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    std::fs::create_dir_all(d.join("products/inventory")).expect("mkdir");
    std::fs::create_dir_all(d.join("models")).expect("mkdir");
    std::fs::write(d.join("trib.toml"), "[project]\nname = \"cdc\"\n").expect("write");
    std::fs::write(
        d.join("products/inventory/products_raw.yaml"),
        "product: inventory.products_raw\nversion: 1.0.0\nowner: inventory-team\nlayer: bronze\n\
         source: { kind: cdc }\nkey: [id]\nschema:\n\
         \x20 - { name: id, type: int32, required: true }\n  - { name: name, type: string }\n\
         \x20 - { name: description, type: string }\n  - { name: weight, type: double }\n",
    )
    .expect("write");
    std::fs::write(
        d.join("products/inventory/products.yaml"),
        "product: inventory.products\nversion: 1.0.0\nowner: inventory-team\nlayer: silver\n\
         source: { inputs: [inventory.products_raw], transform: models/products.sql, materialized: merge }\n\
         key: [id]\nsequence_by: lsn\nschema:\n\
         \x20 - { name: id, type: int32, required: true }\n  - { name: name, type: string }\n\
         \x20 - { name: description, type: string }\n  - { name: weight, type: double }\n\
         \x20 - { name: lsn, type: int64 }\n",
    )
    .expect("write");
    std::fs::write(
        d.join("models/products.sql"),
        "SELECT id, name, description, weight, _lsn AS lsn, _op FROM inventory.products_raw\n",
    )
    .expect("write");
    let project = trib_spec::load_project(d).expect("project");
    assert!(!project.diagnostics.has_errors(), "{:?}", project.diagnostics);
    (tmp, project)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_changes_upsert_and_delete_the_silver_rows() {
    // Flink's PostgreSQL stream of the Debezium tutorial: snapshot reads, updates,
    // creates and a delete of `inventory.products`.
    let path = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../../shared/interop/debezium/flink-test-resources/debezium-postgres-data-schema-exclude.txt");
    let body = std::fs::read_to_string(&path).expect("sample");
    // The state the changes leave, folded here from the raw events.
    let mut want: BTreeMap<i64, String> = BTreeMap::new();
    for line in body.lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("json");
        match e["op"].as_str() {
            Some("d") => {
                want.remove(&e["before"]["id"].as_i64().expect("id"));
            }
            _ => {
                let a = &e["after"];
                want.insert(
                    a["id"].as_i64().expect("id"),
                    a["description"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    let (dir, project) = cdc_project();
    let lake = Lake::new(".trib/lake", dir.path()).expect("lake");
    let raw = project
        .contracts()
        .find(|c| c.product.value.to_string() == "inventory.products_raw")
        .expect("raw");
    let engine = Engine::new(lake.clone(), &project);
    let node = ("inventory.products".to_string(), 1);
    // One event per batch, a run after each: every change applied in its own merge.
    let mut ing = Ingestor::open(&lake, raw).await.expect("ingestor");
    let p = Provenance {
        received_at_micros: 0,
        source: "test".into(),
        batch_id: "b".into(),
    };
    for line in body.lines() {
        ing.ingest(Format::Debezium, line.as_bytes(), &p, None)
            .await
            .expect("ingest");
        engine.run(&node).await.expect("run");
    }
    let b = rows(
        &lake,
        &project,
        "inventory.products",
        "SELECT CAST(id AS BIGINT) AS id, description FROM t ORDER BY id",
    )
    .await;
    let mut got = BTreeMap::new();
    for batch in &b {
        let ids = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(batch.column(0));
        let ds = arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Utf8).expect("utf8");
        let ds = arrow::array::AsArray::as_string::<i32>(&ds);
        for i in 0..batch.num_rows() {
            got.insert(ids.value(i), ds.value(i).to_string());
        }
    }
    assert_eq!(got, want);
    assert!(!got.contains_key(&111), "the deleted product is gone");
    let all = "SELECT * FROM t ORDER BY id";
    let live = text(&rows(&lake, &project, "inventory.products", all).await);
    engine.replay(&node).await.expect("replay");
    assert_eq!(
        text(&rows(&lake, &project, "inventory.products", all).await),
        live,
        "replay equals the merges"
    );
}

/// Collects OpenLineage events.
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<serde_json::Value>>);

impl trib_engine::openlineage::LineageSink for Events {
    fn emit(&self, event: serde_json::Value) {
        self.0.lock().expect("lock").push(event);
    }
}

/// The OpenLineage spec (`../shared/interop/openlineage/spec`): the core schema and
/// every facet schema, registered under their `$id`s, so that events validate offline.
fn openlineage_validator(definition: &str) -> jsonschema::Validator {
    let spec = std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo"))
        .join("../../../shared/interop/openlineage/spec");
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .expect("json")
    };
    let mut schemas = vec![read(spec.join("OpenLineage.json"))];
    for e in std::fs::read_dir(spec.join("facets")).expect("facets").flatten() {
        schemas.push(read(e.path()));
    }
    let mut registry = jsonschema::Registry::new();
    for s in schemas {
        let id = s["$id"].as_str().expect("$id").to_string();
        registry = registry.add(id, s).expect("add");
    }
    let registry = Box::leak(Box::new(registry.prepare().expect("registry")));
    jsonschema::options()
        .with_registry(registry)
        .build(&serde_json::json!({ "$ref": definition }))
        .expect("validator")
}

#[tokio::test]
async fn model_runs_send_openlineage_events_that_follow_the_spec() {
    let (dir, project) = example();
    let lake = Lake::new(".trib/lake", dir.path()).expect("lake");
    ingest(&lake, &project, &events(40)).await;
    let sink = std::sync::Arc::new(Events::default());
    let engine = Engine::new(lake.clone(), &project).with_lineage(sink.clone(), "trib://shop");
    run_all(&engine).await;
    let events = sink.0.lock().expect("lock").clone();
    assert!(events.len() >= 6, "{}", events.len());

    let run_event = openlineage_validator("https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent");
    // The validator itself: the spec's own examples pass and fail as they should.
    let example = |name: &str| -> serde_json::Value {
        let p = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo"))
            .join("../../../shared/interop/openlineage/examples/proxy-fluentd")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(p).expect("example")).expect("json")
    };
    assert!(run_event.is_valid(&example("event_full.json")));
    assert!(!run_event.is_valid(&example("event_no_run_id.json")));
    for e in &events {
        let errors: Vec<String> = run_event
            .iter_errors(e)
            .map(|x| format!("{} at {}", x, x.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{e:#}");
        // Each facet against its own schema.
        for (facet, value) in e["outputs"][0]["facets"].as_object().expect("facets") {
            let url = value["_schemaURL"].as_str().expect("url");
            let errors: Vec<String> = openlineage_validator(url)
                .iter_errors(value)
                .map(|x| x.to_string())
                .collect();
            assert!(errors.is_empty(), "{facet}: {errors:?}");
        }
        for value in e["job"]["facets"].as_object().expect("facets").values() {
            assert!(openlineage_validator(value["_schemaURL"].as_str().expect("url")).is_valid(value));
        }
    }
    // A START and a COMPLETE per committed run, under one run id.
    let daily: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["job"]["name"] == "orders.daily_revenue")
        .collect();
    assert_eq!(
        daily
            .iter()
            .map(|e| e["eventType"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        vec!["START", "COMPLETE"]
    );
    assert_eq!(daily[0]["run"]["runId"], daily[1]["run"]["runId"]);
    assert_eq!(daily[0]["inputs"][0]["name"], "orders.orders");
    let revenue = &daily[1]["outputs"][0]["facets"]["columnLineage"]["fields"]["revenue"]["inputFields"][0];
    assert_eq!(revenue["name"], "orders.orders");
    assert_eq!(revenue["field"], "amount");
    assert_eq!(revenue["transformations"][0]["subtype"], "AGGREGATION");
    assert!(
        daily[1]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
}
