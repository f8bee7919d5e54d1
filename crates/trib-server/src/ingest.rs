//! Per-product queues and the writer tasks that group-commit them.

use crate::error::ApiError;
use crate::metrics as m;
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use trib_ingest::pipeline::{Body, Pending};
use trib_ingest::{BatchReport, Ingestor, Preparer};
use trib_lake::Lake;
use trib_spec::{Contract, Layer};

/// A request waiting for its commit.
struct Job {
    pending: Pending,
    records: usize,
    reply: oneshot::Sender<Result<BatchReport, ApiError>>,
    /// When the job entered the queue: a group's wait counts from its oldest job.
    queued: Instant,
}

/// Routes ingest requests to the writer of their product.
#[derive(Clone)]
pub struct IngestHub {
    inner: Arc<Inner>,
}

struct Inner {
    queues: HashMap<String, mpsc::Sender<Job>>,
    /// Every product of the project, to tell "unknown" from "not ingestible".
    known: HashMap<String, Layer>,
    /// Products whose events are Debezium change events.
    cdc: std::collections::HashSet<String>,
    /// Each bronze product's preparer: bodies are decoded, validated and checked by
    /// the request, in parallel, and the writer only commits.
    preparers: HashMap<String, Preparer>,
}

impl IngestHub {
    /// Starts one writer task per bronze product. Tables open on the first request.
    pub fn start(lake: Lake, contracts: Vec<Contract>, settings: &crate::ServerSettings) -> Self {
        let mut queues = HashMap::new();
        let mut known = HashMap::new();
        let mut cdc = std::collections::HashSet::new();
        let mut preparers = HashMap::new();
        for c in contracts {
            let name = c.product.value.to_string();
            known.insert(name.clone(), c.layer);
            if c.layer != Layer::Bronze {
                continue;
            }
            if c.is_cdc() {
                cdc.insert(name.clone());
            }
            preparers.insert(name.clone(), Preparer::new(&c));
            let (tx, rx) = mpsc::channel(settings.queue.max(1));
            tokio::spawn(writer(
                lake.clone(),
                c,
                rx,
                settings.group_commit_records,
                settings.group_commit_latency,
                settings
                    .background
                    .clone()
                    .unwrap_or_else(tokio::runtime::Handle::current),
            ));
            queues.insert(name, tx);
        }
        Self {
            inner: Arc::new(Inner {
                queues,
                known,
                cdc,
                preparers,
            }),
        }
    }

    pub fn products(&self) -> Vec<(String, Layer)> {
        let mut v: Vec<(String, Layer)> = self.inner.known.iter().map(|(k, l)| (k.clone(), *l)).collect();
        v.sort();
        v
    }

    /// Whether `product` takes events here, and if not, why.
    pub fn check(&self, product: &str) -> Result<(), ApiError> {
        if self.inner.queues.contains_key(product) {
            return Ok(());
        }
        Err(match self.inner.known.get(product) {
            Some(layer) => ApiError::NotIngestible(format!(
                "`{product}` is a {layer} product, computed from its inputs; it does not take events"
            )),
            None => ApiError::UnknownProduct(product.to_string()),
        })
    }

    /// The format of a body sent without a content type.
    pub fn default_format(&self, product: &str) -> trib_ingest::Format {
        if self.inner.cdc.contains(product) {
            trib_ingest::Format::Debezium
        } else {
            trib_ingest::Format::Ndjson
        }
    }

    /// Queues a batch and waits for its commit.
    pub async fn submit(&self, product: &str, pending: Pending) -> Result<BatchReport, ApiError> {
        let started = Instant::now();
        let answer = self.submit_inner(product, pending).await;
        metrics::histogram!(m::INGEST_ACK_SECONDS, "product" => product.to_string())
            .record(started.elapsed().as_secs_f64());
        answer
    }

    async fn submit_inner(&self, product: &str, mut pending: Pending) -> Result<BatchReport, ApiError> {
        self.check(product)?;
        let Some(queue) = self.inner.queues.get(product) else {
            return Err(ApiError::UnknownProduct(product.to_string()));
        };
        if let (Body::Encoded { .. }, Some(preparer)) = (&pending.body, self.inner.preparers.get(product)) {
            let Body::Encoded { format, bytes } = std::mem::replace(&mut pending.body, Body::Records(Vec::new()))
            else {
                return Err(ApiError::Unavailable);
            };
            let started = Instant::now();
            pending.body = Body::Prepared(preparer.prepare(format, bytes).await);
            metrics::histogram!(m::INGEST_PREPARE_SECONDS, "product" => product.to_string())
                .record(started.elapsed().as_secs_f64());
        }
        let records = match &pending.body {
            Body::Encoded { bytes, .. } => bytes.iter().filter(|b| **b == b'\n').count().max(1),
            Body::Records(r) => r.len(),
            Body::Prepared(Ok(p)) => p.validated.received().max(1),
            Body::Prepared(Err(_)) => 1,
        };
        let (reply, answer) = oneshot::channel();
        queue
            .try_send(Job {
                pending,
                records,
                reply,
                queued: Instant::now(),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ApiError::Busy(product.to_string()),
                mpsc::error::TrySendError::Closed(_) => ApiError::Unavailable,
            })?;
        metrics::gauge!(m::INGEST_QUEUE_DEPTH, "product" => product.to_string())
            .set((queue.max_capacity() - queue.capacity()) as f64);
        answer.await.unwrap_or(Err(ApiError::Unavailable))
    }
}

