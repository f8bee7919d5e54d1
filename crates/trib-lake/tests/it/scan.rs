//! The direct Parquet scan against delta-rs's provider, on the same snapshots.

use crate::{orders, orders_from_json, orders_raw_table, orders_with};
use deltalake::DeltaTable;
use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::util::pretty::pretty_format_batches;
use deltalake::datafusion::catalog::TableProvider;
use deltalake::datafusion::prelude::SessionContext;
use std::sync::Arc;

async fn run(table: &DeltaTable, provider: Arc<dyn TableProvider>, sql: &str) -> String {
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state()).expect("session");
    ctx.register_table("t", provider).expect("register");
    let batches: Vec<RecordBatch> = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pretty_format_batches(&batches).expect("format").to_string()
}

/// Every query gives the same answer through both providers, and the answer is not
/// empty unless `empty` says so.
async fn same_answers(table: &DeltaTable, queries: &[(&str, bool)]) {
    let direct = trib_lake::files_provider(table).expect("a reader version 1 table is read directly");
    let delta = trib_lake::rechecked(table.table_provider().await.expect("delta-rs provider"));
    assert_eq!(direct.schema(), delta.schema(), "same columns in the same order");
    for (sql, empty) in queries {
        let want = run(table, Arc::clone(&delta), sql).await;
        let got = run(table, Arc::clone(&direct), sql).await;
        assert_eq!(got, want, "{sql}");
        assert_eq!(want.lines().count() <= 4, *empty, "{sql}:\n{want}");
    }
}

const QUERIES: &[(&str, bool)] = &[
    ("SELECT * FROM t ORDER BY order_id", false),
    (
        "SELECT ordered_at_day, count(*) AS n, sum(amount) AS total FROM t \
         WHERE ordered_at_day >= DATE '2026-03-11' AND customer_id <> 'c-1' GROUP BY 1 ORDER BY 1",
        false,
    ),
    // Columns in another order than the table's, the partition column among them.
    (
        "SELECT amount, ordered_at_day, order_id FROM t WHERE amount > 20 ORDER BY order_id",
        false,
    ),
    ("SELECT count(*) FROM t WHERE amount > 0 AND NULL", false),
    ("SELECT order_id FROM t WHERE ordered_at_day = DATE '2026-02-01'", true),
    (
        "SELECT count(*) FROM (SELECT order_id FROM t WHERE status = 'placed' LIMIT 5)",
        false,
    ),
    ("SELECT count(*) FROM (SELECT order_id FROM t LIMIT 7)", false),
];

#[tokio::test]
async fn the_direct_scan_reads_what_delta_rs_reads() {
    let (_dir, _lake, _c, mut t) = orders_raw_table().await;
    // An empty table first: no files at all.
    same_answers(
        t.delta(),
        &[("SELECT * FROM t", true), ("SELECT count(*) FROM t", false)],
    )
    .await;

    t.append(&orders(0, 40), None).await.expect("v1");
    t.append(&orders_with(40, 90, |i| 10 + i % 4, |i| format!("c-{}", i % 5)), None)
        .await
        .expect("v2");
    t.append(&orders_with(90, 100, |_| 15, |_| "c-1".into()), None)
        .await
        .expect("v3");
    same_answers(t.delta(), QUERIES).await;

    // An older snapshot has its own files.
    let v1 = t.at_version(1).await.expect("v1");
    same_answers(&v1, QUERIES).await;
    let count = run(
        &v1,
        trib_lake::files_provider(&v1).expect("direct"),
        "SELECT count(*) AS n FROM t",
    )
    .await;
    assert!(count.contains("| 40 "), "{count}");

    // Compaction removes files from the snapshot; they stay on disk for time travel.
    trib_lake::compact(&mut t).await.expect("compact");
    same_answers(t.delta(), QUERIES).await;
    let count = run(
        t.delta(),
        trib_lake::files_provider(t.delta()).expect("direct"),
        "SELECT count(*) AS n FROM t",
    )
    .await;
    assert!(count.contains("| 100 "), "{count}");
}

