//! Maintenance on real tables: many small appends, then compaction, Z-order, checkpoint,
//! log cleanup and vacuum.

use crate::{contract, orders, orders_raw_table, scalar, trib_lake_query_count};
use deltalake::arrow::array::AsArray;
use std::path::Path;
use trib_core::{Clock, SystemClock};
use trib_lake::{Lake, MaintainOptions, MaintenanceReport, ProductTable, Rewrite, Step, TableKind, ZOrder, maintain};

const DAY_MS: i64 = 86_400_000;

/// "Now", shifted by whole days from the wall clock.
struct DaysFromNow(i64);

impl Clock for DaysFromNow {
    fn now_millis(&self) -> i64 {
        SystemClock.now_millis() + self.0 * DAY_MS
    }
}

/// A table of `product` after 12 appends of 10 orders each, spread over 3 days: 36 files.
async fn small_files(dir: &Path, product: &str) -> ProductTable {
    let lake = Lake::new("lake", dir).expect("lake");
    let c = contract(product);
    let mut t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("create");
    for i in 0..12 {
        t.append(&orders(i * 10, i * 10 + 10), None).await.expect("append");
    }
    assert_eq!(t.version(), Some(12));
    assert_eq!(files(&t), 36);
    t
}

fn files(t: &ProductTable) -> usize {
    t.delta().snapshot().expect("state").log_data().num_files()
}

async fn ids(t: &ProductTable) -> Vec<String> {
    t.query("SELECT order_id FROM t ORDER BY order_id")
        .await
        .expect("ids")
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_string_view_opt()
                .map(|a| a.iter().flatten().map(str::to_string).collect::<Vec<_>>())
                .or_else(|| {
                    b.column(0)
                        .as_string_opt::<i32>()
                        .map(|a| a.iter().flatten().map(str::to_string).collect())
                })
                .expect("string ids")
        })
        .collect()
}

async fn run(t: &mut ProductTable, cluster_by: &[&str], dry_run: bool, clock: &dyn Clock) -> MaintenanceReport {
    let cluster_by: Vec<String> = cluster_by.iter().map(|c| c.to_string()).collect();
    let mut steps = Vec::new();
    let mut progress = |s: Step| steps.push(s);
    let opts = MaintainOptions {
        dry_run,
        clock,
        progress: &mut progress,
        retention: None,
    };
    let report = maintain(t, &cluster_by, opts).await.expect("maintain");
    assert_eq!(steps, Step::ALL, "every step reports its start, in order");
    report
}

