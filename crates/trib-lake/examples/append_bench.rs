//! Many small appends to one table, as a server's group commits make them: prints how
//! long writing the files, the durable commit and loading the new state take as the
//! table's file count grows.
//!
//! `[SETTLE=0] cargo run --release -p trib-lake --example append_bench -- [COMMITS] [ROWS]`

use deltalake::arrow::array::RecordBatch;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use trib_lake::{Lake, ProductTable, TableKind};

fn contract() -> trib_spec::Contract {
    let rel = "products/orders/orders_raw.yaml";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../trib/template").join(rel);
    let text = std::fs::read_to_string(&path).expect("template contract");
    trib_spec::parse_contract(trib_spec::yaml::Source::new(rel, text))
        .contract
        .expect("valid")
}

fn batch(c: &trib_spec::Contract, from: usize, rows: usize) -> RecordBatch {
    let schema = Arc::new(c.arrow_schema());
    let mut text = String::new();
    for i in from..from + rows {
        text.push_str(&format!(
            "{{\"order_id\":\"o-{i}\",\"customer_id\":\"c-{}\",\"status\":\"placed\",\"amount\":\"{}.50\",\"ordered_at\":\"2026-03-10T10:00:00Z\",\"updated_at\":\"2026-03-10T10:00:00Z\"}}\n",
            i % 97,
            i % 1000
        ));
    }
    let mut decoder = deltalake::arrow::json::ReaderBuilder::new(schema)
        .with_batch_size(rows + 1)
        .build_decoder()
        .expect("decoder");
    decoder.decode(text.as_bytes()).expect("decode");
    decoder.flush().expect("flush").expect("rows")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let commits: usize = args.next().map_or(200, |a| a.parse().expect("COMMITS"));
    let rows: usize = args.next().map_or(10_000, |a| a.parse().expect("ROWS"));
    // SETTLE=0: leave the state behind the log, as `trib serve`'s writer does.
    let settle_each = std::env::var("SETTLE").map_or(true, |v| v != "0");
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::new("lake", dir.path()).expect("lake");
    let c = contract();
    let mut table = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("open");
    if let Ok(columns) = std::env::var("STATS_COLUMNS") {
        table
            .delta()
            .clone()
            .set_tbl_properties()
            .with_properties(std::collections::HashMap::from([(
                "delta.dataSkippingStatsColumns".to_string(),
                columns,
            )]))
            .await
            .expect("properties");
        table.refresh().await.expect("refresh");
    }
    println!("{:>7}  {:>10}  {:>10}", "commit", "durable ms", "settle ms");
    let (mut durable_sum, mut settle_sum) = (0.0, 0.0);
    for i in 0..commits {
        let b = batch(&c, i * rows, rows);
        let txns = vec![(format!("producer-{}", i % 8), i as i64)];
        let started = Instant::now();
        table.append_txns_unsettled(&b, &txns).await.expect("append");
        let durable = started.elapsed().as_secs_f64() * 1e3;
        let started = Instant::now();
        if settle_each {
            table.settle().await.expect("settle");
        }
        let settle = started.elapsed().as_secs_f64() * 1e3;
        durable_sum += durable;
        settle_sum += settle;
        if (i + 1) % 25 == 0 {
            println!(
                "{:>7}  {:>10.1}  {:>10.1}",
                i + 1,
                durable_sum / 25.0,
                settle_sum / 25.0
            );
            (durable_sum, settle_sum) = (0.0, 0.0);
        }
    }
}
