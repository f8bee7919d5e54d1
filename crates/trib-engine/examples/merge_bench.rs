//! A merge model catching up with one million changes into a silver table of fifty
//! million rows, as `trib run` does it. Run by `bench/merge/run.sh`, one step a process
//! so that each step's peak memory is its own:
//!
//!   merge_bench setup DIR ROWS CHANGES   # the project, ROWS rows of silver, CHANGES in bronze
//!   merge_bench merge DIR                # one run of the merge model; prints a JSON line
//!   merge_bench check DIR ROWS CHANGES   # the merged table is right
//!
//! The silver `bench.orders` is an orders table merged by `order_id` (latest
//! `updated_at` wins); ids grow with time, as order numbers do, so the table's files
//! hold ranges of ids. The changes are what a day of a shop brings: 80% updates of the
//! most recent orders (in a scrambled order, some of them twice), 20% new orders.

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use trib_engine::Engine;
use trib_lake::{Lake, ProductTable, TableKind};

const BASE_MICROS: i64 = 1_773_532_800_000_000; // 2026-03-15T00:00:00Z
const STATUSES: [&str; 4] = ["placed", "paid", "shipped", "delivered"];
const CHUNK: usize = 5_000_000;

const RAW: &str = "product: bench.orders_raw\nversion: 1.0.0\nowner: bench\nlayer: bronze\n\
source: { kind: http }\nevent_time: updated_at\nschema:\n\
\x20 - { name: order_id, type: int64, required: true }\n  - { name: customer_id, type: string }\n\
\x20 - { name: status, type: string }\n  - { name: amount, type: double }\n\
\x20 - { name: updated_at, type: timestamp, required: true }\n";

const SILVER: &str = "product: bench.orders\nversion: 1.0.0\nowner: bench\nlayer: silver\n\
source: { inputs: [bench.orders_raw], sql: \"SELECT order_id, customer_id, status, amount, updated_at FROM bench.orders_raw\", materialized: merge }\n\
key: [order_id]\nsequence_by: updated_at\nschema:\n\
\x20 - { name: order_id, type: int64, required: true }\n  - { name: customer_id, type: string }\n\
\x20 - { name: status, type: string }\n  - { name: amount, type: double }\n\
\x20 - { name: updated_at, type: timestamp, required: true }\n";

fn orders(ids: &[i64], version: i64) -> RecordBatch {
    let customer: StringArray = ids.iter().map(|i| Some(format!("c-{}", i % 100_000))).collect();
    let status: StringArray = ids
        .iter()
        .map(|i| Some(STATUSES[((i + version) % 4) as usize]))
        .collect();
    let amount: Float64Array = ids
        .iter()
        .map(|i| Some((i % 10_000) as f64 / 100.0 + version as f64))
        .collect();
    // One order a second; each later version an hour after the previous.
    let updated: TimestampMicrosecondArray = ids
        .iter()
        .map(|i| Some(BASE_MICROS + i * 1_000_000 + version * 3_600_000_000))
        .collect::<TimestampMicrosecondArray>()
        .with_timezone("UTC");
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(customer),
        Arc::new(status),
        Arc::new(amount),
        Arc::new(updated),
    ];
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("order_id", arrow::datatypes::DataType::Int64, false),
        arrow::datatypes::Field::new("customer_id", arrow::datatypes::DataType::Utf8, true),
        arrow::datatypes::Field::new("status", arrow::datatypes::DataType::Utf8, true),
        arrow::datatypes::Field::new("amount", arrow::datatypes::DataType::Float64, true),
        arrow::datatypes::Field::new(
            "updated_at",
            arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]));
    RecordBatch::try_new(schema, columns).expect("batch")
}

/// The changed order ids, in arrival order: updates of the newest orders (a tenth of
/// them twice, the second time later) scrambled, then the new orders.
fn changes(rows: i64, changes: i64) -> Vec<(i64, i64)> {
    let updates = changes * 8 / 10;
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(changes as usize);
    let first = rows - updates * 9 / 10;
    let mut k = 0;
    while (out.len() as i64) < updates {
        // A fixed permutation of the recent ids (multiplication by an odd constant).
        let span = rows - first;
        let id = first + (k * 7_919) % span;
        out.push((id, 1));
        if k % 10 == 0 && (out.len() as i64) < updates {
            out.push((id, 2));
        }
        k += 1;
    }
    out.extend((rows..rows + changes - updates).map(|id| (id, 1)));
    out
}

fn project(dir: &Path) -> (trib_spec::Project, Lake) {
    let project = trib_spec::load_project(dir).expect("project");
    assert!(!project.diagnostics.has_errors(), "{:?}", project.diagnostics);
    let lake = Lake::from_settings(&project.settings.storage, dir).expect("lake");
    (project, lake)
}

fn contract<'p>(p: &'p trib_spec::Project, name: &str) -> &'p trib_spec::Contract {
    p.contracts()
        .find(|c| c.product.value.to_string() == name)
        .expect("product")
}

