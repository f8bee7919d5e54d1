//! Each check kind passes on good rows and fails on bad ones, over a real Delta table;
//! anomaly checks tell a spike from noise; a blocking check stops a model's commit.

use super::*;
use trib_quality::checks::{Checker, Status};

const SETTINGS: &str = "[project]\nname = \"q\"\n";

const CUSTOMERS: &str = r#"
product: shop.customers
version: 1.0.0
owner: shop-team
description: Customers.
status: active
layer: bronze
source: { kind: http, format: json }
schema:
  - { name: id, type: string, required: true }
  - { name: name, type: string }
"#;

const ITEMS: &str = r#"
product: shop.items
version: 1.0.0
owner: shop-team
description: Items.
status: active
layer: bronze
source: { kind: http, format: json }
event_time: at
schema:
  - { name: id, type: string, required: true }
  - { name: customer, type: string }
  - { name: status, type: string }
  - { name: amount, type: "decimal(12,2)" }
  - { name: email, type: string }
  - { name: at, type: timestamp, required: true }
quality:
  - unique: id
  - not_null: [customer]
  - accepted_values: { column: status, values: [new, paid] }
  - range: { column: amount, min: 0, max: 1000 }
  - regex: { column: email, pattern: '^[^@]+@[^@]+$' }
  - row_count: { min: 1, max: 5 }
  - freshness: { max_age: 1h, column: at }
  - relationships: { column: customer, to: shop.customers, field: id }
  - expect: { name: small_amount, sql: "amount < 500" }
  - sql: "SELECT * FROM this WHERE status = 'paid' AND amount IS NULL"
    name: paid_has_amount
  - anomaly: { metric: null_rate, column: email, window: 10 }
    severity: warn
"#;

const T0: i64 = 1_773_532_800_000;

fn item(id: &str, customer: Option<&str>, status: &str, amount: Option<&str>, email: &str, at: i64) -> String {
    serde_json::json!({
        "id": id, "customer": customer, "status": status, "amount": amount, "email": email, "at": iso(at),
    })
    .to_string()
}

async fn setup() -> (tempfile::TempDir, Arc<Project>, Lake) {
    let (tmp, project, lake) = project(&[
        ("trib.toml", SETTINGS),
        ("products/shop/customers.yaml", CUSTOMERS),
        ("products/shop/items.yaml", ITEMS),
    ]);
    let customers = contract(&project, "shop.customers");
    let rows: Vec<String> = ["c1", "c2"]
        .iter()
        .map(|id| serde_json::json!({ "id": id, "name": "n" }).to_string())
        .collect();
    ingest(&lake, customers, &rows).await;
    (tmp, project, lake)
}

fn by_name(run: &trib_quality::checks::CheckRun) -> std::collections::BTreeMap<String, (Status, u64, String)> {
    run.results
        .iter()
        .map(|r| (r.check.clone(), (r.status, r.failing, r.message.clone())))
        .collect()
}

#[tokio::test]
async fn every_check_passes_on_good_rows() {
    let (_tmp, project, lake) = setup().await;
    let items = contract(&project, "shop.items");
    let rows = vec![
        item("i1", Some("c1"), "new", Some("10.00"), "a@x.io", T0),
        item("i2", Some("c2"), "paid", Some("20.50"), "b@x.io", T0 + 60_000),
        item("i3", Some("c1"), "paid", Some("0"), "c@x.io", T0 + 120_000),
    ];
    ingest(&lake, items, &rows).await;
    let clock = ManualClock::at(T0 + 10 * 60_000);
    let checker = Checker::open(lake.clone(), project.clone(), clock)
        .await
        .expect("checker");
    let run = checker.check_product(items).await.expect("run");
    let got = by_name(&run);
    for (name, (status, failing, message)) in &got {
        assert_eq!(*status, Status::Pass, "{name}: {message}");
        assert_eq!(*failing, 0, "{name}");
    }
    // Eleven contract checks and the schema.
    assert_eq!(got.len(), 12, "{got:?}");
    assert!(got["schema"].2.contains("6 columns conform"), "{:?}", got["schema"]);
    assert!(got["freshness(at)"].2.contains("8m"), "{:?}", got["freshness(at)"]);
}