#[tokio::test]
async fn data_files_have_row_groups_a_scan_can_split() {
    let (dir, _lake, _c, mut t) = orders_raw_table().await;
    let rows = 140_000;
    t.append(&orders_with(0, rows, |_| 12, |i| format!("c-{}", i % 7)), None)
        .await
        .expect("append");
    let files: Vec<String> = t.delta().get_file_uris().expect("files").collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let path = files[0].strip_prefix("file://").unwrap_or(&files[0]);
    assert!(path.starts_with(dir.path().to_str().expect("utf8")), "{path}");
    let file = std::fs::File::open(path).expect("data file");
    let reader = deltalake::parquet::file::serialized_reader::SerializedFileReader::new(file).expect("parquet");
    let meta = deltalake::parquet::file::reader::FileReader::metadata(&reader);
    let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(groups, [131_072, rows as i64 - 131_072]);
}

/// orders_raw partitioned by `partition_by` instead of the day of `ordered_at`.
async fn orders_partitioned_by(lake: &trib_lake::Lake, partition_by: &str) -> trib_lake::ProductTable {
    let c = crate::contract_edited("products/orders/orders_raw.yaml", |t| {
        t.replace(
            "partition_by: [day(ordered_at)]",
            &format!("partition_by: [{partition_by}]"),
        )
    });
    trib_lake::ProductTable::open_or_create(lake, &c, trib_lake::TableKind::Data)
        .await
        .expect("create")
}

/// Rows `from..to` with a country for most (one in five has none) and an hour each.
fn orders_with_countries(from: usize, to: usize) -> RecordBatch {
    let mut text = String::new();
    for i in from..to {
        let country = match i % 5 {
            0 => "null".to_string(),
            n => format!("\"{}\"", ["DE", "FR", "US", "JP"][n - 1]),
        };
        let hour = i % 24;
        text.push_str(&format!(
            "{{\"order_id\":\"o-{i}\",\"customer_id\":\"c-{}\",\"country\":{country},\"status\":\"placed\",\"amount\":\"{i}.25\",\"ordered_at\":\"2026-03-12T{hour:02}:30:00Z\",\"updated_at\":\"2026-03-12T{hour:02}:30:00Z\"}}\n",
            i % 7
        ));
    }
    crate::orders_from_json(&text, to - from)
}

#[tokio::test]
async fn text_and_hour_partitions_read_the_same() {
    for (partition_by, column) in [("country", "country"), ("hour(ordered_at)", "ordered_at_hour")] {
        let dir = tempfile::tempdir().expect("tmp");
        let lake = trib_lake::Lake::new(dir.path().to_str().expect("utf8"), std::path::Path::new("/")).expect("lake");
        let mut t = orders_partitioned_by(&lake, partition_by).await;
        t.append(&orders_with_countries(0, 60), None).await.expect("v1");
        t.append(&orders_with_countries(60, 100), None).await.expect("v2");
        let by_partition = format!("SELECT {column}, count(*) AS n, sum(amount) AS total FROM t GROUP BY 1 ORDER BY 1");
        let one = match column {
            "country" => "SELECT order_id, country FROM t WHERE country = 'FR' ORDER BY order_id".to_string(),
            _ => format!(
                "SELECT order_id, {column} FROM t WHERE {column} = TIMESTAMP '2026-03-12T05:00:00Z' ORDER BY order_id"
            ),
        };
        let none = format!("SELECT count(*) FROM t WHERE {column} IS NULL");
        same_answers(
            t.delta(),
            &[
                ("SELECT * FROM t ORDER BY order_id", false),
                (&by_partition, false),
                (&one, false),
                (&none, false),
                (
                    "SELECT country, count(*) FROM t WHERE country IS NULL GROUP BY 1",
                    false,
                ),
            ],
        )
        .await;
    }
}