async fn setup(dir: &Path, rows: i64, n: i64) {
    std::fs::create_dir_all(dir.join("products/bench")).expect("mkdir");
    std::fs::write(dir.join("products/bench/orders_raw.yaml"), RAW).expect("write");
    std::fs::write(dir.join("products/bench/orders.yaml"), SILVER).expect("write");
    if !dir.join("trib.toml").exists() {
        std::fs::write(dir.join("trib.toml"), "[project]\nname = \"bench\"\n").expect("write");
    }
    let (project, lake) = project(dir);
    let started = Instant::now();
    // The silver table as earlier runs left it: every order once, having read bronze
    // up to version 0 (its creation).
    let mut raw = ProductTable::open_or_create(&lake, contract(&project, "bench.orders_raw"), TableKind::Data)
        .await
        .expect("bronze");
    let mut silver = ProductTable::open_or_create(&lake, contract(&project, "bench.orders"), TableKind::Data)
        .await
        .expect("silver");
    let input = ("bench.orders_raw".to_string(), 1);
    let txn = vec![(trib_engine::app_id(&input), raw.version().unwrap_or_default() as i64)];
    let mut start = 0;
    while start < rows {
        let end = (start + CHUNK as i64).min(rows);
        let ids: Vec<i64> = (start..end).collect();
        silver.append_txns(&orders(&ids, 0), &txn).await.expect("append");
        start = end;
    }
    let silver_secs = started.elapsed().as_secs_f64();
    let changed = changes(rows, n);
    let ids: Vec<i64> = changed.iter().map(|(id, _)| *id).collect();
    let mut batch = orders(&ids, 1);
    // The second changes of an order carry a later version.
    let versions: Vec<i64> = changed.iter().map(|(_, v)| *v).collect();
    if versions.contains(&2) {
        let twice = orders(&ids, 2);
        let take: Vec<ArrayRef> = (0..batch.num_columns())
            .map(|c| {
                let mask = arrow::array::BooleanArray::from(versions.iter().map(|v| *v == 2).collect::<Vec<_>>());
                arrow::compute::kernels::zip::zip(&mask, twice.column(c), batch.column(c)).expect("zip")
            })
            .collect();
        batch = RecordBatch::try_new(batch.schema(), take).expect("batch");
    }
    raw.append_txns(&batch, &[]).await.expect("bronze append");
    eprintln!(
        "setup: {rows} silver rows in {silver_secs:.1}s, {} changes in bronze ({} files in silver)",
        batch.num_rows(),
        silver.delta().get_file_uris().map(|f| f.count()).unwrap_or(0)
    );
}

async fn merge(dir: &Path) {
    let (project, lake) = project(dir);
    let engine = Engine::new(lake, &project);
    let node = ("bench.orders".to_string(), 1);
    let started = Instant::now();
    let report = engine.run(&node).await.expect("merge run");
    let seconds = started.elapsed().as_secs_f64();
    let trib_engine::Outcome::Committed { rows, read, .. } = report.outcome else {
        panic!("nothing merged: {report:?}")
    };
    println!("{{\"seconds\": {seconds:.3}, \"rows\": {rows}, \"read\": {read}}}");
}

async fn check(dir: &Path, rows: i64, n: i64) {
    let (project, lake) = project(dir);
    let silver = ProductTable::open_or_create(&lake, contract(&project, "bench.orders"), TableKind::Data)
        .await
        .expect("silver");
    let expected_rows = rows + n - n * 8 / 10;
    let count = silver.count().await.expect("count") as i64;
    assert_eq!(count, expected_rows, "rows after the merge");
    // Each changed order holds its latest change; the others are untouched.
    let changed = changes(rows, n);
    let mut latest = std::collections::HashMap::new();
    for (id, v) in changed {
        let e = latest.entry(id).or_insert(v);
        *e = (*e).max(v);
    }
    let sql = "SELECT order_id, amount FROM t WHERE order_id % 997 = 0";
    let batches = silver.query(sql).await.expect("query");
    let mut seen = 0;
    for b in &batches {
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().expect("ids");
        let amounts = b.column(1).as_any().downcast_ref::<Float64Array>().expect("amounts");
        for i in 0..b.num_rows() {
            let id = ids.value(i);
            let v = latest.get(&id).copied().unwrap_or(0);
            let want = (id % 10_000) as f64 / 100.0 + v as f64;
            assert!(
                (amounts.value(i) - want).abs() < 1e-9,
                "order {id}: {} != {want}",
                amounts.value(i)
            );
            seen += 1;
        }
    }
    assert!(seen > 0);
    println!("check: {count} rows, {seen} sampled orders hold their latest change");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: merge_bench setup DIR ROWS CHANGES | merge DIR | check DIR ROWS CHANGES";
    let dir = Path::new(args.get(2).expect(usage));
    let num = |i: usize| -> i64 { args.get(i).expect(usage).parse().expect("a number") };
    match args.get(1).map(String::as_str) {
        Some("setup") => setup(dir, num(3), num(4)).await,
        Some("merge") => merge(dir).await,
        Some("check") => check(dir, num(3), num(4)).await,
        _ => panic!("{usage}"),
    }
}