#[tokio::test]
async fn every_check_fails_on_its_bad_rows() {
    let (_tmp, project, lake) = setup().await;
    let items = contract(&project, "shop.items");
    let rows = vec![
        item("i1", Some("c1"), "new", Some("10.00"), "a@x.io", T0),
        // Duplicate id.
        item("i1", Some("c1"), "new", Some("10.00"), "a@x.io", T0),
        // No customer.
        item("i2", None, "new", Some("1.00"), "b@x.io", T0),
        // Status outside the accepted values.
        item("i3", Some("c2"), "lost", Some("1.00"), "c@x.io", T0),
        // Out of range and against the expectation.
        item("i4", Some("c2"), "new", Some("2000.00"), "d@x.io", T0),
        // Bad email, unknown customer, paid without an amount.
        item("i5", Some("ghost"), "paid", None, "nope", T0),
    ];
    let (accepted, _) = ingest(&lake, items, &rows).await;
    assert_eq!(accepted, 6);
    // Two hours after the newest row: stale.
    let clock = ManualClock::at(T0 + 2 * HOUR);
    let checker = Checker::open(lake.clone(), project.clone(), clock)
        .await
        .expect("checker");
    let run = checker.check_product(items).await.expect("run");
    let got = by_name(&run);
    let failing = |name: &str| {
        let (status, n, message) = got.get(name).unwrap_or_else(|| panic!("{name} in {got:?}"));
        assert_eq!(*status, Status::Fail, "{name}: {message}");
        *n
    };
    assert_eq!(failing("unique(id)"), 2);
    assert_eq!(failing("not_null(customer)"), 1);
    assert_eq!(failing("accepted_values(status)"), 1);
    assert_eq!(failing("range(amount)"), 1);
    assert_eq!(failing("regex(email)"), 1);
    assert_eq!(failing("small_amount"), 1);
    assert_eq!(failing("relationships(customer → shop.customers)"), 1);
    assert_eq!(failing("paid_has_amount"), 1);
    failing("row_count#6");
    failing("freshness(at)");
    assert!(
        got["row_count#6"].2.contains("6 rows, expected between 1 and 5"),
        "{:?}",
        got["row_count#6"]
    );
    assert!(
        got["freshness(at)"].2.contains("more than 1h"),
        "{:?}",
        got["freshness(at)"]
    );
    // Failing rows come with a sample.
    let unique = run.results.iter().find(|r| r.check == "unique(id)").expect("unique");
    assert!(
        unique.sample.as_deref().is_some_and(|s| s.contains("\"i1\"")),
        "{unique:?}"
    );
    let range = run.results.iter().find(|r| r.check == "range(amount)").expect("range");
    assert!(range.sample.as_deref().is_some_and(|s| s.contains("i4")), "{range:?}");

    // Recorded, and queryable.
    let mut results = trib_quality::results::Results::open(&lake).await.expect("results");
    let rows = results
        .query("SELECT count(*) AS n FROM t WHERE status = 'fail' AND product = 'shop.items'")
        .await
        .expect("query");
    let n = arrow::compute::cast(rows[0].column(0), &arrow::datatypes::DataType::Int64).expect("cast");
    assert_eq!(
        arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&n).value(0),
        10
    );
}

#[tokio::test]
async fn new_rows_are_checked_once() {
    let (_tmp, project, lake) = setup().await;
    let items = contract(&project, "shop.items");
    let clock = ManualClock::at(T0);
    let checker = Checker::open(lake.clone(), project.clone(), clock)
        .await
        .expect("checker");
    ingest(&lake, items, &[item("i1", None, "new", Some("1"), "a@x.io", T0)]).await;
    let first = checker.check_new(items).await.expect("check").expect("a run");
    assert_eq!(by_name(&first)["not_null(customer)"].1, 1);
    assert!(checker.check_new(items).await.expect("check").is_none(), "nothing new");
    ingest(&lake, items, &[item("i2", Some("c1"), "new", Some("1"), "b@x.io", T0)]).await;
    let second = checker.check_new(items).await.expect("check").expect("a run");
    let got = by_name(&second);
    assert_eq!(got["not_null(customer)"].0, Status::Pass, "only the new row: {got:?}");
    assert!(!got.contains_key("row_count#6"), "row counts are for whole products");
}