/// The data files the scan in `plan` (an `EXPLAIN`'s text) reads, and its predicate.
fn scanned(plan: &str) -> (usize, String) {
    let line = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .unwrap_or_else(|| panic!("no scan in\n{plan}"));
    let predicate = line
        .split(", ")
        .find_map(|part| part.strip_prefix("predicate="))
        .unwrap_or_default()
        .to_string();
    (line.matches(".parquet").count(), predicate)
}

/// One file per day: days 10 to 12 with amounts 0.50 to 39.50, then day 20 with
/// amounts 40.50 to 89.50.
async fn four_days() -> (
    tempfile::TempDir,
    trib_lake::Lake,
    trib_spec::Contract,
    trib_lake::ProductTable,
) {
    let (dir, lake, c, mut t) = orders_raw_table().await;
    t.append(&orders(0, 40), None).await.expect("v1");
    t.append(&orders_with(40, 90, |_| 20, |i| format!("c-{i}")), None)
        .await
        .expect("v2");
    (dir, lake, c, t)
}

#[tokio::test]
async fn filters_leave_out_files_by_partition_and_by_the_logs_ranges() {
    let (_dir, _lake, _c, t) = four_days().await;
    assert_eq!(t.delta().get_file_uris().expect("files").count(), 4, "one file per day");
    let table = t.delta().clone();
    let query = |sql: &'static str| {
        let table = table.clone();
        async move { run(&table, trib_lake::files_provider(&table).expect("direct"), sql).await }
    };

    for (filter, files, rows) in [
        ("ordered_at_day = DATE '2026-03-20'", 1, 50),
        ("ordered_at_day >= DATE '2026-03-11'", 3, 76),
        ("amount > 45", 1, 45),
        ("amount < 5 OR ordered_at_day = DATE '2026-03-12'", 3, 17),
        ("customer_id = 'c-3'", 4, 6),
        // Timestamps by the log's ranges, widened by a millisecond: 10:00 of day 20
        // itself keeps its file, as it may hold rows in the millisecond after.
        ("ordered_at >= TIMESTAMP '2026-03-20T00:00:00Z'", 1, 50),
        ("ordered_at > TIMESTAMP '2026-03-20T10:00:00Z'", 1, 0),
        ("ordered_at <= TIMESTAMP '2026-03-10T10:00:00Z'", 1, 14),
        ("amount > 1000", 0, 0),
    ] {
        let plan = query(Box::leak(
            format!("EXPLAIN SELECT order_id FROM t WHERE {filter}").into_boxed_str(),
        ))
        .await;
        if files == 0 {
            // Nothing to scan.
            assert!(!plan.contains("DataSourceExec"), "{filter}: {plan}");
        } else {
            let (read, predicate) = scanned(&plan);
            assert_eq!(read, files, "{filter}: {plan}");
            // A filter left to DataFusion reaches the scan once, to prune its row
            // groups; one the files decide is done with when they are chosen.
            let column = filter.split_whitespace().next().unwrap_or_default();
            let once = format!("{column}@");
            let expected = if filters_rows(&plan) {
                filter.matches(column).count()
            } else {
                0
            };
            assert_eq!(predicate.matches(&once).count(), expected, "{filter}: {predicate}");
        }
        let answer = query(Box::leak(
            format!("SELECT count(*) AS n FROM t WHERE {filter}").into_boxed_str(),
        ))
        .await;
        assert!(answer.contains(&format!("| {rows} ")), "{filter}: {answer}");
    }
}