fn checkpoints(log: &Path) -> Vec<String> {
    std::fs::read_dir(log)
        .expect("log dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".checkpoint.parquet"))
        .collect()
}

#[tokio::test]
async fn compaction_keeps_rows_and_time_travel() {
    let dir = tempfile::tempdir().expect("tmp");
    // Bronze: append-only, no cluster_by, 90 days of retention.
    let mut t = small_files(dir.path(), "products/orders/orders_raw.yaml").await;
    let before = ids(&t).await;
    assert_eq!(before.len(), 120);

    let r = run(&mut t, &[], false, &SystemClock).await;
    assert_eq!(
        r.compaction,
        Rewrite {
            files_removed: 36,
            files_added: 3,
            partitions: 3
        }
    );
    assert_eq!(files(&t), 3);
    assert_eq!(r.z_order, ZOrder::NotClustered);
    assert_eq!((r.version_before, r.version_after), (Some(12), Some(13)));
    assert_eq!((r.rows_before, r.rows_after), (Some(120), Some(120)));
    assert_eq!(r.checkpoint_version, Some(13));
    assert_eq!(
        r.log_files_cleaned,
        Some(0),
        "every commit is younger than the log retention"
    );
    assert!(r.vacuumed.is_empty(), "{:?}", r.vacuumed);
    assert_eq!(r.vacuum_retention, std::time::Duration::from_secs(90 * 86_400));

    assert_eq!(t.count().await.expect("count"), 120);
    assert_eq!(ids(&t).await, before);
    // The files compaction replaced are still there for readers of older versions.
    let v1 = t.at_version(1).await.expect("time travel");
    assert_eq!(trib_lake_query_count(&v1).await, 10);
    let log = dir.path().join("lake/orders/orders_raw/v1/_delta_log");
    assert_eq!(checkpoints(&log), vec!["00000000000000000013.checkpoint.parquet"]);

    // Another process sees the compacted table.
    let lake = Lake::new("lake", dir.path()).expect("lake");
    let c = contract("products/orders/orders_raw.yaml");
    let again = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("reopen");
    assert_eq!((again.version(), files(&again)), (Some(13), 3));
    assert_eq!(scalar(&again, "SELECT count(DISTINCT order_id) FROM t").await, 120);

    // Nothing left to do the second time: no commit.
    let r = run(&mut t, &[], false, &SystemClock).await;
    assert_eq!(r.compaction, Rewrite::default());
    assert_eq!(r.version_after, Some(13));
}

#[tokio::test]
async fn dry_runs_change_nothing_and_vacuum_waits_for_the_retention() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut t = small_files(dir.path(), "products/orders/orders_raw.yaml").await;
    let table_dir = dir.path().join("lake/orders/orders_raw/v1");

    let plan = run(&mut t, &[], true, &SystemClock).await;
    assert!(plan.dry_run);
    assert_eq!(
        plan.compaction,
        Rewrite {
            files_removed: 36,
            files_added: 0,
            partitions: 3
        }
    );
    assert_eq!((plan.checkpoint_version, plan.log_files_cleaned), (None, None));
    assert_eq!((plan.version_after, files(&t)), (Some(12), 36));
    assert!(checkpoints(&table_dir.join("_delta_log")).is_empty());

    run(&mut t, &[], false, &SystemClock).await;
    assert_eq!(files(&t), 3);

    // 91 days later the 36 replaced files are past the 90-day retention: a dry run lists
    // them and deletes none.
    let later = DaysFromNow(91);
    let plan = run(&mut t, &[], true, &later).await;
    assert_eq!(plan.vacuumed.len(), 36, "{:?}", plan.vacuumed);
    for f in &plan.vacuumed {
        assert!(table_dir.join(f).exists(), "{f} was deleted by a dry run");
    }
    assert_eq!(plan.version_after, Some(13));
    let v1 = t.at_version(1).await.expect("time travel");
    assert_eq!(trib_lake_query_count(&v1).await, 10);

    // 89 days later they are still inside it: a real vacuum keeps them, and log cleanup
    // keeps the commits (the 30-day log retention does not cut time travel short).
    let r = run(&mut t, &[], false, &DaysFromNow(89)).await;
    assert!(r.vacuumed.is_empty(), "{:?}", r.vacuumed);
    assert_eq!(r.log_files_cleaned, Some(0));
    let v1 = t.at_version(1).await.expect("time travel");
    assert_eq!(trib_lake_query_count(&v1).await, 10);

    // Past it, vacuum deletes them and the log forgets the versions that needed them; the
    // current rows are untouched.
    let r = run(&mut t, &[], false, &later).await;
    assert_eq!(r.vacuumed.len(), 36);
    assert!(
        r.log_files_cleaned.is_some_and(|n| n >= 12),
        "{:?}",
        r.log_files_cleaned
    );
    assert!(t.at_version(1).await.is_err());
    assert!(r.vacuumed.iter().all(|f| !table_dir.join(f).exists()));
    assert_eq!(t.count().await.expect("count"), 120);
    assert_eq!(scalar(&t, "SELECT count(DISTINCT order_id) FROM t").await, 120);
}

