//! Kafka into bronze against a real Kafka-protocol broker (see `trib_ingest::test_broker`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use trib_core::KafkaSettings;
use trib_ingest::kafka::{KafkaConsumer, app_id};
use trib_ingest::test_broker::Broker;
use trib_lake::{Lake, ProductTable, TableKind};
use trib_spec::Contract;

fn clicks() -> Contract {
    crate::contract("products/web/clicks_raw.yaml")
}

/// A click as the browser tag sends it, all within one minute (the partitions may be
/// read in any order; none is behind the watermark); every 25th lacks its `url`.
fn click(n: usize) -> String {
    let url = if n.is_multiple_of(25) {
        String::new()
    } else {
        format!(r#","url":"/p/{n}""#)
    };
    format!(
        r#"{{"event_id":"e-{n}","session_id":"s-{}","event_type":"page_view"{url},"occurred_at":"2026-03-15T14:00:{:02}Z"}}"#,
        n % 7,
        n % 60
    )
}

fn scalar(batches: &[arrow::array::RecordBatch]) -> u64 {
    use arrow::array::AsArray;
    let b = batches.first().expect("a row");
    let v = b.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0);
    u64::try_from(v).expect("non-negative")
}

fn settings(broker: &Broker) -> KafkaSettings {
    KafkaSettings {
        brokers: Some(broker.address()),
        batch_records: 150,
        batch_wait_ms: 100,
        ..KafkaSettings::default()
    }
}

async fn tables(lake: &Lake, c: &Contract) -> (ProductTable, ProductTable) {
    let bronze = ProductTable::open_or_create(lake, c, TableKind::Data)
        .await
        .expect("bronze");
    let dead = ProductTable::open_or_create(lake, c, TableKind::DeadLetters)
        .await
        .expect("dead");
    (bronze, dead)
}

/// Rows in bronze, distinct event ids in bronze, rows in dead letters.
async fn counts(lake: &Lake, c: &Contract) -> (u64, u64, u64) {
    let (bronze, dead) = tables(lake, c).await;
    let distinct = scalar(
        &bronze
            .query("SELECT COUNT(DISTINCT event_id) AS n FROM t")
            .await
            .expect("q"),
    );
    (
        bronze.count().await.expect("count"),
        distinct,
        dead.count().await.expect("count"),
    )
}

/// Waits until bronze and dead letters hold `total` records together.
async fn wait_for(lake: &Lake, c: &Contract, total: u64) -> (u64, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let n = counts(lake, c).await;
        if n.0 + n.2 >= total || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn start(lake: &Lake, c: &Contract, s: &KafkaSettings, group: &str) -> KafkaConsumer {
    KafkaConsumer::start(lake.clone(), c.clone(), s, group, tokio::runtime::Handle::current()).expect("consumer")
}

async fn stop(consumer: KafkaConsumer) {
    tokio::task::spawn_blocking(move || consumer.stop())
        .await
        .expect("joined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_lands_in_bronze_exactly_once_with_offsets_in_the_table() {
    let Some(broker) = Broker::start() else { return };
    let topic = "web.clicks";
    broker.create_topic(topic, 3);
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new(dir.path().to_str().expect("utf-8"), dir.path()).expect("lake");
    let c = clicks();

    // 600 clicks over three partitions, a malformed message and one without a value.
    let mut messages: Vec<(i32, Option<String>)> = (1..=600).map(|n| ((n % 3) as i32, Some(click(n)))).collect();
    messages.push((0, Some("{not json".into())));
    messages.push((1, None));
    broker.produce(topic, &messages);
    let invalid = 600 / 25 + 2;

    let s = settings(&broker);
    let consumer = start(&lake, &c, &s, "trib-test");
    let (rows, distinct, dead) = wait_for(&lake, &c, 602).await;
    stop(consumer).await;
    assert_eq!(
        (rows, distinct, dead),
        (602 - invalid, 602 - invalid, invalid),
        "received = bronze + dead letters"
    );

    // The offsets are in the table: per partition, the last one read.
    let (bronze, dead_table) = tables(&lake, &c).await;
    let per_partition: BTreeMap<i32, usize> = messages.iter().fold(BTreeMap::new(), |mut m, (p, _)| {
        *m.entry(*p).or_default() += 1;
        m
    });
    for (p, n) in &per_partition {
        let last = i64::try_from(*n).expect("small") - 1;
        assert_eq!(
            bronze.txn_version(&app_id(topic, *p)).await.expect("txn"),
            Some(last),
            "partition {p}"
        );
        // The dead-letter table records a batch only when it has dead letters.
        let dead_has = dead_table.txn_version(&app_id(topic, *p)).await.expect("txn");
        assert!(dead_has <= Some(last), "partition {p}: {dead_has:?}");
    }
    let reasons = dead_table
        .query("SELECT reason, source, COUNT(*) AS n FROM t GROUP BY reason, source ORDER BY reason, source")
        .await
        .expect("reasons");
    let text = arrow::util::pretty::pretty_format_batches(&reasons)
        .expect("fmt")
        .to_string();
    assert!(text.contains("missing_required"), "{text}");
    assert!(text.contains("malformed"), "{text}");
    assert!(text.contains("kafka:web.clicks/0"), "{text}");

    // More messages, a restart in the same group: only the new ones land.
    let more: Vec<(i32, Option<String>)> = (601..=900).map(|n| ((n % 3) as i32, Some(click(n)))).collect();
    broker.produce(topic, &more);
    let consumer = start(&lake, &c, &s, "trib-test");
    let (rows, distinct, dead) = wait_for(&lake, &c, 902).await;
    stop(consumer).await;
    let invalid = 900 / 25 + 2;
    assert_eq!((rows, distinct, dead), (902 - invalid, 902 - invalid, invalid));

    // A new group has no offsets in Kafka and would start from the beginning: the
    // offsets stored in the table make it skip everything already there.
    let consumer = start(&lake, &c, &s, "trib-other");
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.assignment().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(consumer.assignment().len(), 3, "the new group got every partition");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop(consumer).await;
    assert_eq!(
        counts(&lake, &c).await,
        (902 - invalid, 902 - invalid, invalid),
        "nothing landed twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_in_one_group_share_the_partitions() {
    let Some(broker) = Broker::start() else { return };
    let topic = "web.clicks";
    broker.create_topic(topic, 4);
    let dir = tempfile::tempdir().expect("tmp");
    let lake = Lake::new(dir.path().to_str().expect("utf-8"), dir.path()).expect("lake");
    let c = clicks();
    let s = settings(&broker);
    let a = start(&lake, &c, &s, "shared");
    let b = start(&lake, &c, &s, "shared");
    let deadline = Instant::now() + Duration::from_secs(60);
    while (a.assignment().is_empty() || b.assignment().is_empty() || a.assignment().len() + b.assignment().len() < 4)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (pa, pb) = (a.assignment(), b.assignment());
    assert!(
        !pa.is_empty() && !pb.is_empty(),
        "both consumers hold partitions: {pa:?} {pb:?}"
    );
    assert!(pa.is_disjoint(&pb), "no partition is held twice: {pa:?} {pb:?}");
    assert_eq!(pa.len() + pb.len(), 4);

    let messages: Vec<(i32, Option<String>)> = (1..=1000).map(|n| ((n % 4) as i32, Some(click(n)))).collect();
    broker.produce(topic, &messages);
    let invalid = 1000 / 25;
    let got = wait_for(&lake, &c, 1000).await;
    stop(a).await;
    stop(b).await;
    assert_eq!(got, (1000 - invalid, 1000 - invalid, invalid));
}
