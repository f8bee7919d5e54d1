//! Trust as a user meets it: `trib quality`, `trib slo --evaluate`, the certification
//! in `trib show`, in query warnings and in the HTTP API of a running server.

use crate::query::orders;
use std::process::Stdio;

#[test]
fn checks_slos_and_certification_from_the_cli() {
    // Nine orders of 2026-03-15: valid, but long stale.
    let ex = orders();

    let run = ex.trib(&["quality", "orders.orders"]);
    assert_eq!(
        run.code, 1,
        "an error-severity check fails: {}\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.contains("ok   unique(order_id)"), "{}", run.stdout);
    assert!(run.stdout.contains("ok   updated_after_ordered"), "{}", run.stdout);
    assert!(
        run.stdout.contains("FAIL freshness(updated_at)") && run.stdout.contains("more than 1h"),
        "{}",
        run.stdout
    );
    let run = ex.trib(&["quality", "orders.orders", "--format", "json", "--failures"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let results = doc[0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{doc:#}");
    assert_eq!(results[0]["check"], "freshness(updated_at)");
    assert_eq!(results[0]["status"], "fail");

    // A stale product misses its freshness SLO: a candidate with an incident open, and
    // an alert that has nowhere to go yet.
    let run = ex.trib(&["slo", "orders.orders", "--evaluate"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("orders.orders v1: new → candidate: first evaluation"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("incident opened for freshness"), "{}", run.stderr);
    assert!(
        run.stderr.contains("team `orders-data-team` has no webhook"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("orders.orders v1: candidate since"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("MISS"), "{}", run.stdout);
    let run = ex.trib(&["slo", "orders.orders", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc[0]["certification"]["state"], "candidate");
    let freshness = doc[0]["slos"]
        .as_array()
        .expect("slos")
        .iter()
        .find(|s| s["slo"] == "freshness")
        .expect("freshness");
    assert_eq!(freshness["latest"]["met"], false);

    // The trust tables read like products, by admins.
    let run = ex.trib(&[
        "query",
        "SELECT \"check\", status, sample IS NOT NULL AS sampled FROM _trib.quality_results WHERE status = 'fail'",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert!(
        rows.as_array()
            .expect("rows")
            .iter()
            .any(|r| r["check"] == "freshness(updated_at)"),
        "{rows:#}"
    );
    let run = ex.trib(&[
        "query",
        "SELECT to_state, evidence FROM _trib.certifications",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("candidate") && run.stdout.contains("budget_left"),
        "{}",
        run.stdout
    );
    let run = ex.trib(&[
        "query",
        "SELECT * FROM _trib.slo_measurements",
        "--as",
        "orders-analysts",
    ]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("may not read `_trib.slo_measurements`"),
        "{}",
        run.stderr
    );

    let run = ex.trib(&["show", "orders.orders"]);
    assert!(run.stdout.contains("certification: candidate since"), "{}", run.stdout);
    let run = ex.trib(&["query", "SELECT count(*) AS n FROM orders.orders"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("warning: `orders.orders@v1` is not certified (candidate)"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_server_evaluates_and_reports_certification() {
    let ex = orders();
    ex.edit("trib.toml", "evaluate_every = \"1m\"", "evaluate_every = \"1s\"");
    let (mut server, http, _) = crate::serve_with_addresses(
        &ex.dir,
        &["--listen", "127.0.0.1:0", "--models-poll-ms", "0", "--pg-listen", "off"],
        Stdio::null(),
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (state, metrics) = rt.block_on(async {
        let client = reqwest::Client::new();
        let mut state = serde_json::Value::Null;
        for _ in 0..100 {
            let doc: serde_json::Value = client
                .get(format!("{http}/v1/products/orders.orders"))
                .send()
                .await
                .expect("describe")
                .json()
                .await
                .expect("json");
            state = doc["versions"][0]["certification"].clone();
            if !state.is_null() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let metrics = client
            .get(format!("{http}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        (state, metrics)
    });
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(state, "candidate");
    assert!(metrics.contains("trib_certification_transitions_total"), "{metrics}");
}