#[tokio::test]
async fn z_order_by_the_contracts_cluster_by() {
    let dir = tempfile::tempdir().expect("tmp");
    // Silver, partitioned by day(ordered_at), clustered by customer_id.
    let mut t = small_files(dir.path(), "products/orders/orders.yaml").await;
    let c = contract("products/orders/orders.yaml");
    let cluster_by: Vec<&str> = c.cluster_by.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(cluster_by, ["customer_id"]);
    let before = ids(&t).await;

    // The partition column is left out: Delta cannot Z-order by it.
    let r = run(&mut t, &["ordered_at_day", "customer_id"], false, &SystemClock).await;
    assert_eq!(r.compaction.files_removed, 36);
    let ZOrder::Rewritten { columns, rewrite } = &r.z_order else {
        panic!("not z-ordered: {:?}", r.z_order);
    };
    assert_eq!(columns, &["customer_id"]);
    assert_eq!((rewrite.files_removed, rewrite.partitions), (3, 3));
    assert_eq!((r.version_after, r.checkpoint_version), (Some(14), Some(14)));
    assert_eq!(ids(&t).await, before);
    // Within a file, rows now run in Z-order of customer_id: c-0 … c-6 are contiguous.
    let runs = scalar(
        &t,
        "SELECT count(*) FROM (SELECT customer_id, lag(customer_id) OVER () AS prev FROM t) \
         WHERE prev IS NULL OR prev <> customer_id",
    )
    .await;
    assert!(runs <= 3 * 7, "{runs} runs of customer ids");

    // No new data: nothing is rewritten again.
    let r = run(&mut t, &cluster_by, false, &SystemClock).await;
    assert_eq!(r.compaction, Rewrite::default());
    assert_eq!(
        r.z_order,
        ZOrder::UpToDate {
            columns: vec!["customer_id".into()]
        }
    );
    assert_eq!(r.version_after, Some(14));

    // New rows: ordered again.
    t.append(&orders(120, 130), None).await.expect("append");
    let r = run(&mut t, &cluster_by, false, &SystemClock).await;
    assert!(matches!(r.z_order, ZOrder::Rewritten { .. }), "{:?}", r.z_order);
    assert_eq!(t.count().await.expect("count"), 130);
}

#[tokio::test]
async fn too_few_files_and_failures_name_the_step() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new("lake", dir.path()).expect("lake");
    let c = contract("products/orders/orders.yaml");
    let mut t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("create");
    // One file.
    t.append(&orders(0, 1), None).await.expect("append");
    let r = run(&mut t, &["customer_id"], false, &SystemClock).await;
    assert_eq!(r.z_order, ZOrder::TooFewFiles);

    t.append(&orders(1, 2), None).await.expect("append");
    t.append(&orders(2, 3), None).await.expect("append");
    let mut progress = |_: Step| {};
    let opts = MaintainOptions {
        dry_run: false,
        clock: &SystemClock,
        progress: &mut progress,
        retention: None,
    };
    let err = maintain(&mut t, &["no_such_column".to_string()], opts)
        .await
        .expect_err("unknown column");
    let message = err.to_string();
    assert!(
        message.starts_with("maintenance step `z-order` of table `orders.orders` failed"),
        "{message}"
    );

    // Dead letters have their own table and name.
    let mut dead = ProductTable::open_or_create(&lake, &c, TableKind::DeadLetters)
        .await
        .expect("dead letters");
    let r = run(&mut dead, &[], false, &SystemClock).await;
    assert_eq!(r.compaction, Rewrite::default());
    assert_eq!(r.z_order, ZOrder::NotClustered);
}

#[tokio::test]
async fn only_existing_tables_are_opened() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new("lake", dir.path()).expect("lake");
    let c = contract("products/orders/orders.yaml");
    let none = trib_lake::open_existing(&lake, &c, TableKind::Data)
        .await
        .expect("look");
    assert!(none.is_none());
    assert!(!dir.path().join("lake/orders").exists(), "looking creates nothing");
    ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("create");
    let some = trib_lake::open_existing(&lake, &c, TableKind::Data)
        .await
        .expect("look");
    assert_eq!(some.and_then(|t| t.version()), Some(0));
    let dead = trib_lake::open_existing(&lake, &c, TableKind::DeadLetters)
        .await
        .expect("look");
    assert!(dead.is_none());
}