/// Collects jobs until the group is big or old enough, commits it, answers each job.
/// Group commits between two compactions of a product's bronze table: each group adds
/// a file per partition, and every commit costs more with each small file the table has.
const COMPACT_EVERY: u64 = 50;
/// The file size those compactions aim at: files that reached it are not rewritten by
/// the next round. delta-rs loads the table's whole file list again after each commit,
/// so the writer's commits stay fast only while the table has few files.
const COMPACT_TARGET: NonZeroU64 = NonZeroU64::new(16 << 20).expect("non-zero");

async fn writer(
    lake: Lake,
    contract: Contract,
    mut rx: mpsc::Receiver<Job>,
    max_records: usize,
    max_wait: Duration,
    background: tokio::runtime::Handle,
) {
    let product = contract.product.value.to_string();
    // Opened before the first request arrives, so that it does not wait for the tables to
    // load; a failure here is retried at the first group.
    let opened = async {
        let mut i = Ingestor::open(&lake, &contract).await?.with_deferred_settle();
        i.warm_up().await?;
        Ok::<_, trib_ingest::Error>(i)
    };
    let mut ingestor: Option<Ingestor> = match opened.await {
        Ok(i) => Some(i),
        Err(e) => {
            tracing::warn!(product = %product, error = %e, "cannot open the product's tables yet");
            None
        }
    };
    let mut commits_since_compaction = 0u64;
    let mut compaction: Option<tokio::task::JoinHandle<()>> = None;
    while let Some(first) = rx.recv().await {
        // The window counts from the oldest job's arrival, not from when the writer got
        // to it: jobs that queued behind the previous commit have waited already, and
        // commit at once with whatever queued beside them.
        let started = first.queued;
        let mut records = first.records;
        let mut jobs = vec![first];
        while records < max_records {
            let left = max_wait.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(job)) => {
                    records += job.records;
                    jobs.push(job);
                }
                Ok(None) | Err(_) => break,
            }
        }
        metrics::gauge!(m::INGEST_QUEUE_DEPTH, "product" => product.clone()).set(rx.len() as f64);
        if ingestor.is_none() {
            match Ingestor::open(&lake, &contract).await {
                Ok(i) => ingestor = Some(i.with_deferred_settle()),
                Err(e) => {
                    tracing::error!(product = %product, error = %e, "cannot open the product's tables");
                    for job in jobs {
                        let _ = job.reply.send(Err(ApiError::Unavailable));
                    }
                    continue;
                }
            }
        }
        let Some(ing) = ingestor.as_mut() else { continue };
        let oldest = jobs.iter().map(|j| j.queued).min().unwrap_or_else(Instant::now);
        let queued_ms = oldest.elapsed().as_secs_f64() * 1e3;
        let (pendings, replies): (Vec<Pending>, Vec<oneshot::Sender<Result<BatchReport, ApiError>>>) =
            jobs.into_iter().map(|j| (j.pending, j.reply)).unzip();
        let n = pendings.len();
        let commit_started = Instant::now();
        let result = ing.ingest_group(pendings).await;
        metrics::histogram!(m::INGEST_COMMIT_SECONDS, "product" => product.clone())
            .record(commit_started.elapsed().as_secs_f64());
        metrics::histogram!(m::INGEST_GROUP_REQUESTS, "product" => product.clone()).record(n as f64);
        if result.is_ok() {
            commits_since_compaction += 1;
        }
        // Compaction runs beside the writer, on a table of its own: appends and a
        // rewrite of other files commit without conflict.
        if commits_since_compaction >= COMPACT_EVERY && compaction.as_ref().is_none_or(|c| c.is_finished()) {
            commits_since_compaction = 0;
            compaction = Some(background.spawn(compact(lake.clone(), contract.clone())));
        }
        tracing::debug!(
            product = %product,
            requests = n,
            queued_ms,
            answered_ms = oldest.elapsed().as_secs_f64() * 1e3,
            "group answered"
        );
        match result {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let answer = outcome.map_err(|e| ApiError::BadRequest(e.to_string()));
                    if let Ok(r) = &answer {
                        metrics::counter!(m::INGEST_RECORDS, "product" => product.clone(), "outcome" => "accepted")
                            .increment(r.accepted);
                        metrics::counter!(m::INGEST_RECORDS, "product" => product.clone(), "outcome" => "dead_lettered").increment(r.dead_lettered);
                    }
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(product = %product, error = %e, requests = n, "group commit failed; the requests were not stored");
                // The table state may be stale after a failed commit: reopen next time.
                ingestor = None;
                for reply in replies {
                    let _ = reply.send(Err(ApiError::Unavailable));
                }
            }
        }
    }
}

async fn compact(lake: Lake, contract: Contract) {
    let product = contract.product.value.to_string();
    let started = Instant::now();
    match trib_lake::compact_product(&lake, &contract, Some(COMPACT_TARGET)).await {
        Ok(r) => {
            metrics::histogram!(m::COMPACTION_SECONDS, "product" => product.clone())
                .record(started.elapsed().as_secs_f64());
            tracing::debug!(product = %product, files_removed = r.files_removed, files_added = r.files_added, "bronze compacted");
        }
        Err(e) => tracing::warn!(product = %product, error = %e, "compaction failed; the next one retries"),
    }
}
