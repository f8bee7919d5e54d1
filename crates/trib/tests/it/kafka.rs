//! `trib serve` consuming a Kafka topic, killed with SIGKILL at random moments while
//! producers keep writing: in the end bronze and the dead letters hold every message
//! of the topic exactly once. The broker is librdkafka's mock cluster (see
//! `trib_ingest::test_broker::MockBroker` for why not Tansu here).

use crate::Example;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use trib_ingest::test_broker::MockBroker;

fn serve(ex: &Example) -> Child {
    // Every run's log in one file, shown if the test fails.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ex.dir.join("serve.log"))
        .expect("log");
    crate::serve(&ex.dir, &["-v", "--listen", "127.0.0.1:0"], Stdio::from(log))
}

/// A click; every 20th lacks its required `url` and goes to the dead letters.
fn click(n: usize) -> String {
    let url = if n.is_multiple_of(20) {
        String::new()
    } else {
        format!(r#","url":"/p/{n}""#)
    };
    format!(
        r#"{{"event_id":"k-{n}","session_id":"s","event_type":"page_view"{url},"occurred_at":"2026-03-15T14:00:00Z"}}"#
    )
}

/// (rows in bronze, distinct event ids in bronze, dead letters).
fn counts(ex: &Example, rt: &tokio::runtime::Runtime) -> (u64, u64, u64) {
    let lake = trib_lake::Lake::new(".trib/lake", &ex.dir).expect("lake");
    rt.block_on(async {
        let scalar = |url: &str, sql: &'static str| {
            let lake = lake.clone();
            let url = lake.root().join(url).expect("url");
            async move {
                let Ok(t) = trib_lake::ProductTable::open_url(&lake, url, "t").await else {
                    return (0, 0);
                };
                let b = trib_lake::query_table(&t, "t", sql).await.expect("query");
                let get = |i: usize| {
                    deltalake::arrow::util::display::array_value_to_string(b[0].column(i), 0)
                        .expect("value")
                        .parse::<u64>()
                        .expect("count")
                };
                (get(0), get(1))
            }
        };
        let (rows, distinct) = scalar("web/clicks_raw/v1/", "SELECT count(*), count(DISTINCT event_id) FROM t").await;
        let (dead, _) = scalar(
            "_dead_letters/web/clicks_raw/v1/",
            "SELECT count(*) AS a, count(*) AS b FROM t",
        )
        .await;
        (rows, distinct, dead)
    })
}

#[test]
fn consumed_messages_survive_sigkill_exactly_once() {
    let broker = MockBroker::start();
    broker.create_topic("web.clicks", 3);
    let ex = Example::init();
    // Small batches so that kills land between, during and after commits; a short
    // session so that the group hands a killed member's partitions over quickly.
    let settings = std::fs::read_to_string(ex.dir.join("trib.toml")).expect("settings");
    std::fs::write(
        ex.dir.join("trib.toml"),
        format!(
            "{settings}\n[kafka]\nbrokers = \"{}\"\nbatch_records = 50\nbatch_wait_ms = 20\n\n[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n\"fetch.wait.max.ms\" = \"50\"\n",
            broker.address()
        ),
    )
    .expect("settings");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let per_round = 400;
    let rounds = 5;
    let mut server = serve(&ex);
    let mut seed = 0x2545f4914f6cdd1du64;
    for round in 0..rounds {
        let messages: Vec<(i32, Option<String>)> = (0..per_round)
            .map(|i| {
                let n = round * per_round + i + 1;
                ((n % 3) as i32, Some(click(n)))
            })
            .collect();
        broker.produce("web.clicks", &messages);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(200 + seed % 800));
        let _ = server.kill(); // SIGKILL: no flush, no leaving the group
        let _ = server.wait();
        server = serve(&ex);
    }
    let total = (rounds * per_round) as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut got = counts(&ex, &rt);
    while got.0 + got.2 < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        got = counts(&ex, &rt);
    }
    // A moment more: anything beyond the total would be a duplicate.
    std::thread::sleep(Duration::from_secs(1));
    got = counts(&ex, &rt);
    let _ = server.kill();
    let _ = server.wait();
    let dead = total / 20;
    if got != (total - dead, total - dead, dead) {
        let log = std::fs::read_to_string(ex.dir.join("serve.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(120).collect();
        eprintln!(
            "serve.log (last lines):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    assert_eq!(got, (total - dead, total - dead, dead), "after {rounds} kills");
}