#[tokio::test]
async fn timestamps_within_the_millisecond_the_log_cuts_off_are_still_read() {
    let (_dir, _lake, _c, mut t) = orders_raw_table().await;
    let row = |id: &str, at: &str| {
        format!(
            "{{\"order_id\":\"{id}\",\"customer_id\":\"c\",\"status\":\"placed\",\"amount\":\"1.00\",\"ordered_at\":\"{at}\",\"updated_at\":\"{at}\"}}\n"
        )
    };
    // One file whose rows lie within one millisecond: the log records its range as
    // 10:00:00.000 to 10:00:00.000.
    let rows = row("a", "2026-03-20T10:00:00.000200Z") + &row("b", "2026-03-20T10:00:00.000700Z");
    t.append(&orders_from_json(&rows, 2), None).await.expect("append");
    let table = t.delta().clone();
    for (filter, rows) in [
        ("ordered_at > TIMESTAMP '2026-03-20T10:00:00.000500Z'", 1),
        ("ordered_at < TIMESTAMP '2026-03-20T10:00:00.000300Z'", 1),
        ("ordered_at = TIMESTAMP '2026-03-20T10:00:00.000700Z'", 1),
        ("ordered_at >= TIMESTAMP '2026-03-20T10:00:00.001Z'", 0),
    ] {
        let sql = format!("SELECT count(*) AS n FROM t WHERE {filter}");
        let direct = run(&table, trib_lake::files_provider(&table).expect("direct"), &sql).await;
        assert!(direct.contains(&format!("| {rows} ")), "{filter}: {direct}");
        let delta = run(
            &table,
            trib_lake::rechecked(table.table_provider().await.expect("delta-rs")),
            &sql,
        )
        .await;
        assert_eq!(direct, delta, "{filter}");
    }
}

/// Whether the plan in `plan` (an `EXPLAIN`'s text) filters rows above its scan.
fn filters_rows(plan: &str) -> bool {
    plan.contains("FilterExec")
}

