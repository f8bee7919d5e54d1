//! `trib run` killed with SIGKILL at random moments while new events keep arriving: in
//! the end silver and gold equal those of a project where every run finished, because a
//! run's output and the input versions it read land in one commit or not at all.

use crate::Example;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Order events for orders `from..to`: placed, then paid, some cancelled, some shipped;
/// the later events first, so arrival order is not event order.
fn orders(from: usize, to: usize) -> String {
    let countries = ["DE", "FR", "NL", "US"];
    let mut out = String::new();
    for o in from..to {
        let day = 15 + o % 3;
        let minute = o % 60;
        let status: &[&str] = match o % 5 {
            0 => &["cancelled", "placed"],
            1 | 2 => &["paid", "placed"],
            _ => &["shipped", "paid", "placed"],
        };
        let n = status.len();
        for (k, s) in status.iter().enumerate() {
            out.push_str(&format!(
                r#"{{"order_id":"o-{o}","customer_id":"c-{}","country":"{}","status":"{s}","amount":"{}.{:02}","currency":"EUR","ordered_at":"2026-03-{day}T10:{minute:02}:00Z","updated_at":"2026-03-{day}T1{}:{minute:02}:00Z"}}"#,
                o % 11,
                countries[o % 4],
                10 + o % 90,
                o % 100,
                n - 1 - k
            ));
            out.push('\n');
        }
    }
    out
}

fn table_text(ex: &Example, rt: &tokio::runtime::Runtime, rel: &str, order_by: &str) -> String {
    let lake = trib_lake::Lake::new(".trib/lake", &ex.dir).expect("lake");
    rt.block_on(async {
        let url = lake.root().join(rel).expect("url");
        let t = trib_lake::ProductTable::open_url(&lake, url, "t").await.expect("table");
        let b = trib_lake::query_table(&t, "t", &format!("SELECT * FROM t ORDER BY {order_by}"))
            .await
            .expect("query");
        deltalake::arrow::util::pretty::pretty_format_batches(&b)
            .expect("fmt")
            .to_string()
    })
}

#[test]
fn runs_killed_midway_leave_the_tables_of_runs_that_finished() {
    let killed = Example::init();
    let finished = Example::init();
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut kills = 0;
    for chunk in 0..4 {
        let file = killed.dir.join(format!("orders-{chunk}.ndjson"));
        std::fs::write(&file, orders(chunk * 60, (chunk + 1) * 60)).expect("write");
        let file = file.to_str().expect("utf-8");
        for ex in [&killed, &finished] {
            let r = ex.trib(&["ingest", "orders.orders_raw", file]);
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
        for _ in 0..2 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_trib"))
                .args(["run"])
                .current_dir(&killed.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run starts");
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(Duration::from_millis(100 + seed % 1200));
            if child.try_wait().expect("status").is_none() {
                kills += 1;
            }
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
        let r = finished.trib(&["run"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert!(kills >= 2, "only {kills} runs were killed before they finished");
    let r = killed.trib(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = finished.trib(&["run", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let runs: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert!(
        runs.as_array()
            .expect("runs")
            .iter()
            .filter(|r| r["product"]
                .as_str()
                .is_some_and(|p| p.starts_with("orders.") || p.starts_with("finance.")))
            .all(|r| r["outcome"]["status"] == "up_to_date"),
        "{runs}"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (rel, order_by) in [
        ("orders/orders/v1/", "order_id"),
        ("orders/daily_revenue/v1/", "day, country"),
        ("finance/monthly_revenue/v1/", "month, country"),
    ] {
        let a = table_text(&killed, &rt, rel, order_by);
        let b = table_text(&finished, &rt, rel, order_by);
        assert_eq!(a, b, "{rel} after {kills} kills");
    }
    // 240 orders, one row each in silver.
    assert_eq!(
        table_text(&finished, &rt, "orders/orders/v1/", "order_id")
            .matches("| o-")
            .count(),
        240
    );
}