/// Rows their writer still holds are checked where they are, with the results the
/// read-back gives; when another writer committed in between, they are read back.
#[tokio::test]
async fn rows_held_by_their_writer_are_checked_like_rows_read_back() {
    let batch = |ids: &[&str], customer: Option<&str>| -> String {
        ids.iter()
            .map(|id| format!("{}\n", item(id, customer, "new", Some("1"), "a@x.io", T0)))
            .collect()
    };
    let p = Provenance {
        received_at_micros: 0,
        source: "test".into(),
        batch_id: "b".into(),
    };
    let results = |run: &trib_quality::checks::CheckRun| {
        let mut r: Vec<(String, Status, u64)> = run
            .results
            .iter()
            .map(|r| (r.check.clone(), r.status, r.failing))
            .collect();
        r.sort_by(|a, b| a.0.cmp(&b.0));
        r
    };
    // Two projects with the same rows: one checks them in memory, one reads them back.
    let (_held_dir, held_project, held_lake) = setup().await;
    let (_read_dir, read_project, read_lake) = setup().await;
    let first = batch(&["i1", "i2"], None);
    let second = batch(&["i3"], Some("c1"));
    let mut runs = Vec::new();
    for (project, lake, in_memory) in [(&held_project, &held_lake, true), (&read_project, &read_lake, false)] {
        let items = contract(project, "shop.items");
        let checker = Checker::open(lake.clone(), project.clone(), ManualClock::at(T0))
            .await
            .expect("checker");
        let mut ing = Ingestor::open(lake, items)
            .await
            .expect("ingestor")
            .keep_committed(1 << 20);
        for body in [&first, &second] {
            ing.ingest(Format::Ndjson, body.as_bytes(), &p, None)
                .await
                .expect("ingest");
        }
        let committed = ing.take_committed().expect("two consecutive versions");
        assert_eq!((committed.first, committed.last), (1, 2));
        let run = if in_memory {
            checker.check_committed(items, &committed).await
        } else {
            checker.check_new(items).await
        };
        runs.push(results(&run.expect("check").expect("a run")));
    }
    assert_eq!(runs[0], runs[1]);
    let nulls = runs[0].iter().find(|r| r.0 == "not_null(customer)").expect("not_null");
    assert_eq!((nulls.1, nulls.2), (Status::Fail, 2));

    // Another writer's row lands between the last check and the held rows: the held
    // rows are not all that is new, so the new rows are read back, that one included.
    let items = contract(&held_project, "shop.items");
    let checker = Checker::open(held_lake.clone(), held_project.clone(), ManualClock::at(T0))
        .await
        .expect("checker");
    ingest(&held_lake, items, &[item("i4", None, "new", Some("1"), "a@x.io", T0)]).await;
    let mut ing = Ingestor::open(&held_lake, items)
        .await
        .expect("ingestor")
        .keep_committed(1 << 20);
    ing.ingest(Format::Ndjson, batch(&["i5"], Some("c2")).as_bytes(), &p, None)
        .await
        .expect("ingest");
    let committed = ing.take_committed().expect("one version");
    assert_eq!((committed.first, committed.last), (4, 4));
    let run = checker
        .check_committed(items, &committed)
        .await
        .expect("check")
        .expect("a run");
    let nulls = run
        .results
        .iter()
        .find(|r| r.check == "not_null(customer)")
        .expect("not_null");
    assert_eq!(
        (nulls.rows, nulls.failing),
        (2, 1),
        "the other writer's row (a NULL customer) and the held one"
    );

    // Over its budget, a writer keeps nothing and the caller reads back.
    let mut ing = Ingestor::open(&held_lake, items)
        .await
        .expect("ingestor")
        .keep_committed(16);
    ing.ingest(Format::Ndjson, batch(&["i6"], Some("c2")).as_bytes(), &p, None)
        .await
        .expect("ingest");
    assert!(ing.take_committed().is_none());
}

const VOLUME: &str = r#"
product: shop.visits
version: 1.0.0
owner: shop-team
description: Visits.
status: active
layer: bronze
source: { kind: http, format: json }
schema:
  - { name: id, type: long, required: true }
  - { name: referrer, type: string }
quality:
  - anomaly: { metric: row_count, window: 10 }
  - anomaly: { metric: null_rate, column: referrer, window: 10 }
"#;

fn visits(n: usize, nulls_every: usize) -> arrow::array::RecordBatch {
    use arrow::array::{Int64Array, StringArray};
    let ids = Int64Array::from_iter_values(0..n as i64);
    let refs = StringArray::from_iter((0..n).map(|i| (i % nulls_every != 0).then_some("search")));
    arrow::array::RecordBatch::try_from_iter(vec![
        ("id", Arc::new(ids) as arrow::array::ArrayRef),
        ("referrer", Arc::new(refs) as arrow::array::ArrayRef),
    ])
    .expect("batch")
}