#[tokio::test]
async fn filters_the_statistics_decide_for_every_file_are_applied_by_the_files_read() {
    let (_dir, _lake, _c, t) = four_days().await;
    let table = t.delta().clone();
    let query = |sql: String| {
        let table = table.clone();
        async move { run(&table, trib_lake::files_provider(&table).expect("direct"), &sql).await }
    };
    // (filter, decided by the statistics of every file, files read, rows)
    for (filter, decided, files, rows) in [
        ("ordered_at_day = DATE '2026-03-20'", true, 1, 50),
        ("amount >= 0", true, 4, 90),
        ("amount < 40 OR ordered_at_day = DATE '2026-03-20'", true, 4, 90),
        ("NOT (ordered_at_day = DATE '2026-03-20')", true, 3, 40),
        ("ordered_at_day <> DATE '2026-03-20' AND amount > 5", false, 3, 35),
        (
            "ordered_at_day BETWEEN DATE '2026-03-10' AND DATE '2026-03-11'",
            true,
            2,
            27,
        ),
        ("ordered_at_day IN (DATE '2026-03-10', DATE '2026-03-20')", true, 2, 64),
        ("ordered_at_day IS NOT NULL", true, 4, 90),
        ("amount IS NULL", true, 0, 0),
        ("amount > 1000", true, 0, 0),
        // Day 20's amounts straddle 45; text has no ranges in the log; timestamps' are
        // cut to the millisecond; functions are not judged.
        ("amount > 45", false, 1, 45),
        ("customer_id = 'c-3'", false, 4, 6),
        ("ordered_at >= TIMESTAMP '2026-03-20T00:00:00Z'", false, 1, 50),
        ("abs(amount) >= 0", false, 4, 90),
    ] {
        let plan = query(format!("EXPLAIN SELECT order_id FROM t WHERE {filter}")).await;
        assert_eq!(filters_rows(&plan), !decided, "{filter}: {plan}");
        // An undecided filter is applied once, above the scan, not again inside it.
        assert_eq!(
            plan.matches("FilterExec").count(),
            usize::from(!decided),
            "{filter}: {plan}"
        );
        if files == 0 {
            assert!(!plan.contains("DataSourceExec"), "{filter}: {plan}");
        } else {
            assert_eq!(scanned(&plan).0, files, "{filter}: {plan}");
        }
        let answer = query(format!("SELECT count(*) AS n FROM t WHERE {filter}")).await;
        assert!(answer.contains(&format!("| {rows} ")), "{filter}: {answer}");
    }
    // Exact only as DataFusion's simplifier leaves a filter: later optimizer passes
    // simplify pushed filters again, and the scan must receive what was judged.
    {
        use deltalake::datafusion::logical_expr::TableProviderFilterPushDown as P;
        use deltalake::datafusion::prelude::{col, lit};
        use deltalake::datafusion::scalar::ScalarValue;
        let provider = trib_lake::files_provider(&table).expect("direct");
        let day = lit(ScalarValue::Date32(Some(20_532))); // 2026-03-20
        let settled = col("ordered_at_day").not_eq(day.clone());
        let unsettled = !col("ordered_at_day").eq(day);
        let answers = provider
            .supports_filters_pushdown(&[&settled, &unsettled])
            .expect("pushdown");
        assert!(matches!(answers.as_slice(), [P::Exact, P::Inexact]), "{answers:?}");
    }
    // Whatever the plan, tests that are not comparisons keep their meaning.
    for (filter, rows) in [
        ("amount IS DISTINCT FROM NULL", 90),
        ("amount IS NOT DISTINCT FROM NULL", 0),
        ("ordered_at_day IS DISTINCT FROM DATE '2026-03-20'", 40),
    ] {
        let answer = query(format!("SELECT count(*) AS n FROM t WHERE {filter}")).await;
        assert!(answer.contains(&format!("| {rows} ")), "{filter}: {answer}");
    }
    // A count under decided filters is the kept files' row count, from the log.
    let plan = query("EXPLAIN SELECT count(*) FROM t WHERE ordered_at_day = DATE '2026-03-20'".into()).await;
    assert!(
        !plan.contains("DataSourceExec") && plan.contains("50 as count(*)"),
        "{plan}"
    );
    // With every filter decided, a limit reaches the scan and still holds the filter.
    let sql = "SELECT order_id, ordered_at_day FROM t WHERE ordered_at_day = DATE '2026-03-20' LIMIT 3";
    let answer = query(sql.to_string()).await;
    assert_eq!(answer.matches("2026-03-20").count(), 3, "{answer}");
    // The same answers as delta-rs, which filters every row.
    same_answers(
        &table,
        &[
            ("SELECT order_id FROM t WHERE amount >= 0 ORDER BY 1", false),
            (
                "SELECT order_id FROM t WHERE NOT (ordered_at_day = DATE '2026-03-20') ORDER BY 1",
                false,
            ),
            (
                "SELECT order_id FROM t WHERE ordered_at_day IN (DATE '2026-03-10', DATE '2026-03-20') \
                 AND amount < 45 ORDER BY 1",
                false,
            ),
            ("SELECT order_id FROM t WHERE amount IS NULL", true),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_text_partition_with_a_null_partition_decides_comparisons_and_null_tests() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = trib_lake::Lake::new(dir.path().to_str().expect("utf8"), std::path::Path::new("/")).expect("lake");
    let mut t = orders_partitioned_by(&lake, "country").await;
    t.append(&orders_with_countries(0, 100), None).await.expect("v1");
    let table = t.delta().clone();
    // Rows with a NULL country meet none of these comparisons, and `IS NULL` only them.
    for (filter, rows) in [
        ("country = 'FR'", 20),
        ("country <> 'FR'", 60),
        ("NOT (country = 'FR')", 60),
        ("country IN ('DE', 'JP')", 40),
        ("country NOT IN ('DE', 'JP')", 40),
        ("country IS NULL", 20),
        ("country IS NULL OR country = 'US'", 40),
        ("country > 'E'", 60),
    ] {
        let plan = run(
            &table,
            trib_lake::files_provider(&table).expect("direct"),
            &format!("EXPLAIN SELECT order_id FROM t WHERE {filter}"),
        )
        .await;
        assert!(!filters_rows(&plan), "{filter}: {plan}");
        let answer = run(
            &table,
            trib_lake::files_provider(&table).expect("direct"),
            &format!("SELECT count(*) AS n FROM t WHERE {filter}"),
        )
        .await;
        assert!(answer.contains(&format!("| {rows} ")), "{filter}: {answer}");
    }
    same_answers(
        &table,
        &[
            ("SELECT order_id FROM t WHERE country <> 'FR' ORDER BY 1", false),
            (
                "SELECT order_id FROM t WHERE NOT (country IN ('DE', 'JP')) ORDER BY 1",
                false,
            ),
            ("SELECT order_id FROM t WHERE country IS NULL ORDER BY 1", false),
        ],
    )
    .await;
}

#[tokio::test]
async fn decimals_of_more_than_15_digits_have_no_ranges_to_prune_or_prove_by() {
    use deltalake::arrow::array::Decimal128Array;
    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    // delta-rs records decimal statistics through a 64-bit float: near 1.2e18 the
    // floats are 256 apart, so the log's minimum and maximum of these ids are off.
    let dir = tempfile::tempdir().expect("tmp");
    let url = url::Url::from_directory_path(dir.path()).expect("url");
    let table = deltalake::DeltaTableBuilder::from_url(url)
        .expect("builder")
        .build()
        .expect("table");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Decimal128(20, 0), false),
        Field::new("small", DataType::Decimal128(15, 2), false),
    ]));
    let ids = Decimal128Array::from(vec![1_234_567_890_123_456_800_i128, 1_234_567_890_123_456_900])
        .with_precision_and_scale(20, 0)
        .expect("decimal(20,0)");
    let small = Decimal128Array::from(vec![999_999_999_999_999_i128, 1])
        .with_precision_and_scale(15, 2)
        .expect("decimal(15,2)");
    let batch = RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(small)]).expect("batch");
    let table = table.write(vec![batch]).await.expect("write");
    let provider = trib_lake::files_provider(&table).expect("direct");
    let stats = provider.statistics().expect("statistics");
    let id = &stats.column_statistics[0];
    assert!(
        id.min_value.get_value().is_none() && id.max_value.get_value().is_none(),
        "{id:?}"
    );
    let small = &stats.column_statistics[1];
    assert_eq!(
        small.max_value.get_value().map(ToString::to_string).as_deref(),
        Some("9999999999999.99"),
        "{small:?}"
    );
    for (filter, rows) in [
        ("id = 1234567890123456768", 0),
        ("id = 1234567890123456800", 1),
        ("id <= 1234567890123456800", 1),
        ("id >= 1234567890123456800", 2),
        ("small >= 0", 2),
    ] {
        let plan = run(
            &table,
            Arc::clone(&provider),
            &format!("EXPLAIN SELECT id FROM t WHERE {filter}"),
        )
        .await;
        assert_eq!(
            filters_rows(&plan),
            filter.starts_with("id"),
            "only the exact ranges decide: {filter}: {plan}"
        );
        let answer = run(
            &table,
            Arc::clone(&provider),
            &format!("SELECT count(*) AS n FROM t WHERE {filter}"),
        )
        .await;
        assert!(answer.contains(&format!("| {rows} ")), "{filter}: {answer}");
    }
}

