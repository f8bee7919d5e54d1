//! Kafka into bronze against a real Kafka-protocol broker: Tansu (`tansu broker`, an
//! Apache-licensed Kafka-compatible broker), one per test on a free port, in memory.
//!
//! `scripts/test.sh` installs `tansu` (`cargo install tansu`, cached outside the clone).
//! Without it the tests fail under `CI=true` and are skipped otherwise.

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trib_core::KafkaSettings;
use trib_ingest::kafka::{KafkaConsumer, app_id};
use trib_lake::{Lake, ProductTable, TableKind};
use trib_spec::Contract;

/// A running broker, killed on drop.
pub(crate) struct Broker {
    child: Child,
    pub(crate) port: u16,
    tansu: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn find_tansu() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("tansu");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let cached = PathBuf::from(std::env::var_os("HOME")?).join(".cache/tributary/tansu/bin/tansu");
    cached.is_file().then_some(cached)
}

impl Broker {
    /// Starts a broker, or returns `None` (after a notice) when `tansu` is missing and
    /// this is not CI. Under `CI=true` a missing broker fails the test.
    pub(crate) fn start() -> Option<Self> {
        let Some(tansu) = find_tansu() else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "`tansu` (a Kafka-protocol broker) is not installed and CI=true\nhint: run ./scripts/test.sh"
            );
            eprintln!("notice: skipping a Kafka test: `tansu` is not installed\nhint: run ./scripts/test.sh");
            return None;
        };
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&tansu) {
                Ok(b) => return Some(b),
                Err(e) => last = e,
            }
        }
        panic!("the Kafka broker did not start: {last}");
    }

    fn try_start(tansu: &std::path::Path) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/", "--silent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", tansu.display()))?;
        let mut broker = Broker {
            child,
            port,
            tansu: tansu.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                return Err(format!("tansu exited with {status}"));
            }
            if Instant::now() > deadline {
                return Err("tansu did not listen within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(broker)
    }

    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(&self.tansu)
            .args(["topic", "create", name, "--partitions", &partitions.to_string()])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .output()
            .expect("tansu topic create");
        assert!(
            out.status.success(),
            "cannot create topic `{name}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Sends `(partition, value)` messages and waits until the broker has them all.
    pub(crate) fn produce(&self, topic: &str, messages: &[(i32, Option<String>)]) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", self.address())
            .set("acks", "all")
            .create()
            .expect("producer");
        for (partition, value) in messages {
            let mut record: BaseRecord<'_, (), str> = BaseRecord::to(topic).partition(*partition);
            if let Some(v) = value {
                record = record.payload(v.as_str());
            }
            let mut record = Some(record);
            while let Some(r) = record.take() {
                if let Err((e, r)) = producer.send(r) {
                    assert!(
                        matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "cannot produce: {e}"
                    );
                    producer.poll(Duration::from_millis(50));
                    record = Some(r);
                }
            }
        }
        producer.flush(Duration::from_secs(30)).expect("messages delivered");
    }
}

fn clicks() -> Contract {
    crate::contract("products/web/clicks_raw.yaml")
}

/// A click as the browser tag sends it; every 25th lacks its required `url`.
fn click(n: usize) -> String {
    let url = if n % 25 == 0 {
        String::new()
    } else {
        format!(r#","url":"/p/{n}""#)
    };
    format!(
        r#"{{"event_id":"e-{n}","session_id":"s-{}","event_type":"page_view"{url},"occurred_at":"2026-03-15T14:{:02}:00Z"}}"#,
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

fn stop(consumer: KafkaConsumer) -> impl Future<Output = ()> {
    async move {
        tokio::task::spawn_blocking(move || consumer.stop())
            .await
            .expect("joined")
    }
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
    let consumer = KafkaConsumer::start(
        lake.clone(),
        c.clone(),
        &s,
        "trib-test",
        tokio::runtime::Handle::current(),
    )
    .expect("consumer");
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
        assert_eq!(
            dead_table.txn_version(&app_id(topic, *p)).await.expect("txn"),
            Some(last),
            "partition {p}"
        );
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
    let consumer = KafkaConsumer::start(
        lake.clone(),
        c.clone(),
        &s,
        "trib-test",
        tokio::runtime::Handle::current(),
    )
    .expect("consumer");
    let (rows, distinct, dead) = wait_for(&lake, &c, 902).await;
    stop(consumer).await;
    let invalid = 900 / 25 + 2;
    assert_eq!((rows, distinct, dead), (902 - invalid, 902 - invalid, invalid));

    // A new group has no offsets in Kafka and would start from the beginning: the
    // offsets stored in the table make it skip everything already there.
    let consumer = KafkaConsumer::start(
        lake.clone(),
        c.clone(),
        &s,
        "trib-other",
        tokio::runtime::Handle::current(),
    )
    .expect("consumer");
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
    let handle = tokio::runtime::Handle::current();
    let a = KafkaConsumer::start(lake.clone(), c.clone(), &s, "shared", handle.clone()).expect("a");
    let b = KafkaConsumer::start(lake.clone(), c.clone(), &s, "shared", handle).expect("b");
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
