//! Kafka source: a product whose contract names a topic is consumed into its bronze
//! table exactly once.
//!
//! ```text
//!   topic ─► consumer (group shared by every `trib serve`) ─► batch per partition
//!              ▲                                                  │ group commit: rows, dead
//!              │ seek to the offset after the last one            │ letters and one txn per
//!              └──── stored in the table, on every assignment ◄───┘ partition, in one commit
//! ```
//!
//! Offsets live in the Delta log, not in Kafka: each commit carries a `txn` action per
//! topic-partition (`kafka:<topic>/<partition>`, version = last offset in the table), as
//! kafka-delta-ingest does. When the group assigns a partition, the consumer starts right
//! after the stored offset; a batch that overlaps what a table already holds (a crash
//! between commits, a late rebalance) lands only its newer records. Offsets are also
//! committed to Kafka after each Delta commit, only so that lag tools see progress.
//!
//! The consumer runs on a thread of its own (librdkafka's poll loop is blocking) and
//! commits through the caller's Tokio runtime. Rebalance callbacks run inside `poll`, on
//! that thread, between commits: a partition is never revoked halfway through a commit.

use crate::dead_letter::Provenance;
use crate::format::Format;
use crate::metrics as m;
use crate::pipeline::{BatchId, BatchReport, Body, Ingestor, Pending};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trib_core::KafkaSettings;
use trib_lake::{Lake, ProductTable, TableKind};
use trib_spec::{Contract, Source, StreamFormat, StreamKind};

/// Errors starting a consumer.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("`{product}` is not read from a Kafka topic\nhint: give it `source: {{ kind: kafka, topic: <name> }}`")]
    NotKafka { product: String },
    #[error(
        "`{product}` reads Kafka topic `{topic}` but no brokers are set\nhint: set `[kafka] brokers = \"host:9092\"` in trib.toml or `TRIB_KAFKA_BROKERS`"
    )]
    NoBrokers { product: String, topic: String },
    #[error("cannot create the Kafka consumer of `{product}`: {source}")]
    Client {
        product: String,
        #[source]
        source: KafkaError,
    },
}

/// The Delta transaction id that holds a partition's offset.
pub fn app_id(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}/{partition}")
}

/// The topic a product is consumed from, if it is.
pub fn topic_of(contract: &Contract) -> Option<&str> {
    match &contract.source {
        Source::Stream(s) if matches!(s.kind, StreamKind::Kafka | StreamKind::Cdc) => s.topic.as_deref(),
        _ => None,
    }
}

/// A running consumer; [`KafkaConsumer::stop`] commits what it holds and leaves the group.
pub struct KafkaConsumer {
    product: String,
    topic: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    assigned: Arc<Mutex<BTreeSet<i32>>>,
}

