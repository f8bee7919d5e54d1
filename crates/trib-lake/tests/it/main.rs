//! Real Delta tables in temporary directories.

use deltalake::arrow::array::{AsArray, RecordBatch};
use deltalake::arrow::datatypes::Int64Type;
use std::path::Path;
use std::sync::Arc;
use trib_lake::{Appended, Lake, ProductTable, TableKind};
use trib_spec::Contract;

mod maintain;
mod s3;
mod scan;

pub(crate) fn contract(rel: &str) -> Contract {
    contract_edited(rel, |text| text)
}

/// A template contract with its text changed by `edit` first.
pub(crate) fn contract_edited(rel: &str, edit: impl FnOnce(String) -> String) -> Contract {
    let path = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../trib/template")
        .join(rel);
    let text = edit(std::fs::read_to_string(&path).expect("template contract"));
    trib_spec::parse_contract(trib_spec::yaml::Source::new(rel, text))
        .contract
        .expect("valid")
}

/// Rows of the orders_raw contract with ids `from..to`, built through Arrow's JSON reader.
pub(crate) fn orders(from: usize, to: usize) -> RecordBatch {
    orders_with(from, to, |i| 10 + i % 3, |i| format!("c-{}", i % 7))
}

/// Rows of orders_raw with ids `from..to`, row `i` on day `day(i)` of March 2026 and of
/// customer `customer(i)`.
pub(crate) fn orders_with(
    from: usize,
    to: usize,
    day: impl Fn(usize) -> usize,
    customer: impl Fn(usize) -> String,
) -> RecordBatch {
    let mut text = String::new();
    for i in from..to {
        let (day, customer) = (day(i), customer(i));
        text.push_str(&format!(
            "{{\"order_id\":\"o-{i}\",\"customer_id\":\"{customer}\",\"status\":\"placed\",\"amount\":\"{i}.50\",\"ordered_at\":\"2026-03-{day}T10:00:00Z\",\"updated_at\":\"2026-03-{day}T10:00:00Z\"}}\n"
        ));
    }
    orders_from_json(&text, to - from)
}

/// NDJSON rows of orders_raw, `rows` of them, through Arrow's JSON reader.
pub(crate) fn orders_from_json(text: &str, rows: usize) -> RecordBatch {
    let c = contract("products/orders/orders_raw.yaml");
    let mut decoder = deltalake::arrow::json::ReaderBuilder::new(Arc::new(c.arrow_schema()))
        .with_batch_size(rows + 1)
        .build_decoder()
        .expect("decoder");
    decoder.decode(text.as_bytes()).expect("decode");
    decoder.flush().expect("flush").expect("rows")
}

pub(crate) async fn scalar(t: &ProductTable, sql: &str) -> i64 {
    let b = t.query(sql).await.expect("query");
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn created_from_the_contract_with_partition_columns() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new("lake", dir.path()).expect("lake");
    let c = contract("products/orders/orders_raw.yaml");
    let t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("create");
    assert_eq!(t.version(), Some(0));
    assert!(
        dir.path()
            .join("lake/orders/orders_raw/v1/_delta_log/00000000000000000000.json")
            .exists()
    );
    let schema = t.schema();
    assert_eq!(schema.fields().len(), c.schema.len() + 1);
    assert!(schema.field_with_name("ordered_at_day").is_ok());
    let meta = t.delta().snapshot().expect("state").metadata().clone();
    assert_eq!(meta.partition_columns(), &vec!["ordered_at_day".to_string()]);
    assert_eq!(
        meta.configuration().get("delta.appendOnly").map(String::as_str),
        Some("true")
    );
    assert_eq!(meta.name(), Some("orders.orders_raw"));
    // Opening again finds the same table.
    let again = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("open");
    assert_eq!(again.version(), Some(0));
}

/// A new `orders.orders_raw` table in a temporary lake (kept as long as the directory).
pub(crate) async fn orders_raw_table() -> (tempfile::TempDir, Lake, Contract, ProductTable) {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new(dir.path().to_str().expect("utf8"), Path::new("/")).expect("lake");
    let c = contract("products/orders/orders_raw.yaml");
    let t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("create");
    (dir, lake, c, t)
}

