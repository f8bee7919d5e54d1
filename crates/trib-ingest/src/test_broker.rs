//! A real Kafka-protocol broker for tests: Tansu (`tansu broker`, an Apache-licensed
//! Kafka-compatible broker), one per test on a free port, keeping messages in memory.
//!
//! `scripts/test.sh` installs `tansu` (`cargo install tansu`, cached outside the clone).
//! Without it, [`Broker::start`] fails under `CI=true` and returns `None` otherwise.
//! Built only with the `test-broker` feature, which only tests enable.

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running broker, killed on drop.
pub struct Broker {
    child: Child,
    pub port: u16,
    tansu: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn find_tansu() -> Option<PathBuf> {
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
    pub fn start() -> Option<Self> {
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

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
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
    pub fn produce(&self, topic: &str, messages: &[(i32, Option<String>)]) {
        produce(&self.address(), topic, messages);
    }
}

/// Sends `(partition, value)` messages and waits until the broker has them all.
pub fn produce(address: &str, topic: &str, messages: &[(i32, Option<String>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", address)
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

/// librdkafka's own mock cluster: a Kafka-protocol broker on a loopback port, living in
/// the test process, with classic consumer groups and session timeouts. Tests whose
/// consumers are killed and restarted use it: Tansu 0.6 stops serving a partition to a
/// restarted member (fetches from the stored offset return nothing).
pub struct MockBroker {
    cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
}

impl MockBroker {
    pub fn start() -> Self {
        Self {
            cluster: rdkafka::mocking::MockCluster::new(1).expect("librdkafka mock cluster"),
        }
    }

    pub fn address(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.cluster.create_topic(name, partitions, 1).expect("mock topic");
    }

    pub fn produce(&self, topic: &str, messages: &[(i32, Option<String>)]) {
        produce(&self.address(), topic, messages);
    }
}