#[tokio::test]
async fn anomalies_are_spikes_not_noise() {
    let (_tmp, project, lake) = project(&[("trib.toml", SETTINGS), ("products/shop/visits.yaml", VOLUME)]);
    let c = contract(&project, "shop.visits");
    let clock = ManualClock::at(T0);
    let checker = Checker::open(lake.clone(), project.clone(), clock.clone())
        .await
        .expect("checker");
    let status = |run: &trib_quality::checks::CheckRun, name: &str| {
        run.results
            .iter()
            .find(|r| r.check == name)
            .map(|r| (r.status, r.message.clone()))
            .expect(name)
    };
    // Ordinary history: about 1000 rows a batch, about 10% NULL referrers.
    for (n, every) in [
        (1000, 10),
        (1030, 11),
        (985, 9),
        (1012, 10),
        (968, 10),
        (1041, 10),
        (996, 11),
    ] {
        clock.advance(HOUR);
        let run = checker.check_rows(c, &visits(n, every)).await.expect("run");
        assert_eq!(status(&run, "anomaly(row_count)").0, Status::Pass);
    }
    clock.advance(HOUR);
    let noise = checker.check_rows(c, &visits(1025, 9)).await.expect("run");
    assert_eq!(
        status(&noise, "anomaly(row_count)").0,
        Status::Pass,
        "{:?}",
        status(&noise, "anomaly(row_count)")
    );
    assert_eq!(
        status(&noise, "anomaly(referrer)").0,
        Status::Pass,
        "{:?}",
        status(&noise, "anomaly(referrer)")
    );
    clock.advance(HOUR);
    let surge = checker.check_rows(c, &visits(4000, 10)).await.expect("run");
    let (s, message) = status(&surge, "anomaly(row_count)");
    assert_eq!(s, Status::Fail, "{message}");
    assert!(message.contains("is an anomaly"), "{message}");
    clock.advance(HOUR);
    let nulls = checker.check_rows(c, &visits(1000, 2)).await.expect("run");
    assert_eq!(
        status(&nulls, "anomaly(referrer)").0,
        Status::Fail,
        "{:?}",
        status(&nulls, "anomaly(referrer)")
    );
    assert_eq!(
        status(&nulls, "anomaly(row_count)").0,
        Status::Pass,
        "one surge does not move the median"
    );
}

const RAW: &str = r#"
product: shop.payments_raw
version: 1.0.0
owner: shop-team
description: Payments as sent.
status: active
layer: bronze
source: { kind: http, format: json }
schema:
  - { name: id, type: string, required: true }
  - { name: amount, type: long }
"#;

const PAYMENTS: &str = r#"
product: shop.payments
version: 1.0.0
owner: shop-team
description: Payments, checked before they land.
status: active
layer: silver
source:
  inputs: [shop.payments_raw]
  transform: models/payments.sql
  materialized: append
schema:
  - { name: id, type: string, required: true }
  - { name: amount, type: long }
quality:
  - not_null: [amount]
    block: true
  - range: { column: amount, max: 100 }
"#;

#[tokio::test]
async fn a_blocking_check_stops_a_model_commit() {
    let (_tmp, project, lake) = project(&[
        ("trib.toml", SETTINGS),
        ("products/shop/payments_raw.yaml", RAW),
        ("products/shop/payments.yaml", PAYMENTS),
        ("models/payments.sql", "SELECT id, amount FROM shop.payments_raw"),
    ]);
    let raw = contract(&project, "shop.payments_raw");
    let checker = Arc::new(
        Checker::open(lake.clone(), project.clone(), ManualClock::at(T0))
            .await
            .expect("checker"),
    );
    let engine =
        trib_engine::Engine::new(lake.clone(), &project).with_gate(Arc::new(trib_quality::Gate::new(checker.clone())));
    let node = engine.dag().latest("shop.payments").expect("node");

    // A non-blocking failure (amount above 100) is recorded; the rows land.
    ingest(&lake, raw, &[r#"{"id": "p1", "amount": 500}"#.to_string()]).await;
    let r = engine.run(&node).await.expect("run");
    assert!(
        matches!(r.outcome, trib_engine::Outcome::Committed { rows: 1, .. }),
        "{r:?}"
    );

    // A blocking one (a NULL amount) stops the commit and leaves the input unread.
    ingest(&lake, raw, &[r#"{"id": "p2", "amount": null}"#.to_string()]).await;
    let err = engine.run(&node).await.expect_err("blocked");
    assert!(matches!(err, trib_engine::Error::Blocked { .. }), "{err}");
    assert!(err.to_string().contains("not_null(amount)"), "{err}");
    let table = trib_lake::open_existing(&lake, contract(&project, "shop.payments"), trib_lake::TableKind::Data)
        .await
        .expect("open")
        .expect("table");
    assert_eq!(table.count().await.expect("count"), 1);
    let err = engine.run(&node).await.expect_err("still blocked");
    assert!(matches!(err, trib_engine::Error::Blocked { .. }), "{err}");

    checker.flush().await.expect("flush");
    let mut results = trib_quality::results::Results::open(&lake).await.expect("results");
    let rows = results
        .query("SELECT \"check\" FROM t WHERE product = 'shop.payments' AND status = 'fail' ORDER BY at")
        .await
        .expect("query");
    let mut names: Vec<String> = rows
        .iter()
        .flat_map(|b| {
            let a = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).expect("cast");
            arrow::array::AsArray::as_string::<i32>(&a)
                .iter()
                .map(|s| s.unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    assert_eq!(names, vec!["not_null(amount)", "not_null(amount)", "range(amount)"]);
}