/// Transactions are read from the checkpoint and the commits after it, by a table
/// that keeps them and by one opened afterwards, with several ids per commit.
#[tokio::test]
async fn transactions_survive_checkpoints() {
    let (_dir, lake, c, mut t) = orders_raw_table().await;
    // Loaded before any transaction, then kept up to date by this table's own commits.
    assert_eq!(t.txn_version("app-0").await.expect("txn"), None);
    for i in 0..4i64 {
        let txns = vec![(format!("app-{i}"), i), ("shared".to_string(), 10 * i)];
        t.append_txns(&orders(10 * i as usize, 10 * i as usize + 10), &txns)
            .await
            .expect("append");
    }
    deltalake::checkpoints::create_checkpoint(t.delta(), None)
        .await
        .expect("checkpoint");
    for i in 4..7i64 {
        t.append(
            &orders(10 * i as usize, 10 * i as usize + 10),
            Some((&format!("app-{i}"), i)),
        )
        .await
        .expect("append");
    }
    let reopened = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("reopen");
    for table in [&t, &reopened] {
        for i in 0..7i64 {
            assert_eq!(table.txn_version(&format!("app-{i}")).await.expect("txn"), Some(i));
        }
        assert_eq!(table.txn_version("shared").await.expect("txn"), Some(30));
        assert_eq!(table.txn_version("app-7").await.expect("txn"), None);
    }
    // A retry of a batch from before the checkpoint lands nothing.
    assert_eq!(
        t.append(&orders(0, 10), Some(("app-1", 1))).await.expect("retry"),
        Appended::AlreadyCommitted
    );
    // Another writer's commit is seen after a refresh.
    let mut other = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("open");
    other
        .append(&orders(70, 80), Some(("app-other", 5)))
        .await
        .expect("append");
    t.refresh().await.expect("refresh");
    assert_eq!(t.txn_version("app-other").await.expect("txn"), Some(5));
}

#[tokio::test]
async fn appends_are_idempotent_per_transaction() {
    let (_dir, lake, c, mut t) = orders_raw_table().await;
    let first = t
        .append(&orders(0, 100), Some(("http:batch-a", 1)))
        .await
        .expect("append");
    assert_eq!(first, Appended::Committed { version: 1, rows: 100 });
    // The retry of the same batch lands nowhere.
    assert_eq!(
        t.append(&orders(0, 100), Some(("http:batch-a", 1)))
            .await
            .expect("retry"),
        Appended::AlreadyCommitted
    );
    // Neither does a replay of an older one.
    assert_eq!(
        t.append(&orders(0, 100), Some(("http:batch-a", 0)))
            .await
            .expect("older"),
        Appended::AlreadyCommitted
    );
    assert!(matches!(
        t.append(&orders(100, 150), Some(("http:batch-a", 2)))
            .await
            .expect("next"),
        Appended::Committed { rows: 50, .. }
    ));
    assert!(matches!(
        t.append(&orders(150, 160), None).await.expect("plain"),
        Appended::Committed { rows: 10, .. }
    ));
    assert_eq!(t.count().await.expect("count"), 160);
    assert_eq!(scalar(&t, "SELECT count(DISTINCT order_id) FROM t").await, 160);
    assert_eq!(t.txn_version("http:batch-a").await.expect("txn"), Some(2));
    assert_eq!(t.txn_version("other").await.expect("txn"), None);

    // Another process opening the table sees the same transactions.
    let reopened = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("reopen");
    assert_eq!(reopened.txn_version("http:batch-a").await.expect("txn"), Some(2));
    // Partition values are derived and prunable.
    assert_eq!(
        scalar(
            &reopened,
            "SELECT count(*) FROM t WHERE ordered_at_day = DATE '2026-03-10'"
        )
        .await,
        54
    );
}