/// A writer that commits without loading the table (as `trib serve`'s does) keeps
/// committing while the server's compaction packs the small files: the compaction
/// lands between its commits, every row is there once, the change feed still shows
/// each appended row once, and the writer's own transactions stay visible to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packing_lands_beside_a_writer_that_does_not_load_the_table() {
    let (_dir, lake, c, mut writer) = orders_raw_table().await;
    append_unsettled(&mut writer, 0..20).await;
    let (lake2, c2) = (lake.clone(), c.clone());
    let packing = tokio::spawn(async move {
        trib_lake::compact_product(&lake2, &c2, std::num::NonZeroU64::new(16 << 20))
            .await
            .expect("pack")
    });
    append_unsettled(&mut writer, 20..60).await;
    let packed = packing.await.expect("join");
    assert!(packed.files_removed >= 2, "{packed:?}");
    assert_eq!(writer.txn_version("producer").await.expect("txn"), Some(59));

    let mut t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("reopen");
    // The writer learns of a compaction that landed after its last commit by catching up,
    // without loading the table.
    writer.catch_up().await.expect("catch up");
    assert_eq!(t.version(), writer.version());
    assert_eq!(t.count().await.expect("count"), 600);
    assert_eq!(scalar(&t, "SELECT count(DISTINCT order_id) FROM t").await, 600);
    assert!(files(&t) < 60 * 3, "{} files", files(&t));
    let (_, changes) = t.changes(None, t.version().expect("version")).await.expect("changes");
    assert_eq!(changes.iter().map(|b| b.num_rows()).sum::<usize>(), 600);

    // A second round finds the packed files big enough, or packs what came after.
    let again = trib_lake::compact_product(&lake, &c, std::num::NonZeroU64::new(16 << 20))
        .await
        .expect("pack again");
    t.refresh().await.expect("refresh");
    assert_eq!(t.count().await.expect("count"), 600);
    assert!(again.files_removed == 0 || again.files_added >= 1, "{again:?}");
    // The writer's next commit finds the compactions' versions taken and goes through
    // the general path; nothing is lost.
    writer
        .append_txns(&orders(600, 610), &[("producer".to_string(), 60)])
        .await
        .expect("append after");
    t.refresh().await.expect("refresh");
    assert_eq!(t.count().await.expect("count"), 610);
}

/// A writer behind its log (it appends without loading the table) meets a commit that
/// did more than append, an expiry's delete: it must not step over it, and its next
/// append goes through delta-rs's conflict checks on the reloaded table. Nothing the
/// expiry kept is lost, nothing it deleted comes back, and no batch lands twice.
#[tokio::test]
async fn a_writer_behind_its_log_does_not_step_over_a_delete() {
    let (_dir, lake, c, mut writer) = orders_raw_table().await;
    // Orders 0..90, on 2026-03-10, 11 and 12 by id.
    append_unsettled(&mut writer, 0..9).await;
    let before_expiry = writer.version().expect("version");

    // Another process expires everything updated before 2026-03-11.
    let mut other = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("open");
    let cutoff = chrono::DateTime::parse_from_rfc3339("2026-03-11T00:00:00Z")
        .expect("date")
        .timestamp_micros();
    let expired = other.expire("updated_at", cutoff, false).await.expect("expire");
    assert_eq!(expired.rows, 30, "{expired:?}");

    append_unsettled(&mut writer, 9..10).await;
    assert!(writer.version().expect("version") > other.version().expect("version"));
    assert!(writer.version().expect("version") > before_expiry + 1);
    // A retry of a batch committed before the expiry is still recognised.
    assert_eq!(writer.txn_version("producer").await.expect("txn"), Some(9));
    writer.settle().await.expect("settle");

    let t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("reopen");
    // 90 orders before the expiry, 30 of them (ids divisible by 3: 2026-03-10) expired,
    // then 10 more, kept whatever their day.
    assert_eq!(t.count().await.expect("count"), 70);
    assert_eq!(scalar(&t, "SELECT count(DISTINCT order_id) FROM t").await, 70);
    assert_eq!(scalar(&t, "SELECT count(*) FROM t WHERE order_id = 'o-93'").await, 1);
    assert_eq!(scalar(&t, "SELECT count(*) FROM t WHERE order_id = 'o-3'").await, 0);
}

/// Appends batches `batches` of 10 orders each (batch `i` holds orders `10i..10i+10`,
/// as transaction `i` of one producer) without loading the table, as `trib serve`'s
/// writer does; yields after each so that a task beside it gets to run.
async fn append_unsettled(t: &mut ProductTable, batches: std::ops::Range<usize>) {
    for i in batches {
        t.append_txns_unsettled(&orders(i * 10, i * 10 + 10), &[("producer".to_string(), i as i64)])
            .await
            .expect("append");
        tokio::task::yield_now().await;
    }
}