#[tokio::test]
async fn an_empty_text_partition_reads_as_delta_rs_reads_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let lake = trib_lake::Lake::new(dir.path().to_str().expect("utf8"), std::path::Path::new("/")).expect("lake");
    let mut t = orders_partitioned_by(&lake, "country").await;
    let mut text = String::new();
    for (i, country) in ["", "DE", "", "FR"].iter().enumerate() {
        text.push_str(&format!(
            "{{\"order_id\":\"o-{i}\",\"customer_id\":\"c\",\"country\":\"{country}\",\"status\":\"placed\",\"amount\":\"1.00\",\"ordered_at\":\"2026-03-12T10:00:00Z\",\"updated_at\":\"2026-03-12T10:00:00Z\"}}\n"
        ));
    }
    t.append(&crate::orders_from_json(&text, 4), None)
        .await
        .expect("append");
    same_answers(
        t.delta(),
        &[
            ("SELECT order_id, country FROM t ORDER BY order_id", false),
            ("SELECT count(*) AS n FROM t WHERE country IS NULL", false),
            ("SELECT count(*) AS n FROM t WHERE country = ''", false),
            ("SELECT count(*) AS n FROM t WHERE country <> 'DE'", false),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_filter_the_scan_cannot_decide_and_was_not_asked_about_is_applied_in_the_scan() {
    use deltalake::datafusion::common::DFSchema;
    use deltalake::datafusion::logical_expr::TableProviderFilterPushDown as P;
    use deltalake::datafusion::physical_plan::{collect, displayable};
    let (_dir, _lake, _c, t) = four_days().await;
    let table = t.delta().clone();
    let provider = trib_lake::files_provider(&table).expect("direct");
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state()).expect("session");
    let schema = DFSchema::try_from(provider.schema().as_ref().clone()).expect("schema");
    let order_id = provider.schema().index_of("order_id").expect("order_id");
    // Day 20's amounts straddle 45, so the files leave it open.
    let filter = ctx.parse_sql_expr("amount > 45", &schema).expect("filter");
    let rows = |plan| {
        let ctx = &ctx;
        async move {
            let batches = collect(plan, ctx.task_ctx()).await.expect("scan");
            batches.iter().map(|b| b.num_rows()).sum::<usize>()
        }
    };

    // DataFusion was told nothing about this filter (as if an exact answer had been
    // rewritten into it): the scan filters the rows itself, reading `amount` for it
    // but answering only the projected column.
    let scan = provider
        .scan(&ctx.state(), Some(&vec![order_id]), std::slice::from_ref(&filter), None)
        .await
        .expect("scan");
    let plan = displayable(scan.as_ref()).indent(true).to_string();
    assert!(filters_rows(&plan), "{plan}");
    assert_eq!(scan.schema().fields().len(), 1, "{plan}");
    assert_eq!(scan.schema().field(0).name(), "order_id");
    assert_eq!(rows(Arc::clone(&scan)).await, 45, "{plan}");
    // With a limit it still filters before it stops.
    let limited = provider
        .scan(
            &ctx.state(),
            Some(&vec![order_id]),
            std::slice::from_ref(&filter),
            Some(3),
        )
        .await
        .expect("scan");
    assert_eq!(rows(limited).await, 3);

    // Once answered inexact, DataFusion filters above the scan, and the scan does not.
    let answers = provider.supports_filters_pushdown(&[&filter]).expect("pushdown");
    assert!(matches!(answers.as_slice(), [P::Inexact]), "{answers:?}");
    let scan = provider
        .scan(&ctx.state(), Some(&vec![order_id]), std::slice::from_ref(&filter), None)
        .await
        .expect("scan");
    let plan = displayable(scan.as_ref()).indent(true).to_string();
    assert!(!filters_rows(&plan), "{plan}");
    assert_eq!(rows(scan).await, 50, "the files day 20 is in: {plan}");

    // The provider for another query over the same snapshot remembers nothing of it.
    let next = trib_lake::for_one_query(&provider);
    let scan = next
        .scan(&ctx.state(), Some(&vec![order_id]), std::slice::from_ref(&filter), None)
        .await
        .expect("scan");
    let plan = displayable(scan.as_ref()).indent(true).to_string();
    assert!(filters_rows(&plan), "{plan}");
    assert_eq!(rows(scan).await, 45, "{plan}");
}