/// A large append is encoded by several writers at once: more files, the same rows,
/// each file with its statistics, in one commit.
#[tokio::test]
async fn a_large_append_is_written_in_parallel_parts() {
    let (_dir, _lake, _c, mut t) = orders_raw_table().await;
    let rows = 250_001;
    let appended = t.append(&orders(0, rows), Some(("file:big", 0))).await.expect("append");
    assert_eq!(appended, Appended::Committed { version: 1, rows });
    let files: Vec<_> = t.delta().get_file_uris().expect("files").collect();
    // Three days of rows, written by two writers.
    assert_eq!(files.len(), 2 * 3, "{files:?}");
    assert_eq!(t.count().await.expect("count"), rows as u64);
    assert_eq!(scalar(&t, "SELECT count(DISTINCT order_id) FROM t").await, rows as i64);
    let stats_rows: i64 = t
        .delta()
        .snapshot()
        .expect("state")
        .log_data()
        .iter()
        .map(|f| f.num_records().expect("statistics") as i64)
        .sum();
    assert_eq!(stats_rows, rows as i64);

    // Rows that arrive a day at a time go to their files as runs, not row by row.
    // The first quarter of them on day 11, the rest on day 12.
    let quarter = rows + 50_000;
    let by_day = orders_with(
        rows,
        rows + 200_000,
        |i| if i < quarter { 11 } else { 12 },
        |_| "c-x".into(),
    );
    let appended = t.append(&by_day, Some(("file:big", 1))).await.expect("append");
    assert!(matches!(appended, Appended::Committed { version: 2, .. }));
    let files: Vec<_> = t.delta().get_file_uris().expect("files").collect();
    // One more file per day and writer: the first writer's rows are of days 11 and 12,
    // the second's all of day 12.
    assert_eq!(files.len(), 6 + 3, "{files:?}");
    assert_eq!(t.count().await.expect("count"), (rows + 200_000) as u64);
    assert_eq!(
        scalar(
            &t,
            "SELECT count(*) FROM t WHERE ordered_at_day = DATE '2026-03-11' AND customer_id = 'c-x'"
        )
        .await,
        50_000
    );
    assert_eq!(
        scalar(
            &t,
            "SELECT count(*) FROM t WHERE ordered_at_day <> CAST(ordered_at AS DATE)"
        )
        .await,
        0,
        "every row in the partition of its own day"
    );
}

#[tokio::test]
async fn time_travel_by_version_and_timestamp() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new("lake", dir.path()).expect("lake");
    let c = contract("products/orders/orders_raw.yaml");
    let mut t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("create");
    t.append(&orders(0, 10), None).await.expect("v1");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    t.append(&orders(10, 30), None).await.expect("v2");
    assert_eq!(t.count().await.expect("now"), 30);
    let v1 = t.at_version(1).await.expect("v1");
    let rows = trib_lake_query_count(&v1).await;
    assert_eq!(rows, 10);
    let at = t.at_timestamp(between).await.expect("at time");
    assert_eq!(at.version(), Some(1));
    assert_eq!(trib_lake_query_count(&at).await, 10);
}