impl KafkaConsumer {
    /// Subscribes to the product's topic and starts consuming on a new thread.
    pub fn start(
        lake: Lake,
        contract: Contract,
        settings: &KafkaSettings,
        group: &str,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, KafkaSourceError> {
        let product = contract.product.value.to_string();
        let topic = topic_of(&contract)
            .ok_or_else(|| KafkaSourceError::NotKafka {
                product: product.clone(),
            })?
            .to_string();
        let Some(brokers) = settings.brokers.as_deref() else {
            return Err(KafkaSourceError::NoBrokers { product, topic });
        };
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("client.id", format!("trib-{product}"))
            // Offsets are the table's: nothing is committed or stored behind our back.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "false");
        for (k, v) in &settings.properties {
            config.set(k, v);
        }
        let assigned = Arc::new(Mutex::new(BTreeSet::new()));
        let context = Rebalancer {
            lake: lake.clone(),
            contract: contract.clone(),
            runtime: runtime.clone(),
            events: Mutex::new(Vec::new()),
            assigned: assigned.clone(),
        };
        let client_err = |source| KafkaSourceError::Client {
            product: product.clone(),
            source,
        };
        let consumer: BaseConsumer<Rebalancer> = config.create_with_context(context).map_err(client_err)?;
        consumer.subscribe(&[&topic]).map_err(client_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let format = match &contract.source {
            Source::Stream(s) if s.format == StreamFormat::Debezium || s.kind == StreamKind::Cdc => Format::Debezium,
            _ => Format::Ndjson,
        };
        let worker = Worker {
            consumer,
            lake,
            contract,
            runtime,
            product: product.clone(),
            topic: topic.clone(),
            format,
            batch_records: settings.batch_records.max(1),
            batch_wait: Duration::from_millis(settings.batch_wait_ms),
            stop: stop.clone(),
            ingestor: None,
            buffer: BTreeMap::new(),
            buffered: 0,
            first_at: None,
            paused: BTreeSet::new(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("kafka-{product}"))
            .spawn(move || worker.run())
            .map_err(|e| KafkaSourceError::Client {
                product: product.clone(),
                source: KafkaError::ClientCreation(e.to_string()),
            })?;
        tracing::info!(product = %product, topic = %topic, group, "consuming Kafka topic");
        Ok(Self {
            product,
            topic,
            stop,
            thread: Some(thread),
            assigned,
        })
    }

    /// The partitions the group gives this consumer now.
    pub fn assignment(&self) -> BTreeSet<i32> {
        self.assigned.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn product(&self) -> &str {
        &self.product
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Commits the records read so far, leaves the group and waits for the thread. Call
    /// it from a blocking context (`spawn_blocking`): it joins a thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// What a rebalance did, for the poll loop to act on after `poll` returns.
#[derive(Debug)]
enum Event {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// Sets the start offset of every assigned partition from the product's table.
struct Rebalancer {
    lake: Lake,
    contract: Contract,
    runtime: tokio::runtime::Handle,
    events: Mutex<Vec<Event>>,
    assigned: Arc<Mutex<BTreeSet<i32>>>,
}

impl Rebalancer {
    fn take_events(&self) -> Vec<Event> {
        self.events
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    fn push(&self, event: Event) {
        if let Ok(mut a) = self.assigned.lock() {
            match &event {
                Event::Assigned(ps) => a.extend(ps),
                Event::Revoked(ps) => ps.iter().for_each(|p| {
                    a.remove(p);
                }),
            }
        }
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }

    /// The last offset the bronze table holds for each partition.
    fn stored_offsets(&self, tpl: &TopicPartitionList) -> Result<Vec<(String, i32, Option<i64>)>, trib_lake::Error> {
        self.runtime.block_on(async {
            let table = ProductTable::open_or_create(&self.lake, &self.contract, TableKind::Data).await?;
            let mut out = Vec::new();
            for e in tpl.elements() {
                let stored = table.txn_version(&app_id(e.topic(), e.partition())).await?;
                out.push((e.topic().to_string(), e.partition(), stored));
            }
            Ok(out)
        })
    }
}

impl ClientContext for Rebalancer {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => tracing::error!(facility = fac, "librdkafka: {message}"),
            L::Warning => tracing::warn!(facility = fac, "librdkafka: {message}"),
            L::Notice | L::Info => tracing::info!(facility = fac, "librdkafka: {message}"),
            L::Debug => tracing::debug!(facility = fac, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(product = %self.contract.product.value, error = %error, "kafka: {reason}");
    }
}

impl ConsumerContext for Rebalancer {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let product = self.contract.product.value.to_string();
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        metrics::counter!(m::KAFKA_REBALANCES, "product" => product.clone()).increment(1);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                match self.stored_offsets(tpl) {
                    Ok(stored) => {
                        for (topic, partition, offset) in stored {
                            if let Some(last) = offset {
                                let _ = tpl.set_partition_offset(&topic, partition, Offset::Offset(last + 1));
                            }
                            tracing::info!(product = %product, topic = %topic, partition, resume_after = ?offset, "partition assigned");
                        }
                    }
                    // Kafka's committed offsets never run ahead of the table's (they are
                    // committed after it), and overlapping records are skipped at commit:
                    // starting from them is safe, only slower.
                    Err(e) => {
                        tracing::warn!(product = %product, error = %e, "cannot read stored offsets; starting from the group's committed offsets")
                    }
                }
                self.push(Event::Assigned(partitions));
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(product = %product, ?partitions, "partitions revoked");
                self.push(Event::Revoked(partitions));
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(product = %product, error = ?other, "rebalance failed; dropping the assignment");
                self.push(Event::Revoked(partitions));
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::error!(product = %product, error = %e, "cannot apply the rebalance");
        }
    }
}

/// A message read: its offset and value.
type Consumed = (i64, Option<Vec<u8>>);

/// The poll loop of one product.
struct Worker {
    consumer: BaseConsumer<Rebalancer>,
    lake: Lake,
    contract: Contract,
    runtime: tokio::runtime::Handle,
    product: String,
    topic: String,
    format: Format,
    batch_records: usize,
    batch_wait: Duration,
    stop: Arc<AtomicBool>,
    ingestor: Option<Ingestor>,
    /// Messages read and not yet committed, by partition.
    buffer: BTreeMap<i32, Vec<Consumed>>,
    buffered: usize,
    first_at: Option<Instant>,
    /// Partitions stopped by a `fail` expectation until the process restarts.
    paused: BTreeSet<i32>,
}

impl Worker {
    fn run(mut self) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let stopping = self.stop.load(Ordering::SeqCst);
            if !stopping {
                match self.consumer.poll(Duration::from_millis(100)) {
                    None => {}
                    Some(Err(e)) => tracing::warn!(product = %self.product, error = %e, "kafka poll failed"),
                    Some(Ok(msg)) => {
                        let partition = msg.partition();
                        if self.paused.contains(&partition) {
                            continue;
                        }
                        let entry = self.buffer.entry(partition).or_default();
                        entry.push((msg.offset(), msg.payload().map(<[u8]>::to_vec)));
                        self.buffered += 1;
                        self.first_at.get_or_insert_with(Instant::now);
                    }
                }
            }
            for event in self.consumer.context().take_events() {
                match event {
                    // Another consumer now owns these: what we read of them is theirs to commit.
                    Event::Revoked(ps) | Event::Assigned(ps) => {
                        for p in ps {
                            if let Some(dropped) = self.buffer.remove(&p) {
                                self.buffered -= dropped.len();
                            }
                            self.paused.remove(&p);
                        }
                    }
                }
            }
            let due = self.buffered >= self.batch_records
                || self.first_at.is_some_and(|t| t.elapsed() >= self.batch_wait)
                || (stopping && self.buffered > 0);
            if due {
                match self.flush() {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(e) => {
                        tracing::error!(product = %self.product, error = %e, retry_in = ?backoff, "kafka batch not committed; reading it again");
                        self.rewind();
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        if stopping {
                            break;
                        }
                    }
                }
            }
            if stopping && self.buffered == 0 {
                break;
            }
        }
        self.consumer.unsubscribe();
        tracing::info!(product = %self.product, "kafka consumer stopped");
    }

    /// Commits the buffered messages: one pending batch per partition, all in one group.
    fn flush(&mut self) -> crate::Result<()> {
        let now = chrono::Utc::now().timestamp_micros();
        let mut pendings = Vec::new();
        let mut spans = Vec::new();
        for (partition, msgs) in &self.buffer {
            let (Some(first), Some(last)) = (msgs.first(), msgs.last()) else {
                continue;
            };
            let records = crate::decode::decode_messages(
                self.format,
                msgs.iter()
                    .map(|(offset, value)| (u64::try_from(*offset).unwrap_or(0), value.as_deref())),
            )?;
            pendings.push(Pending {
                body: Body::Records(records),
                provenance: Provenance {
                    received_at_micros: now,
                    source: format!("kafka:{}/{partition}", self.topic),
                    batch_id: format!("kafka:{}/{partition}@{}-{}", self.topic, first.0, last.0),
                },
                id: Some(BatchId {
                    app_id: app_id(&self.topic, *partition),
                    version: last.0,
                    offsets: true,
                }),
            });
            spans.push((*partition, first.0, last.0));
        }
        if pendings.is_empty() {
            self.clear();
            return Ok(());
        }
        let started = Instant::now();
        let (lake, contract) = (self.lake.clone(), self.contract.clone());
        let mut ingestor = self.ingestor.take();
        let result = self.runtime.block_on(async {
            let ing = match ingestor.as_mut() {
                Some(i) => i,
                None => ingestor.insert(Ingestor::open(&lake, &contract).await?),
            };
            ing.ingest_group(pendings).await
        });
        let outcomes = result?;
        // A failed commit may leave the tables' state stale: reopened on the next batch.
        self.ingestor = ingestor;
        metrics::histogram!(m::KAFKA_COMMIT_SECONDS, "product" => self.product.clone())
            .record(started.elapsed().as_secs_f64());
        let mut committed = TopicPartitionList::new();
        let mut total = BatchReport::default();
        for ((partition, first, last), outcome) in spans.into_iter().zip(outcomes) {
            match outcome {
                Ok(report) => {
                    total.add(&report);
                    let _ = committed.add_partition_offset(&self.topic, partition, Offset::Offset(last + 1));
                }
                // A `fail` expectation refused the records: the partition cannot move past
                // them without losing them, so it stops here, visibly, until fixed.
                Err(e) => {
                    tracing::error!(product = %self.product, topic = %self.topic, partition, first_offset = first, last_offset = last, error = %e, "records refused; the partition is paused until restart");
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&self.topic, partition);
                    if let Err(e) = self.consumer.pause(&tpl) {
                        tracing::error!(product = %self.product, partition, error = %e, "cannot pause the partition");
                    }
                    self.paused.insert(partition);
                    metrics::counter!(m::KAFKA_PAUSED, "product" => self.product.clone()).increment(1);
                }
            }
        }
        metrics::counter!(m::KAFKA_RECORDS, "product" => self.product.clone(), "outcome" => "accepted")
            .increment(total.accepted);
        metrics::counter!(m::KAFKA_RECORDS, "product" => self.product.clone(), "outcome" => "dead_lettered")
            .increment(total.dead_lettered);
        tracing::debug!(product = %self.product, accepted = total.accepted, dead = total.dead_lettered, "kafka batch committed");
        if committed.count() > 0 {
            // Only for monitoring: the table is the source of truth for offsets.
            if let Err(e) = self.consumer.commit(&committed, rdkafka::consumer::CommitMode::Async) {
                tracing::debug!(product = %self.product, error = %e, "cannot commit offsets to Kafka");
            }
            self.record_lag(&committed);
        }
        self.clear();
        Ok(())
    }

    fn record_lag(&self, committed: &TopicPartitionList) {
        for e in committed.elements() {
            let Offset::Offset(next) = e.offset() else { continue };
            if let Ok((_, high)) = self
                .consumer
                .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(1))
            {
                metrics::gauge!(m::KAFKA_LAG, "product" => self.product.clone(), "partition" => e.partition().to_string())
                    .set((high - next).max(0) as f64);
            }
        }
    }

    /// After a failed commit: read the buffered partitions again from their first
    /// uncommitted message.
    fn rewind(&mut self) {
        self.ingestor = None;
        for (partition, msgs) in &self.buffer {
            if let Some((first, _)) = msgs.first()
                && let Err(e) =
                    self.consumer
                        .seek(&self.topic, *partition, Offset::Offset(*first), Duration::from_secs(10))
            {
                tracing::warn!(product = %self.product, partition, error = %e, "cannot seek back");
            }
        }
        self.clear();
    }

    fn clear(&mut self) {
        self.buffer.clear();
        self.buffered = 0;
        self.first_at = None;
    }
}