pub(crate) async fn trib_lake_query_count(t: &deltalake::DeltaTable) -> i64 {
    let ctx = deltalake::datafusion::prelude::SessionContext::new();
    t.update_datafusion_session(&ctx.state()).expect("session");
    ctx.register_table("t", t.table_provider().await.expect("provider"))
        .expect("register");
    let b = ctx
        .sql("SELECT count(*) FROM t")
        .await
        .expect("sql")
        .collect()
        .await
        .expect("collect");
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn concurrent_writers_lose_no_commit() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new("lake", dir.path()).expect("lake");
    let c = contract("products/orders/orders_raw.yaml");
    ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let (lake, c) = (lake.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let mut t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
                .await
                .expect("open");
            for b in 0..5usize {
                let start = (w * 5 + b) * 10;
                let app = format!("writer-{w}");
                let mut tries = 0;
                loop {
                    match t.append(&orders(start, start + 10), Some((&app, b as i64))).await {
                        Ok(_) => break,
                        Err(e) if e.is_retryable() && tries < 20 => tries += 1,
                        Err(e) => panic!("writer {w}: {e}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("open");
    assert_eq!(t.count().await.expect("count"), 200);
    assert_eq!(scalar(&t, "SELECT count(DISTINCT order_id) FROM t").await, 200);
    for w in 0..4 {
        assert_eq!(t.txn_version(&format!("writer-{w}")).await.expect("txn"), Some(4));
    }
}

#[tokio::test]
async fn dead_letter_tables_live_apart() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new("lake", dir.path()).expect("lake");
    let c = contract("products/orders/orders_raw.yaml");
    let t = ProductTable::open_or_create(&lake, &c, TableKind::DeadLetters)
        .await
        .expect("create");
    assert!(
        dir.path()
            .join("lake/_dead_letters/orders/orders_raw/v1/_delta_log")
            .exists()
    );
    assert!(t.schema().field_with_name("reason").is_ok());
}

#[tokio::test]
async fn optional_columns_are_added_within_a_major_version() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new("lake", dir.path()).expect("lake");
    let v1 = contract("products/orders/orders_raw.yaml");
    let mut t = ProductTable::open_or_create(&lake, &v1, TableKind::Data)
        .await
        .expect("create");
    t.append(&orders(0, 10), None).await.expect("v1 rows");

    // 1.1.0 adds an optional column.
    let path = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../trib/template/products/orders/orders_raw.yaml");
    let text = std::fs::read_to_string(&path)
        .expect("read")
        .replace("version: 1.0.0", "version: 1.1.0")
        .replace(
            "  - { name: currency, type: string }\n",
            "  - { name: currency, type: string }\n  - { name: channel, type: string }\n",
        );
    let v2 = trib_spec::parse_contract(trib_spec::yaml::Source::new("v2.yaml", text.clone()))
        .contract
        .expect("valid");
    let mut t2 = ProductTable::open_or_create(&lake, &v2, TableKind::Data)
        .await
        .expect("open with the new column");
    let schema = Arc::new(v2.arrow_schema());
    let row = "{\"order_id\":\"n1\",\"customer_id\":\"c\",\"status\":\"placed\",\"amount\":\"1.00\",\"ordered_at\":\"2026-03-10T10:00:00Z\",\"updated_at\":\"2026-03-10T10:00:00Z\",\"channel\":\"app\"}\n";
    let mut decoder = deltalake::arrow::json::ReaderBuilder::new(schema)
        .build_decoder()
        .expect("decoder");
    decoder.decode(row.as_bytes()).expect("decode");
    let batch = decoder.flush().expect("flush").expect("row");
    t2.append(&batch, None).await.expect("append with the new column");
    assert_eq!(scalar(&t2, "SELECT count(*) FROM t").await, 11);
    assert_eq!(
        scalar(&t2, "SELECT count(channel) FROM t").await,
        1,
        "older rows read the new column as null"
    );

    // A column the contract dropped is refused with a hint.
    let dropped = text
        .replace("  - { name: currency, type: string }\n", "")
        .replace("  - { name: channel, type: string }\n", "")
        .replace("  - regex: { column: currency, pattern: '^[A-Z]{3}$' }\n", "");
    let v3 = trib_spec::parse_contract(trib_spec::yaml::Source::new("v3.yaml", dropped))
        .contract
        .expect("valid");
    let err = ProductTable::open_or_create(&lake, &v3, TableKind::Data)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("currency") && err.to_string().contains("new major version"),
        "{err}"
    );
}

/// The change data feed of a table partitioned by hour (folder names that need
/// escaping, `…=2026-03-10%2010%3A00…`) reads the files of each commit; delta-rs 1.1
/// asks for the log's still-encoded path unless the feed is read through `cdf.rs`.
#[tokio::test]
async fn the_change_feed_of_an_hour_partitioned_table() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new(dir.path().to_str().expect("utf8"), Path::new("/")).expect("lake");
    let c = contract_edited("products/orders/orders_raw.yaml", |t| {
        t.replace("partition_by: [day(ordered_at)]", "partition_by: [hour(ordered_at)]")
    });
    let mut t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("create");
    t.append(&orders(0, 10), None).await.expect("append");
    t.append(&orders(10, 25), None).await.expect("append");
    let v = t.version().expect("version");
    let (_, batches) = t.changes(Some(v - 1), v).await.expect("changes");
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 15);
    let (_, all) = t.changes(Some(0), v).await.expect("changes");
    assert_eq!(all.iter().map(RecordBatch::num_rows).sum::<usize>(), 25);
}
